"""Layer geometry against the worked examples of docs/method.md and the original code's numbers.

tests/data/geometry_original.json holds ~500 configurations (feasible and infeasible) with
the windows, block starts and parameter counts that the original research code computed
(generated once by running its geometry functions on randomly drawn settings).
"""
import json
from pathlib import Path

import pytest

from sparseseq_cli.layers.geometry import embedding_geometry, lstm_geometry, lstm_params, segments

GOLDEN = json.loads((Path(__file__).parent / "data" / "geometry_original.json").read_text())


def test_lstm_worked_example_middle_layer():
    g = lstm_geometry(1725, 1725, reduce_in=0.66666, reduce_out=0.66666)
    assert g.k == 3
    assert g.density == pytest.approx(0.555151, abs=1e-6)
    assert g.input_segments == ((0, 957), (383, 1341), (767, 1725))
    assert g.hidden_segments == ((0, 575), (575, 1150), (1150, 1725))
    assert g.params == 10_589_200 == lstm_params(1150, 1150) == g.target_params


def test_lstm_worked_example_first_layer_clips_density():
    g = lstm_geometry(400, 1725, reduce_in=1, reduce_out=0.66666)
    assert (g.k, g.density) == (3, 1.0)
    assert g.input_segments == ((0, 400),) * 3
    assert g.params == 6_741_300
    assert g.target_params == 7_139_200 == lstm_params(400, 1150)


def test_lstm_worked_example_last_layer():
    g = lstm_geometry(1725, 400, reduce_in=0.66666, reduce_out=1)
    assert g.k == 2
    assert g.density == pytest.approx(0.782602, abs=1e-6)
    assert g.input_segments == ((0, 1349), (375, 1725))
    assert g.params == 2_482_400


def test_dense_when_nothing_given_or_no_reduction():
    for g in (lstm_geometry(7, 5), lstm_geometry(7, 5, reduce_in=1, reduce_out=1)):
        assert (g.k, g.density, g.input_segments, g.hidden_segments) == (1, 1.0, ((0, 7),), ((0, 5),))
        assert g.params == lstm_params(7, 5) == g.dense_params


@pytest.mark.parametrize("case", GOLDEN["lstm"], ids=lambda c: str(sorted(c.items()))[:60])
def test_lstm_geometry_equals_original(case):
    kw = case["given"]
    if "error" in case:
        with pytest.raises(ValueError):
            lstm_geometry(case["input_size"], case["hidden_size"], **kw)
        return
    g = lstm_geometry(case["input_size"], case["hidden_size"], **kw)
    assert g.k == case["k"]
    assert g.density == case["density"]
    assert [list(s) for s in g.input_segments] == case["input_segments"]
    assert [list(s) for s in g.hidden_segments] == case["hidden_segments"]
    assert g.params == case["params"]


@pytest.mark.parametrize("case", GOLDEN["embedding"], ids=lambda c: str(sorted(c.items()))[:60])
def test_embedding_geometry_equals_original(case):
    args = (case["vocab_size"], case["dim"])
    kw = dict(blocks=case["blocks"], density=case["density"])
    if "error" in case:
        with pytest.raises(ValueError):
            embedding_geometry(*args, **kw)
        return
    g = embedding_geometry(*args, **kw)
    assert list(g.starts) == case["starts"]
    assert list(g.widths) == case["widths"]
    assert g.density == case["obtained_density"]
    assert g.params == case["params"]


def test_embedding_worked_examples():
    g = embedding_geometry(10000, 400, blocks=10, density=0.5)
    assert g.starts == (0, 1684, 3084, 4249, 5217, 6022, 6691, 7248, 7711, 8094)
    assert g.widths == (40,) * 10
    assert g.params == 2_000_000 and g.density == 0.5
    assert embedding_geometry(10000, 20, blocks=20, density=0.25).params == 50_000
    # the original's rounding: non-monotonic starts, and empty middle blocks at D = 1/K
    assert embedding_geometry(5000, 5, blocks=3, density=0.5).starts == (0, 3170, 3110)
    assert embedding_geometry(100, 30, blocks=3, density=1 / 3).starts == (0, 100, 100)


def test_blocks_clipped_to_dim():
    g = embedding_geometry(50, 3, blocks=10, density=0.5)
    assert g.blocks == 3


@pytest.mark.parametrize("kw, words", [
    (dict(reduce_in=0.01, reduce_out=0.01), "too small"),
    (dict(blocks=3, density=0.2), "blocks=3, density=0.2"),
    (dict(blocks=1, density=0.5), "k = 1 needs density = 1"),
    (dict(blocks=2, density=0.5, reduce_in=0.5), "not both"),
    (dict(reduce_in=1.5, reduce_out=0.5), "reduce_in=1.5"),
])
def test_infeasible_lstm_settings_name_the_values(kw, words):
    with pytest.raises(ValueError, match=words):
        lstm_geometry(100, 100, **kw)


@pytest.mark.parametrize("kw, words", [
    (dict(blocks=4, density=0.2), "below 1/blocks"),
    (dict(blocks=1, density=0.5), "needs blocks > 1"),
    (dict(blocks=4, density=0), "density=0"),
    (dict(blocks=0, density=1), "blocks=0"),
])
def test_infeasible_embedding_settings_name_the_values(kw, words):
    with pytest.raises(ValueError, match=words):
        embedding_geometry(100, 20, **kw)


def test_segments_cover_everything_once_for_disjoint_slices():
    for total in (5, 17, 1150, 1725):
        for k in (1, 2, 3, 5):
            segs = segments(total, k, 1 / k)
            assert segs[0][0] == 0 and segs[-1][1] == total
            assert all(a[1] == b[0] for a, b in zip(segs, segs[1:]))
