"""Using a trained run: score, generate, tag (thin wrappers over ``sparseseq_cli.inference``).

Results go to stdout (a table, the text, CoNLL, or ``--json``); notes about the run (which
checkpoint, an unfinished run) and accuracies go to stderr, so stdout can be piped on.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from sparseseq_cli.cli.app import app
from sparseseq_cli.cli.options import DeviceOpt, JsonOpt, QuietOpt, ThreadsOpt
from sparseseq_cli.devices import using_threads
from sparseseq_cli.files import to_json

UseRunArg = Annotated[Path, typer.Argument(help="A run folder written by a training command.",
                                           metavar="RUN_FOLDER", show_default=False)]
FileArg = Annotated[str, typer.Argument(help="The text to read; - reads standard input.", metavar="FILE",
                                        show_default=False)]
FinetunedOpt = Annotated[bool, typer.Option(
    "--finetuned", help="Use the best finetuned model (finetune-lm) instead of the trained one.")]


def _load(run_folder: Path, task: str, finetuned: bool, device: str, quiet: bool):
    from sparseseq_cli.devices import resolve_device
    from sparseseq_cli.inference import load_run

    run = load_run(run_folder, finetuned=finetuned, device=resolve_device(device), task=task)
    if run.note and not quiet:   # on stderr, so also beside --json
        typer.echo(f"note: {run.note}", err=True)
    return run


def _which(run) -> dict:
    """The model a --json record comes from."""
    return {"run": str(run.path), "checkpoint": run.checkpoint, "epoch": run.epoch, "finished": run.finished}


@app.command("score")
def score(run_folder: UseRunArg, file: FileArg, finetuned: FinetunedOpt = False,
          independent: Annotated[bool, typer.Option(
              "--independent", help="Score every line from a fresh state (each sentence on its own) "
                                    "instead of as one continuous text.")] = False,
          device: DeviceOpt = "auto", threads: ThreadsOpt = None, json_out: JsonOpt = False,
          quiet: QuietOpt = False) -> None:
    """Log-probability and perplexity of each line of FILE, and of the whole.

    FILE holds one sentence a line, tokenized as the training data (- reads stdin). By
    default the lines are one text, as eval-lm reads a split: scoring a split's file gives
    eval-lm's perplexity."""
    from sparseseq_cli.inference.reading import read_input

    run = _load(run_folder, "lm", finetuned, device, quiet)
    text, source = read_input(file)
    with using_threads(threads):
        scores = run.score(text, independent=independent, source=source)
    if json_out:
        print(to_json({**_which(run), **scores.as_dict()}, indent=2))
        return
    if not quiet:
        typer.echo(f"scored with {run.describe()}", err=True)
        print("# logprob: natural log of the line's probability; ppl = exp(-logprob / tokens)"
              + ("" if independent else "; the file's first word is context only, as in eval-lm"))
        print(f"{'line':>6} {'tokens':>6} {'logprob':>12} {'ppl':>10} {'unk':>4}  text")
        for s in scores.sentences:
            ppl = f"{s.ppl:10.2f}" if s.ppl is not None else f"{'-':>10}"
            print(f"{s.line:6d} {s.tokens:6d} {s.logprob:12.4f} {ppl} {s.unk:4d}  {s.text}")
    print(f"{'total':>6} {scores.tokens:6d} {scores.logprob:12.4f} {scores.ppl:10.2f} {scores.unk:4d}  "
          f"loss {scores.loss:.4f} | ppl {scores.ppl:.2f} | {scores.tokens:,} tokens | "
          f"{scores.unk:,} unknown words scored as <unk>")


@app.command("generate")
def generate(run_folder: UseRunArg,
             words: Annotated[int, typer.Option(help="How many tokens to sample (each <eos> ends a line).")] = 100,
             temperature: Annotated[float, typer.Option(
                 help="Divides the log-probabilities: below 1 safer text, above 1 wilder; near 0 "
                      "(< 1e-4) always the most probable word.")] = 1.0,
             seed: Annotated[Optional[int], typer.Option(
                 help="Seed of the sampling: the same seed gives the same text (default: random).",
                 show_default=False)] = None,
             prompt: Annotated[Optional[str], typer.Option(
                 help="Words to start from (all in the run's vocabulary); the text continues them.",
                 show_default=False)] = None,
             finetuned: FinetunedOpt = False, device: DeviceOpt = "auto", threads: ThreadsOpt = None,
             quiet: QuietOpt = False) -> None:
    """Sample text from a trained language model, a line per <eos>."""
    run = _load(run_folder, "lm", finetuned, device, quiet)
    with using_threads(threads):
        text = run.generate(words=words, temperature=temperature, seed=seed, prompt=prompt)
    print(text, end="" if not text or text.endswith("\n") else "\n")


@app.command("tag")
def tag(run_folder: UseRunArg, file: FileArg, device: DeviceOpt = "auto", threads: ThreadsOpt = None,
        json_out: JsonOpt = False, quiet: QuietOpt = False) -> None:
    """Tag FILE with a train-pos run's best model; prints CoNLL, token TAB predicted tag.

    FILE holds one sentence a line, or CoNLL (token TAB tag, a blank line between
    sentences), whose given tags then give the accuracy."""
    from sparseseq_cli.inference.reading import read_input
    from sparseseq_cli.inference.tagging import parse_input

    run = _load(run_folder, "pos", False, device, quiet)
    text, source = read_input(file)
    sentences, gold = parse_input(text, source)
    with using_threads(threads):
        tagged = run.tag_sentences(sentences, gold=gold)
    if json_out:
        print(to_json({**_which(run), **tagged.as_dict()}, indent=2))
        return
    print(tagged.conll(), end="")
    if quiet:
        return
    summary = f"tagged {len(tagged.words):,} sentences, {tagged.tokens:,} tokens ({tagged.unk:,} unknown words)"
    if tagged.accuracy is not None:
        summary += (f" | acc {tagged.accuracy.acc:.4f} | without -NONE- "
                    f"{tagged.accuracy.acc_no_none:.4f}")
    typer.echo(f"{summary} | with {run.describe()}", err=True)
