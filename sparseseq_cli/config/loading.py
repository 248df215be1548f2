"""Resolving a configuration: presets, ``extends``, ``--config``, ``--set``, flags; and dumping it.

Sources apply in this order, later ones winning (the CLI's dedicated flags default to
"not given", so the dataclass defaults are the only defaults):

    1. the dataclass defaults of the task (lm or pos)
    2. the preset's ``extends`` chain, base first, then the preset itself
    3. ``--config FILE`` (any YAML of the same shape, e.g. a run's saved config.yaml;
       it may ``extends:`` a preset too)
    4. ``--set key=value`` left to right (``nhid=1725`` or ``model.nhid=1725``)
    5. dedicated flags (``--seed``, ``--epochs``, ``--data``, ...)
"""
from __future__ import annotations

import dataclasses
import typing
from enum import Enum
from pathlib import Path
from typing import Any, Iterable, Mapping, NamedTuple, Optional

import yaml

from sparseseq_cli.config.checks import check_config
from sparseseq_cli.config.coercion import (coerce, coerce_enum, field_types, parse_override, resolve_key,
                                           unknown_key)
from sparseseq_cli.config.presets import preset_path
from sparseseq_cli.config.schema import SCHEMAS, SECTIONS, Config
from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.files import read_yaml
from sparseseq_cli.tasks import Task

_TOP_KEYS = ("extends", "task", "preset") + SECTIONS


def _read_yaml(path: Path, what: str) -> dict:
    """``what`` names the file in messages ("preset awd-lstm", "config file x.yaml")."""
    data = read_yaml(path, what, "give the path of a readable UTF-8 YAML file")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SparseseqError(f"{what} must be a mapping with data/model/train sections")
    unknown = [k for k in data if k not in _TOP_KEYS]
    if unknown:
        raise SparseseqError(f"unknown top-level key {unknown[0]!r} in {what}: "
                             f"valid keys are {', '.join(_TOP_KEYS)}")
    for section in SECTIONS:
        if data.get(section) is not None and not isinstance(data[section], dict):
            raise SparseseqError(f"section {section!r} in {what} must be a mapping of keys")
    return data


class _Layer(NamedTuple):
    """One source of values, with a name for error messages."""
    source: str
    task: Optional[Task]
    values: dict  # section -> {key: value}


def _chain(path: Path, what: str, seen: tuple[str, ...] = ()) -> list[_Layer]:
    """The layers of a YAML file: its ``extends`` chain (base first), then itself."""
    data = _read_yaml(path, what)
    layers: list[_Layer] = []
    base = data.get("extends")
    if base is not None:
        if not isinstance(base, str):
            raise SparseseqError(f"'extends' in {what} must be a preset name")
        if base in seen:
            raise SparseseqError(f"presets extend each other in a loop: {' -> '.join(seen + (base,))}")
        layers = _chain(preset_path(base), f"preset {base}", seen + (base,))
    task = data.get("task")
    if task is not None:
        task = coerce_enum(Task, task, "task", what)
    layers.append(_Layer(what, task, {s: dict(data.get(s) or {}) for s in SECTIONS}))
    if data.get("preset") is not None:
        layers[-1].values["__name__"] = str(data["preset"])
    return layers


def load_config(preset: str | None = None, config_file: str | Path | None = None,
                overrides: Iterable[str] = (), flags: Mapping[str, Any] | None = None,
                task: Task | str | None = None) -> Config:
    """Resolve a configuration (see the module docstring for the order).

    ``overrides`` are ``--set`` strings; ``flags`` maps ``section.key`` to the value of a
    dedicated flag, ``None`` meaning "not given". ``task`` is the task the caller runs; a
    preset or file of another task is an error.
    """
    layers: list[_Layer] = []
    name = preset
    if preset is not None:
        layers += _chain(preset_path(preset), f"preset {preset}", (preset,))
    if config_file is not None:
        path = Path(config_file)
        file_layers = _chain(path, f"config file {path}")
        layers += file_layers
        name = file_layers[-1].values.pop("__name__", None) or name or path.stem
    for layer in layers:
        layer.values.pop("__name__", None)

    declared = [(layer.task, layer.source) for layer in layers if layer.task is not None]
    wanted = Task(task) if task is not None else None
    for found, source in declared:
        if wanted is not None and found is not wanted:
            raise SparseseqError(f"{source} is a {found.value} configuration, not {wanted.value}: "
                                 f"use a {wanted.value} preset (see `sparseseq presets`)")
        wanted = found
    if wanted is None:
        if preset is None and config_file is None:
            wanted = Task.LM
        else:
            raise SparseseqError(f"{layers[-1].source} does not say its task: add 'task: lm' or 'task: pos'")

    schema = SCHEMAS[wanted]
    types = field_types(schema)
    values: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    for layer in layers:
        for section in SECTIONS:
            for key, value in layer.values[section].items():
                if key not in types[section]:
                    raise unknown_key(f"{section}.{key}", [f"{section}.{k}" for k in types[section]],
                                      layer.source)
                values[section][key] = coerce(value, types[section][key], f"{section}.{key}", layer.source)
    for text in overrides:
        key, raw = parse_override(text)
        section, field_name = resolve_key(key, types, f"--set {text}")
        values[section][field_name] = coerce(raw, types[section][field_name], f"{section}.{field_name}",
                                             f"--set {text}")
    for key, value in (flags or {}).items():
        if value is None:
            continue
        section, field_name = key.split(".")
        values[section][field_name] = coerce(value, types[section][field_name], key, "flag")

    sections = typing.get_type_hints(schema)
    cfg = schema(preset=name, task=wanted,
                 **{s: sections[s](**values[s]) for s in SECTIONS})
    check_config(cfg)
    return cfg


def config_from_dict(data: Mapping[str, Any], source: str = "saved config") -> Config:
    """Rebuild a resolved configuration (as :func:`config_to_dict` wrote it), validated."""
    task = coerce_enum(Task, data.get("task", "lm"), "task", source)
    schema = SCHEMAS[task]
    types = field_types(schema)
    sections = typing.get_type_hints(schema)
    built = {}
    for section in SECTIONS:
        given = dict(data.get(section) or {})
        for key in given:
            if key not in types[section]:
                raise unknown_key(f"{section}.{key}", types[section], source)
        built[section] = sections[section](**{k: coerce(v, types[section][k], f"{section}.{k}", source)
                                              for k, v in given.items()})
    cfg = schema(preset=data.get("preset"), task=task, **built)
    check_config(cfg)
    return cfg


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """Plain data (enums as their values): the form written to config.yaml and checkpoints."""
    def plain(value: Any) -> Any:
        return value.value if isinstance(value, Enum) else value

    out: dict[str, Any] = {"preset": cfg.preset, "task": cfg.task.value}
    for section in SECTIONS:
        out[section] = {f.name: plain(getattr(getattr(cfg, section), f.name))
                        for f in dataclasses.fields(getattr(cfg, section))}
    return out


def dump_config(cfg: Config) -> str:
    """The resolved configuration as YAML, loadable again with ``--config``."""
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=False)


def run_name(cfg: Config) -> str:
    """Default run folder name: ``<preset>-seed<seed>``."""
    return f"{cfg.preset or cfg.task.value}-seed{cfg.train.seed}"
