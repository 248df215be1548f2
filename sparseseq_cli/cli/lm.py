"""Language-model commands: train-lm, overfit, finetune-lm, eval-lm."""
from __future__ import annotations

from typing import Annotated, Optional

import typer

from sparseseq_cli.cli import training
from sparseseq_cli.cli.app import app
from sparseseq_cli.cli.options import (DataOpt, DeviceOpt, EpochsOpt, ForceOpt, JsonOpt, MaxBatchesOpt,
                                       PrecisionOpt, QuietOpt, ResumeOpt, RunFolderArg, SetOpt,
                                       TensorboardOpt, ThreadsOpt)
from sparseseq_cli.config.schema import Precision
from sparseseq_cli.devices import using_threads
from sparseseq_cli.tasks import Phase


def summary(record: dict) -> str:
    """One line: the perplexities (and accuracy) a language-model record holds, and speed."""
    metrics = record.get("metrics", record)
    shown = [f"{key} {metrics[key]:.2f}" for key in ("valid_ppl", "test_ppl", "train_ppl", "ppl")
             if isinstance(metrics.get(key), float)]
    if isinstance(metrics.get("train_acc"), float):
        shown.append(f"train_acc {metrics['train_acc']:.4f}")
    if record.get("unk"):
        shown.append(f"{record['unk']:,} unknown words scored as <unk>")
    if record.get("tokens_per_s"):
        shown.append(f"{record['tokens_per_s']:,.0f} tokens/s")
    return " | ".join(shown)


training.register("train-lm", Phase.TRAIN_LM,
                  "Train a language model with the AWD-LSTM recipe (NT-ASGD); test perplexity at the end.",
                  summary)
training.register("overfit", Phase.OVERFIT,
                  '"Learning to recite" (Table 3): memorize the training data; train perplexity and '
                  'accuracy per epoch.', summary)


@app.command("finetune-lm")
def finetune_lm(run_folder: RunFolderArg, sets: SetOpt = None, epochs: EpochsOpt = None,
                max_batches: MaxBatchesOpt = None, precision: PrecisionOpt = None,
                tensorboard: TensorboardOpt = False, device: DeviceOpt = "auto", threads: ThreadsOpt = None,
                resume: ResumeOpt = False, force: ForceOpt = False, json_out: JsonOpt = False,
                quiet: QuietOpt = False) -> None:
    """Finetune a trained run with averaged SGD into its *_finetune* files (the trained model stays)."""
    from sparseseq_cli.training import train
    from sparseseq_cli.training.options import TrainOptions

    options = TrainOptions(sets=list(sets or ()), epochs=epochs, max_batches=max_batches, save=run_folder,
                           precision=precision and precision.value, tensorboard=tensorboard or None,
                           device=device, resume=resume, force=force, quiet=quiet or json_out)
    with using_threads(threads):
        record = train(Phase.FINETUNE_LM, options)
    training.print_record(record, summary, as_json=json_out, quiet=quiet)


@app.command("eval-lm")
def eval_lm(run_folder: RunFolderArg,
            split: Annotated[str, typer.Option(help="The split to evaluate: train, valid or test.")] = "test",
            batch_size: Annotated[Optional[int], typer.Option(
                help="Batch columns (default: the run's test_batch_size for test, eval_batch_size "
                     "otherwise).", show_default=False)] = None,
            data: DataOpt = None,
            finetuned: Annotated[bool, typer.Option(
                "--finetuned", help="Evaluate the best finetuned model instead of the trained one.")] = False,
            precision: Annotated[Optional[Precision], typer.Option(
                help="Evaluate in fp32, bf16 or fp16 (default: the precision the run trained in).",
                show_default=False)] = None,
            device: DeviceOpt = "auto", threads: ThreadsOpt = None, json_out: JsonOpt = False,
            quiet: QuietOpt = False) -> None:
    """Loss and perplexity of a run's best model on one split."""
    from sparseseq_cli.devices import resolve_device
    from sparseseq_cli.training import evaluate_run

    with using_threads(threads):
        record = evaluate_run(run_folder, device=resolve_device(device), split=split, batch_size=batch_size,
                              data=data, finetuned=finetuned, precision=precision, quiet=quiet or json_out)
    if record["note"]:
        typer.echo(f"note: {record['note']}", err=True)
    training.print_record(record, summary, as_json=json_out, quiet=quiet)
