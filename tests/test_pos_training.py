"""train-pos: it learns (Adam and SGD), run files, best-dev selection, accuracy with and without
-NONE-, resume (also after Ctrl-C mid-epoch), weight drop directions, CLI."""
import json
from collections import Counter

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from sparseseq_cli.cli import app
from sparseseq_cli.config import load_config
from sparseseq_cli.corpora import synthetic
from sparseseq_cli.corpora.conll import load_tagged_corpus
from sparseseq_cli.corpora.tag_batches import Batch, build_vocabulary, encode, eval_batches, none_tag_id
from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.models.tagger import Tagger
from sparseseq_cli.training import tagging, tagging_loop
from sparseseq_cli.training.state import TrainingInterrupted
from sparseseq_cli.run_folder import TRAIN, RunFolder

SMALL = ["emsize=8", "nhid=8", "emblocks=2", "emdensity=0.75", "lr=0.01", "epochs=3",
         "dropouti=0.1", "wdrop=0.1", "eval_batch_size=16"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A small CoNLL folder cut from the synthetic corpus, with and without a test split."""
    corpus = synthetic.tagged_corpus(0)
    root = tmp_path_factory.mktemp("pos")
    sizes = {"train": 120, "valid": 40, "test": 40}
    for split, n in sizes.items():
        text = "".join("".join(f"{w}\t{t}\n" for w, t in s) + "\n" for s in corpus[split][:n])
        (root / f"{split}.conll").write_text(text)
    (root / "tags.txt").write_text("\n".join(synthetic.TAGS) + "\n")
    no_test = tmp_path_factory.mktemp("pos-no-test")
    for name in ("train.conll", "valid.conll"):
        (no_test / name).write_text((root / name).read_text())
    return root, no_test


def config(folder, *extra):
    return load_config("pos-tiny", overrides=SMALL + list(extra), flags={"data.path": str(folder)}, task="pos")


def majority_baseline(folder):
    """Dev accuracy of tagging every token with the most frequent training tag."""
    def tags(name):
        return [line.split("\t")[1] for line in (folder / name).read_text().splitlines() if line]

    top = Counter(tags("train.conll")).most_common(1)[0][0]
    dev = tags("valid.conll")
    return dev.count(top) / len(dev)


def assert_same_run(a, b):
    """Two run folders hold the same per-epoch metrics (timings aside) and the same last model."""
    def strip(records):
        return [{k: v for k, v in r.items() if k not in ("elapsed_s", "train_s")} for r in records]

    assert strip(RunFolder(a).read_metrics()) == strip(RunFolder(b).read_metrics())
    first, second = RunFolder(a).load(TRAIN.last)["model"], RunFolder(b).load(TRAIN.last)["model"]
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_run_files_and_results(data, tmp_path, cpu):
    results = tagging.train_pos(config(data[0]), tmp_path / "run", device=cpu, quiet=True)
    run = tmp_path / "run"
    for name in ("config.yaml", "vocab.txt", "log.txt", "metrics.jsonl", "results.json",
                 "checkpoint_last.pt", "checkpoint_best.pt"):
        assert (run / name).exists(), name
    assert json.loads((run / "results.json").read_text()) == results
    assert results["phase"] == "train-pos" and results["epochs"] == 3
    m = results["metrics"]
    assert set(m) == {"dev_acc", "dev_acc_no_none", "test_acc", "test_acc_no_none", "best_epoch",
                      "best_dev_acc", "test_acc_at_best", "test_acc_no_none_at_best"}
    assert all(0 <= m[k] <= 1 for k in m if k != "best_epoch")
    p = results["params"]
    assert p["total"] == p["embedding"] + p["recurrent"] + p["head"]
    assert p["embedding"] < p["embedding_dense"]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert {"epoch", "elapsed_s", "train_loss", "dev_acc", "dev_acc_no_none"} <= set(records[0])
    assert records[-1]["dev_acc"] == m["dev_acc"]
    for name in ("checkpoint_last.pt", "checkpoint_best.pt"):
        state = torch.load(run / name, weights_only=True)
        assert state["vocab"] == (run / "vocab.txt").read_text().splitlines()


def test_training_learns_well_past_the_majority_tag(data, tmp_path, cpu):
    # the untrained tagger is near chance (about 0.01 here); five epochs must leave tagging
    # every token with the most frequent tag (about 0.17) far behind
    results = tagging.train_pos(config(data[0], "epochs=5", "lr=0.1"), tmp_path / "run", device=cpu, quiet=True)
    assert results["metrics"]["dev_acc"] > majority_baseline(data[0]) + 0.25


def test_sgd_optimizer_trains(data, tmp_path, cpu):
    results = tagging.train_pos(config(data[0], "optimizer=sgd", "lr=0.5", "momentum=0.9", "epochs=10"),
                                tmp_path / "run", device=cpu, quiet=True)
    run = RunFolder(tmp_path / "run")
    group = run.load(TRAIN.last)["optimizer"]["param_groups"][0]
    assert "betas" not in group and (group["lr"], group["momentum"]) == (0.5, 0.9)   # SGD, as configured
    losses = [r["train_loss"] for r in run.read_metrics()]
    assert losses[-1] < losses[0] - 0.5
    assert results["metrics"]["dev_acc"] > majority_baseline(data[0]) + 0.1


@pytest.mark.parametrize("reverse", [False, True])
def test_wdrop_reverse_reaches_the_reverse_lstm(reverse):
    cfg = load_config("pos-tiny", overrides=["wdrop=0.3", f"wdrop_reverse={reverse}"], task="pos")
    bilstm = Tagger.from_config(cfg.model, 30, 5).bilstm
    assert (bilstm.forward_lstm.wdrop, bilstm.reverse_lstm.wdrop) == (0.3, 0.3 if reverse else 0.0)


def test_best_dev_checkpoint_is_the_best_epoch(data, tmp_path, cpu):
    results = tagging.train_pos(config(data[0], "epochs=4", "lr=0.05"), tmp_path / "run", device=cpu, quiet=True)
    run = RunFolder(tmp_path / "run")
    dev = [r["dev_acc"] for r in run.read_metrics()]
    m = results["metrics"]
    assert m["best_epoch"] == dev.index(max(dev)) + 1 and m["best_dev_acc"] == max(dev)
    best = run.load("checkpoint_best.pt")
    assert best["epoch"] == m["best_epoch"]
    # the reported test accuracy at best is the best checkpoint's
    cfg = config(data[0])
    corpus = load_tagged_corpus(cfg.data.path, cfg.data.corpus_seed)   # as train-pos reads it
    vocab, tags = build_vocabulary(corpus.train, cfg.data.vocab_order), corpus.tags
    model = Tagger.from_config(cfg.model, len(vocab), len(tags))
    model.load_state_dict(best["model"])
    test = encode(corpus.splits()["test"], vocab, tags)
    acc = tagging_loop.evaluate(model, eval_batches(test, 7), cpu, none_tag_id(tags))
    assert acc.acc == pytest.approx(m["test_acc_at_best"])


def test_without_test_split_reports_dev_figures(data, tmp_path, cpu):
    results = tagging.train_pos(config(data[1], "epochs=1"), tmp_path / "run", device=cpu, quiet=True)
    m = results["metrics"]
    assert m["test_acc"] is None and m["test_acc_no_none"] is None and m["test_acc_at_best"] is None
    assert 0 < m["dev_acc"] <= 1


def test_resume_equals_uninterrupted(data, tmp_path, cpu):
    whole = tagging.train_pos(config(data[0]), tmp_path / "whole", device=cpu, quiet=True)
    tagging.train_pos(config(data[0], "epochs=2"), tmp_path / "cut", device=cpu, quiet=True)
    (tmp_path / "cut" / "results.json").unlink()          # as if killed after epoch 2
    resumed = tagging.train_pos(config(data[0]), tmp_path / "cut", device=cpu, resume=True, quiet=True)
    assert resumed["metrics"] == whole["metrics"]
    assert_same_run(tmp_path / "cut", tmp_path / "whole")


def test_ctrl_c_mid_epoch_then_resume_equals_uninterrupted(data, tmp_path, monkeypatch, cpu, stop_after):
    whole = tagging.train_pos(config(data[0]), tmp_path / "whole", device=cpu, quiet=True)
    # 120 sentences in batches of 20: the Ctrl-C arrives before the 4th batch of epoch 2
    monkeypatch.setattr(tagging, "StopRequest", lambda: stop_after(6 + 3))
    with pytest.raises(TrainingInterrupted, match="--resume .* continues after epoch 1"):
        tagging.train_pos(config(data[0]), tmp_path / "cut", device=cpu, quiet=True)
    run = RunFolder(tmp_path / "cut")
    assert run.load(TRAIN.last)["state"]["epoch"] == 1 and len(run.read_metrics()) == 1
    assert not (tmp_path / "cut" / "results.json").exists()
    monkeypatch.undo()
    resumed = tagging.train_pos(config(data[0]), tmp_path / "cut", device=cpu, resume=True, quiet=True)
    assert resumed["metrics"] == whole["metrics"]
    assert_same_run(tmp_path / "cut", tmp_path / "whole")


def test_resume_refuses_another_model(data, tmp_path, cpu):
    tagging.train_pos(config(data[0], "epochs=1"), tmp_path / "run", device=cpu, quiet=True)
    (tmp_path / "run" / "results.json").unlink()
    with pytest.raises(SparseseqError, match="model.nhid differs"):
        tagging.train_pos(config(data[0], "nhid=9"), tmp_path / "run", device=cpu, resume=True, quiet=True)


class FixedScores(nn.Module):
    """Predicts tag 0 everywhere except where told otherwise."""

    def forward(self, ids, lengths):
        scores = torch.zeros(int(lengths.sum()), 3)
        scores[:, 0] = 1.0
        return scores


def test_accuracy_with_and_without_none(cpu):
    # tags: 0 = NN, 1 = -NONE-, 2 = DT; two sentences (lengths 3, 2), padding tag ids are junk
    tags = torch.tensor([[0, 1], [1, 0], [2, 2]])
    batch = Batch(ids=torch.zeros(3, 2, dtype=torch.long), tags=tags, lengths=torch.tensor([3, 2]))
    # real tokens (time-major): 0, 1, 1, 0, 2 -> predictions all 0: 2 of 5 right
    acc = tagging_loop.evaluate(FixedScores(), [batch], cpu, none_id=1)
    assert (acc.correct, acc.total) == (2, 5)
    assert (acc.correct_no_none, acc.total_no_none) == (2, 3)   # -NONE- tokens left out
    plain = tagging_loop.evaluate(FixedScores(), [batch], cpu, none_id=None)
    assert plain.acc_no_none == plain.acc == 0.4


runner = CliRunner()


def test_cli_json_only_on_stdout(data, tmp_path):
    args = ["train-pos", "--preset", "pos-tiny", "--data", str(data[1]), "--epochs", "1",
            "--save", str(tmp_path / "run"), "--json"] + [a for s in SMALL[:5] for a in ("--set", s)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["phase"] == "train-pos" and record["metrics"]["test_acc"] is None


@pytest.mark.parametrize("valid, message", [
    (None, "valid.conll does not exist"),
    ("a\tDT\nb NN\n", "valid.conll:2: expected token<TAB>tag"),
    ("", "holds no sentences"),
    ("a\tDT\nb\tJJ\n", "valid.conll:2: tag 'JJ' is not in the tags of"),
])
def test_cli_bad_data_is_one_line_and_exit_2(tmp_path, valid, message):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "train.conll").write_text("a\tDT\nb\tNN\n")
    if valid is not None:
        (folder / "valid.conll").write_text(valid)
    result = runner.invoke(app, ["train-pos", "--preset", "pos-dense", "--data", str(folder),
                                 "--save", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert result.output.count("\n") == 1


def test_cli_needs_a_preset(tmp_path):
    result = runner.invoke(app, ["train-pos", "--save", str(tmp_path / "run")])
    assert result.exit_code == 2 and "--preset" in result.output


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_run_matches_cpu_accuracy(data, tmp_path, cpu):
    on_cpu = tagging.train_pos(config(data[0], "dropouti=0", "wdrop=0"), tmp_path / "cpu", device=cpu, quiet=True)
    gpu = tagging.train_pos(config(data[0], "dropouti=0", "wdrop=0"), tmp_path / "gpu",
                            device=torch.device("cuda"), quiet=True)
    assert gpu["env"]["device"] != "cpu"
    assert gpu["metrics"]["dev_acc"] == pytest.approx(on_cpu["metrics"]["dev_acc"], abs=0.03)
