"""The config defaults and the paper's presets hold the paper's recipes (docs/training.md).

The numbers are copied from the recipes by hand on purpose: a test that read them from the
code could not notice a changed default.
"""
import pytest

from sparseseq_cli.config import LMConfig, POSConfig, config_to_dict, load_config

# The AWD-LSTM recipe: "defaults: emsize 400, nhid 1150, 3 layers, batch 20, bptt 70, dropout
# 0.4, dropouth 0.25, dropouti 0.4, dropoute 0.1, wdrop 0.5, alpha 2, beta 1, seed 141", and the
# recipe around them: eval batch 10, test 1, seq_len capped at bptt + 40, clip 0.25, SGD lr 30,
# weight decay 1.2e-6, averaging stops after 20 worse epochs, max 500 epochs, finetuning runs past
# epoch 100, plain log-softmax (n_experts 1), last layer emsize wide, dense, vocabulary ordered up.
AWD_LSTM = {
    "data": {"vocab_order": "up"},
    "model": {"emsize": 400, "nhid": 1150, "nlayers": 3, "dropout": 0.4, "dropouth": 0.25,
              "dropouti": 0.4, "dropoute": 0.1, "wdrop": 0.5, "n_experts": 1, "nhidlast": None,
              "emblocks": 1, "emdensity": 1.0, "sparse_mode": "direct"},
    "train": {"batch_size": 20, "eval_batch_size": 10, "test_batch_size": 1, "bptt": 70,
              "max_seq_len_delta": 40, "alpha": 2.0, "beta": 1.0, "seed": 141, "clip": 0.25,
              "lr": 30.0, "wdecay": 1.2e-6, "momentum": 0.0, "lr_gamma": 1.0, "epochs": 500,
              "asgd_patience": 20, "finetune_min_epochs": 100},
}

# The `overfit` recipe: all dropout, wdrop, alpha, beta and weight decay 0; SGD momentum 0.9,
# ExponentialLR(0.97), lr 5, 150 epochs, seed 0; stop when accuracy > 1 - 1e-4.
RECITE = {
    "model": {"dropout": 0.0, "dropouth": 0.0, "dropouti": 0.0, "dropoute": 0.0, "wdrop": 0.0},
    "train": {"alpha": 0.0, "beta": 0.0, "wdecay": 0.0, "momentum": 0.9, "lr_gamma": 0.97,
              "lr": 5.0, "epochs": 150, "seed": 0, "memorize_eps": 1e-4},
}

# The model column of the paper's preset table
TABLE_3_1_MODELS = {
    "awd-lstm": {"emsize": 400, "nhid": 1150, "sparse_mode": "direct"},
    "awd-sparse": {"emsize": 400, "nhid": 1725, "sparse_mode": "sparse_hidden", "sparse_fract": 0.66666},
    "recite-dense": {"emsize": 400, "nhid": 1150, "sparse_mode": "direct"},
    "recite-dense-reduced": {"emsize": 200, "nhid": 575, "sparse_mode": "direct"},
    "recite-sparse1": {"emsize": 200, "nhid": 1150, "sparse_mode": "sparse_hidden", "sparse_fract": 0.5},
    "recite-sparse2": {"emsize": 400, "nhid": 1150, "emblocks": 10, "emdensity": 0.5,
                       "sparse_mode": "sparse_all", "sparse_fract": 0.5},
}

# The tagger's recipe: Adam lr 0.001 (momentum only for SGD), batch 20, L2 0, seed 1982, vocabulary ordered up
POS_RECIPE = {
    "data": {"vocab_order": "up"},
    "train": {"optimizer": "adam", "lr": 0.001, "momentum": 0.0, "batch_size": 20, "wdecay": 0.0,
              "seed": 1982},
}
# Figure 3, the original commands: 50 epochs, dropouti 0.2, wdrop 0.2, nhid 10; dense --emsize 5,
# sparse --emsize 20 --emb_density 0.25 --emb_blocks 20, the ablation orders the vocabulary down.
# Weight drop on the forward direction only, as the original did.
FIGURE_3 = {"model": {"nhid": 10, "dropouti": 0.2, "wdrop": 0.2, "wdrop_reverse": False},
            "train": {"epochs": 50}}
POS_PRESETS = {
    "pos-dense": {"model": {"emsize": 5, "emblocks": 1, "emdensity": 1.0}},
    "pos-sparse": {"model": {"emsize": 20, "emblocks": 20, "emdensity": 0.25}},
    "pos-sparse-down": {"data": {"vocab_order": "down"},
                        "model": {"emsize": 20, "emblocks": 20, "emdensity": 0.25}},
}


def merged(*layers):
    """Section-wise union of expected values, later layers winning."""
    out = {}
    for layer in layers:
        for section, values in layer.items():
            out.setdefault(section, {}).update(values)
    return out


def assert_holds(cfg, expected):
    resolved = config_to_dict(cfg)
    for section, values in expected.items():
        assert {key: resolved[section][key] for key in values} == values, section


def test_lm_defaults_are_the_awd_lstm_recipe():
    assert_holds(LMConfig(), AWD_LSTM)


def test_awd_lstm_preset_is_the_recipe_on_ptb():
    assert_holds(load_config("awd-lstm"), merged(AWD_LSTM, {"data": {"vocab_size": 10_000}}))


@pytest.mark.parametrize("name", sorted(TABLE_3_1_MODELS))
def test_table_3_1_presets(name):
    recipe = RECITE if name.startswith("recite") else AWD_LSTM
    assert_holds(load_config(name), merged(recipe, {"model": TABLE_3_1_MODELS[name]}))


def test_pos_defaults_are_the_taggers_recipe():
    assert_holds(POSConfig(), POS_RECIPE)


@pytest.mark.parametrize("name", sorted(POS_PRESETS))
def test_figure_3_presets(name):
    assert_holds(load_config(name, task="pos"), merged(POS_RECIPE, FIGURE_3, POS_PRESETS[name]))
