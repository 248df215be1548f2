"""The LM commands through the CLI: output channels, --json, --print-config, and every bad
input as one line on stderr with exit status 2."""
import json
import re

import pytest
import torch
from typer.testing import CliRunner

from sparseseq_cli.cli import app

runner = CliRunner()


@pytest.fixture
def tiny(tmp_path, lm_corpus, make_lm_config):
    return make_lm_config(lm_corpus, tmp_path / "tiny.yaml", epochs=1, max_batches=3)


def _error(result):
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_presets_lists_every_preset_with_its_description():
    result = runner.invoke(app, ["presets"])
    assert result.exit_code == 0
    assert any(line.startswith("awd-sparse ") and "Table 1" in line for line in result.stdout.splitlines())
    listed = json.loads(runner.invoke(app, ["presets", "--json"]).stdout)
    assert {"name": "lm-tiny", "task": "lm"}.items() <= next(p for p in listed if p["name"] == "lm-tiny").items()


def test_print_config_shows_the_resolved_config_and_runs_nothing(tmp_path):
    result = runner.invoke(app, ["train-lm", "--preset", "awd-sparse", "--set", "nhid=1800",
                                 "--seed", "5", "--save", str(tmp_path / "r"), "--print-config"])
    assert result.exit_code == 0, result.stderr
    assert "nhid: 1800" in result.stdout and "seed: 5" in result.stdout and "sparse_mode: sparse_hidden" in result.stdout
    assert not (tmp_path / "r").exists()


def test_train_eval_finetune_json_keep_stdout_for_json(tmp_path, tiny):
    save = str(tmp_path / "run")
    trained = runner.invoke(app, ["train-lm", "--config", str(tiny), "--save", save, "--device", "cpu", "--json"])
    assert trained.exit_code == 0, trained.stderr
    record = json.loads(trained.stdout)
    assert record["task"] == "lm" and record["phase"] == "train-lm" and record["preset"] == "tiny"
    evaluated = runner.invoke(app, ["eval-lm", save, "--device", "cpu", "--json"])
    assert evaluated.exit_code == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["ppl"] == pytest.approx(record["metrics"]["test_ppl"], rel=1e-9)
    plain = runner.invoke(app, ["eval-lm", save, "--split", "valid", "--batch-size", "3", "--device", "cpu"])
    assert plain.exit_code == 0 and plain.stdout.startswith("ppl ")
    fine = runner.invoke(app, ["finetune-lm", save, "--epochs", "1", "--device", "cpu", "--quiet"])
    assert fine.exit_code == 0 and fine.stdout == "" and fine.stderr == ""


def test_overfit_command_reports_accuracy(tmp_path, tiny):
    result = runner.invoke(app, ["overfit", "--config", str(tiny), "--save", str(tmp_path / "o"),
                                 "--device", "cpu"])
    assert result.exit_code == 0, result.stderr
    assert "train_acc" in result.stdout and "accuracy" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["train-lm"], "no configuration given"),
    (["train-lm", "--preset", "awd-sparce"], "unknown preset 'awd-sparce': did you mean awd-sparse"),
    (["train-lm", "--preset", "lm-tiny", "--set", "nhidd=3"], "unknown key 'nhidd'"),
    (["train-lm", "--preset", "lm-tiny", "--set", "lr=fast"], "train.lr .* must be a finite number"),
    (["train-lm", "--preset", "lm-tiny", "--set", "sparse_fract=0.001"], "sparse_fract=0.001 is infeasible"),
    (["train-lm", "--preset", "lm-tiny", "--data", "/nonexistent/corpus"], "data folder /nonexistent/corpus does not exist"),
    (["train-lm", "--preset", "lm-tiny", "--resume", "--force"], "contradict"),
    (["train-lm", "--preset", "pos-tiny"], "is a pos configuration, not lm"),
    (["train-lm", "--preset", "lm-tiny", "--device", "tpu"], "device"),
    (["eval-lm", "/nonexistent/run"], "run folder /nonexistent/run does not exist"),
    (["eval-lm", ".", "--split", "dev"], "unknown split 'dev'"),
    (["finetune-lm", "/nonexistent/run"], "no finished train-lm run"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    line = _error(runner.invoke(app, args))
    assert re.search(message, line), line
    assert not (tmp_path / "runs").exists()     # nothing left behind to --force away later


def test_a_batch_size_too_large_for_the_data_leaves_no_run_behind(tmp_path, tiny):
    save = tmp_path / "run"
    line = _error(runner.invoke(app, ["train-lm", "--config", str(tiny), "--set", "test_batch_size=100000",
                                      "--save", str(save), "--device", "cpu"]))
    assert "too few for batch size 100000" in line and not save.exists()


def test_finished_unfinished_and_corrupt_runs(tmp_path, tiny):
    save = tmp_path / "run"
    base = ["train-lm", "--config", str(tiny), "--save", str(save), "--device", "cpu", "--quiet"]
    assert runner.invoke(app, base).exit_code == 0
    results = (save / "results.json").read_text()
    assert "already holds a finished training run" in _error(runner.invoke(app, base))
    assert (save / "results.json").read_text() == results          # nothing touched
    (save / "results.json").unlink()
    assert "unfinished training run" in _error(runner.invoke(app, base))
    (save / "checkpoint_last.pt").write_bytes(b"not a checkpoint")
    assert "is corrupt" in _error(runner.invoke(app, base + ["--resume"]))
    (save / "checkpoint_best.pt").write_bytes(b"")
    assert "is corrupt" in _error(runner.invoke(app, ["eval-lm", str(save), "--device", "cpu"]))
    assert runner.invoke(app, base + ["--force"]).exit_code == 0
    assert torch.load(save / "checkpoint_best.pt", weights_only=True)["phase"] == "train-lm"


def test_resume_with_only_the_run_folder_uses_its_saved_config(tmp_path, tiny):
    save = tmp_path / "run"
    first = runner.invoke(app, ["train-lm", "--config", str(tiny), "--save", str(save), "--device", "cpu", "--json"])
    record = json.loads(first.stdout)
    (save / "results.json").unlink()          # as if killed after the last epoch, before the test
    again = runner.invoke(app, ["train-lm", "--resume", "--save", str(save), "--device", "cpu", "--json"])
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["metrics"] == record["metrics"]
