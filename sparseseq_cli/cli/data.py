"""Data commands: getdata, presets."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from sparseseq_cli.cli.app import app
from sparseseq_cli.files import to_json
from sparseseq_cli.cli.options import JsonOpt, QuietOpt
from sparseseq_cli.corpora.datasets import DatasetName, GetdataOptions


@app.command()
def getdata(
    dataset: Annotated[Optional[DatasetName], typer.Argument(
        help="ptb, wikitext-2, wsj-pos (needs --from), or all (ptb and wikitext-2); "
             f"default: {GetdataOptions.dataset.value}.", show_default=False)] = None,
    dest: Annotated[Optional[Path], typer.Option(
        help=f"Folder the datasets go into; default: {GetdataOptions.dest} (relative to here).",
        show_default=False)] = None,
    source: Annotated[Optional[Path], typer.Option(
        "--from", help="Install from this archive or folder instead of downloading (offline; "
                       "for wsj-pos: Treebank-3 parsed/mrg/wsj, NLTK's treebank, or ready files).",
        show_default=False)] = None,
    mirror: Annotated[Optional[str], typer.Option(
        help="Base address that serves the archives (e.g. a lab mirror) instead of the originals.",
        show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Reinstall even when verified files are in place.")] = False,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Download, verify (SHA-256) and install the datasets: data/penn, data/wikitext-2, data/wsj-pos."""
    from sparseseq_cli.corpora.getdata import getdata

    # a flag left at None keeps GetdataOptions' default
    given = dict(dataset=dataset, dest=dest, source=source, mirror=mirror, force=force, quiet=quiet)
    options = GetdataOptions(**{key: value for key, value in given.items() if value is not None})
    installed = getdata(options)
    if json_out:
        report = {"dest": str(options.dest), "datasets": [item.as_dict() for item in installed]}
        print(to_json(report, indent=2))


@app.command()
def presets(json_out: JsonOpt = False) -> None:
    """List the shipped presets and what each reproduces."""
    from sparseseq_cli.config import list_presets

    found = list_presets()
    if json_out:
        print(to_json([preset.as_dict() for preset in found], indent=2))
        return
    width = max(len(preset.name) for preset in found)
    for preset in found:
        print(f"{preset.name:<{width}}  {preset.task.value:<3}  {preset.description}")
