"""Analysis commands: count-params, bench, report."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from sparseseq_cli.cli.app import app
from sparseseq_cli.cli.options import DeviceOpt, JsonOpt, SetOpt, ThreadsOpt
from sparseseq_cli.devices import using_threads
from sparseseq_cli.files import to_json
from sparseseq_cli.errors import SparseseqError


@app.command()
def report(
    run_folders: Annotated[list[Path], typer.Argument(
        help="Run folders written by train-lm/finetune-lm, overfit or train-pos. A folder that "
             "is missing, not a run folder, or damaged is skipped with a warning line and the "
             "exit status is 1; when no folder can be used, one error line and exit status 2.",
        show_default=False)],
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
    """Tables of many runs: mean ± sample std (n-1) over seeds, one row per setting.

    Unfinished and diverged runs are listed apart and left out of the means. Exit status:
    0, or 1 when a folder was skipped, or 2 when none could be used (or bad options).
    """
    from sparseseq_cli.cli.tables import print_report
    from sparseseq_cli.report import ReportOptions, make_report, skipped_lines

    out = make_report(ReportOptions(list(run_folders), list(group_by or ()), as_json=json_out,
                                    markdown=markdown, as_csv=csv_out, plot=plot, curves=curves))
    if out.text is not None:
        sys.stdout.write(out.text)
    else:
        print_report(out.report)
    for target in out.written:
        print(f"wrote {target}", file=sys.stderr)
    for line in skipped_lines(out.report):
        print(f"warning: {line}", file=sys.stderr)
    if out.report.skipped:
        raise typer.Exit(1)


@app.command("count-params")
def count_params(
    presets: Annotated[Optional[list[str]], typer.Argument(
        help="Presets to count; totals are compared to the first. None: the paper's parity groups.",
        show_default=False)] = None,
    sets: SetOpt = None,
    vocab_size: Annotated[Optional[int], typer.Option(
        help="Vocabulary size (default: from the data when present, else the preset's data.vocab_size).",
        show_default=False)] = None,
    check_parity: Annotated[bool, typer.Option(
        "--check-parity", help="Exit 1 when a total differs from the first by more than --tolerance.")] = False,
    tolerance: Annotated[float, typer.Option(help="Relative tolerance for --check-parity.")] = 0.02,
    json_out: JsonOpt = False,
) -> None:
    """Trainable parameters per component (embedding, each LSTM layer with k and windows, decoder).

    Without presets: the paper's parity groups, each compared to its first
    preset: Table 1 (awd-lstm, awd-sparse) and Table 3 (recite-dense-reduced,
    recite-sparse1, recite-sparse2). recite-dense, Table 3's 24M reference, has
    awd-lstm's counts and is left out.
    """
    from sparseseq_cli.cli.tables import print_counts
    from sparseseq_cli.params import count_presets, parity_record

    if check_parity and len(presets or ()) == 1:
        raise SparseseqError("--check-parity compares totals to the first preset's: give at least two presets")
    groups = count_presets(list(presets or ()), list(sets or ()), vocab_size, tolerance)
    if json_out:
        print(to_json(parity_record(groups), indent=2))
    else:
        print_counts(groups)
    if check_parity and not all(group.ok for group in groups):
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
    threads: ThreadsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Time the sparse layers (forward+backward) against dense ones; ratios in one run."""
    from sparseseq_cli.bench import BenchSettings, run_bench
    from sparseseq_cli.cli.tables import print_bench
    from sparseseq_cli.devices import resolve_device

    given = dict(lstm_size=lstm_size, reduce=reduce, seq_len=seq_len, batch_size=batch_size,
                 vocab_size=vocab_size, emsize=emsize, emblocks=emblocks, emdensity=emdensity,
                 repeats=repeats)
    with using_threads(threads):
        result = run_bench(BenchSettings(**{k: v for k, v in given.items() if v is not None}),
                           resolve_device(device))
    if json_out:
        print(to_json(result, indent=2))
    else:
        print_bench(result)
