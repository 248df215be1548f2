"""The shipped presets: the YAML files of the package ``sparseseq_cli.configs``, one folder per task.

A preset's name is its file name; its description is its first comment line.
"""
from __future__ import annotations

import difflib
import importlib.resources
from pathlib import Path
from typing import NamedTuple

from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.tasks import Task


class PresetInfo(NamedTuple):
    name: str
    task: Task
    description: str
    path: Path

    def as_dict(self) -> dict:
        """What ``sparseseq presets --json`` lists."""
        return {"name": self.name, "task": self.task.value, "description": self.description}


def _preset_files() -> dict[str, tuple[Task, Path]]:
    root = importlib.resources.files("sparseseq_cli.configs")
    found: dict[str, tuple[Task, Path]] = {}
    for task in Task:
        folder = root / task.value
        if not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir(), key=lambda e: e.name.rsplit(".", 1)[0]):
            if entry.name.endswith(".yaml"):
                found[entry.name[:-len(".yaml")]] = (task, Path(str(entry)))
    return found


def list_presets() -> list[PresetInfo]:
    """Every shipped preset with the one-line description from its first comment line."""
    presets = []
    for name, (task, path) in _preset_files().items():
        first = path.read_text(encoding="utf-8").splitlines()[:1]
        line = first[0].lstrip("#").strip() if first and first[0].startswith("#") else ""
        if line.startswith(name + ":"):
            line = line[len(name) + 1:].strip()
        presets.append(PresetInfo(name, task, line, path))
    return presets


def preset_path(name: str) -> Path:
    files = _preset_files()
    if name not in files:
        close = difflib.get_close_matches(name, list(files), n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise SparseseqError(f"unknown preset {name!r}: {hint}`sparseseq presets` lists them all")
    return files[name][1]
