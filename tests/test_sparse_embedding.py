"""SparseEmbedding against the dense V x d matrix with its zeros."""
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from sparseseq_cli.layers import SparseEmbedding

SETTINGS = [  # (V, d, blocks, density): usual, non-monotonic starts, empty blocks, dense
    (50, 12, 4, 0.5), (5000, 5, 3, 0.5), (100, 30, 3, 1 / 3), (30, 8, 1, 1.0),
    (1000, 20, 20, 0.25), (200, 40, 10, 0.5), (77, 9, 2, 0.7),
]


@pytest.mark.parametrize("V, d, K, D", SETTINGS)
def test_stores_only_trainable_parameters(V, d, K, D):
    e = SparseEmbedding(V, d, blocks=K, density=D)
    assert sum(p.numel() for p in e.parameters()) == e.geometry.params
    dense = e.dense_weight()
    assert int((dense != 0).sum()) == e.geometry.params   # uniform init is never exactly 0
    for j, (start, width) in enumerate(zip(e.geometry.starts, e.geometry.widths)):
        col = sum(e.geometry.widths[:j])
        assert (dense[:start, col:col + width] == 0).all()


@pytest.mark.parametrize("V, d, K, D", SETTINGS)
def test_lookup_and_decode_equal_dense_computation_with_gradients(V, d, K, D):
    torch.manual_seed(0)
    e = SparseEmbedding(V, d, blocks=K, density=D).double()
    W = e.dense_weight().requires_grad_()
    ids = torch.randint(0, V, (7, 3))
    ids[0, :2] = torch.tensor([0, V - 1])
    hidden = torch.randn(21, d, dtype=torch.double, requires_grad=True)
    bias = torch.randn(V, dtype=torch.double, requires_grad=True)
    g_emb = torch.randn(7, 3, d, dtype=torch.double)
    g_log = torch.randn(21, V, dtype=torch.double)

    emb, logits = e(ids), e.decode(hidden, bias)
    torch.testing.assert_close(emb, F.embedding(ids, W))
    torch.testing.assert_close(logits, hidden @ W.t() + bias)
    torch.testing.assert_close(e.decode(hidden), hidden @ W.t())

    ((emb * g_emb).sum() + (logits * g_log).sum()).backward()
    sparse_grads = (hidden.grad.clone(), bias.grad.clone())
    hidden.grad = bias.grad = None
    ((F.embedding(ids, W) * g_emb).sum() + ((hidden @ W.t() + bias) * g_log).sum()).backward()
    torch.testing.assert_close(sparse_grads[0], hidden.grad)
    torch.testing.assert_close(sparse_grads[1], bias.grad)
    # each stored row's gradient is the dense gradient at its place
    for (first, end, cols), w in zip(e.segments, e.weights):
        torch.testing.assert_close(w.grad, W.grad[first:end][:, cols])


def test_init_is_uniform_in_plus_minus_0_1_for_every_stored_row():
    # docs/method.md: uniform(-0.1, 0.1) for every trainable row; 5,000 values pin the shape too
    torch.manual_seed(0)
    e = SparseEmbedding(1000, 20, blocks=20, density=0.25)
    for w in e.weights:
        assert w.abs().max() <= 0.1
    values = torch.cat([w.detach().flatten() for w in e.weights])
    assert values.min() < -0.099 and values.max() > 0.099
    assert abs(values.mean()) < 0.005
    assert values.std() == pytest.approx(0.2 / 12 ** 0.5, rel=0.05)   # uniform's std: width / sqrt(12)


def test_eval_mode_has_no_dropout():
    e = SparseEmbedding(50, 12, blocks=4, density=0.5, dropoute=0.5, dropouti=0.5).eval()
    ids = torch.randint(0, 50, (5, 4))
    torch.testing.assert_close(e(ids), F.embedding(ids, e.dense_weight()))


def test_dropoute_drops_whole_words_with_one_mask_for_all_blocks():
    torch.manual_seed(0)
    e = SparseEmbedding(40, 12, blocks=3, density=0.6, dropoute=0.5)
    ids = torch.arange(40).repeat(3).view(3, 40)     # every word, three times
    ref = F.embedding(ids, e.dense_weight())
    rates = []
    for _ in range(50):
        out = e(ids)
        dropped = (out == 0).all(-1)
        # a word is dropped in all its occurrences and in all its blocks, or kept x2
        assert (dropped == dropped[0]).all()
        torch.testing.assert_close(out[~dropped], 2 * ref[~dropped])
        rates.append(dropped[0].float().mean())
    assert 0.4 < torch.stack(rates).mean() < 0.6


def test_dropouti_is_one_mask_per_sequence_shared_over_time():
    torch.manual_seed(0)
    e = SparseEmbedding(30, 16, dropouti=0.25)
    ids = torch.full((6, 8), 7)
    out = e(ids)
    ref = F.embedding(ids, e.dense_weight())
    mask = out / ref
    assert (mask == mask[0]).all()                     # same at every time step
    assert not (mask[0] == mask[0, 0]).all()           # differs between sequences
    assert torch.isclose(mask, torch.tensor(1 / 0.75)).logical_or(mask == 0).all()
    assert 0.15 < (mask[0] == 0).float().mean() < 0.35


def test_bad_arguments():
    with pytest.raises(ValueError, match="dropoute"):
        SparseEmbedding(10, 4, dropoute=1.0)
    with pytest.raises(ValueError, match="below 1/blocks"):
        SparseEmbedding(10, 4, blocks=4, density=0.1)


def test_layers_import_nothing_else_of_the_package():
    code = ("import sys; from sparseseq_cli.layers import SparseLSTM, SparseEmbedding, LockedDropout; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('typer', 'rich', 'yaml', 'click') "
            "or (m.startswith('sparseseq_cli.') and not m.startswith('sparseseq_cli.layers'))]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_equals_cpu():
    torch.manual_seed(0)
    e = SparseEmbedding(5000, 5, blocks=3, density=0.5)   # non-monotonic starts
    ids = torch.randint(0, 5000, (9, 4))
    hidden = torch.randn(36, 5)
    expected = (e(ids), e.decode(hidden, torch.zeros(5000)))
    e.cuda()
    got = (e(ids.cuda()), e.decode(hidden.cuda(), torch.zeros(5000, device="cuda")))
    for a, b in zip(got, expected):
        torch.testing.assert_close(a.cpu(), b, atol=1e-5, rtol=1e-5)
