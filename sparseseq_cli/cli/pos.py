"""The tagging command: train-pos."""
from __future__ import annotations

from sparseseq_cli.cli import training
from sparseseq_cli.tasks import Phase


def summary(record: dict) -> str:
    """One line: the accuracies of a train-pos record, and its speed."""
    m = record["metrics"]
    shown = [f"{key} {m[key]:.4f}" for key in ("dev_acc", "dev_acc_no_none", "test_acc", "test_acc_no_none")
             if m[key] is not None]
    shown.append(f"best_dev_acc {m['best_dev_acc']:.4f} (epoch {m['best_epoch']})")
    return " | ".join(shown + [f"{record['tokens_per_s']:,.0f} tokens/s"])


training.register("train-pos", Phase.TRAIN_POS,
                  "Train a part-of-speech tagger (Figure 3); dev accuracy per epoch, test accuracy at "
                  "the end.\n\n--data DIR holds train.conll, valid.conll, optionally test.conll (token TAB "
                  "tag, a blank line between sentences) and tags.txt.", summary)
