"""score and load_run for language models: equal to eval-lm, per-line figures, --independent
batching, unknown words (also eval-lm --data), bad input, and the light package import."""
import json
import math
import random
import shutil
import subprocess
import sys

import pytest
import torch
import yaml
from typer.testing import CliRunner

from sparseseq_cli import load_run
from sparseseq_cli.cli import app
from sparseseq_cli.config import load_config
from sparseseq_cli.corpora.lm_data import token_ids
from sparseseq_cli.corpora.vocab import Vocabulary
from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.inference import scoring
from sparseseq_cli.models.language_model import LanguageModel
from sparseseq_cli.models.tagger import Tagger
from sparseseq_cli.run_folder import TRAIN, RunFolder
from sparseseq_cli.tasks import Phase
from sparseseq_cli.training import lm_eval, lm_phases
from sparseseq_cli.training.state import model_record

WORDS = "the a cat dog sees eats runs big small red <unk>".split()   # PTB-like: <unk> is a word
MODEL = {"emsize": 8, "nhid": 16, "nlayers": 2, "dropout": 0.1, "dropouth": 0.1, "dropouti": 0.1,
         "dropoute": 0.1, "wdrop": 0.1, "emblocks": 2, "emdensity": 0.75, "sparse_mode": "sparse_hidden",
         "sparse_fract": 0.5}


def write_text(path, lines, seed):
    rng = random.Random(seed)
    path.write_text("".join(" " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12))) + " \n"
                            for _ in range(lines)))


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory, cpu):
    """A language model trained one epoch on a tiny corpus whose vocabulary has <unk>."""
    root = tmp_path_factory.mktemp("score")
    corpus = root / "corpus"
    corpus.mkdir()
    for split, lines, seed in (("train", 150, 0), ("valid", 20, 1), ("test", 25, 2)):
        write_text(corpus / f"{split}.txt", lines, seed)
    config = {"task": "lm", "data": {"path": str(corpus)}, "model": MODEL,
              "train": {"lr": 5.0, "epochs": 1, "batch_size": 4, "eval_batch_size": 2, "bptt": 8, "seed": 3}}
    (root / "tiny.yaml").write_text(yaml.safe_dump(config))
    results = lm_phases.train_lm(load_config(config_file=root / "tiny.yaml"), root / "run", device=cpu, quiet=True)
    return root / "run", corpus, results


def hand_made_run(path, task="lm", words=("the", "cat", "<eos>"), results=True):
    """A run folder with an untrained model's best checkpoint (and results.json unless not)."""
    cfg = load_config(overrides=[f"{k}={v}" for k, v in MODEL.items()] if task == "lm" else
                      ["emsize=8", "nhid=4", "emblocks=1", "emdensity=1"],
                      preset=None if task == "lm" else "pos-tiny", task=task)
    torch.manual_seed(0)
    if task == "lm":
        model, tags, phase = LanguageModel.from_config(cfg.model, len(words)), None, Phase.TRAIN_LM
    else:
        tags = ["DT", "NN"]
        model, phase = Tagger.from_config(cfg.model, len(words), len(tags)), Phase.TRAIN_POS
    path.mkdir(parents=True)
    run = RunFolder(path)
    run.save(TRAIN.best, {**model_record(phase, cfg, list(words), model, tags), "epoch": 1})
    (path / "config.yaml").write_text("task: " + task + "\n")
    if results:
        (path / "results.json").write_text("{}\n")
    return path


def cli(*args, input=None):
    return CliRunner().invoke(app, [str(a) for a in args], input=input)


# ---- the acceptance: score equals eval-lm ---------------------------------------------------------
def test_score_of_the_test_split_equals_eval_lm_and_test_ppl(lm_run, cpu):
    run, corpus, results = lm_run
    evaluated = lm_eval.eval_lm(run, device=cpu, split="test", quiet=True)
    scores = load_run(run).score((corpus / "test.txt").read_text())
    assert scores.tokens == evaluated["tokens"]
    assert scores.loss == pytest.approx(evaluated["loss"], rel=1e-12)
    assert scores.ppl == pytest.approx(results["metrics"]["test_ppl"], rel=1e-9)
    done = cli("score", run, corpus / "test.txt", "--device", "cpu", "--json")
    assert done.exit_code == 0, done.output
    record = json.loads(done.stdout)
    assert record["ppl"] == pytest.approx(scores.ppl, rel=1e-12) and record["tokens"] == scores.tokens
    assert record["sentences"] == [s.as_dict() for s in scores.sentences]
    # and the valid split, with batch size 1, the stream score reads
    valid = lm_eval.eval_lm(run, device=cpu, split="valid", batch_size=1, quiet=True)
    assert load_run(run).score((corpus / "valid.txt").read_text()).loss == pytest.approx(valid["loss"], rel=1e-12)


def test_per_line_figures_add_up_to_the_totals(lm_run):
    run, corpus, _ = lm_run
    lines = (corpus / "test.txt").read_text().splitlines()
    scores = load_run(run).score(lines)
    assert len(scores.sentences) == len(lines)
    first = scores.sentences[0]
    assert first.tokens == len(lines[0].split())        # its first word is context only
    assert all(s.tokens == len(line.split()) + 1 for s, line in zip(scores.sentences[1:], lines[1:]))
    assert sum(s.tokens for s in scores.sentences) == scores.tokens
    assert sum(s.logprob for s in scores.sentences) == pytest.approx(scores.logprob, rel=1e-6)
    s = scores.sentences[3]
    assert s.ppl == pytest.approx(math.exp(-s.logprob / s.tokens))


def test_independent_lines_batched_equal_each_line_alone(lm_run, monkeypatch):
    run, corpus, _ = lm_run
    model_run = load_run(run)
    lines = (corpus / "valid.txt").read_text().splitlines()
    monkeypatch.setattr(scoring, "BATCH_LINES", 3)         # several batches of padded lines
    batched = model_run.score(lines, independent=True)
    alone = [model_run.score([line], independent=True).sentences[0] for line in lines]
    for b, a in zip(batched.sentences, alone):
        assert (b.tokens, b.unk) == (a.tokens, a.unk)
        assert b.logprob == pytest.approx(a.logprob, rel=1e-5, abs=1e-5)
    # one line by hand: after <eos>, from a fresh state, every word and the <eos> predicted
    words = lines[0].split()
    ids = torch.tensor([model_run.vocab[w] for w in ["<eos>", *words, "<eos>"]])
    with torch.no_grad():
        out = model_run.model(ids[:-1].unsqueeze(1), model_run.model.init_hidden(1))
    by_hand = out.log_probs.gather(1, ids[1:].unsqueeze(1)).sum().item()
    assert batched.sentences[0].logprob == pytest.approx(by_hand, rel=1e-5)
    assert batched.tokens == sum(len(line.split()) + 1 for line in lines)
    # the continuous reading carries the state over: other figures
    assert model_run.score(lines).sentences[1].logprob != pytest.approx(batched.sentences[1].logprob)


# ---- unknown words ----------------------------------------------------------------------------
def test_unknown_words_become_unk_and_are_counted(lm_run):
    run, _, _ = lm_run
    scores = load_run(run).score(["the zebra cat", "okapi okapi dog", "the cat"])
    assert [s.unk for s in scores.sentences] == [1, 2, 0] and scores.unk == 3
    assert scores.sentences[0].text == "the zebra cat"
    done = cli("score", run, "-", "--device", "cpu", input="the zebra cat\n")
    assert done.exit_code == 0 and "1 unknown words scored as <unk>" in done.stdout


def test_without_unk_in_the_vocabulary_unknown_words_are_an_error(tmp_path):
    with pytest.raises(SparseseqError, match=r"2 word\(s\).*'zebra', 'okapi'.*no <unk>"):
        token_ids("the zebra okapi zebra".split(), Vocabulary(["the", "<eos>"]), "the text")
    run = hand_made_run(tmp_path / "run")
    done = cli("score", run, "-", "--device", "cpu", input="the zebra cat\n")
    assert done.exit_code == 2 and "zebra" in done.output and "Traceback" not in done.output
    assert len(done.output.strip().splitlines()) == 1


def test_eval_lm_on_another_corpus_maps_unknown_words_to_unk(lm_run, tmp_path, cpu):
    run, corpus, _ = lm_run
    other = tmp_path / "other"
    shutil.copytree(corpus, other)
    (other / "test.txt").write_text(" the zebra cat runs \n a dog sees an okapi \n")
    record = lm_eval.eval_lm(run, device=cpu, data=str(other), quiet=True)
    assert record["unk"] == 3 and math.isfinite(record["ppl"])
    assert record["loss"] == pytest.approx(load_run(run).score((other / "test.txt").read_text()).loss, rel=1e-12)
    done = cli("eval-lm", run, "--data", other, "--device", "cpu")
    assert done.exit_code == 0 and "3 unknown words scored as <unk>" in done.stdout


# ---- bad input and the run's state ---------------------------------------------------------------
@pytest.mark.parametrize("case, message", [
    ("missing", "does not exist"), ("empty-folder", "is not a run folder"),
    ("pos-run", "train-pos run"), ("empty-file", "is empty"), ("finetuned", "no finetuned model")])
def test_bad_input_is_one_line_and_exit_2(lm_run, tmp_path, case, message):
    run, corpus, _ = lm_run
    args = [run, corpus / "test.txt"]
    if case == "missing":
        args[0] = tmp_path / "nowhere"
    elif case == "empty-folder":
        (tmp_path / "folder").mkdir()
        args[0] = tmp_path / "folder"
    elif case == "pos-run":
        args[0] = hand_made_run(tmp_path / "pos", task="pos", words=("<pad>", "<unk>", "the"))
    elif case == "empty-file":
        (tmp_path / "empty.txt").write_text("\n\n")
        args[1] = tmp_path / "empty.txt"
    else:
        args.append("--finetuned")
    done = cli("score", *args, "--device", "cpu")
    assert done.exit_code == 2, done.output
    assert message in done.output and len(done.output.strip().splitlines()) == 1


def test_an_unfinished_run_is_used_with_a_note(lm_run, tmp_path):
    run, corpus, _ = lm_run
    unfinished = tmp_path / "unfinished"
    shutil.copytree(run, unfinished)
    (unfinished / "results.json").unlink()
    loaded = load_run(unfinished)
    assert not loaded.finished and "unfinished" in loaded.note
    assert load_run(run).note is None and load_run(run).finished
    done = cli("score", unfinished, corpus / "test.txt", "--device", "cpu")
    assert done.exit_code == 0 and "note:" in done.stderr and "unfinished" in done.stderr
    done = cli("score", unfinished, corpus / "test.txt", "--device", "cpu", "--json")
    assert json.loads(done.stdout)["finished"] is False and "unfinished" in done.stderr


def test_load_run_gives_config_vocab_and_an_eval_mode_model(lm_run):
    run, _, _ = lm_run
    loaded = load_run(run, device="cpu")
    assert loaded.task == "lm" and loaded.checkpoint == "checkpoint_best.pt"
    assert loaded.config.train.bptt == 8 and not loaded.model.training
    assert loaded.vocab.words == (run / "vocab.txt").read_text().splitlines()
    with torch.no_grad():   # the hidden states as features
        out = loaded.model(loaded.encode("the cat runs"), loaded.model.init_hidden(1))
    assert out.raw_last.shape == (3, 1, loaded.model.nhidlast)
    with pytest.raises(SparseseqError, match="train-lm run"):
        load_run(run, task="pos")


def test_importing_the_package_and_its_layers_stays_light():
    code = ("import sys; import sparseseq_cli; from sparseseq_cli.layers import SparseLSTM; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('typer', 'rich', 'yaml', 'click') "
            "or m.startswith('sparseseq_cli.training') or m.startswith('sparseseq_cli.inference')]; "
            "print(bad); from sparseseq_cli import load_run; assert callable(load_run); "
            "sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
