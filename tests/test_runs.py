"""Run folders: start/resume/force rules, atomic files, checkpoints, results, Ctrl-C."""
import json
import os
import signal

import pytest
import torch

from sparseseq_cli.config import dump_config, load_config
from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.run_folder import FINETUNE, LOCK, MARKER, TRAIN, RunFolder
from sparseseq_cli.tasks import Phase
from sparseseq_cli.training.start import env_info, results_record
from sparseseq_cli.training.state import StopRequest, rng_state, set_rng_state


def _started(path):
    """A training run that reached its first checkpoint, its folder released."""
    with RunFolder.open(path, resume=False, force=False) as run:
        run.write_config(dump_config(load_config("lm-tiny")))
        run.save(TRAIN.last, {"epoch": 1})
    return run


def test_fresh_start_creates_the_folder(tmp_path):
    with RunFolder.open(tmp_path / "a" / "b", resume=False, force=False) as run:
        assert run.path.is_dir() and not run.resuming and not run.started() and run.is_run_folder()


def test_unfinished_run_needs_resume_or_force(tmp_path):
    _started(tmp_path)
    with pytest.raises(SparseseqError, match="unfinished training run .* --resume .* --force"):
        RunFolder.open(tmp_path, resume=False, force=False)
    with RunFolder.open(tmp_path, resume=True, force=False) as run:
        assert run.resuming
    assert (tmp_path / "config.yaml").exists()


def test_a_run_without_a_checkpoint_is_startable(tmp_path):
    """A start that failed before its first checkpoint (out of memory, a kill) blocks nothing:
    the next start, with or without --resume, begins afresh."""
    for resume in (False, True):
        with RunFolder.open(tmp_path, resume=False, force=False) as run:
            run.write_config(dump_config(load_config("lm-tiny")))
            run.append_metrics({"epoch": 1})   # a line written just before a kill
        with RunFolder.open(tmp_path, resume=resume, force=False) as run:
            assert not run.resuming and not (tmp_path / TRAIN.metrics).exists()


def test_finished_run_is_protected_unless_forced(tmp_path):
    run = _started(tmp_path)
    run.write_results({"metrics": {}})
    (tmp_path / "checkpoint_best.pt").write_bytes(b"model")
    for resume in (False, True):
        with pytest.raises(SparseseqError, match="finished training run"):
            RunFolder.open(tmp_path, resume=resume, force=False)
    assert (tmp_path / "checkpoint_best.pt").read_bytes() == b"model"
    (tmp_path / "notes.txt").write_text("mine")
    RunFolder.open(tmp_path, resume=False, force=True).release()
    # only the run's own files go
    assert sorted(p.name for p in tmp_path.iterdir()) == [MARKER, LOCK, "notes.txt"]


def test_a_diverged_run_says_so(tmp_path):
    run = _started(tmp_path)
    run.write_results({"status": "diverged", "diverged": {"epoch": 2, "batch": 13, "where": "training"}})
    for resume in (False, True):
        with pytest.raises(SparseseqError, match="diverged in epoch 2 at batch 13 .* --force"):
            RunFolder.open(tmp_path, resume=resume, force=False)
    RunFolder.open(tmp_path, resume=False, force=True).release()


def test_resume_needs_a_run_and_contradicts_force(tmp_path):
    with pytest.raises(SparseseqError, match="no training run to resume"):
        RunFolder.open(tmp_path, resume=True, force=False)
    with pytest.raises(SparseseqError, match="contradict"):
        RunFolder.open(tmp_path, resume=True, force=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(SparseseqError, match="is a file"):
        RunFolder.open(tmp_path / "file", resume=False, force=False)


@pytest.mark.parametrize("force", [False, True])
def test_someone_elses_folder_is_never_adopted(tmp_path, force):
    (tmp_path / "log.txt").write_text("my notes")
    (tmp_path / "metrics.jsonl").write_text("{}\n")
    with pytest.raises(SparseseqError, match="not a sparseseq run folder"):
        RunFolder.open(tmp_path, resume=False, force=force)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.txt", "metrics.jsonl"]
    assert (tmp_path / "log.txt").read_text() == "my notes"


def test_a_folder_in_use_is_refused_until_released(tmp_path):
    run = RunFolder.open(tmp_path, resume=False, force=False)
    for resume, force in ((False, False), (True, False), (False, True)):
        with pytest.raises(SparseseqError, match=f"in use by process {os.getpid()}"):
            RunFolder.open(tmp_path, resume=resume, force=force)
    run.release()
    RunFolder.open(tmp_path, resume=False, force=False).release()


def test_an_unwritable_save_is_one_line(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes anywhere")
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(SparseseqError, match="cannot create the run folder .* writable --save"):
            RunFolder.open(tmp_path / "run", resume=False, force=False)
    finally:
        tmp_path.chmod(0o700)


def test_finetune_phase_has_its_own_files(tmp_path):
    run = _started(tmp_path)
    run.write_results({"metrics": {}})
    with RunFolder.open(tmp_path, resume=False, force=False, files=FINETUNE) as fine:
        fine.append_metrics({"epoch": 1})
        fine.save(FINETUNE.last, {"epoch": 1})
    with pytest.raises(SparseseqError, match="unfinished finetuning run"):
        RunFolder.open(tmp_path, resume=False, force=False, files=FINETUNE)
    RunFolder.open(tmp_path, resume=False, force=True, files=FINETUNE).release()
    assert (tmp_path / "results.json").exists() and not (tmp_path / FINETUNE.metrics).exists()


def test_checkpoint_round_trip_with_weights_only(tmp_path):
    run = RunFolder(tmp_path)
    run.save(TRAIN.last, {"model": {"w": torch.arange(3.0)}, "epoch": 2, "history": [1.5, 1.2],
                          "rng": rng_state()})
    state = run.load(TRAIN.last)
    assert state["epoch"] == 2 and torch.equal(state["model"]["w"], torch.arange(3.0))
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / TRAIN.last).stat().st_mode & 0o777 == 0o666 & ~umask   # not private
    torch.load(tmp_path / TRAIN.last, weights_only=True)


@pytest.mark.parametrize("content", [b"", b"garbage", None])
def test_corrupt_checkpoints_are_user_errors(tmp_path, content):
    run = RunFolder(tmp_path)
    if content is None:
        torch.save({"not": "ours"}, tmp_path / TRAIN.last)
    else:
        (tmp_path / TRAIN.last).write_bytes(content)
    with pytest.raises(SparseseqError, match="checkpoint .* (corrupt|not a sparseseq)"):
        run.load(TRAIN.last)


def test_missing_checkpoint_is_a_user_error(tmp_path):
    with pytest.raises(SparseseqError, match="does not exist"):
        RunFolder(tmp_path).load(TRAIN.best)


def test_failed_save_keeps_the_old_file(tmp_path):
    run = RunFolder(tmp_path)
    run.save(TRAIN.last, {"epoch": 1})
    with pytest.raises(Exception):
        run.save(TRAIN.last, {"epoch": 2, "bad": lambda: 0})  # cannot be pickled
    assert run.load(TRAIN.last)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == [TRAIN.last]


def test_metrics_append_trim_and_log(tmp_path):
    run = RunFolder(tmp_path)
    for epoch in (1, 2, 3):
        run.append_metrics({"epoch": epoch, "elapsed_s": 0.1})
    run.trim_metrics(2)
    assert [r["epoch"] for r in run.read_metrics()] == [1, 2]
    run.log("| a line")
    run.log("| another")
    assert (tmp_path / "log.txt").read_text() == "| a line\n| another\n"


def test_results_record_schema(tmp_path, cpu):
    cfg = load_config("lm-tiny")
    record = results_record(phase=Phase.TRAIN_LM, cfg=cfg, params={"total": 5}, metrics={"valid_ppl": 9.0},
                            epochs=3, wall_time_s=1.23456, train_tokens=12345, train_s=10.0,
                            device=cpu)
    assert record["task"] == "lm" and record["phase"] == "train-lm" and record["tokens_per_s"] == 1234.5
    assert record["status"] == "finished"
    assert record["precision"] == "fp32" and record["env"]["threads"] >= 1
    assert set(record) == {"task", "phase", "status", "precision", "preset", "seed", "config", "params", "metrics", "epochs",
                           "wall_time_s", "tokens_per_s", "env"}
    assert record["preset"] == "lm-tiny" and record["seed"] == cfg.train.seed
    assert set(record["env"]) == {"python", "torch", "cuda", "device", "threads", "git_commit"}
    assert env_info(cpu)["device"] == "cpu"
    RunFolder(tmp_path).write_results(record)
    assert json.loads((tmp_path / "results.json").read_text())["config"]["model"]["emsize"] == 64


def test_rng_state_restores_the_stream():
    state = rng_state()
    first = torch.rand(3)
    set_rng_state(state)
    assert torch.equal(torch.rand(3), first)


def test_first_ctrl_c_is_a_request_the_second_interrupts():
    with StopRequest() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
