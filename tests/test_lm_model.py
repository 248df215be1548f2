"""The language model: layer shapes per sparse mode, the presets' parameter counts (docs/training.md), outputs."""
import dataclasses

import pytest
import torch

from sparseseq_cli.config import load_config
from sparseseq_cli.models.language_model import LanguageModel
from sparseseq_cli.models.sparse_modes import layer_reductions


def test_preset_parameter_counts_match_spec_table(table_3_1_preset, table_3_1):
    preset = table_3_1_preset
    model = LanguageModel(10_000, **dataclasses.asdict(load_config(preset).model))
    counts = model.param_counts()
    assert (counts["recurrent"], counts["total"]) == table_3_1[preset]
    assert counts["total"] == sum(p.numel() for p in model.parameters())
    assert counts["decoder_bias"] == 10_000 and counts["mos"] == 0


def test_awd_sparse_layers_are_the_papers():
    model = LanguageModel(10_000, **dataclasses.asdict(load_config("awd-sparse").model))
    geoms = [rnn.geometry for rnn in model.rnns]
    assert [(g.input_size, g.hidden_size, g.k) for g in geoms] == [(400, 1725, 3), (1725, 1725, 3), (1725, 400, 2)]
    assert [g.params for g in geoms] == [6_741_300, 10_589_200, 2_482_400]
    assert geoms[1].input_segments == ((0, 957), (383, 1341), (767, 1725))
    assert geoms[1].hidden_segments == ((0, 575), (575, 1150), (1150, 1725))


@pytest.mark.parametrize("mode, expected", [
    ("direct", [(1, 1)] * 4),
    ("sparse_hidden", [(1, .5), (.5, .5), (.5, .5), (.5, 1)]),
    ("sparse_emb", [(.5, 1), (1, 1), (1, 1), (1, .5)]),
    ("sparse_all", [(.5, .5)] * 4),
])
def test_each_sparse_mode_reduces_the_right_layers(mode, expected):
    assert layer_reductions(mode, 4, 0.5) == expected
    model = LanguageModel(50, emsize=12, nhid=24, nlayers=4, sparse_mode=mode, sparse_fract=0.5,
                          dropout=0, dropouth=0, dropouti=0, dropoute=0, wdrop=0)
    sizes = [(rnn.input_size, rnn.hidden_size) for rnn in model.rnns]
    assert sizes == [(12, 24), (24, 24), (24, 24), (24, 12)]
    for rnn, (ri, ro) in zip(model.rnns, expected):
        g = rnn.geometry
        assert (g.k == 1) == (ri == ro == 1)          # only (1, 1) layers are dense
        assert g.params == sum(p.numel() for p in rnn.parameters())
        assert g.params <= g.dense_params
    hidden = model.init_hidden(3)
    out = model(torch.randint(0, 50, (7, 3)), hidden)
    assert out.log_probs.shape == (21, 50) and out.raw_last.shape == (7, 3, 12)
    assert [h.shape for h, _ in out.hidden] == [(1, 3, 24)] * 3 + [(1, 3, 12)]
    assert torch.allclose(out.log_probs.exp().sum(-1), torch.ones(21), atol=1e-5)


def test_single_layer_sparse_hidden_stays_dense_and_others_need_two_layers():
    assert layer_reductions("sparse_hidden", 1, 0.5) == [(1, 1)]
    with pytest.raises(ValueError, match="needs nlayers >= 2"):
        layer_reductions("sparse_all", 1, 0.5)


def test_tied_decoder_uses_the_embedding_matrix():
    torch.manual_seed(0)
    model = LanguageModel(30, emsize=8, nhid=16, nlayers=2, emblocks=4, emdensity=0.5,
                          dropout=0, dropouth=0, dropouti=0, dropoute=0, wdrop=0).eval()
    with torch.no_grad():
        model.decoder_bias.normal_()
        out = model(torch.randint(0, 30, (5, 2)), model.init_hidden(2))
        logits = out.raw_last.reshape(-1, 8) @ model.encoder.dense_weight().t() + model.decoder_bias
    assert torch.allclose(out.log_probs, torch.log_softmax(logits, -1), atol=1e-5)
    assert model.param_counts()["embedding"] < model.param_counts()["embedding_dense"]


def test_mixture_of_softmaxes_is_a_normalized_mixture():
    torch.manual_seed(0)
    model = LanguageModel(40, emsize=6, nhid=10, nlayers=2, n_experts=3, dropout=0, dropouth=0,
                          dropouti=0, dropoute=0, wdrop=0).eval()
    with torch.no_grad():
        out = model(torch.randint(0, 40, (4, 2)), model.init_hidden(2))
        latent = model.latent(out.dropped_last).reshape(-1, 6)
        probs = torch.softmax(model.encoder.decode(latent, model.decoder_bias), -1).view(8, 3, 40)
        prior = torch.softmax(model.prior(out.dropped_last).reshape(8, 3), -1)
        expected = (probs * prior.unsqueeze(-1)).sum(1)
    assert torch.allclose(out.log_probs.exp(), expected, atol=1e-6)
    assert model.param_counts()["mos"] == 6 * 18 + 18 + 6 * 3   # latent 6 -> 3x6, prior 6 -> 3


def test_dropouts_are_off_in_eval_mode():
    model = LanguageModel(20, emsize=8, nhid=8, nlayers=2, dropout=0.5, dropouth=0.5, dropouti=0.5,
                          dropoute=0.5, wdrop=0.5).eval()
    ids = torch.randint(0, 20, (5, 2))
    first = model(ids, model.init_hidden(2)).log_probs
    assert torch.equal(first, model(ids, model.init_hidden(2)).log_probs)
    model.train()
    assert not torch.equal(first, model(ids, model.init_hidden(2)).log_probs)
