"""Vocabulary orders: up/down by training frequency with first-seen ties, rand, none."""
import random

import pytest

from sparseseq_cli.corpora.vocab import Vocabulary, VocabOrder
from sparseseq_cli.errors import SparseseqError

TOKENS = "b a c a d c a e b a".split()  # counts: a 4, b 2, c 2, d 1, e 1; first seen b a c d e


def test_up_sorts_least_to_most_frequent_with_first_seen_ties():
    assert Vocabulary.build(TOKENS, "up").words == ["d", "e", "b", "c", "a"]


def test_down_sorts_most_to_least_frequent_with_first_seen_ties():
    assert Vocabulary.build(TOKENS, VocabOrder.DOWN).words == ["a", "b", "c", "d", "e"]


def test_none_keeps_first_seen_order():
    assert Vocabulary.build(TOKENS, "none").words == ["b", "a", "c", "d", "e"]


def test_rand_is_the_originals_seeded_shuffle():
    expected = ["b", "a", "c", "d", "e"]
    random.Random(0).shuffle(expected)
    assert Vocabulary.build(TOKENS, "rand").words == expected
    assert Vocabulary.build(TOKENS, "rand", seed=0).words == Vocabulary.build(TOKENS, "rand").words
    assert sorted(Vocabulary.build(TOKENS, "rand", seed=5).words) == sorted(expected)


def test_specials_are_counted_once_before_the_tokens():
    vocab = Vocabulary.build(["x", "x", "y"], "up", specials=["<pad>", "<unk>"])
    assert vocab.words == ["<pad>", "<unk>", "y", "x"]


def test_lookup_extend_save_load(tmp_path):
    vocab = Vocabulary.build(TOKENS, "up")
    assert vocab["a"] == 4 and "z" not in vocab and len(vocab) == 5
    vocab.extend(["z", "a"])
    assert vocab.words[-1] == "z" and vocab["z"] == 5
    vocab.save(tmp_path / "vocab.txt")
    assert Vocabulary.load(tmp_path / "vocab.txt").words == vocab.words


def test_unknown_order_is_refused():
    with pytest.raises(ValueError):
        Vocabulary.build(TOKENS, "sideways")


def test_duplicate_words_and_unreadable_files_are_user_errors(tmp_path):
    with pytest.raises(SparseseqError, match="twice"):
        Vocabulary(["a", "b", "a"])
    (tmp_path / "v.txt").write_bytes(b"\xff\xfe\n")
    with pytest.raises(SparseseqError, match="the vocabulary .* is not UTF-8 text"):
        Vocabulary.load(tmp_path / "v.txt")
