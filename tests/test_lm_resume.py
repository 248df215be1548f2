"""A run killed mid-epoch (SIGKILL) or stopped by Ctrl-C, then resumed with --resume, ends
exactly where an uninterrupted run ends: same per-epoch metrics, same final perplexities."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from sparseseq_cli.config import load_config
from sparseseq_cli.training import lm_phases as lm
from sparseseq_cli.run_folder import TRAIN, RunFolder


@pytest.fixture(scope="module")
def setup(tmp_path_factory, make_lm_corpus, make_lm_config, cpu):
    root = tmp_path_factory.mktemp("resume")
    corpus = make_lm_corpus(root / "corpus", lines=(600, 40, 40))
    config = make_lm_config(corpus, root / "tiny.yaml", epochs=2, log_interval=5)
    reference = lm.train_lm(load_config(config_file=config), root / "reference",
                            device=cpu, quiet=True)
    return root, config, reference


def _command(config, save, *extra):
    return [sys.executable, "-m", "sparseseq_cli", "train-lm", "--config", str(config),
            "--save", str(save), "--device", "cpu", *extra]


def _start_and_signal(config, save, line, sig):
    """Start a run and send ``sig`` as soon as its log shows ``line``."""
    proc = subprocess.Popen(_command(config, save), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    log, deadline = save / "log.txt", time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if log.exists() and line in log.read_text():
            proc.send_signal(sig)
            break
        time.sleep(0.005)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def _metrics(save):
    return [{k: v for k, v in json.loads(line).items() if k != "elapsed_s"}
            for line in (save / "metrics.jsonl").read_text().splitlines()]


def _resume_and_compare(root, config, save, reference):
    done = subprocess.run(_command(config, save, "--resume", "--json"), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    resumed = json.loads(done.stdout)
    assert resumed["metrics"] == reference["metrics"]
    assert _metrics(save) == _metrics(root / "reference")
    assert resumed["epochs"] == reference["epochs"] == 2


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(setup):
    root, config, reference = setup
    save = root / "killed"
    code, _ = _start_and_signal(config, save, "| epoch   2 |", signal.SIGKILL)
    assert code == -signal.SIGKILL
    assert not (save / "results.json").exists()           # killed in epoch 2, before the end
    assert [r["epoch"] for r in _metrics(save)] == [1]
    assert RunFolder(save).load(TRAIN.last)["cursor"] is None  # the end-of-epoch-1 checkpoint
    _resume_and_compare(root, config, save, reference)


def test_ctrl_c_saves_a_mid_epoch_checkpoint_that_resumes_exactly(setup):
    root, config, reference = setup
    save = root / "interrupted"
    code, err = _start_and_signal(config, save, "| epoch   1 |", signal.SIGINT)
    assert code == 130, err
    assert "interrupted: saved a resumable checkpoint" in err and "Traceback" not in err
    cursor = RunFolder(save).load(TRAIN.last)["cursor"]
    assert cursor is not None and cursor["batch"] >= 5 and not (save / "metrics.jsonl").exists()
    _resume_and_compare(root, config, save, reference)
    assert os.path.exists(save / "checkpoint_best.pt")


def test_averaging_and_nt_asgd_state_survive_an_interrupt(tmp_path, monkeypatch, lm_corpus, make_lm_config, cpu,
                                                          script_validation, stop_after):
    cfg = load_config(config_file=make_lm_config(lm_corpus, tmp_path / "t.yaml", epochs=4, nonmono=0,
                                                 max_batches=6))
    script_validation([4.0, 5.0, 3.9, 3.8])   # epoch 2 is worse than epoch 1: averaging from epoch 3
    reference = lm.train_lm(cfg, tmp_path / "reference", device=cpu, quiet=True)

    script_validation([4.0, 5.0, 3.9])
    monkeypatch.setattr(lm, "StopRequest", lambda: stop_after(3 * 6 + 3))
    with pytest.raises(lm.TrainingInterrupted):
        lm.train_lm(cfg, tmp_path / "run", device=cpu, quiet=True)
    last = RunFolder(tmp_path / "run").load(TRAIN.last)
    assert last["cursor"]["batch"] == 3 and last["state"]["epoch"] == 3
    assert last["state"]["history"] == [4.0, 5.0] and last["averaging"]["count"] == 6 + 3

    script_validation([3.8])
    monkeypatch.setattr(lm, "StopRequest", lambda: stop_after(10 ** 9))
    resumed = lm.train_lm(cfg, tmp_path / "run", device=cpu, resume=True, quiet=True)
    assert resumed["metrics"] == reference["metrics"] and resumed["metrics"]["best_epoch"] == 4
    best = RunFolder(tmp_path / "run").load(TRAIN.best)["model"]
    for name, tensor in RunFolder(tmp_path / "reference").load(TRAIN.best)["model"].items():
        assert torch.equal(best[name], tensor), name
