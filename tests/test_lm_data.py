"""Token files to tensors, the batch-column layout, and every bad corpus."""
import pytest
import torch

from sparseseq_cli.corpora.lm_data import BUILTIN, batchify, load_lm_corpus
from sparseseq_cli.corpora.vocab import Vocabulary
from sparseseq_cli.errors import SparseseqError


def _corpus(folder, train="a b a c\nb a\n", valid="a b\n", test="c a d\n", names="{}.txt"):
    folder.mkdir(exist_ok=True)
    for split, text in (("train", train), ("valid", valid), ("test", test)):
        if text is not None:
            (folder / names.format(split)).write_text(text)
    return folder


def test_lines_end_with_eos_and_the_vocabulary_comes_from_train(tmp_path):
    corpus = load_lm_corpus(str(_corpus(tmp_path)), "up")
    # train counts: a 3, b 2, <eos> 2, c 1 -> up: c, b, <eos>, a; test-only 'd' appended
    assert corpus.vocab.words == ["c", "b", "<eos>", "a", "d"]
    assert corpus.splits["train"].tolist() == [3, 1, 3, 0, 2, 1, 3, 2]
    assert corpus.splits["test"].tolist() == [0, 3, 4, 2]
    assert corpus.splits["train"].dtype == torch.long


def test_original_file_names_are_found(tmp_path):
    corpus = load_lm_corpus(str(_corpus(tmp_path, names="ptb.{}.txt")), "none")
    assert corpus.vocab.words[:4] == ["a", "b", "c", "<eos>"]


def test_a_given_vocabulary_is_used_and_unknown_words_refused(tmp_path):
    vocab = Vocabulary(["<eos>", "a", "b", "c", "d"])
    corpus = load_lm_corpus(str(_corpus(tmp_path)), vocab=vocab, splits=("valid",))
    assert corpus.splits["valid"].tolist() == [1, 2, 0] and set(corpus.splits) == {"valid"}
    with pytest.raises(SparseseqError, match="the test split .* has the word 'd'"):
        load_lm_corpus(str(tmp_path), vocab=Vocabulary(["<eos>", "a", "b", "c"]), splits=("test",))


def test_builtin_corpus_is_deterministic():
    a = load_lm_corpus(BUILTIN, "up", splits=("train",), corpus_seed=0)
    b = load_lm_corpus(BUILTIN, "up", splits=("train",), corpus_seed=0)
    assert torch.equal(a.splits["train"], b.splits["train"]) and len(a.vocab) > 1000


def test_batchify_cuts_columns_and_drops_the_remainder():
    data = batchify(torch.arange(11), 3)
    assert data.tolist() == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]
    with pytest.raises(SparseseqError, match="too few for batch size 6"):
        batchify(torch.arange(11), 6)


def test_missing_folder_file_and_split(tmp_path):
    with pytest.raises(SparseseqError, match="data folder .* does not exist"):
        load_lm_corpus(str(tmp_path / "nope"))
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(SparseseqError, match="is a file"):
        load_lm_corpus(str(tmp_path / "f.txt"))
    folder = _corpus(tmp_path / "c", test=None)
    with pytest.raises(SparseseqError, match="has no test split .*test.txt, ptb.test.txt"):
        load_lm_corpus(str(folder))


def test_empty_split_is_refused(tmp_path):
    with pytest.raises(SparseseqError, match="the valid split of .* is empty"):
        load_lm_corpus(str(_corpus(tmp_path, valid="\n\n")))


def test_non_utf8_and_unreadable_files(tmp_path):
    folder = _corpus(tmp_path)
    (folder / "train.txt").write_bytes(b"a b\nc \xff d\n")
    with pytest.raises(SparseseqError, match=r"train.txt is not UTF-8 text \(line 2"):
        load_lm_corpus(str(folder))
    (folder / "train.txt").unlink()
    (folder / "train.txt").mkdir()
    with pytest.raises(SparseseqError, match="cannot read .*train.txt"):
        load_lm_corpus(str(folder))


def test_unigram_perplexity_is_add_one_smoothed():
    from sparseseq_cli.corpora.lm_data import unigram_perplexity
    train = torch.tensor([0, 0, 1])                  # counts 2, 1, 0 -> add-one 3, 2, 1 of 6
    assert unigram_perplexity(train, torch.tensor([0]), 3) == pytest.approx(2.0)
    assert unigram_perplexity(train, torch.tensor([2, 2]), 3) == pytest.approx(6.0)
    assert unigram_perplexity(train, torch.tensor([0, 2]), 3) == pytest.approx((2.0 * 6.0) ** 0.5)
