"""The AWD-LSTM training step (docs/training.md) and evaluation, checked against an
independent computation on a tiny model: the loss (NLL + AR + TAR), clipping, the learning
rate of each step, variable BPTT, weight decay, the hidden state carried between batches and between eval chunks."""
import copy
import random

import pytest
import torch
import torch.nn.functional as F

from sparseseq_cli.config import load_config
from sparseseq_cli.models.language_model import LanguageModel
from sparseseq_cli.training import lm_phases as lm
from sparseseq_cli.training import lm_loop, lm_start
from sparseseq_cli.training.distributed import World
from sparseseq_cli.progress import Progress

V, B, BPTT = 11, 4, 8


@pytest.fixture
def make_session(tmp_path, make_lm_config):
    """``make_session(**train)``: a train-lm session (SGD built as the run builds it) for the
    tiny model of make_lm_config."""
    def make_session(**train) -> lm_loop.Session:
        cfg = load_config(config_file=make_lm_config(tmp_path, tmp_path / "c.yaml", bptt=BPTT, **train))
        return lm_start.new_session(cfg, LanguageModel.from_config(cfg.model, V), Progress(quiet=True), World())
    return make_session


def _spec_bptt(seed: int, bptt: int, delta: int, rows: int) -> list[tuple[float, int]]:
    """The recipe's variable BPTT over ``rows`` rows, drawn from a generator seeded like the run's:
    (base, seq_len) per step, base bptt with probability 0.95, else bptt/2, and seq_len
    max(5, int(N(base, 5))), at most bptt + delta."""
    rng, i, steps = random.Random(seed), 0, []
    while i < rows - 2:
        base = bptt if rng.random() < 0.95 else bptt / 2
        steps.append((base, min(max(5, int(rng.gauss(base, 5))), bptt + delta)))
        i += steps[-1][1]
    return steps


def _spy(s: lm_loop.Session, monkeypatch) -> tuple[list, list]:
    """Record each forward call (rows, hidden in, hidden out) and, at each optimizer step,
    the learning rate and the (clipped) gradients it applies."""
    calls, steps = [], []
    model, step = s.model, s.optimizer.step

    def net(x, hidden):
        out = model(x, hidden)
        calls.append((x.size(0), hidden, out.hidden))
        return out

    def spied_step(*args, **kwargs):
        steps.append((s.optimizer.param_groups[0]["lr"], [p.grad.clone() for p in model.parameters()]))
        return step(*args, **kwargs)

    s.net = net
    monkeypatch.setattr(s.optimizer, "step", spied_step)
    return calls, steps


def test_a_training_step_is_the_awd_lstm_recipe(make_session, monkeypatch):
    # the recipe's alpha 2 and beta 1; a clip small enough to act on this tiny model, a decay
    # that shows, and epoch 3 of a decaying schedule so the epoch's lr is not the configured one
    s = make_session(lr=5.0, lr_gamma=0.5, alpha=2.0, beta=1.0, clip=0.1, wdecay=0.01,
                     max_seq_len_delta=2, max_batches=1)
    group = s.optimizer.param_groups[0]
    assert (group["weight_decay"], group["momentum"]) == (0.01, 0.0)
    before = copy.deepcopy(s.model)
    data = torch.randint(V, (40, B), generator=torch.Generator().manual_seed(0))
    calls, steps = _spy(s, monkeypatch)
    torch.manual_seed(1)
    stats = lm_loop.train_epoch(s, data, epoch=3)

    _, seq_len = _spec_bptt(s.cfg.train.seed, BPTT, 2, len(data))[0]
    epoch_lr = 5.0 * 0.5 ** 2
    assert [c[0] for c in calls] == [seq_len] and len(steps) == 1
    lr, grads = steps[0]
    assert lr == pytest.approx(epoch_lr * seq_len / BPTT) and s.lr() == pytest.approx(epoch_lr)

    # the same step by hand on the unchanged copy, with the same dropout masks
    torch.manual_seed(1)
    before.train()
    out = before(data[:seq_len], before.init_hidden(B))
    nll = F.nll_loss(out.log_probs, data[1:seq_len + 1].reshape(-1))
    ar = out.dropped_last.pow(2).mean()
    tar = (out.raw_last[1:] - out.raw_last[:-1]).pow(2).mean()
    (nll + 2.0 * ar + 1.0 * tar).backward()
    expected = [p.grad for p in before.parameters()]
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in expected]))
    assert norm > 0.1                  # so clipping acts
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want * 0.1 / (norm + 1e-6), rtol=1e-4, atol=1e-7)
    assert stats.loss == pytest.approx(nll.item(), rel=1e-5) and stats.tokens == seq_len * B


def test_variable_bptt_lengths_and_per_step_lr_and_carried_hidden_state(make_session, monkeypatch):
    # seed 10 draws three half-length bases; the cap (10) and the floor (5) both bite
    s = make_session(lr=5.0, max_seq_len_delta=2, seed=10)
    data = torch.randint(V, (150, B), generator=torch.Generator().manual_seed(0))
    calls, steps = _spy(s, monkeypatch)
    lm_loop.train_epoch(s, data, epoch=1)

    bases, lens = zip(*_spec_bptt(10, BPTT, 2, len(data)))
    assert bases.count(BPTT / 2) == 3 and {5, 10} <= set(lens) and len(set(lens)) > 2
    starts = [sum(lens[:k]) for k in range(len(lens))]
    assert [c[0] for c in calls] == [min(n, len(data) - 1 - i) for n, i in zip(lens, starts)]
    assert [lr for lr, _ in steps] == pytest.approx([5.0 * n / BPTT for n in lens])
    # each batch starts from the state the previous one ended in, cut from its graph
    for (_, _, previous), (_, given, _) in zip(calls, calls[1:]):
        for (h0, c0), (h1, c1) in zip(previous, given):
            assert torch.equal(h0, h1) and torch.equal(c0, c1)
            assert h1.grad_fn is None and c1.grad_fn is None


def test_evaluation_in_bptt_chunks_equals_one_pass_over_the_whole_sequence():
    torch.manual_seed(0)
    model = LanguageModel(V, emsize=8, nhid=16, nlayers=2, emblocks=2, emdensity=0.75,
                          sparse_mode="sparse_hidden", sparse_fract=0.5).double().eval()
    data = torch.randint(V, (38, 3), generator=torch.Generator().manual_seed(1))
    loss, count = lm_loop.evaluate(model, data, bptt=5)     # 7 chunks of 5, then 2
    with torch.no_grad():
        whole = model(data[:-1], model.init_hidden(3))
    assert count == 37 * 3
    assert loss == pytest.approx(F.nll_loss(whole.log_probs, data[1:].reshape(-1)).item(), rel=1e-12)
