"""`sparseseq report` on damaged and hostile run folders: each bad folder is skipped with one
warning line naming it and the problem, the others are reported, and the exit status is 1;
text from run files never reaches the terminal as markup or control characters; diverged
runs are listed apart.
"""
import csv
import io
import json
import os

import pytest
from typer.testing import CliRunner

from sparseseq_cli.cli import app
from sparseseq_cli.report import build_report, render_csv, render_json, render_markdown

ESC = "\x1b"
# 490 bytes of nested aliases that expand to 10^9 items: YAML's "billion laughs"
ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(8))


@pytest.fixture
def good(tmp_path, write_run, pos_config, pos_metrics, pos_params):
    """Two finished tagger runs of one setting."""
    return [write_run(tmp_path, f"good-seed{seed}", "train-pos", pos_config(seed=seed),
                      pos_metrics(dev, dev - 0.01), pos_params) for seed, dev in ((1, 0.9), (2, 0.92))]


@pytest.fixture
def damaged(tmp_path, write_run, pos_config, pos_metrics, pos_params):
    """``damaged(name, change=None, finished=True)``: a run folder; ``change(results,
    folder)`` edits its results.json (a dict, changed in place) or its files."""
    def make(name, change=None, finished=True):
        run = write_run(tmp_path, name, "train-pos", pos_config(seed=7), pos_metrics(0.5, 0.5), pos_params,
                        finished=finished)
        if change is not None:
            results = json.loads((run / "results.json").read_text()) if finished else None
            change(results, run)
            if finished:
                (run / "results.json").write_text(json.dumps(results))
        return run
    return make


def report(*folders, fmt=()):
    result = CliRunner().invoke(app, ["report", *map(str, folders), *fmt])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def warnings(result):
    return [line for line in result.stderr.splitlines() if line.startswith("warning: ")]


def _set(key, value):
    def change(results, folder):
        results[key] = value
    return change


@pytest.mark.parametrize("key, value, problem", [
    ("params", [2400, 500], "results.json: params is a list, not a mapping"),
    ("params", {"total": "2400"}, "results.json: params.total is a str, not an integer count"),
    ("epochs", "3", "results.json: epochs is a str, not a number"),
    ("metrics", "dev_acc=0.5", "results.json: metrics is a str, not a mapping"),
    ("metrics", {"dev_acc": 10 ** 400}, "results.json: metrics.dev_acc is an integer too large"),
    ("seed", "seven", "results.json: seed is a str, not an integer or null"),
    ("config", ["preset"], "results.json: the config is a list, not a mapping"),
    ("config", {"preset": "p", "train": [1, 2]}, "results.json: the config's train section is a list, not a mapping"),
    ("status", "exploded", "results.json has unknown status 'exploded'"),
])
def test_results_with_a_wrong_type_is_skipped_with_one_warning(good, damaged, key, value, problem):
    bad = damaged("bad", _set(key, value))
    result = report(good[0], bad, good[1], fmt=["--json"])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"warning: skipped {bad}: {problem}")
    data = json.loads(result.stdout)
    assert [g["n_runs"] for g in data["groups"]] == [2]   # the good runs, reported
    assert [s["run"] for s in data["skipped"]] == [str(bad)]


def test_good_folders_only_exit_0_without_warnings(good):
    result = report(*good)
    assert result.exit_code == 0 and result.stderr == ""


def test_invalid_utf8_in_metrics_is_skipped(good, damaged):
    def change(results, folder):
        (folder / "metrics.jsonl").write_bytes(b'{"epoch": 1, "note": "\xff\xfe"}\n')
    bad = damaged("bad", change)
    result = report(bad, *good)
    assert result.exit_code == 1
    [line] = warnings(result)
    assert line.startswith(f"warning: skipped {bad}: metrics.jsonl is not UTF-8 text (line 1")


@pytest.mark.parametrize("record, problem", [
    ({"epoch": "1"}, "metrics.jsonl record 1: epoch is a str, not an integer"),
    ({"epoch": 1, "dev_acc": "high"}, "metrics.jsonl record 1: dev_acc is a str, not a number"),
])
def test_metrics_records_of_the_wrong_type_are_skipped(good, damaged, record, problem):
    bad = damaged("bad", lambda results, folder: (folder / "metrics.jsonl").write_text(json.dumps(record) + "\n"))
    result = report(*good, bad)
    assert result.exit_code == 1 and warnings(result) == [f"warning: skipped {bad}: {problem}"]


def test_unfinished_run_whose_config_train_is_a_list_is_skipped(good, damaged):
    def change(results, folder):
        (folder / "config.yaml").write_text("preset: x\ntrain: [1, 2]\n")
    bad = damaged("bad", change, finished=False)
    result = report(bad, *good)
    assert result.exit_code == 1
    assert warnings(result) == [f"warning: skipped {bad}: config.yaml: the config's train section is a list, "
                                f"not a mapping"]


def test_yaml_alias_bomb_as_config_is_one_line(good, damaged):
    assert len(ALIAS_BOMB) <= 490
    bad = damaged("bad", lambda results, folder: (folder / "config.yaml").write_text(ALIAS_BOMB), finished=False)
    result = report(*good, bad)
    assert result.exit_code == 1
    [line] = warnings(result)
    assert line.startswith(f"warning: skipped {bad}: config.yaml is not valid YAML") and "aliases" in line


def test_deeply_nested_results_are_skipped(good, damaged):
    bad = damaged("bad", lambda results, folder: None)
    (bad / "results.json").write_text("[" * 100_000 + "]" * 100_000)
    result = report(*good, bad)
    assert result.exit_code == 1 and len(warnings(result)) == 1


def test_missing_and_foreign_folders_are_skipped_when_others_can_be_used(good, tmp_path):
    (tmp_path / "notes").mkdir()
    result = report(tmp_path / "missing", *good, tmp_path / "notes")
    assert result.exit_code == 1
    assert warnings(result) == [
        f"warning: skipped {tmp_path / 'missing'}: does not exist: give run folders (e.g. runs/pos-tiny-seed1)",
        f"warning: skipped {tmp_path / 'notes'}: is not a run folder (no config.yaml or results.json): "
        f"give folders written by train-lm, overfit or train-pos"]
    assert "POS tagging" in result.stdout


def test_when_no_folder_can_be_used_it_is_one_error_line_exit_2(damaged, tmp_path):
    bad = damaged("bad", _set("params", []))
    result = report(tmp_path / "missing", bad)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == (f"error: none of the 2 folders given can be reported on: {tmp_path / 'missing'}: "
                             f"does not exist: give run folders (e.g. runs/pos-tiny-seed1); {bad}: results.json: "
                             f"params is a list, not a mapping\n")
    result = report(bad)
    assert result.exit_code == 2
    assert result.stderr == f"error: {bad}: results.json: params is a list, not a mapping\n"


# ---- names from run files ---------------------------------------------------------------------

HOSTILE = f"[bold red]evil{ESC}[31m{ESC}]0;title\x07\x9b2J"


@pytest.fixture
def hostile(tmp_path, write_run, pos_config, pos_metrics, pos_params):
    finished = write_run(tmp_path, "hostile", "train-pos", pos_config(preset=HOSTILE), pos_metrics(0.9), pos_params)
    unfinished = write_run(tmp_path, f"run{ESC}[2J", "train-pos", pos_config(preset=HOSTILE, seed=2), {},
                           pos_params, finished=False)
    return [finished, unfinished]


def test_terminal_table_shows_markup_and_escapes_as_text(hostile):
    result = report(hostile[0])
    assert result.exit_code == 0, result.output
    assert ESC not in result.output and "\x9b" not in result.output and "\x07" not in result.output
    assert "[bold red]evil\\x1b[31m\\x1b]0;title\\x07\\x9b2J" in result.stdout
    result = report(*hostile)   # and the line of the unfinished run
    assert ESC not in result.output and "left out: " in result.stdout and "run\\x1b[2J" in result.stdout


@pytest.mark.parametrize("fmt", ["--markdown", "--csv", "--json"])
def test_every_text_format_escapes_control_characters(hostile, fmt):
    result = report(*hostile, fmt=[fmt])
    assert result.exit_code == 0, result.output
    assert ESC not in result.stdout and "\x9b" not in result.stdout
    if fmt == "--json":   # the encoder's escapes; parsed back, the name is intact
        assert json.loads(result.stdout)["groups"][0]["presets"] == [HOSTILE]
    elif fmt == "--csv":
        assert next(csv.DictReader(io.StringIO(result.stdout)))["presets"].startswith("[bold red]evil\\x1b[31m")
    else:
        assert "evil\\x1b[31m" in result.stdout and "run\\x1b[2J" in result.stdout


def test_plot_labels_are_text_not_mathtext(tmp_path, write_run, pos_config, pos_metrics, pos_params):
    pytest.importorskip("matplotlib")
    runs = [write_run(tmp_path, f"r{seed}$\\undefinedcommand$", "train-lm",
                      dict(pos_config(preset="$\\frac{$", seed=seed), task="lm"),
                      {"valid_ppl": 100.0 + seed}, pos_params,
                      log=[{"epoch": 1, "valid_ppl": 120.0}]) for seed in (1, 2)]
    result = report(*runs, fmt=["--plot", str(tmp_path / "p.png"), "--curves", str(tmp_path / "c.png")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "p.png").stat().st_size > 0 and (tmp_path / "c.png").stat().st_size > 0


# ---- diverged runs ----------------------------------------------------------------------------

def _diverged(epoch, batch, where="training"):
    def change(results, folder):
        results.update(status="diverged", diverged={"epoch": epoch, "batch": batch, "where": where, "lr": 30.0},
                       metrics={"best_epoch": 1, "dev_acc": float("nan")})
    return change


def test_diverged_runs_are_listed_apart_and_not_averaged(good, damaged):
    bad = damaged("diverged", _diverged(2, 17))
    late = damaged("late", _diverged(3, None, "validation"))
    result = report(*good, bad, late, fmt=["--markdown"])
    assert result.exit_code == 0 and result.stderr == ""
    assert f"- {bad} (pos-tiny, seed 7): diverged in epoch 2 at batch 17" in result.stdout
    assert f"- {late} (pos-tiny, seed 7): diverged in epoch 3 (validation loss)" in result.stdout
    built = build_report([*good, bad, late])
    [group] = built.groups
    assert len(group.runs) == 2 and group.stats["dev_acc"].mean == pytest.approx(0.91)
    assert built.unfinished == []
    data = json.loads(render_json(built))
    assert data["diverged"] == [
        {"run": str(bad), "preset": "pos-tiny", "seed": 7, "phase": "train-pos", "stage": "training",
         "epoch": 2, "batch": 17, "where": "training"},
        {"run": str(late), "preset": "pos-tiny", "seed": 7, "phase": "train-pos", "stage": "training",
         "epoch": 3, "batch": None, "where": "validation"}]
    terminal = report(*good, bad)
    assert f"left out: {bad} (pos-tiny, seed 7): diverged in epoch 2 at batch 17" in terminal.stdout


def test_diverged_finetuning_keeps_the_training_numbers(tmp_path, write_run, lm_config, lm_metrics, lm_params):
    runs = [write_run(tmp_path, f"lm{seed}", "train-lm", lm_config("awd-lstm", seed), lm_metrics(60.0 + seed, 58.0),
                      lm_params, finetune=(lm_metrics(59.0, 57.0), [{"epoch": 1}], True)) for seed in (1, 2)]
    finetune = runs[1] / "results_finetune.json"
    record = json.loads(finetune.read_text())
    record.update(status="diverged", diverged={"epoch": 1, "batch": 5, "where": "training", "lr": 30.0})
    finetune.write_text(json.dumps(record))
    built = build_report(runs)
    [group] = built.groups
    assert group.stats["valid_ppl"].n == 2 and group.stats["finetune_valid_ppl"].n == 1
    assert [r.path for r in built.diverged] == [runs[1]] and built.unfinished == []
    assert f"- {runs[1]} (awd-lstm, seed 2): finetuning diverged in epoch 1 at batch 5" in render_markdown(built)


def test_malformed_divergence_record_is_skipped(good, damaged):
    bad = damaged("bad", _diverged("two", 1))
    result = report(*good, bad)
    assert result.exit_code == 1
    assert warnings(result) == [f"warning: skipped {bad}: results.json: diverged should hold an integer epoch, "
                                f"an integer batch (or null) and where: training or validation"]


def test_infinite_metrics_do_not_break_the_means(tmp_path, write_run, pos_config, pos_metrics, pos_params):
    runs = [write_run(tmp_path, f"r{seed}", "train-pos", pos_config(seed=seed),
                      dict(pos_metrics(0.9), best_dev_acc=value), pos_params)
            for seed, value in ((1, float("inf")), (2, 0.5))]
    built = build_report(runs)
    assert built.groups[0].stats["best_dev_acc"].mean == float("inf")
    assert json.loads(render_json(built))["groups"][0]["stats"]["best_dev_acc"] == {"mean": None, "std": None, "n": 2}
    assert render_csv(built) and render_markdown(built)


def test_names_that_are_not_utf8_print_escaped(tmp_path, write_run, pos_config, pos_metrics, pos_params):
    run = write_run(tmp_path, "r", "train-pos", pos_config(), pos_metrics(0.9), pos_params)
    results = (run / "results.json").read_text().replace('"preset": "pos-tiny"', '"preset": "x\\ud800"')
    (run / "results.json").write_text(results)
    odd = tmp_path / os.fsdecode(b"not-utf8-\xff")   # a folder name that is not UTF-8
    odd.mkdir()
    result = report(run, odd)
    assert result.exit_code == 1
    assert "x\\ud800" in result.stdout
    assert warnings(result) == [f"warning: skipped {tmp_path}/not-utf8-\\udcff: is not a run folder (no config.yaml "
                                f"or results.json): give folders written by train-lm, overfit or train-pos"]
