"""The tagger model: shapes, padding never reaching scores or loss, the BiLSTM, its three parts."""
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from sparseseq_cli.corpora import tag_batches as tb
from sparseseq_cli.models.tagger import BiLSTM, Tagger, real_tokens, reversal_index, token_mask


def model(**kw):
    torch.manual_seed(0)
    args = dict(emsize=8, nhid=6, emblocks=4, emdensity=0.5)
    args.update(kw)
    return Tagger(30, 5, **args)


def batch_of(*sentences):
    ids = [torch.tensor(s) for s in sentences]
    split = tb.EncodedSplit(ids, [torch.arange(len(s)) % 5 for s in sentences],
                            torch.tensor([len(s) for s in sentences]), pad_id=0)
    return tb.make_batch(split, torch.arange(len(sentences)))


def test_scores_one_row_per_real_token():
    tagger = model().eval()
    batch = batch_of([3, 4, 5, 6], [7, 8], [9, 10, 11])
    scores = tagger(batch.ids, batch.lengths)
    assert scores.shape == (9, 5)
    assert real_tokens(batch.tags, batch.lengths).shape == (9,)


def test_padding_does_not_change_any_score():
    tagger = model().eval()
    long, short = [3, 4, 5, 6, 7, 8], [9, 10]
    together = batch_of(long, short)
    with torch.no_grad():
        both = tagger(together.ids, together.lengths)
        alone = tagger(batch_of(short).ids, torch.tensor([2]))
        other_pad = together.ids.clone()
        other_pad[2:, 1] = 17                          # change what sits in the padding
        both_again = tagger(other_pad, together.lengths)
    # scores are time-major: the short sentence's tokens are rows 1 and 3
    assert torch.allclose(both[[1, 3]], alone, atol=1e-6)
    assert torch.equal(both, both_again)


def test_loss_counts_real_tokens_only():
    tagger = model().eval()
    batch = batch_of([3, 4, 5], [6])
    tags = batch.tags.clone()
    tags[1:, 1] = 4                                    # garbage in the padded tag slots
    assert real_tokens(batch.tags, batch.lengths).tolist() == [0, 0, 1, 2]
    with torch.no_grad():
        scores = tagger(batch.ids, batch.lengths)
    losses = [torch.nn.functional.cross_entropy(scores, real_tokens(t, batch.lengths)) for t in (tags, batch.tags)]
    assert torch.equal(losses[0], losses[1])


def test_three_parts_and_sparse_embedding_parameters():
    tagger = model(emsize=20, emblocks=20, emdensity=0.25, nhid=10)
    emb = sum(p.numel() for p in tagger.embedding.parameters())
    assert emb == tagger.embedding.geometry.params == 20 * 30 // 4
    assert sum(p.numel() for p in tagger.bilstm.parameters()) == 2 * 4 * (20 * 10 + 10 * 10 + 2 * 10)
    assert sum(p.numel() for p in tagger.head.parameters()) == (20 * 10 + 10) + (10 * 5 + 5)


def test_weight_drop_directions_reach_the_bilstm():
    forward_only = model(wdrop=0.3).bilstm
    assert (forward_only.forward_lstm.wdrop, forward_only.reverse_lstm.wdrop) == (0.3, 0.0)
    both = model(wdrop=0.3, wdrop_directions=("forward", "reverse")).bilstm
    assert (both.forward_lstm.wdrop, both.reverse_lstm.wdrop) == (0.3, 0.3)


def test_reversal_index(cpu):
    index = reversal_index(torch.tensor([3, 1]), 3, cpu)
    assert index.tolist() == [[2, 0], [1, 1], [0, 2]]


def test_bilstm_equals_a_packed_bidirectional_lstm(cpu):
    torch.manual_seed(1)
    bilstm = BiLSTM(4, 3).eval()
    reference = nn.LSTM(4, 3, bidirectional=True)
    with torch.no_grad():
        for suffix, lstm in (("", bilstm.forward_lstm), ("_reverse", bilstm.reverse_lstm)):
            for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
                getattr(reference, name + suffix).copy_(getattr(lstm.components[0], name))
    lengths = torch.tensor([6, 4, 1])
    x = torch.randn(6, 3, 4)
    with torch.no_grad():
        ours = bilstm(x, lengths)
        packed, _ = reference(pack_padded_sequence(x, lengths))
        theirs, _ = pad_packed_sequence(packed)
    mask = token_mask(lengths, 6, cpu)
    assert torch.allclose(ours[mask], theirs[mask], atol=1e-6)


def test_gradients_reach_every_part():
    tagger = model(dropouti=0.2, dropoute=0.1, dropouth=0.2, wdrop=0.2).train()
    batch = batch_of([3, 4, 5, 6], [7, 8])
    loss = torch.nn.functional.cross_entropy(tagger(batch.ids, batch.lengths),
                                             real_tokens(batch.tags, batch.lengths))
    loss.backward()
    for name, p in tagger.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
