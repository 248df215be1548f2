"""train-lm / finetune-lm / overfit / eval-lm on tiny data: NT-ASGD, averaging, stops, files."""
import json
import math

import pytest
import torch

from sparseseq_cli.config import dump_config, load_config
from sparseseq_cli.corpora.lm_data import load_lm_corpus, unigram_perplexity
from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.training import lm_phases as lm
from sparseseq_cli.models.language_model import LanguageModel
from sparseseq_cli.training import lm_eval
from sparseseq_cli.training.averaging import ParameterAverage
from sparseseq_cli.run_folder import FINETUNE, TRAIN, RunFolder


@pytest.fixture
def tiny_cfg(tmp_path, make_lm_config):
    """``tiny_cfg(data, **train)``: the loaded config of make_lm_config's tiny model on ``data``,
    written to tmp_path / "tiny.yaml"."""
    def tiny_cfg(data, **train):
        return load_config(config_file=make_lm_config(data, tmp_path / "tiny.yaml", **train))
    return tiny_cfg


def _metrics(path, name="metrics.jsonl"):
    return [json.loads(line) for line in (path / name).read_text().splitlines()]


def test_parameter_average_is_the_mean_of_the_iterates():
    param = torch.nn.Parameter(torch.zeros(2))
    average = ParameterAverage([param])
    for value in (1.0, 2.0, 6.0):
        with torch.no_grad():
            param.fill_(value)
        average.update()
    assert torch.allclose(average.mean[0], torch.full((2,), 3.0))
    with average.swapped_in():
        assert torch.equal(param.detach(), torch.full((2,), 3.0))
    assert torch.equal(param.detach(), torch.full((2,), 6.0))
    other = ParameterAverage([torch.nn.Parameter(torch.zeros(2))])
    other.load_state_dict(average.state_dict())
    assert other.count == 3 and torch.equal(other.mean[0], average.mean[0])


def test_nt_asgd_switches_when_validation_stops_improving_and_stops_after_patience(
        tmp_path, lm_corpus, monkeypatch, cpu, tiny_cfg, script_validation):
    # nonmono 1: epoch 3 (6.0) is worse than epoch 1 (4.0) -> switch; averaged epochs then
    # 6.1, 6.2, 6.3 are worse in a row -> with patience 2, stop after epoch 6 of 50
    script_validation([4.0, 5.0, 6.0, 6.1, 6.2, 6.3, 9.9])
    cfg = tiny_cfg(lm_corpus, epochs=50, nonmono=1, asgd_patience=2, max_batches=3)
    result = lm.train_lm(cfg, tmp_path / "run", device=cpu, quiet=True)
    rows = _metrics(tmp_path / "run")
    assert [r["asgd"] for r in rows] == [False] * 3 + [True] * 3
    assert result["epochs"] == 6 and result["metrics"]["best_epoch"] == 1
    assert result["metrics"]["valid_loss"] == 4.0 and result["metrics"]["valid_ppl"] == pytest.approx(math.exp(4))
    log = (tmp_path / "run" / "log.txt").read_text()
    assert "Switching to ASGD" in log and "breaking out of ASGD loop" in log


def test_nt_asgd_compares_only_with_losses_older_than_nonmono_epochs(
        tmp_path, lm_corpus, monkeypatch, cpu, tiny_cfg, script_validation):
    # nonmono 2: epoch 4 (4.5) is worse than the recent 3.9 but not than epoch 1's 5.0, the
    # only loss older than 2 epochs -> no switch; epoch 5 (4.2) is worse than min(5.0, 4.0)
    # -> switch, so epoch 6 trains averaged
    script_validation([5.0, 4.0, 3.9, 4.5, 4.2, 4.1])
    cfg = tiny_cfg(lm_corpus, epochs=6, nonmono=2, max_batches=2)
    lm.train_lm(cfg, tmp_path / "run", device=cpu, quiet=True)
    assert [r["asgd"] for r in _metrics(tmp_path / "run")] == [False] * 5 + [True]
    assert (tmp_path / "run" / "log.txt").read_text().count("Switching to ASGD") == 1


def test_finetuning_stops_once_validation_is_worse_than_nonmono_epochs_ago(
        tmp_path, lm_corpus, monkeypatch, cpu, tiny_cfg, script_validation):
    # the original's rule: stop when more than max(finetune_min_epochs, nonmono) losses are
    # kept and this one is worse than all but the last nonmono of them. With 2 and 1:
    # epoch 3 (4.2 > 4.0) is too early, epoch 5 (3.5) beats the 4.0 and 4.5 kept before
    # epoch 4, epoch 6 (3.2 > 3.0 of epoch 4) stops, long before the 20 epochs.
    script_validation([6.0,                                  # train-lm's epoch
                       5.0,                                  # finetuning's start
                       4.0, 4.5, 4.2, 3.0, 3.5, 3.2, 2.0])
    run = tmp_path / "run"
    lm.train_lm(tiny_cfg(lm_corpus, epochs=1, max_batches=2), run, device=cpu, quiet=True)
    fine = lm.finetune_lm(run, device=cpu, quiet=True, overrides=[
        "epochs=20", "nonmono=1", "finetune_min_epochs=2", "max_batches=2"])
    assert fine["epochs"] == 6
    assert [r["valid_loss"] for r in _metrics(run, FINETUNE.metrics)] == [4.0, 4.5, 4.2, 3.0, 3.5, 3.2]
    assert (fine["metrics"]["valid_loss"], fine["metrics"]["best_epoch"]) == (3.0, 4)
    assert (run / "log.txt").read_text().count("Done!") == 1


def test_averaged_weights_are_validated_and_saved(
        tmp_path, lm_corpus, monkeypatch, cpu, tiny_cfg, script_validation):
    script_validation([4.0, 5.0, 6.0, 3.0])   # switch after 3, best at 4
    cfg = tiny_cfg(lm_corpus, epochs=4, nonmono=1, max_batches=4)
    lm.train_lm(cfg, tmp_path / "run", device=cpu, quiet=True)
    run = RunFolder(tmp_path / "run")
    best, last = run.load(TRAIN.best), run.load(TRAIN.last)
    assert best["epoch"] == 4 and last["averaging"]["count"] == 4     # 4 steps since the switch
    names = [n for n, p in LanguageModel.from_config(cfg.model, len(best["vocab"])).named_parameters()]
    for name, mean in zip(names, last["averaging"]["mean"]):
        assert torch.equal(best["model"][name], mean)
    assert not torch.equal(best["model"][names[0]], last["model"][names[0]])


def test_train_finetune_eval_end_to_end(tmp_path, cpu, tiny_cfg, make_lm_corpus):
    corpus = make_lm_corpus(tmp_path / "corpus", grammatical=True)
    cfg = tiny_cfg(corpus, epochs=4, finetune_min_epochs=0, nonmono=1)
    run = tmp_path / "run"
    result = lm.train_lm(cfg, run, device=cpu, quiet=True)
    m = result["metrics"]
    assert set(m) == {"valid_loss", "valid_ppl", "test_loss", "test_ppl", "best_epoch"}
    # it learned the grammar: far below the unigram baseline (9.6), itself below an untrained
    # model's near-uniform 11
    words = load_lm_corpus(str(corpus))
    assert 1 < m["test_ppl"] < unigram_perplexity(words.splits["train"], words.splits["test"],
                                                  len(words.vocab)) / 2
    assert result["tokens_per_s"] > 0 and result["params"]["total"] > 0
    assert json.loads((run / "results.json").read_text()) == result
    assert (run / "vocab.txt").read_text().split() == RunFolder(run).load(TRAIN.best)["vocab"]
    rows = _metrics(run)
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert set(rows[0]) == {"epoch", "elapsed_s", "train_loss", "valid_loss", "valid_ppl", "lr", "asgd"}

    evaluated = lm_eval.eval_lm(run, device=cpu, quiet=True)
    assert evaluated["ppl"] == pytest.approx(m["test_ppl"], rel=1e-9)
    assert lm_eval.eval_lm(run, device=cpu, split="valid", quiet=True)["loss"] == pytest.approx(m["valid_loss"])

    trained = (run / "checkpoint_best.pt").read_bytes()
    fine = lm.finetune_lm(run, device=cpu, overrides=["epochs=2"], quiet=True)
    assert fine["phase"] == "finetune-lm" and (run / FINETUNE.results).exists()
    assert (run / "checkpoint_best.pt").read_bytes() == trained
    fine_rows = _metrics(run, FINETUNE.metrics)
    assert [r["asgd"] for r in fine_rows] == [True, True]
    # averaged SGD improved on the trained model, and the finetuned checkpoint is the one reported
    assert fine["metrics"]["valid_loss"] < m["valid_loss"] and fine["metrics"]["best_epoch"] >= 1
    assert lm_eval.eval_lm(run, device=cpu, finetuned=True, split="valid", quiet=True)["loss"] == \
        pytest.approx(fine["metrics"]["valid_loss"])
    assert lm_eval.eval_lm(run, device=cpu, finetuned=True, quiet=True)["ppl"] == \
        pytest.approx(fine["metrics"]["test_ppl"], rel=1e-9)
    with pytest.raises(SparseseqError, match="finished finetuning run: --force finetunes it again") as err:
        lm.finetune_lm(run, device=cpu, quiet=True)
    assert "--save" not in str(err.value)   # finetune-lm has no --save
    with pytest.raises(SparseseqError, match="change only train"):
        lm.finetune_lm(run, device=cpu, overrides=["nhid=32"], force=True, quiet=True)


def test_overfit_stops_once_the_training_data_is_memorized(tmp_path, cpu, make_lm_config):
    folder = tmp_path / "cycle"
    folder.mkdir()
    (folder / "train.txt").write_text("a b c d e f g h\n" * 60)   # every word fixes the next
    cfg = load_config("recite-dense", config_file=make_lm_config(folder, tmp_path / "c.yaml"),
                      overrides=["dropout=0", "dropouth=0", "dropouti=0", "dropoute=0", "wdrop=0",
                                 "alpha=0", "beta=0", "wdecay=0", "momentum=0.9", "lr_gamma=0.97",
                                 "lr=5", "epochs=40", "batch_size=2"])
    result = lm.overfit(cfg, tmp_path / "run", device=cpu, quiet=True)
    m = result["metrics"]
    assert m["epochs_to_memorize"] is not None and m["epochs_to_memorize"] < 40
    assert m["train_acc"] > 1 - 1e-4 and result["epochs"] == m["epochs_to_memorize"]
    rows = _metrics(tmp_path / "run")
    assert set(rows[0]) == {"epoch", "elapsed_s", "train_loss", "train_ppl", "train_acc", "lr"}
    assert rows[1]["lr"] == pytest.approx(5 * 0.97)
    assert rows[0]["train_acc"] < rows[-1]["train_acc"]


def test_bad_run_folders_are_user_errors(tmp_path, lm_corpus, cpu, tiny_cfg):
    with pytest.raises(SparseseqError, match="no finished train-lm run"):
        lm.finetune_lm(tmp_path, device=cpu)
    with pytest.raises(SparseseqError, match="run folder .* does not exist"):
        lm_eval.eval_lm(tmp_path / "nope", device=cpu)
    cfg = tiny_cfg(lm_corpus, epochs=1, max_batches=2)
    lm.train_lm(cfg, tmp_path / "run", device=cpu, quiet=True)
    with pytest.raises(SparseseqError, match="already holds a finished training run"):
        lm.train_lm(cfg, tmp_path / "run", device=cpu, quiet=True)
    with pytest.raises(SparseseqError, match="unknown split 'dev': use train, valid, test"):
        lm_eval.eval_lm(tmp_path / "run", device=cpu, split="dev")
    (tmp_path / "run" / "checkpoint_best.pt").write_bytes(b"\x00" * 10)
    with pytest.raises(SparseseqError, match="corrupt"):
        lm_eval.eval_lm(tmp_path / "run", device=cpu)


def test_resume_refuses_a_changed_config_or_changed_data(tmp_path, lm_corpus, cpu, tiny_cfg):
    cfg = tiny_cfg(lm_corpus, epochs=1, max_batches=2)
    lm.train_lm(cfg, tmp_path / "run", device=cpu, quiet=True)
    (tmp_path / "run" / "results.json").unlink()   # as if killed before the final test
    other = load_config(config_file=tmp_path / "tiny.yaml", overrides=["nhid=32"])
    with pytest.raises(SparseseqError, match="model.nhid differs"):
        lm.train_lm(other, tmp_path / "run", device=cpu, resume=True, quiet=True)
    (tmp_path / "run" / "vocab.txt").write_text("x\ny\n")
    with pytest.raises(SparseseqError, match="another vocabulary"):
        lm.train_lm(cfg, tmp_path / "run", device=cpu, resume=True, quiet=True)
