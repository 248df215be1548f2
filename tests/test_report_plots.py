"""`sparseseq report --plot/--curves`: what the figures hold, and the missing-matplotlib error."""
import sys

import pytest
from typer.testing import CliRunner

import sparseseq_cli.report
from sparseseq_cli.cli import app
from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.report import ReportOptions, build_report, make_report

pytest.importorskip("matplotlib")
from sparseseq_cli.report import plots  # noqa: E402  (needs matplotlib)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def figure3_sweep(tmp_path, dense_test, sparse_test, pos_params, write_run, pos_config, pos_metrics):
    """Dense at two embedding sizes, sparse up and down at the matching parameter counts."""
    runs = []
    settings = [("dense", dict(emsize=5), 500, dense_test), ("dense", dict(emsize=10), 1000, sparse_test),
                ("up", dict(emsize=20, emblocks=20, emdensity=0.25), 500, sparse_test),
                ("up", dict(emsize=20, emblocks=20, emdensity=0.5), 1000, [0.97, 0.975, 0.98]),
                ("down", dict(emsize=20, emblocks=20, emdensity=0.25, vocab_order="down"), 500, [0.8, 0.82, 0.84])]
    for i, (_, model, emb, tests) in enumerate(settings):
        for seed, test in zip((1, 2, 3), tests):
            log = [{"epoch": e, "elapsed_s": e, "train_loss": 1.0 / e, "dev_acc": test - 0.1 / e,
                    "dev_acc_no_none": test - 0.1 / e} for e in (1, 2, 3)]
            runs.append(write_run(tmp_path, f"s{i}-seed{seed}", "train-pos", pos_config(seed=seed, **model),
                                  pos_metrics(test + 0.01, test), dict(pos_params, embedding=emb), log=log))
    return runs


def test_figure3_has_a_line_per_family_with_error_bars(figure3_sweep, tmp_path, dense_test, by_hand):
    figure = plots.summary_figure(build_report(figure3_sweep))
    (ax,) = figure.axes
    assert ax.get_xlabel() == "trainable embedding parameters"
    assert ax.get_ylabel() == "test accuracy (%)"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["dense", "sparse up", "sparse down"]
    dense, up, down = ax.containers   # one ErrorbarContainer per family
    assert list(dense.lines[0].get_xdata()) == [500, 1000]
    mean, std = by_hand(dense_test)
    assert dense.lines[0].get_ydata()[0] == pytest.approx(100 * mean)
    # The error bar at x=500 spans mean ± std.
    segment = dense.lines[2][0].get_segments()[0]
    assert [y for _, y in segment] == pytest.approx([100 * (mean - std), 100 * (mean + std)])
    assert list(down.lines[0].get_xdata()) == [500]
    output = make_report(ReportOptions(figure3_sweep, as_json=True, plot=tmp_path / "fig3.png"))
    assert output.written == [tmp_path / "fig3.png"] and output.text.startswith("{")
    assert (tmp_path / "fig3.png").read_bytes()[:8] == PNG_MAGIC


def test_figure3_falls_back_to_dev_accuracy_without_test_split(
        tmp_path, pos_params, write_run, pos_config, pos_metrics):
    runs = [write_run(tmp_path, f"r{seed}", "train-pos", pos_config(seed=seed), pos_metrics(0.9 + seed / 100),
                      pos_params) for seed in (1, 2)]
    (ax,) = plots.summary_figure(build_report(runs)).axes
    assert ax.get_ylabel() == "dev accuracy (%) (no test split)"
    assert ax.containers[0].lines[0].get_ydata()[0] == pytest.approx(91.5)


def test_lm_plot_shows_validation_perplexity_per_group(tmp_path, lm_params, write_run, lm_config, lm_metrics):
    runs = [write_run(tmp_path, f"{preset}-{seed}", "train-lm", lm_config(preset, seed), lm_metrics(v, v - 2),
                      lm_params) for preset, seed, v in (("awd-lstm", 1, 61.0), ("awd-lstm", 2, 63.0),
                                                          ("awd-sparse", 1, 60.0))]
    (ax,) = plots.summary_figure(build_report(runs)).axes
    assert ax.get_ylabel() == "validation perplexity"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["awd-lstm", "awd-sparse"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["before finetuning"]
    assert list(ax.containers[0].lines[0].get_ydata()) == pytest.approx([62.0, 60.0])


def test_curves_draw_one_line_per_run(figure3_sweep, tmp_path):
    report = build_report(figure3_sweep[:2])
    (ax,) = plots.curves_figure(report.runs).axes
    assert ax.get_ylabel() == "dev accuracy (%)" and ax.get_xlabel() == "epoch"
    assert [line.get_label() for line in ax.get_lines()] == ["s0-seed1", "s0-seed2"]
    assert list(ax.get_lines()[0].get_xdata()) == [1, 2, 3]


def test_curves_continue_with_finetuning_dashed(tmp_path, lm_params, write_run, lm_config, lm_metrics):
    log = [{"epoch": e, "elapsed_s": e, "valid_ppl": 100.0 / e} for e in (1, 2)]
    run = write_run(tmp_path, "lm", "train-lm", lm_config("lm-tiny", 1), lm_metrics(50.0, 48.0), lm_params,
                    log=log, finetune=(lm_metrics(49.0, 47.0), [{"epoch": 1, "elapsed_s": 1, "valid_ppl": 49.0}], True))
    (ax,) = plots.curves_figure(build_report([run]).runs).axes
    train, finetune = ax.get_lines()
    assert list(finetune.get_xdata()) == [3] and finetune.get_linestyle() == "--"
    assert ax.get_yscale() == "log"


def test_nothing_to_plot_is_an_error(tmp_path, pos_params, write_run, pos_config):
    run = write_run(tmp_path, "r", "train-pos", pos_config(), {}, pos_params, finished=False, log=[])
    with pytest.raises(SparseseqError, match="nothing to plot"):
        plots.summary_figure(build_report([run]))
    with pytest.raises(SparseseqError, match="has logged an epoch yet"):
        plots.curves_figure(build_report([run]).runs)


def test_without_matplotlib_plots_are_a_one_line_error(figure3_sweep, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)   # import matplotlib now fails
    monkeypatch.delitem(sys.modules, "matplotlib.figure", raising=False)
    monkeypatch.delitem(sys.modules, "sparseseq_cli.report.plots")
    monkeypatch.delattr(sparseseq_cli.report, "plots")    # so the command imports it afresh
    result = CliRunner().invoke(app, ["report", str(figure3_sweep[0]), "--plot", str(tmp_path / "f.png")])
    assert result.exit_code == 2
    assert result.stderr == "error: plots need matplotlib: pip install 'sparseseq[plot]' (or pip install matplotlib)\n"
    assert not (tmp_path / "f.png").exists()
