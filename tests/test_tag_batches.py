"""Encoding tagged sentences: vocabulary order, <unk>, padding, length-grouped batches."""
import random

import torch

from sparseseq_cli.corpora import tag_batches as tb
from sparseseq_cli.corpora.conll import Sentence

TAGS = ("DT", "NN", "VBZ", "-NONE-")


def sent(text):
    pairs = [p.split("/") for p in text.split()]
    return Sentence(tuple(w for w, _ in pairs), tuple(t for _, t in pairs), 1)


TRAIN = [sent("the/DT dog/NN runs/VBZ"), sent("the/DT cat/NN *T*/-NONE- runs/VBZ"), sent("the/DT dog/NN")]


def test_vocabulary_orders_put_frequent_words_where_asked():
    up = tb.build_vocabulary(TRAIN, "up")
    assert up.words[:2] == [tb.PAD, tb.UNK]            # counted once: among the rarest
    assert up.words[-1] == "the" and up.words[-2] in ("dog", "runs")
    down = tb.build_vocabulary(TRAIN, "down")
    assert down.words[0] == "the" and set(down.words) == set(up.words)
    none = tb.build_vocabulary(TRAIN, "none")
    assert none.words == [tb.PAD, tb.UNK, "the", "dog", "runs", "cat", "*T*"]


def test_unknown_words_map_to_unk():
    vocab = tb.build_vocabulary(TRAIN, "up")
    split = tb.encode([sent("a/DT dog/NN barks/VBZ")], vocab, TAGS)
    assert split.words[0].tolist() == [vocab[tb.UNK], vocab["dog"], vocab[tb.UNK]]
    assert split.tags[0].tolist() == [0, 1, 2]
    assert tb.none_tag_id(TAGS) == 3 and tb.none_tag_id(TAGS[:3]) is None


def test_batch_is_padded_longest_first():
    vocab = tb.build_vocabulary(TRAIN, "up")
    split = tb.encode(TRAIN, vocab, TAGS)
    batch = tb.make_batch(split, torch.tensor([2, 0, 1]))
    assert batch.lengths.tolist() == [4, 3, 2]
    assert batch.ids.shape == (4, 3)
    assert batch.ids[:, 0].tolist() == split.words[1].tolist()
    assert batch.ids[3, 1].item() == vocab[tb.PAD] and batch.ids[2:, 2].tolist() == [vocab[tb.PAD]] * 2


def random_split(n=700, seed=0):
    rng = random.Random(seed)
    sentences = [sent(" ".join("w%d/NN" % rng.randrange(50) for _ in range(rng.randint(1, 60))))
                 for _ in range(n)]
    return tb.encode(sentences, tb.build_vocabulary(sentences, "up"), TAGS)


def test_train_batches_cover_every_sentence_once_grouped_by_length():
    split = random_split()
    batches = tb.train_batches(split, 20, torch.Generator().manual_seed(1))
    assert sum(len(b.lengths) for b in batches) == len(split)
    assert sum(b.tokens for b in batches) == split.tokens
    spread = sum(int(b.lengths.max() - b.lengths.min()) for b in batches) / len(batches)
    assert spread < 10   # random batches of lengths 1..60 spread ~50
    again = tb.train_batches(split, 20, torch.Generator().manual_seed(1))
    assert all(torch.equal(a.ids, b.ids) for a, b in zip(batches, again))
    other = tb.train_batches(split, 20, torch.Generator().manual_seed(2))
    assert [b.ids.shape for b in other] != [b.ids.shape for b in batches]


def test_eval_batches_cover_every_sentence():
    split = random_split(n=250)
    batches = tb.eval_batches(split, 100)
    assert [len(b.lengths) for b in batches] == [100, 100, 50]
    assert sum(b.tokens for b in batches) == split.tokens
    assert all(torch.all(b.lengths[:-1] >= b.lengths[1:]) for b in batches)
