"""`sparseseq doctor`: every check passes on a sound CPU, and a small fault fails its check."""
import json
import time

import pytest
import torch
from typer.testing import CliRunner

from sparseseq_cli import doctor, equivalence
from sparseseq_cli.bench import Row
from sparseseq_cli.cli import app
from sparseseq_cli.layers import SparseEmbedding, SparseLSTM

runner = CliRunner()
CHECKS = ["lstm-sequential", "lstm-dense", "embedding", "training", "timing"]
QUICK = doctor.DoctorSettings(lstm_size=48, seq_len=5, batch_size=4, repeats=2, warmup=1)
OFF = 1e-3   # "off by a little": ten times the tolerance on values of order one


@pytest.fixture
def quick(monkeypatch):
    """The command's own code path with small timing sizes."""
    monkeypatch.setattr(doctor, "DEFAULT_SETTINGS", QUICK)


def _json(result) -> dict:
    return json.loads(result.stdout)


def _check(record: dict, name: str) -> dict:
    return next(c for c in record["checks"] if c["name"] == name)


def test_doctor_on_cpu_passes_with_its_real_sizes_in_bounded_time():
    start = time.perf_counter()
    result = runner.invoke(app, ["doctor", "--device", "cpu", "--json"])
    elapsed = time.perf_counter() - start
    assert result.exit_code == 0, result.output
    assert elapsed < 90   # the acceptance bound on a 2-core CPU (about 5 s when idle)
    record = _json(result)
    assert set(record) == {"env", "ok", "checks"} and record["ok"] is True
    assert {"python", "torch", "cuda", "cudnn", "gpu", "gpu_memory_gib", "cpu_threads"} <= set(record["env"])
    assert record["env"]["device"] == "cpu" and record["env"]["gpu"] is None
    assert [c["name"] for c in record["checks"]] == CHECKS
    assert all(c["ok"] is True for c in record["checks"])
    for name in ("lstm-sequential", "lstm-dense", "embedding"):
        c = _check(record, name)
        assert 0 <= c["max_abs_diff"] < 1e-5 and c["tensors"] > 4
    train = _check(record, "training")
    assert train["last_loss"] < train["first_loss"] - doctor.MIN_LOSS_DROP and train["steps"] == 30
    timing = _check(record, "timing")
    assert timing["settings"]["lstm_size"] == doctor.DoctorSettings().lstm_size
    assert timing["auto"] == "sequential"          # auto's rule on CPU (layers/sparse_lstm.py)
    assert timing["faster"] in ("sequential", "dense") and all(v > 0 for v in timing["ms"].values())


def test_text_output_lists_versions_and_each_check(quick, cpu):
    result = runner.invoke(app, ["doctor", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["python", doctor.environment(cpu)["python"]]
    for name in CHECKS:
        assert any(line.split()[:2] == [name, "ok"] for line in lines if line.strip()), name
    assert lines[-1] == "all checks passed"


class _OffDense(SparseLSTM):
    def _forward_dense(self, x, hx, batch_sizes):
        out, h_n, c_n = super()._forward_dense(x, hx, batch_sizes)
        return out + OFF, h_n, c_n


class _OffDecode(SparseEmbedding):
    def decode(self, hidden, bias=None):
        return super().decode(hidden, bias) + OFF


def test_a_dense_path_off_by_a_little_fails_its_check_and_exits_1(monkeypatch, quick):
    monkeypatch.setattr(equivalence, "SparseLSTM", _OffDense)
    result = runner.invoke(app, ["doctor", "--device", "cpu", "--json"])
    assert result.exit_code == 1, result.output
    record = _json(result)
    assert record["ok"] is False
    dense = _check(record, "lstm-dense")
    assert dense["ok"] is False and dense["max_abs_diff"] == pytest.approx(OFF, rel=0.01)
    assert [c["name"] for c in record["checks"] if not c["ok"]] == ["lstm-dense"]


def test_a_decode_off_by_a_little_fails_the_embedding_check(monkeypatch, quick):
    monkeypatch.setattr(equivalence, "SparseEmbedding", _OffDecode)
    result = runner.invoke(app, ["doctor", "--device", "cpu"])
    assert result.exit_code == 1, result.output
    line = next(line for line in result.stdout.splitlines() if line.startswith("embedding"))
    assert line.split()[1] == "FAILED" and "max abs diff 1.0e-03" in line
    assert result.stdout.splitlines()[-1] == "failed: embedding"


def test_a_check_that_raises_is_reported_and_the_others_still_run(monkeypatch, cpu):
    def broken(device, steps):
        raise RuntimeError("CUDA error: an illegal memory access\nwas encountered")

    monkeypatch.setattr(doctor, "check_training", broken)
    record = doctor.run_doctor(cpu, QUICK)
    train = _check(record, "training")
    assert train["ok"] is False
    assert train["error"] == "RuntimeError: CUDA error: an illegal memory access was encountered"
    assert [c["ok"] for c in record["checks"]] == [True, True, True, False, True]


def test_a_model_that_does_not_learn_enough_fails_training(monkeypatch, cpu):
    monkeypatch.setattr(doctor, "MIN_LOSS_DROP", 100.0)
    train = doctor.check_training(cpu, 30)
    assert train["ok"] is False and train["last_loss"] < train["first_loss"]


def test_timing_is_ok_with_a_note_when_autos_pick_was_slower(monkeypatch, cpu):
    def rows(settings, device):   # dense measured faster than sequential, auto's CPU pick
        return [Row("SparseLSTM impl=auto", 1, 9.0, 1.5, 1.4, 1.6),
                Row("SparseLSTM impl=sequential (reference)", 1, 9.0, 1.5, 1.4, 1.6),
                Row("SparseLSTM impl=dense", 1, 4.0, 0.7, 0.6, 0.8),
                Row("nn.LSTM 32x32 (equal params)", 1, 6.0, 1.0, 1.0, 1.0),
                Row("nn.LSTM 48x48 (equal width)", 1, 8.0, 1.3, 1.2, 1.4)]

    monkeypatch.setattr(doctor, "bench_lstm", rows)
    timing = doctor.check_timing(cpu, QUICK)
    assert timing["ok"] is True
    assert (timing["auto"], timing["faster"]) == ("sequential", "dense")
    assert timing["ms"] == {"sequential": 9.0, "dense": 4.0, "equal_params": 6.0}
    assert "auto's pick was slower here: informative only" in timing["detail"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_cuda_without_a_gpu_is_a_one_line_error():
    result = runner.invoke(app, ["doctor", "--device", "cuda"])
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("error: device 'cuda' asked for, but no CUDA GPU")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_doctor_on_cuda_passes():
    record = doctor.run_doctor(torch.device("cuda"))
    failed = {c["name"]: c.get("detail") for c in record["checks"] if not c["ok"]}
    assert not failed, failed
    assert record["env"]["gpu"] and record["env"]["gpu_memory_gib"] > 0
    assert _check(record, "timing")["auto"] == "dense"
