"""generate: seeded and reproducible, words of the vocabulary only, a line per <eos>, greedy
near temperature 0, the prompt, and bad input."""
import pytest
import torch
from typer.testing import CliRunner

from sparseseq_cli import load_run
from sparseseq_cli.cli import app
from sparseseq_cli.config import load_config
from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.models.language_model import LanguageModel
from sparseseq_cli.run_folder import TRAIN, RunFolder
from sparseseq_cli.tasks import Phase
from sparseseq_cli.training.state import model_record

VOCAB = ["<eos>", "<unk>", "the", "a", "cat", "dog", "sees", "runs", "big", "red", "small", "eats"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished run folder holding an untrained tiny language model: random weights give
    text varied enough to tell seeds apart."""
    path = tmp_path_factory.mktemp("generate") / "run"
    cfg = load_config(overrides=["emsize=8", "nhid=16", "nlayers=2", "emblocks=2", "emdensity=0.75",
                                 "sparse_mode=sparse_hidden", "sparse_fract=0.5"], task="lm")
    torch.manual_seed(0)
    model = LanguageModel.from_config(cfg.model, len(VOCAB))
    with torch.no_grad():   # sharper than an untrained model's near-uniform distribution
        model.decoder_bias.copy_(torch.randn(len(VOCAB)) * 2)
    path.mkdir()
    RunFolder(path).save(TRAIN.best, {**model_record(Phase.TRAIN_LM, cfg, VOCAB, model), "epoch": 1})
    (path / "config.yaml").write_text("task: lm\n")
    (path / "results.json").write_text("{}\n")
    (path / "vocab.txt").write_text("".join(w + "\n" for w in VOCAB))
    return path


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_the_same_seed_gives_the_same_text_and_another_seed_another(run):
    loaded = load_run(run)
    first = loaded.generate(words=60, seed=7)
    assert loaded.generate(words=60, seed=7) == first
    assert loaded.generate(words=60, seed=8) != first
    vocab = set((run / "vocab.txt").read_text().splitlines())
    assert set(first.split()) <= vocab and "<eos>" not in first.split()
    # 60 tokens: the words, and a line break for each <eos>
    assert len(first.split()) + first.count("\n") == 60
    done = cli("generate", run, "--seed", 7, "--words", 60, "--device", "cpu")
    assert done.exit_code == 0 and done.stdout.rstrip("\n") == first.rstrip("\n")


def test_near_zero_temperature_is_the_greedy_continuation(run):
    loaded = load_run(run)
    text = loaded.generate(words=15, temperature=1e-6, seed=1, prompt="the cat")
    assert loaded.generate(words=15, temperature=1e-6, seed=2, prompt="the cat") == text
    vocab, model = loaded.vocab, loaded.model
    ids = [vocab[w] for w in ("<eos>", "the", "cat")]
    greedy = []
    with torch.no_grad():
        out = model(torch.tensor(ids).unsqueeze(1), model.init_hidden(1))
        for _ in range(15):
            word = int(out.log_probs[-1].argmax())
            greedy.append(word)
            out = model(torch.tensor([[word]]), out.hidden)
    expected = " ".join("\n" if vocab.words[w] == "<eos>" else vocab.words[w] for w in greedy)
    assert text.split() == expected.split() and text.count("\n") == expected.count("\n")


def test_no_words_is_no_text_and_the_prompt_is_not_repeated(run):
    loaded = load_run(run)
    assert loaded.generate(words=0, seed=3, prompt="big red dog") == ""
    assert len(loaded.generate(words=4, seed=3, prompt="big red dog <eos>").split()) <= 4


@pytest.mark.parametrize("args, message", [
    (["--temperature", "0"], "must be > 0"), (["--temperature", "-1"], "must be > 0"),
    (["--prompt", "the zebra"], "'zebra'"), (["--words", "-3"], ">= 0")])
def test_bad_input_is_one_line_and_exit_2(run, args, message):
    done = cli("generate", run, *args, "--device", "cpu")
    assert done.exit_code == 2 and message in done.output
    assert len(done.output.strip().splitlines()) == 1


def test_generate_needs_a_language_model(tmp_path):
    with pytest.raises(SparseseqError, match="is not a run folder"):
        load_run(tmp_path)
