"""SparseLSTM against a dense nn.LSTM holding the same (masked) weights."""
import random
import warnings

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from sparseseq_cli.layers import SparseLSTM

IMPLS = ["sequential", "dense", "auto"]


def random_settings(n, seed=0):
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        I, H = rng.randint(2, 24), rng.randint(2, 24)
        if rng.random() < 0.5:
            k = rng.randint(1, min(5, H))
            kw = dict(blocks=k, density=1.0 if k == 1 else rng.uniform(1 / k, 1))
        else:
            kw = dict(reduce_in=rng.uniform(0.3, 1), reduce_out=rng.uniform(0.3, 1))
        try:
            SparseLSTM(I, H, **kw)
        except ValueError:
            continue
        out.append((I, H, kw))
    return out


def run_both(layer, dense, x, hx):
    x1 = x.clone().requires_grad_()
    x2 = x.clone().requires_grad_()
    o1, (h1, c1) = layer(x1, hx)
    o2, (h2, c2) = dense(x2, hx)
    # weight the three outputs differently so that a mix-up cannot cancel out
    (o1.sum() + 2 * h1.sum() + 3 * c1.sum()).backward()
    (o2.sum() + 2 * h2.sum() + 3 * c2.sum()).backward()
    return (o1, h1, c1, x1.grad), (o2, h2, c2, x2.grad)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("I, H, kw", random_settings(12))
def test_equals_dense_lstm_with_masked_weights(I, H, kw, bidirectional, impl):
    torch.manual_seed(1)
    layer = SparseLSTM(I, H, bidirectional=bidirectional, impl=impl, **kw)
    dense = nn.LSTM(I, H, bidirectional=bidirectional)
    dense.load_state_dict(layer.dense_weights())
    D = 2 if bidirectional else 1
    x = torch.randn(6, 3, I)
    hx = (torch.randn(D, 3, H), torch.randn(D, 3, H))
    for a, b in zip(*run_both(layer, dense, x, hx)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_parameters_are_exactly_the_components():
    layer = SparseLSTM(1725, 1725, reduce_in=0.66666, reduce_out=0.66666, bidirectional=True)
    assert sum(p.numel() for p in layer.parameters()) == 2 * layer.geometry.params == 2 * 10_589_200
    # no dense (H x H) tensor stored anywhere
    assert all(p.shape[-1] < 1725 for p in layer.parameters() if p.dim() == 2)
    assert not list(layer.buffers())


def test_dense_weights_have_zeros_outside_the_pattern():
    layer = SparseLSTM(9, 6, blocks=3, density=5 / 9)
    w_hh = layer.dense_weights()["weight_hh_l0"].view(4, 6, 6)
    mask = torch.block_diag(*[torch.ones(2, 2)] * 3).bool()
    assert (w_hh[:, ~mask] == 0).all() and (w_hh[:, mask] != 0).all()
    w_ih = layer.dense_weights()["weight_ih_l0"].view(4, 6, 9)
    assert (w_ih[:, 0:2, 5:] == 0).all() and (w_ih[:, 0:2, :5] != 0).all()


@pytest.mark.parametrize("impl", IMPLS)
def test_packed_sequences_match_dense(impl):
    torch.manual_seed(0)
    layer = SparseLSTM(8, 6, blocks=2, density=0.75, bidirectional=True, impl=impl)
    dense = nn.LSTM(8, 6, bidirectional=True)
    dense.load_state_dict(layer.dense_weights())
    x = torch.randn(5, 4, 8)
    lengths = torch.tensor([3, 5, 1, 4])
    hx = (torch.randn(2, 4, 6), torch.randn(2, 4, 6))
    outs = []
    for m in (layer, dense):
        packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
        o, (h, c) = m(packed, hx)
        outs.append((pad_packed_sequence(o)[0], h, c))
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_hidden_defaults_to_zeros():
    layer = SparseLSTM(5, 4, blocks=2, density=0.6)
    x = torch.randn(3, 2, 5)
    zeros = torch.zeros(1, 2, 4)
    torch.testing.assert_close(layer(x)[0], layer(x, (zeros, zeros))[0])


class TestWeightDrop:
    def make(self, **kw):
        torch.manual_seed(0)
        return SparseLSTM(6, 6, blocks=3, density=0.5, wdrop=0.5, **kw)

    def test_fresh_mask_each_training_forward_none_in_eval(self):
        layer = self.make()
        x = torch.randn(4, 2, 6)
        layer.train()
        a, b = layer(x)[0], layer(x)[0]
        assert not torch.allclose(a, b)
        layer.eval()
        torch.testing.assert_close(layer(x)[0], layer(x)[0])
        dense = nn.LSTM(6, 6)
        dense.load_state_dict(layer.dense_weights())
        torch.testing.assert_close(layer(x)[0], dense(x)[0], atol=1e-6, rtol=0)

    def test_gradients_reach_stored_weights_without_warnings(self):
        layer = self.make(bidirectional=True)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            out, _ = layer(torch.randn(4, 2, 6))
            out.sum().backward()
        for comp in layer.components:
            assert comp.weight_hh_l0.grad is not None and comp.weight_hh_l0.grad.abs().sum() > 0
        # parameters are still the originals: no surgery, names unchanged
        assert {n for n, _ in layer.named_parameters()} == {
            f"components.{c}.{w}_l0{s}" for c in range(3) for s in ("", "_reverse")
            for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}

    def test_drop_rate_and_scaling(self):
        layer = self.make()
        comp = layer.components[0]
        dropped = [layer._component_weights(comp, 0)[1] for _ in range(200)]
        zeros = torch.stack([(d == 0).float().mean() for d in dropped]).mean()
        assert 0.45 < zeros < 0.55
        kept = dropped[0] != 0
        torch.testing.assert_close(dropped[0][kept], 2 * comp.weight_hh_l0[kept])

    def test_forward_direction_only(self):
        layer = self.make(bidirectional=True, wdrop_directions=("forward",))
        comp = layer.components[0]
        assert layer._component_weights(comp, 1)[1] is comp.weight_hh_l0_reverse
        assert (layer._component_weights(comp, 0)[1] == 0).any()


def test_bad_arguments_name_the_constructor_argument():
    with pytest.raises(ValueError, match="wdrop"):
        SparseLSTM(4, 4, wdrop=1.0)
    with pytest.raises(ValueError, match="wdrop_directions"):
        SparseLSTM(4, 4, wdrop_directions=("sideways",))
    with pytest.raises(ValueError, match=r"impl='magic' must be one of 'auto', 'sequential', 'dense'"):
        SparseLSTM(4, 4, impl="magic")
    with pytest.raises(ValueError, match=r"input \(T, B, 4\)"):
        SparseLSTM(4, 4)(torch.randn(3, 2, 5))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("impl", IMPLS)
def test_cuda_equals_cpu(impl):
    torch.manual_seed(0)
    layer = SparseLSTM(40, 30, reduce_in=0.6, reduce_out=0.6, bidirectional=True, impl=impl)
    x = torch.randn(7, 3, 40)
    expected = layer(x)[0]
    got = layer.cuda()(x.cuda())[0].cpu()
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
