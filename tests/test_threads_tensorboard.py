"""--threads (honoured and recorded) and --tensorboard (events a reader can read; one line
when the package is missing)."""
import json
import sys

import pytest
import torch
from typer.testing import CliRunner

from sparseseq_cli.cli import app

runner = CliRunner()


@pytest.fixture
def tiny(tmp_path, lm_corpus, make_lm_config):
    return make_lm_config(lm_corpus, tmp_path / "tiny.yaml", epochs=2, max_batches=6, log_interval=2)


def test_threads_are_honoured_recorded_and_given_back(tmp_path, tiny):
    before = torch.get_num_threads()
    result = runner.invoke(app, ["train-lm", "--config", str(tiny), "--save", str(tmp_path / "run"),
                                 "--threads", "1", "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["env"]["threads"] == 1
    assert torch.get_num_threads() == before
    bad = runner.invoke(app, ["train-lm", "--config", str(tiny), "--threads", "0"])
    assert bad.exit_code == 2 and "--threads 0 must be at least 1" in bad.output


def test_tensorboard_events_hold_the_metrics(tmp_path, tiny):
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    save = tmp_path / "run"
    result = runner.invoke(app, ["train-lm", "--config", str(tiny), "--save", str(save), "--tensorboard",
                                 "--device", "cpu", "-q"])
    assert result.exit_code == 0, result.output
    events = accumulator.EventAccumulator(str(save / "tensorboard"))
    events.Reload()
    metrics = [json.loads(line) for line in (save / "metrics.jsonl").read_text().splitlines()]
    valid = events.Scalars("train-lm/valid_ppl")
    assert [e.step for e in valid] == [1, 2]
    assert [e.value for e in valid] == pytest.approx([m["valid_ppl"] for m in metrics], rel=1e-6)
    assert [e.step for e in events.Scalars("train-lm/interval_loss")] == [2, 4, 6, 8, 10, 12]


def test_tensorboard_without_the_package_is_one_line(tmp_path, tiny, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)   # import fails
    result = runner.invoke(app, ["train-lm", "--config", str(tiny), "--save", str(tmp_path / "run"),
                                 "--tensorboard", "--device", "cpu"])
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "needs the tensorboard package" in result.output and not (tmp_path / "run").exists()
