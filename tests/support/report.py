"""Run folders written by hand, as docs/formats.md describes them, for the `sparseseq report` tests.

Behind the report fixtures of tests/conftest.py (write_run, pos_config, lm_config, pos_metrics,
lm_metrics, by_hand, pos_params, lm_params and the sweep scores); test modules use those
fixtures, not this module.
"""
import json
import math

import yaml

from sparseseq_cli.tasks import Phase

ENV = {"python": "3.11.7", "torch": "2.13.0", "cuda": None, "device": "cpu", "git_commit": None}
POS_PARAMS = {"total": 2400, "embedding": 500, "embedding_dense": 500, "recurrent": 1280, "head": 620}
LM_PARAMS = {"total": 24221600, "embedding": 4000000, "embedding_dense": 4000000,
             "recurrent": 20211600, "decoder_bias": 10000, "mos": 0}

# Two settings, three seeds each: dense emsize 5 and sparse emsize 20 at density 0.25.
DENSE_DEV, DENSE_TEST = [0.90, 0.92, 0.97], [0.89, 0.915, 0.95]
SPARSE_DEV, SPARSE_TEST = [0.94, 0.95, 0.99], [0.93, 0.96, 0.97]


def pos_config(preset="pos-tiny", seed=1, emsize=5, emblocks=1, emdensity=1.0, vocab_order="up"):
    return {"preset": preset, "task": "pos",
            "data": {"path": "builtin:toy", "vocab_order": vocab_order, "corpus_seed": 0},
            "model": {"emsize": emsize, "nhid": 10, "emblocks": emblocks, "emdensity": emdensity,
                      "dropouti": 0.2, "wdrop": 0.2},
            "train": {"optimizer": "adam", "lr": 0.001, "epochs": 3, "batch_size": 20, "seed": seed}}


def lm_config(preset, seed, **model):
    return {"preset": preset, "task": "lm", "data": {"path": "builtin:toy", "vocab_order": "up"},
            "model": {"emsize": 400, "nhid": 1150, "nlayers": 3, "emblocks": 1, "emdensity": 1.0,
                      "sparse_mode": "direct", "sparse_fract": 1.0, **model},
            "train": {"lr": 30.0, "epochs": 500, "batch_size": 20, "seed": seed}}


def write_run(root, name, phase, config, metrics, params, epochs=3, log=None, finetune=None,
              finished=True, wall_time_s=10.0, tokens_per_s=1000.0):
    """A run folder as the training commands leave it; ``finished=False``: no results.json."""
    run = root / name
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    records = log if log is not None else [{"epoch": e, "elapsed_s": float(e)} for e in range(1, epochs + 1)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    if finished:
        results = {"task": Phase(phase).task.value, "phase": phase, "preset": config["preset"], "seed": config["train"]["seed"],
                   "config": config, "params": params, "metrics": metrics, "epochs": epochs,
                   "wall_time_s": wall_time_s, "tokens_per_s": tokens_per_s, "env": ENV}
        (run / "results.json").write_text(json.dumps(results))
    if finetune is not None:
        ft_metrics, ft_log, ft_done = finetune
        (run / "metrics_finetune.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ft_log))
        if ft_done:
            (run / "results_finetune.json").write_text(json.dumps({
                "task": "lm", "phase": "finetune-lm", "preset": config["preset"], "seed": config["train"]["seed"],
                "config": config, "params": params, "metrics": ft_metrics, "epochs": len(ft_log),
                "wall_time_s": 5.0, "tokens_per_s": 900.0, "env": ENV}))
    return run


def pos_metrics(dev, test=None, best_epoch=3):
    return {"dev_acc": dev, "dev_acc_no_none": dev - 0.01,
            "test_acc": test, "test_acc_no_none": None if test is None else test - 0.01,
            "best_epoch": best_epoch, "best_dev_acc": dev, "test_acc_at_best": test,
            "test_acc_no_none_at_best": None if test is None else test - 0.01}


def lm_metrics(valid_ppl, test_ppl):
    return {"valid_loss": math.log(valid_ppl), "valid_ppl": valid_ppl,
            "test_loss": math.log(test_ppl), "test_ppl": test_ppl, "best_epoch": 10}


def by_hand(values):
    """Mean and sample standard deviation (n - 1), written out independently of the code."""
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
