"""Training under faults and hostile input: a diverging run, two processes on one run folder,
failures after the folder is opened, someone else's folder, hostile files and values. Each
ends in one line without a traceback, loses nothing and blocks no corrected rerun."""
import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from sparseseq_cli.cli import app
from sparseseq_cli.config import load_config
from sparseseq_cli.corpora.conll import load_conll_dir
from sparseseq_cli.corpora.lm_data import load_lm_corpus
from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.run_folder import LOCK, TRAIN, RunFolder
from sparseseq_cli.training import lm_phases, tagging
from sparseseq_cli.training.divergence import TrainingDiverged

runner = CliRunner()


def _strict_json(text):
    """json.loads that refuses Infinity and NaN, as strict JSON readers do."""
    def refuse(name):
        raise ValueError(f"{name} is not JSON")
    return json.loads(text, parse_constant=refuse)


def _one_line(result):
    return result.output.count("\n") == 1 and "Traceback" not in result.output


# ---- divergence ------------------------------------------------------------------------------------
@pytest.fixture
def tiny(tmp_path, lm_corpus, make_lm_config):
    return make_lm_config(lm_corpus, tmp_path / "tiny.yaml", epochs=3, max_batches=10)


def test_a_diverging_language_model_stops_at_once_with_one_line(tmp_path, tiny):
    save = tmp_path / "run"
    result = runner.invoke(app, ["train-lm", "--config", str(tiny), "--set", "lr=1e6", "--save", str(save),
                                 "--device", "cpu", "-q"])
    assert result.exit_code == 1 and _one_line(result), result.output
    assert "diverged in epoch 1 at batch" in result.output and "Lower train.lr (now 1e+06)" in result.output
    results = _strict_json((save / "results.json").read_text())
    assert results["status"] == "diverged" and results["diverged"]["where"] == "training"
    assert results["diverged"]["batch"] <= 10 and not (save / TRAIN.last).exists()   # nothing bad saved
    for line in (save / "metrics.jsonl").read_text().splitlines() if (save / "metrics.jsonl").exists() else []:
        _strict_json(line)

    again = runner.invoke(app, ["train-lm", "--save", str(save), "--resume", "--device", "cpu"])
    assert again.exit_code == 2 and _one_line(again) and "diverged in epoch 1" in again.output

    fixed = runner.invoke(app, ["train-lm", "--config", str(tiny), "--save", str(save), "--force",
                                "--epochs", "1", "--device", "cpu", "--json"])
    assert fixed.exit_code == 0, fixed.output
    assert _strict_json((save / "results.json").read_text())["status"] == "finished"


def test_divergence_in_a_later_epoch_keeps_the_last_good_checkpoint(tmp_path, tiny, cpu, monkeypatch):
    cfg = load_config(config_file=tiny)
    real = lm_phases.train_epoch

    def second_epoch_blows_up(s, data, epoch, cursor=None, count_correct=False):
        if epoch == 2:
            for group in s.optimizer.param_groups:
                group["lr"] = 1e9
            s.cfg.train.lr = 1e9
        return real(s, data, epoch, cursor, count_correct)

    monkeypatch.setattr(lm_phases, "train_epoch", second_epoch_blows_up)
    with pytest.raises(TrainingDiverged, match="diverged in epoch 2"):
        lm_phases.train_lm(cfg, tmp_path / "run", device=cpu, quiet=True)
    run = RunFolder(tmp_path / "run")
    assert run.load(TRAIN.last)["state"]["epoch"] == 1        # the end-of-epoch-1 checkpoint stays
    assert all(math.isfinite(v) for v in run.load(TRAIN.last)["model"]["decoder_bias"].tolist())
    assert [r["epoch"] for r in run.read_metrics()] == [1]


def test_a_non_finite_validation_loss_stops_the_run(tmp_path, tiny, cpu, script_validation):
    script_validation([float("nan")])
    with pytest.raises(TrainingDiverged, match=r"diverged in epoch 1 \(its validation loss overflowed"):
        lm_phases.train_lm(load_config(config_file=tiny), tmp_path / "run", device=cpu, quiet=True)
    assert _strict_json((tmp_path / "run" / "results.json").read_text())["diverged"]["where"] == "validation"


def test_overfit_and_train_pos_report_divergence_instead_of_success(tmp_path, tiny, cpu):
    cfg = load_config(config_file=tiny, overrides=["lr=1e6"])
    with pytest.raises(TrainingDiverged):
        lm_phases.overfit(cfg, tmp_path / "overfit", device=cpu, quiet=True)
    pos = load_config("pos-tiny", overrides=["optimizer=sgd", "lr=1e12", "epochs=2"])
    with pytest.raises(TrainingDiverged, match="diverged in epoch 1"):
        tagging.train_pos(pos, tmp_path / "pos", device=cpu, quiet=True)
    for name in ("overfit", "pos"):
        assert _strict_json((tmp_path / name / "results.json").read_text())["status"] == "diverged"


@pytest.mark.parametrize("value", ["lr=inf", "lr=nan", "lr=-inf", "lr=1e999", "wdecay=nan"])
def test_non_finite_numbers_are_refused(tmp_path, value):
    result = runner.invoke(app, ["train-lm", "--preset", "lm-tiny", "--set", value, "--save", str(tmp_path)])
    assert result.exit_code == 2 and _one_line(result) and "finite number" in result.output


@pytest.mark.parametrize("seed", [str(2 ** 70), str(2 ** 63), "-1"])
def test_seeds_outside_64_bits_are_refused(tmp_path, seed):
    result = runner.invoke(app, ["train-lm", "--preset", "lm-tiny", "--seed", seed, "--save", str(tmp_path / "r")])
    assert result.exit_code == 2 and _one_line(result) and "[0, 2**63)" in result.output
    assert not (tmp_path / "r").exists()


# ---- two processes, one run folder -------------------------------------------------------------------
def _train(config, save, *extra):
    return subprocess.Popen([sys.executable, "-m", "sparseseq_cli", "train-lm", "--config", str(config),
                             "--save", str(save), "--device", "cpu", "-q", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def _wait_for(condition, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline and not condition():
        time.sleep(0.01)
    assert condition()


def _live_run(tmp_path, make_lm_corpus, make_lm_config, epochs):
    """A train-lm process that has opened its run folder and trains for a few seconds."""
    corpus = make_lm_corpus(tmp_path / "corpus", lines=(2000, 40, 40))
    config = make_lm_config(corpus, tmp_path / "tiny.yaml", epochs=epochs)
    save = tmp_path / "run"
    live = _train(config, save)
    _wait_for(lambda: (save / "config.yaml").exists())
    return config, save, live


def test_a_live_run_refuses_a_second_start_resume_and_force(tmp_path, make_lm_corpus, make_lm_config):
    config, save, live = _live_run(tmp_path, make_lm_corpus, make_lm_config, epochs=3)
    for extra in ([], ["--resume"], ["--force", "--seed", "7"]):
        result = runner.invoke(app, ["train-lm", "--config", str(config), "--save", str(save),
                                     "--device", "cpu", *extra])
        assert result.exit_code == 2 and _one_line(result), (extra, result.output)
        assert f"run folder {save} is in use by process {live.pid}" in result.output
        assert live.poll() is None, "the checks outlived the run: make its corpus longer"
    _, err = live.communicate(timeout=300)
    assert live.returncode == 0, err
    epochs = [json.loads(line)["epoch"] for line in (save / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]


def test_two_starts_at_the_same_moment_give_one_run(tmp_path, make_lm_corpus, make_lm_config):
    config = make_lm_config(make_lm_corpus(tmp_path / "corpus"), tmp_path / "tiny.yaml", epochs=1, max_batches=3)
    save = tmp_path / "run"
    procs = [_train(config, save) for _ in range(2)]
    codes = sorted(p.wait(timeout=300) for p in procs)
    assert codes == [0, 2], [p.stderr.read() for p in procs]
    assert len((save / "metrics.jsonl").read_text().splitlines()) == 1


def test_a_killed_run_leaves_no_stale_lock(tmp_path, make_lm_corpus, make_lm_config):
    _, save, live = _live_run(tmp_path, make_lm_corpus, make_lm_config, epochs=2)
    live.send_signal(signal.SIGKILL)
    live.wait(timeout=60)
    assert (save / LOCK).exists()
    RunFolder.open(save, resume=False, force=True).release()   # the kernel dropped the lock


# ---- failures after the folder is opened -----------------------------------------------------------
def test_out_of_memory_while_building_is_one_line_and_blocks_no_rerun(tmp_path, tiny):
    save = tmp_path / "run"
    result = runner.invoke(app, ["train-lm", "--config", str(tiny), "--set", "nhid=2000000",
                                 "--save", str(save), "--device", "cpu", "-q"])
    assert result.exit_code == 1 and _one_line(result) and "out of memory" in result.output
    rerun = runner.invoke(app, ["train-lm", "--config", str(tiny), "--save", str(save), "--epochs", "1",
                                "--device", "cpu", "-q"])
    assert rerun.exit_code == 0, rerun.output


def test_a_save_path_that_cannot_be_a_folder_is_one_line(tmp_path, tiny):
    (tmp_path / "file").write_text("x")
    result = runner.invoke(app, ["train-lm", "--config", str(tiny), "--save", str(tmp_path / "file" / "run")])
    assert result.exit_code == 2 and _one_line(result) and "cannot create the run folder" in result.output


def test_someone_elses_folder_is_refused_and_left_alone(tmp_path, tiny):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "log.txt").write_text("my log\n")
    (folder / "vocab.txt").write_text("my words\n")
    for extra in ([], ["--force"]):
        result = runner.invoke(app, ["train-lm", "--config", str(tiny), "--save", str(folder), *extra])
        assert result.exit_code == 2 and _one_line(result) and "not a sparseseq run folder" in result.output
    assert sorted(p.name for p in folder.iterdir()) == ["log.txt", "vocab.txt"]
    assert (folder / "log.txt").read_text() == "my log\n"


def test_a_kill_mid_way_through_a_metrics_line_resumes(tmp_path, tiny, cpu):
    cfg = load_config(config_file=tiny, overrides=["epochs=2"])
    lm_phases.train_lm(cfg, tmp_path / "run", device=cpu, quiet=True)
    run = tmp_path / "run"
    (run / "results.json").unlink()                       # as if killed after epoch 2's line...
    with open(run / "metrics.jsonl", "a") as f:           # ...half-way through writing a third
        f.write('{"epoch": 3, "train_lo')
    assert [r["epoch"] for r in RunFolder(run).read_metrics()] == [1, 2]
    resumed = lm_phases.train_lm(cfg, run, device=cpu, resume=True, quiet=True)
    assert resumed["epochs"] == 2


# ---- hostile files ---------------------------------------------------------------------------------
def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path):
    lines = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for name, prev in zip("bcdefghi", "abcdefgh"):
        lines.append(f"{name}: &{name} [{', '.join(['*' + prev] * 9)}]")
    (tmp_path / "bomb.yaml").write_text("\n".join(lines) + "\ntrain: *i\n")
    start = time.time()
    result = runner.invoke(app, ["train-lm", "--config", str(tmp_path / "bomb.yaml")])
    assert result.exit_code == 2 and _one_line(result) and "aliases" in result.output
    assert time.time() - start < 5


def test_a_byte_order_mark_is_not_part_of_the_first_word(tmp_path):
    for split in ("train", "valid", "test"):
        (tmp_path / f"{split}.txt").write_text("\ufeffthe cat\nthe dog\n", encoding="utf-8")
    corpus = load_lm_corpus(str(tmp_path))
    assert "\ufeffthe" not in corpus.vocab.words and "the" in corpus.vocab.words
    conll = tmp_path / "conll"
    conll.mkdir()
    for split in ("train", "valid"):
        (conll / f"{split}.conll").write_text("\ufeffa\tDT\nb\tNN\n", encoding="utf-8")
    (conll / "tags.txt").write_text("\ufeffDT\nNN\n", encoding="utf-8")
    tagged = load_conll_dir(conll)
    assert tagged.tags == ("DT", "NN") and tagged.train[0].words[0] == "a"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_as_a_split_file_is_refused_not_waited_on(tmp_path):
    for split in ("valid", "test"):
        (tmp_path / f"{split}.txt").write_text("a b\n")
    os.mkfifo(tmp_path / "train.txt")
    with pytest.raises(SparseseqError, match="not a regular file"):
        load_lm_corpus(str(tmp_path))


# ---- train-pos resumes a SIGKILL exactly ---------------------------------------------------------------
def _train_pos(save, *extra):
    return subprocess.Popen([sys.executable, "-m", "sparseseq_cli", "train-pos", "--preset", "pos-tiny",
                             "--epochs", "4", "--save", str(save), "--device", "cpu", "--json", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.fixture(scope="module")
def uninterrupted_pos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pos") / "whole"
    out, err = _train_pos(folder).communicate(timeout=300)
    return folder, json.loads(out)


@pytest.mark.parametrize("line", ["| epoch   1 |", "| epoch   3 |"])
def test_train_pos_killed_then_resumed_matches_an_uninterrupted_run(tmp_path, line, uninterrupted_pos):
    whole_folder, whole = uninterrupted_pos
    save = tmp_path / "killed"
    proc = _train_pos(save)
    _wait_for(lambda: (save / "log.txt").exists() and line in (save / "log.txt").read_text())
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert not (save / "results.json").exists()
    out, err = _train_pos(save, "--resume").communicate(timeout=300)
    resumed = json.loads(out)
    assert resumed["metrics"] == whole["metrics"], err

    def rows(folder):
        return [{k: v for k, v in r.items() if k not in ("elapsed_s", "train_s")}
                for r in RunFolder(folder).read_metrics()]
    assert rows(save) == rows(whole_folder)


# ---- eval-lm on the wrong or an unfinished run ---------------------------------------------------------
def test_eval_lm_names_a_tagger_run_and_notes_an_unfinished_one(tmp_path, tiny):
    pos = runner.invoke(app, ["train-pos", "--preset", "pos-tiny", "--epochs", "1", "--save", str(tmp_path / "pos"),
                              "--device", "cpu", "-q"])
    assert pos.exit_code == 0, pos.output
    wrong = runner.invoke(app, ["eval-lm", str(tmp_path / "pos"), "--device", "cpu"])
    assert wrong.exit_code == 2 and _one_line(wrong) and "is a train-pos run (a tagger)" in wrong.output
    assert "<eos>" not in wrong.output

    lm = runner.invoke(app, ["train-lm", "--config", str(tiny), "--epochs", "1", "--save", str(tmp_path / "lm"),
                             "--device", "cpu", "-q"])
    assert lm.exit_code == 0, lm.output
    (tmp_path / "lm" / "results.json").unlink()
    result = runner.invoke(app, ["eval-lm", str(tmp_path / "lm"), "--split", "valid", "--device", "cpu", "--json"])
    assert result.exit_code == 0
    assert "unfinished run" in result.stderr and _strict_json(result.stdout)["note"].endswith("checkpoint_best.pt")
