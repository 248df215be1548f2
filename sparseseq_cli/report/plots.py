"""Pictures for `sparseseq report`: Figure 3 and friends (`--plot`), learning curves (`--curves`).

matplotlib is an optional extra; importing this module without it is a one-line error.
Figures are built with ``matplotlib.figure.Figure`` directly, never pyplot, so nothing
depends on a display or global backend state.
"""
from __future__ import annotations

from pathlib import Path

from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.report.groups import CURVE_METRICS, PHASES, Group, Report, Run
from sparseseq_cli.report.tables import visible
from sparseseq_cli.run_folder import TRAIN
from sparseseq_cli.tasks import Phase

try:
    from matplotlib.figure import Figure
    from matplotlib.ticker import LogFormatter, MaxNLocator
except ImportError:
    raise SparseseqError("plots need matplotlib: pip install 'sparseseq[plot]' "
                         "(or pip install matplotlib)") from None

_PANEL = (6.4, 4.8)            # inches per panel
_LOG_RATIO = 10                 # x spans this factor or more: log scale reads better
_FAMILY_ORDER = ("dense", "sparse up", "sparse down")


def save(figure: Figure, path: Path) -> None:
    try:
        figure.savefig(path, dpi=120)
    except OSError as err:
        raise SparseseqError(f"cannot write {path}: {err.strerror or err}") from None


def _text(label: str) -> str:
    """A name from a run file as plain text on a figure: matplotlib would read "$...$" as
    math (and fail to draw on a bad formula) and draw control characters as boxes."""
    return visible(label).replace("$", r"\$")


def _log_y(ax) -> None:
    """Log scale labelled 60, 100, 200 rather than 6x10^1, 10^2, 2x10^2."""
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(LogFormatter(labelOnlyBase=False))
    ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))


def _panels(count: int, title: str) -> tuple[Figure, list]:
    figure = Figure(figsize=(_PANEL[0] * count, _PANEL[1]), layout="constrained")
    figure.suptitle(title)
    return figure, list(figure.subplots(1, count, squeeze=False)[0])


# ---- --plot ------------------------------------------------------------------------------

def summary_figure(report: Report) -> Figure:
    """One panel per phase: Figure 3 for taggers, perplexity per group for the rest."""
    shown = [phase for phase in PHASES if any(g.phase is phase for g in report.groups)]
    if not shown:
        raise SparseseqError("--plot: none of these runs has finished, so there is nothing to plot")
    figure, axes = _panels(len(shown), "mean ± sample standard deviation over seeds")
    for ax, phase in zip(axes, shown):
        _DRAWERS[phase](ax, [g for g in report.groups if g.phase is phase])
    return figure


def _mean_std(group: Group, name: str, scale: float = 1.0) -> tuple[float | None, float]:
    stat = group.stats.get(name)
    if stat is None or stat.mean is None:
        return None, 0.0
    return stat.mean * scale, (stat.std or 0.0) * scale


def family(run: Run) -> str:
    """Figure 3's lines: dense embeddings, or sparse ones by vocabulary order."""
    model = run.config.get("model", {})
    if model.get("emblocks") == 1 or model.get("emdensity") == 1:
        return "dense"
    order = run.config.get("data", {}).get("vocab_order")
    return f"sparse {order}" if order else "sparse"


def _draw_figure3(ax, groups: list[Group]) -> None:
    # The paper plots test accuracy; without a test split the dev accuracy stands in, and
    # the axis says so.
    metric = "test_acc" if all(g.stats.get("test_acc") and g.stats["test_acc"].n for g in groups) else "dev_acc"
    lines: dict[str, list[tuple[float, float, float]]] = {}
    for group in groups:
        families = {family(run) for run in group.runs}
        if len(families) > 1:
            raise SparseseqError(visible(f"--plot: group {group.label!r} mixes {', '.join(sorted(families))} "
                                         f"embeddings; add --group-by model.emblocks or data.vocab_order"))
        x, _ = _mean_std(group, "params_embedding")
        y, err = _mean_std(group, metric, 100)
        if x is not None and y is not None:
            lines.setdefault(families.pop(), []).append((x, y, err))
    ordered = sorted(lines, key=lambda f: (_FAMILY_ORDER.index(f) if f in _FAMILY_ORDER else len(_FAMILY_ORDER), f))
    for name in ordered:
        xs, ys, errs = zip(*sorted(lines[name]))
        ax.errorbar(xs, ys, yerr=errs, marker="o", capsize=4, label=_text(name))
    xs = [x for points in lines.values() for x, _, _ in points]
    if xs and min(xs) > 0 and max(xs) / min(xs) >= _LOG_RATIO:
        ax.set_xscale("log")
    ax.set_xlabel("trainable embedding parameters")
    ax.set_ylabel("test accuracy (%)" if metric == "test_acc" else "dev accuracy (%) (no test split)")
    ax.set_title("POS tagging (Figure 3)")
    ax.grid(alpha=0.3)
    ax.legend(title="embedding")


def _draw_per_group(ax, groups: list[Group], series: list[tuple[str, str]], ylabel: str) -> None:
    """Points with error bars, one x position per group, one marker per (stat, legend)."""
    shown = [(name, label) for name, label in series if any(_mean_std(g, name)[0] is not None for g in groups)]
    width = 0.15
    for i, (name, label) in enumerate(shown):
        offset = (i - (len(shown) - 1) / 2) * width
        points = [(pos + offset, *_mean_std(g, name)) for pos, g in enumerate(groups)]
        points = [p for p in points if p[1] is not None]
        xs, ys, errs = zip(*points)
        ax.errorbar(xs, ys, yerr=errs, fmt="os"[i % 2], capsize=4, label=label)
    ax.set_xticks(range(len(groups)), [_text(g.label) for g in groups], rotation=15, ha="right")
    ax.set_xlim(-0.5, len(groups) - 0.5)
    ax.set_xlabel("setting")
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    ax.legend()


def _draw_lm(ax, groups: list[Group]) -> None:
    _draw_per_group(ax, groups, [("valid_ppl", "before finetuning"), ("finetune_valid_ppl", "after finetuning")],
                    "validation perplexity")
    ax.set_title("Language models (Table 1)")


def _draw_overfit(ax, groups: list[Group]) -> None:
    _draw_per_group(ax, groups, [("train_ppl", "train perplexity, last epoch")], "train perplexity")
    # Memorized runs sit near 1, the others far above: only a log axis shows both.
    _log_y(ax)
    ax.set_title("Learning to recite (Table 3)")


_DRAWERS = {Phase.TRAIN_LM: _draw_lm, Phase.OVERFIT: _draw_overfit, Phase.TRAIN_POS: _draw_figure3}


# ---- --curves ----------------------------------------------------------------------------

# The per-epoch metric each kind of run is judged by, its axis label, and whether the axis is log.
_CURVES = tuple(zip(CURVE_METRICS, ("validation perplexity", "dev accuracy (%)",
                                     "train perplexity (learning to recite)"), (True, False, True)))


def curves_figure(runs: list[Run]) -> Figure:
    """Validation metric per epoch, one line per run; finetuning continues dashed."""
    panels: dict[str, list[tuple[Run, list[dict], list[dict]]]] = {}
    for run in runs:
        metric = next((name for name, _, _ in _CURVES if any(name in r for r in run.metrics)), None)
        if metric:
            panels.setdefault(metric, []).append((run, run.metrics, run.finetune_metrics or []))
    if not panels:
        raise SparseseqError(f"--curves: none of these runs has logged an epoch yet ({TRAIN.metrics})")
    shown = [c for c in _CURVES if c[0] in panels]
    figure, axes = _panels(len(shown), "learning curves")
    for ax, (metric, ylabel, log) in zip(axes, shown):
        scale = 100 if metric == "dev_acc" else 1
        for run, records, finetune in panels[metric]:
            xs = [r["epoch"] for r in records if r.get(metric) is not None]
            line, = ax.plot(xs, [r[metric] * scale for r in records if r.get(metric) is not None],
                            label=_text(run.path.name))
            if finetune and xs:
                # Finetuning counts its epochs from 1 again; draw them after training's.
                ax.plot([xs[-1] + r["epoch"] for r in finetune if r.get(metric) is not None],
                        [r[metric] * scale for r in finetune if r.get(metric) is not None],
                        linestyle="--", color=line.get_color())
        if log:
            _log_y(ax)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch (finetuning dashed)" if any(f for _, _, f in panels[metric]) else "epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", title="run")
    return figure
