"""The ``sparseseq`` command: one short typed function per subcommand, no logic.

Each subcommand resolves its options and calls one library function. Options shared by
several subcommands are declared once below (``Annotated`` aliases) and reused.
Bad input raises :class:`SparseseqError`; the group prints its one line and exits 2.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

from sparseseq_cli.corpora.datasets import DatasetName, GetdataOptions
from sparseseq_cli.errors import SparseseqError


class _Group(TyperGroup):
    """Turns SparseseqError (bad input) into a one-line message and its exit status (2)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SparseseqError as err:
            typer.echo(f"{err.prefix}{err}", err=True)
            raise typer.Exit(err.exit_code) from None


app = typer.Typer(
    cls=_Group,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    help="Predefined sparseness in recurrent sequence models (Demeester et al., CoNLL 2018).",
)

# ---- options shared by several subcommands -------------------------------------------
DeviceOpt = Annotated[str, typer.Option(help="auto (CUDA when available), cpu, cuda or cuda:N; under "
                                              "torchrun, auto and cuda mean each process's own GPU.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON only.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print errors only.")]

# configuration sources and run folders (train-lm, overfit, finetune-lm, ...): every default
# lives in the config dataclasses, so these flags default to None = "not given"
PresetOpt = Annotated[Optional[str], typer.Option(
    help="Preset name (see `sparseseq presets`).", show_default=False)]
ConfigOpt = Annotated[Optional[Path], typer.Option(
    "--config", help="A YAML config (any preset-shaped file, e.g. a run's config.yaml), applied "
                     "after the preset.", show_default=False)]
SetOpt = Annotated[Optional[list[str]], typer.Option(
    "--set", help="Override a key: nhid=1725 or model.nhid=1725; repeatable, applied left to right.",
    show_default=False)]
SeedOpt = Annotated[Optional[int], typer.Option(help="train.seed (default: the preset's).", show_default=False)]
EpochsOpt = Annotated[Optional[int], typer.Option(help="train.epochs (default: the preset's).", show_default=False)]
DataOpt = Annotated[Optional[str], typer.Option(
    help="data.path: a corpus folder or builtin:toy (default: the preset's).", show_default=False)]
MaxBatchesOpt = Annotated[Optional[int], typer.Option(
    help="train.max_batches: at most N batches per training/evaluation pass (smoke runs, sizing).",
    show_default=False)]
SaveOpt = Annotated[Optional[Path], typer.Option(
    help="Run folder (default: runs/<preset>-seed<seed>).", show_default=False)]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue the unfinished run in the run folder.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Delete the run folder's run files and start over.")]
PrintConfigOpt = Annotated[bool, typer.Option(
    "--print-config", help="Print the resolved configuration as YAML and exit.")]
RunDirArg = Annotated[Path, typer.Argument(help="A run folder written by train-lm.", show_default=False)]


@app.command()
def report(
    run_dirs: Annotated[list[Path], typer.Argument(
        help="Run directories written by train-lm/finetune-lm, overfit or train-pos.", show_default=False)],
    group_by: Annotated[Optional[list[str]], typer.Option(
        "--group-by", help="Group by this config key instead of 'all but the seed' "
                           "(model.emsize, or emsize when unambiguous); repeatable.")] = None,
    json_out: JsonOpt = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print Markdown tables.")] = False,
    csv_out: Annotated[bool, typer.Option("--csv", help="Print one CSV row per group.")] = False,
    plot: Annotated[Optional[Path], typer.Option(
        help="Write a PNG: Figure 3 for taggers, perplexity per group for language models.")] = None,
    curves: Annotated[Optional[Path], typer.Option(
        help="Write a PNG of the runs' learning curves (validation metric per epoch).")] = None,
) -> None:
    """Tables of many runs: mean ± sample std (n-1) over seeds, one row per setting."""
    from sparseseq_cli.report import write_report

    write_report(run_dirs, group_by, as_json=json_out, markdown=markdown, as_csv=csv_out,
                 plot=plot, curves=curves)


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
    from sparseseq_cli.corpora.getdata import run_getdata

    run_getdata(dataset, dest=dest, source=source, mirror=mirror, force=force, quiet=quiet, as_json=json_out)


@app.command()
def presets(json_out: JsonOpt = False) -> None:
    """List the shipped presets and what each reproduces."""
    from sparseseq_cli.config import print_presets

    print_presets(as_json=json_out)


@app.command("train-lm")
def train_lm(preset: PresetOpt = None, config: ConfigOpt = None, sets: SetOpt = None,
             seed: SeedOpt = None, epochs: EpochsOpt = None, data: DataOpt = None,
             max_batches: MaxBatchesOpt = None, save: SaveOpt = None, device: DeviceOpt = "auto",
             resume: ResumeOpt = False, force: ForceOpt = False, print_config: PrintConfigOpt = False,
             json_out: JsonOpt = False, quiet: QuietOpt = False) -> None:
    """Train a language model with the AWD-LSTM recipe (NT-ASGD); test perplexity at the end."""
    from sparseseq_cli.training import lm

    lm.run_command(lm.train_lm, preset, config, sets, save, resume, force, device, print_config,
                   json_out, quiet, {"train.seed": seed, "train.epochs": epochs, "data.path": data,
                                     "train.max_batches": max_batches})


@app.command()
def overfit(preset: PresetOpt = None, config: ConfigOpt = None, sets: SetOpt = None,
            seed: SeedOpt = None, epochs: EpochsOpt = None, data: DataOpt = None,
            max_batches: MaxBatchesOpt = None, save: SaveOpt = None, device: DeviceOpt = "auto",
            resume: ResumeOpt = False, force: ForceOpt = False, print_config: PrintConfigOpt = False,
            json_out: JsonOpt = False, quiet: QuietOpt = False) -> None:
    """"Learning to recite" (Table 3): memorize the training data; train perplexity and accuracy per epoch."""
    from sparseseq_cli.training import lm

    lm.run_command(lm.overfit, preset, config, sets, save, resume, force, device, print_config,
                   json_out, quiet, {"train.seed": seed, "train.epochs": epochs, "data.path": data,
                                     "train.max_batches": max_batches})


@app.command("train-pos")
def train_pos(preset: PresetOpt = None, config: ConfigOpt = None, sets: SetOpt = None,
              seed: SeedOpt = None, epochs: EpochsOpt = None, data: DataOpt = None,
              max_batches: MaxBatchesOpt = None, save: SaveOpt = None, device: DeviceOpt = "auto",
              resume: ResumeOpt = False, force: ForceOpt = False, print_config: PrintConfigOpt = False,
              json_out: JsonOpt = False, quiet: QuietOpt = False) -> None:
    """Train a part-of-speech tagger (Figure 3); dev accuracy per epoch, test accuracy at the end.

    --data DIR holds train.conll, valid.conll, optionally test.conll (token TAB tag, a blank
    line between sentences) and tags.txt."""
    from sparseseq_cli.training import tagging

    tagging.run_command(preset, config, sets or (), {"train.seed": seed, "train.epochs": epochs,
                                                     "data.path": data, "train.max_batches": max_batches},
                        save, resume=resume, force=force, device=device, print_config=print_config,
                        as_json=json_out, quiet=quiet)


@app.command("finetune-lm")
def finetune_lm(run_dir: RunDirArg, sets: SetOpt = None, epochs: EpochsOpt = None,
                max_batches: MaxBatchesOpt = None, device: DeviceOpt = "auto",
                resume: ResumeOpt = False, force: ForceOpt = False, json_out: JsonOpt = False,
                quiet: QuietOpt = False) -> None:
    """Finetune a trained run with averaged SGD into its *_finetune* files (the trained model stays)."""
    from sparseseq_cli.training import lm

    lm.finetune_command(run_dir, sets, {"train.epochs": epochs, "train.max_batches": max_batches},
                        device, resume, force, json_out, quiet)


@app.command("eval-lm")
def eval_lm(run_dir: RunDirArg,
            split: Annotated[str, typer.Option(help="The split to evaluate: train, valid or test.")] = "test",
            batch_size: Annotated[Optional[int], typer.Option(
                help="Batch columns (default: the run's test_batch_size for test, eval_batch_size "
                     "otherwise).", show_default=False)] = None,
            data: DataOpt = None,
            finetuned: Annotated[bool, typer.Option(
                "--finetuned", help="Evaluate the best finetuned model instead of the trained one.")] = False,
            device: DeviceOpt = "auto", json_out: JsonOpt = False, quiet: QuietOpt = False) -> None:
    """Loss and perplexity of a run's best model on one split."""
    from sparseseq_cli.devices import resolve_device
    from sparseseq_cli.training import lm

    lm.print_result(lm.eval_lm(run_dir, device=resolve_device(device), split=split,
                               batch_size=batch_size, data=data, finetuned=finetuned,
                               quiet=quiet or json_out),
                    as_json=json_out, quiet=quiet)


@app.command("count-params")
def count_params(
    presets: Annotated[list[str], typer.Argument(help="One or more presets; totals are compared to the first.",
                                                 show_default=False)],
    sets: SetOpt = None,
    vocab_size: Annotated[Optional[int], typer.Option(
        help="Vocabulary size (default: from the data when present, else the preset's data.vocab_size).",
        show_default=False)] = None,
    check_parity: Annotated[bool, typer.Option(
        "--check-parity", help="Exit 1 when a total differs from the first by more than --tolerance.")] = False,
    tolerance: Annotated[float, typer.Option(help="Relative tolerance for --check-parity.")] = 0.02,
    json_out: JsonOpt = False,
) -> None:
    """Trainable parameters per component (embedding, each LSTM layer with k and windows, decoder)."""
    from sparseseq_cli.params import count_presets, print_counts

    if check_parity and len(presets) < 2:
        raise SparseseqError("--check-parity compares totals to the first preset's: give at least two presets")
    ok = print_counts(count_presets(presets, sets or [], vocab_size), tolerance, as_json=json_out)
    if check_parity and not ok:
        raise typer.Exit(1)


@app.command()
def bench(
    device: DeviceOpt = "auto",
    lstm_size: Annotated[Optional[int], typer.Option(help="SparseLSTM input = hidden size (default 1725).", show_default=False)] = None,
    reduce: Annotated[Optional[float], typer.Option(help="reduce_in = reduce_out of the SparseLSTM (default 0.66666).", show_default=False)] = None,
    seq_len: Annotated[Optional[int], typer.Option(help="Time steps T (default 70).", show_default=False)] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Batch B (default 20).", show_default=False)] = None,
    vocab_size: Annotated[Optional[int], typer.Option(help="Embedding rows V (default 10000).", show_default=False)] = None,
    emsize: Annotated[Optional[int], typer.Option(help="Embedding size d (default 400).", show_default=False)] = None,
    emblocks: Annotated[Optional[int], typer.Option(help="Embedding blocks (default 10).", show_default=False)] = None,
    emdensity: Annotated[Optional[float], typer.Option(help="Embedding density (default 0.5).", show_default=False)] = None,
    repeats: Annotated[Optional[int], typer.Option(help="Timed repeats per candidate (default 7).", show_default=False)] = None,
    json_out: JsonOpt = False,
) -> None:
    """Time the sparse layers (forward+backward) against dense ones; ratios in one run."""
    from sparseseq_cli.bench import BenchSettings, print_bench, run_bench
    from sparseseq_cli.devices import resolve_device

    given = dict(lstm_size=lstm_size, reduce=reduce, seq_len=seq_len, batch_size=batch_size,
                 vocab_size=vocab_size, emsize=emsize, emblocks=emblocks, emdensity=emdensity,
                 repeats=repeats)
    settings = BenchSettings(**{k: v for k, v in given.items() if v is not None})
    print_bench(run_bench(settings, resolve_device(device)), as_json=json_out)


def main() -> None:
    app(prog_name="sparseseq")


if __name__ == "__main__":
    sys.exit(main())
