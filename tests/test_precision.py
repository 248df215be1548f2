"""--precision: autocast in bf16 (CPU or GPU) or fp16 (CUDA, with a gradient scaler); weights,
averaging and checkpoints stay fp32; fp16 on the CPU is refused."""
import json

import pytest
import torch
from typer.testing import CliRunner

from sparseseq_cli import load_run
from sparseseq_cli.cli import app
from sparseseq_cli.config import load_config
from sparseseq_cli.layers import SparseEmbedding
from sparseseq_cli.run_folder import TRAIN, RunFolder
from sparseseq_cli.training import lm_phases, tagging

runner = CliRunner()


def test_the_tied_decoder_follows_autocast_and_keeps_fp32_gradients():
    torch.manual_seed(0)
    emb = SparseEmbedding(50, 12, blocks=3, density=0.6)
    hidden = torch.randn(9, 12, requires_grad=True)
    bias = torch.zeros(50, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = emb.decode(hidden, bias)
        loss = torch.log_softmax(logits, dim=-1).mean()
    loss.backward()
    assert logits.dtype == torch.bfloat16
    assert torch.allclose(logits.float(), hidden.detach() @ emb.dense_weight().t(), atol=0.05)
    assert all(w.grad.dtype == torch.float32 for w in emb.weights)
    assert hidden.grad.dtype == bias.grad.dtype == torch.float32


def test_bf16_on_the_cpu_learns_like_fp32(tmp_path, lm_corpus, make_lm_config, cpu):
    config = make_lm_config(lm_corpus, tmp_path / "tiny.yaml", epochs=2)
    results = {}
    for precision in ("fp32", "bf16"):
        cfg = load_config(config_file=config, overrides=[f"precision={precision}"])
        results[precision] = lm_phases.train_lm(cfg, tmp_path / precision, device=cpu, quiet=True)
    fp32, bf16 = (results[p]["metrics"]["valid_ppl"] for p in ("fp32", "bf16"))
    assert abs(bf16 - fp32) / fp32 < 0.15
    assert results["bf16"]["precision"] == "bf16" and results["fp32"]["precision"] == "fp32"
    weights = RunFolder(tmp_path / "bf16").load(TRAIN.last)["model"]
    assert all(t.dtype == torch.float32 for t in weights.values())   # master weights stay fp32


def test_bf16_tagger_and_eval_lm(tmp_path, lm_corpus, make_lm_config, cpu):
    pos = tagging.train_pos(load_config("pos-tiny", overrides=["epochs=2", "precision=bf16"]),
                            tmp_path / "pos", device=cpu, quiet=True)
    assert pos["precision"] == "bf16" and pos["metrics"]["dev_acc"] > 0.5
    config = make_lm_config(lm_corpus, tmp_path / "tiny.yaml", epochs=1)
    save = tmp_path / "lm"
    assert runner.invoke(app, ["train-lm", "--config", str(config), "--save", str(save), "--precision",
                               "bf16", "--device", "cpu", "-q"]).exit_code == 0
    evaluated = json.loads(runner.invoke(app, ["eval-lm", str(save), "--split", "valid", "--device", "cpu",
                                               "--json"]).stdout)
    trained = json.loads((save / "results.json").read_text())
    assert evaluated["precision"] == "bf16"
    assert evaluated["loss"] == pytest.approx(trained["metrics"]["valid_loss"], rel=1e-6)
    # score computes as the run trained (bf16), so it reproduces eval-lm at the eval batch size 1
    test = json.loads(runner.invoke(app, ["eval-lm", str(save), "--device", "cpu", "--json"]).stdout)
    scored = load_run(save).score((lm_corpus / "test.txt").read_text())
    assert scored.loss == pytest.approx(test["loss"], rel=1e-4)


def test_fp16_on_the_cpu_is_refused_before_anything_is_written(tmp_path):
    result = runner.invoke(app, ["train-lm", "--preset", "lm-tiny", "--precision", "fp16", "--device", "cpu",
                                 "--save", str(tmp_path / "run")])
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "fp16 needs a CUDA GPU" in result.output and not (tmp_path / "run").exists()
    bad = runner.invoke(app, ["train-lm", "--preset", "lm-tiny", "--precision", "fp8"])
    assert bad.exit_code == 2


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fp16_on_cuda_trains_with_a_scaler(tmp_path, lm_corpus, make_lm_config):
    cuda = torch.device("cuda")
    cfg = load_config(config_file=make_lm_config(lm_corpus, tmp_path / "tiny.yaml", epochs=2),
                      overrides=["precision=fp16"])
    whole = lm_phases.train_lm(cfg, tmp_path / "whole", device=cuda, quiet=True)
    assert whole["precision"] == "fp16" and whole["status"] == "finished"
    assert RunFolder(tmp_path / "whole").load(TRAIN.last)["scaler"]["scale"] > 0
