"""tag and load_run for taggers: the dev split's accuracy is best_dev_acc exactly, CoNLL and
plain input, the output, unknown tags and words, and bad input."""
import json

import pytest
import torch
from typer.testing import CliRunner

from sparseseq_cli import load_run
from sparseseq_cli.cli import app
from sparseseq_cli.config import load_config
from sparseseq_cli.corpora import synthetic
from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.inference.tagging import parse_input
from sparseseq_cli.training import tagging



@pytest.fixture(scope="module")
def pos_run(tmp_path_factory, cpu):
    """A tagger trained three epochs on a CoNLL folder cut from the synthetic corpus; dev is
    evaluated in several batches (eval_batch_size 16)."""
    corpus = synthetic.tagged_corpus(0)
    root = tmp_path_factory.mktemp("tag")
    data = root / "data"
    data.mkdir()
    for split, n in {"train": 120, "valid": 45, "test": 20}.items():
        text = "".join("".join(f"{w}\t{t}\n" for w, t in s) + "\n" for s in corpus[split][:n])
        (data / f"{split}.conll").write_text(text)
    (data / "tags.txt").write_text("\n".join(synthetic.TAGS) + "\n")
    cfg = load_config("pos-tiny", overrides=["emsize=8", "nhid=8", "emblocks=2", "emdensity=0.75", "lr=0.01",
                                             "epochs=3", "eval_batch_size=16"],
                      flags={"data.path": str(data)}, task="pos")
    results = tagging.train_pos(cfg, root / "run", device=cpu, quiet=True)
    return root / "run", data, results


def cli(*args, input=None):
    return CliRunner().invoke(app, [str(a) for a in args], input=input)


def test_tagging_the_dev_split_reproduces_best_dev_acc_exactly(pos_run):
    run, data, results = pos_run
    done = cli("tag", run, data / "valid.conll", "--device", "cpu", "--json")
    assert done.exit_code == 0, done.output
    record = json.loads(done.stdout)
    assert record["acc"] == results["metrics"]["best_dev_acc"]
    assert record["checkpoint"] == "checkpoint_best.pt" and record["epoch"] == results["metrics"]["best_epoch"]
    assert 0 < record["acc_no_none"] <= 1 and record["acc_no_none"] != record["acc"]
    sentences, _ = parse_input((data / "valid.conll").read_text(), "valid")
    assert [s["words"] for s in record["sentences"]] == [list(s.words) for s in sentences]
    assert record["tokens"] == sum(len(s.words) for s in sentences)
    tagged = load_run(run).tag_sentences(sentences, gold=True)
    assert tagged.accuracy.acc == record["acc"] and tagged.accuracy.acc_no_none == record["acc_no_none"]
    # the table's summary line names the checkpoint and the accuracy (on stderr)
    done = cli("tag", run, data / "valid.conll", "--device", "cpu")
    assert "acc " in done.stderr and "checkpoint_best.pt" in done.stderr


def test_conll_output_and_plain_input_give_the_same_tags(pos_run):
    run, data, _ = pos_run
    sentences, gold = parse_input((data / "test.conll").read_text(), "test")
    assert gold
    plain = "".join(" ".join(s.words) + "\n\n" for s in sentences)   # blank lines are skipped
    done = cli("tag", run, "-", "--device", "cpu", input=plain)
    assert done.exit_code == 0, done.output
    blocks = done.stdout.strip("\n").split("\n\n")
    assert len(blocks) == len(sentences)
    rows = [line.split("\t") for line in blocks[0].splitlines()]
    assert [w for w, _ in rows] == list(sentences[0].words)
    loaded = load_run(run)
    expected = loaded.tag([list(s.words) for s in sentences])
    assert [[t for _, t in (line.split("\t") for line in b.splitlines())] for b in blocks] == expected
    assert all(t in loaded.tags for tags in expected for t in tags)
    assert loaded.tag([" ".join(sentences[0].words)]) == expected[:1]    # a string is split
    assert "acc" not in done.stderr


def test_unknown_words_and_given_tags_the_model_lacks(pos_run):
    run, _, _ = pos_run
    loaded = load_run(run)
    tagged = loaded.tag_sentences(parse_input("qwxz\tNN\nthe\tXYZ\n", "text")[0], gold=True)
    assert tagged.unk == 1 and tagged.accuracy.total == 2
    assert tagged.accuracy.correct <= 1        # the tag XYZ is never right
    assert loaded.task == "pos" and not loaded.model.training and "<unk>" in loaded.vocab
    with pytest.raises(SparseseqError, match="list of sentences"):
        loaded.tag("one string")


@pytest.mark.parametrize("case, message", [
    ("lm-run", "train-lm run"), ("empty", "is empty"), ("bad-conll", "expected token<TAB>tag")])
def test_bad_input_is_one_line_and_exit_2(pos_run, tmp_path, case, message):
    run, data, _ = pos_run
    text = {"empty": "\n \n", "bad-conll": "the\tDT\ncat NN\n"}.get(case, "the cat\n")
    if case == "lm-run":
        run = tmp_path / "lm"
        run.mkdir()
        state = torch.load(pos_run[0] / "checkpoint_best.pt", weights_only=True)
        torch.save({**state, "task": "lm"}, run / "checkpoint_best.pt")
    done = cli("tag", run, "-", "--device", "cpu", input=text)
    assert done.exit_code == 2, done.output
    assert message in done.output and len(done.output.strip().splitlines()) == 1
