"""`sparseseq report`: grouping, mean ± sample std, the three layouts, the output formats.

Run folders are written by hand (the write_run fixture, as docs/formats.md describes them:
config.yaml, results.json, metrics.jsonl, results_finetune.json), so these tests need no training.
"""
import csv
import io
import json
import re

import pytest
from typer.testing import CliRunner

from sparseseq_cli.cli import app
from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.report import (ReportOptions, build_report, make_report, render_csv, render_json,
                                  render_markdown)


@pytest.fixture
def pos_sweep(
        tmp_path, dense_dev, dense_test, sparse_dev, sparse_test, pos_params, write_run, pos_config,
        pos_metrics):
    runs = []
    for seed, dev, test in zip((1, 2, 3), dense_dev, dense_test):
        runs.append(write_run(tmp_path, f"dense-seed{seed}", "train-pos", pos_config(seed=seed),
                              pos_metrics(dev, test), pos_params, wall_time_s=10.0 * seed))
    sparse_params = dict(pos_params, embedding=500, embedding_dense=2000, total=2400)
    for seed, dev, test in zip((1, 2, 3), sparse_dev, sparse_test):
        runs.append(write_run(tmp_path, f"sparse-seed{seed}", "train-pos",
                              pos_config(seed=seed, emsize=20, emblocks=20, emdensity=0.25),
                              pos_metrics(dev, test), sparse_params))
    return runs


def test_tagging_sweep_gives_one_row_per_setting_with_mean_and_sample_std(
        pos_sweep, dense_dev, dense_test, sparse_dev, sparse_test, by_hand):
    report = build_report(pos_sweep)
    assert [g.label for g in report.groups] == ["pos-tiny emsize=5 emblocks=1 emdensity=1.0",
                                                "pos-tiny emsize=20 emblocks=20 emdensity=0.25"]
    for group, dev, test in zip(report.groups, (dense_dev, sparse_dev), (dense_test, sparse_test)):
        assert len(group.runs) == 3 and [r.seed for r in group.runs] == [1, 2, 3]
        for name, values in (("dev_acc", dev), ("test_acc", test),
                             ("test_acc_no_none", [v - 0.01 for v in test])):
            mean, std = by_hand(values)
            assert group.stats[name].mean == pytest.approx(mean, abs=1e-12)
            assert group.stats[name].std == pytest.approx(std, abs=1e-12)
            assert group.stats[name].n == 3
    assert report.groups[0].stats["wall_time_s"].mean == pytest.approx(20.0)
    assert report.groups[0].stats["params_embedding"].mean == 500


def _markdown_rows(text):
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in rows[0].strip("|").split("|")]
    return [dict(zip(header, (c.strip() for c in row.strip("|").split("|")))) for row in rows[1:]]


def test_markdown_json_and_csv_agree(pos_sweep):
    report = build_report(pos_sweep)
    data = json.loads(render_json(report))
    table = _markdown_rows(render_markdown(report))
    rows = list(csv.DictReader(io.StringIO(render_csv(report))))
    assert len(data["groups"]) == len(table) == len(rows) == 2
    for group, md, row in zip(data["groups"], table, rows):
        assert md["setting"] == row["label"] == group["label"]
        assert md["runs"] == row["n_runs"] == str(group["n_runs"]) == "3"
        for name, header in (("dev_acc", "dev acc"), ("test_acc", "test acc"),
                             ("test_acc_no_none", "test acc w/o -NONE-")):
            stat = group["stats"][name]
            assert float(row[f"{name}_mean"]) == pytest.approx(stat["mean"], abs=1e-12)
            assert float(row[f"{name}_std"]) == pytest.approx(stat["std"], abs=1e-12)
            mean, std = re.fullmatch(r"([\d.]+) ± ([\d.]+)", md[header]).groups()
            assert float(mean) == pytest.approx(100 * stat["mean"], abs=0.005)
            assert float(std) == pytest.approx(100 * stat["std"], abs=0.005)
        assert md["params"] == "2,400" and md["embedding"] == "500"


def test_cli_json_prints_only_json_and_formats_exclude_each_other(pos_sweep):
    runner = CliRunner()
    paths = [str(p) for p in pos_sweep]
    result = runner.invoke(app, ["report", *paths, "--json"])
    assert result.exit_code == 0, result.output
    assert [g["n_runs"] for g in json.loads(result.stdout)["groups"]] == [3, 3]
    result = runner.invoke(app, ["report", *paths, "--json", "--csv"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: --json and --csv exclude each other: pick one output format"


def test_terminal_table_shows_both_settings(pos_sweep, dense_dev, by_hand):
    result = CliRunner().invoke(app, ["report", *map(str, pos_sweep)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "POS tagging (Figure 3)" in out
    mean, std = by_hand(dense_dev)
    assert f"{100 * mean:.2f} ± {100 * std:.2f}" in out
    assert "emsize=20 emblocks=20 emdensity=0.25" in out


def test_names_from_run_files_print_as_text_not_markup(
        tmp_path, pos_params, write_run, pos_config, pos_metrics):
    run = write_run(tmp_path, "r", "train-pos", pos_config(preset="[red]x"), pos_metrics(0.9), pos_params)
    result = CliRunner().invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    assert "│ [red]x " in result.stdout


def test_single_run_has_no_std(tmp_path, pos_params, write_run, pos_config, pos_metrics):
    run = write_run(tmp_path, "one", "train-pos", pos_config(), pos_metrics(0.9, 0.8), pos_params)
    data = json.loads(render_json(build_report([run])))
    assert data["groups"][0]["stats"]["dev_acc"] == {"mean": 0.9, "std": None, "n": 1}
    assert _markdown_rows(render_markdown(build_report([run])))[0]["dev acc"] == "90.00"
    assert list(csv.DictReader(io.StringIO(render_csv(build_report([run])))))[0]["dev_acc_std"] == ""


def test_no_test_split_leaves_test_columns_out(tmp_path, pos_params, write_run, pos_config, pos_metrics):
    runs = [write_run(tmp_path, f"s{seed}", "train-pos", pos_config(seed=seed), pos_metrics(0.9), pos_params)
            for seed in (1, 2)]
    header = _markdown_rows(render_markdown(build_report(runs)))[0]
    assert "dev acc" in header and "test acc" not in header


def test_group_by_key_pools_settings(pos_sweep, tmp_path, dense_dev, sparse_dev, by_hand):
    # Grouping by the vocabulary order pools both embedding sizes into one group of six.
    report = build_report(pos_sweep, ["vocab_order"])
    assert [(g.label, len(g.runs)) for g in report.groups] == [("vocab_order=up", 6)]
    mean, std = by_hand(dense_dev + sparse_dev)
    assert report.groups[0].stats["dev_acc"].mean == pytest.approx(mean)
    assert report.groups[0].stats["dev_acc"].std == pytest.approx(std)
    report = build_report(pos_sweep, ["model.emsize"])
    assert [g.label for g in report.groups] == ["emsize=5", "emsize=20"]


def test_unfinished_runs_are_listed_and_left_out_of_the_means(
        pos_sweep, tmp_path, dense_dev, pos_params, write_run, pos_config, by_hand):
    crashed = write_run(tmp_path, "dense-seed4", "train-pos", pos_config(seed=4), {}, pos_params,
                        epochs=1, finished=False)
    output = make_report(ReportOptions(pos_sweep + [crashed], markdown=True))
    report, out = output.report, output.text
    assert [len(g.runs) for g in report.groups] == [3, 3]
    assert report.groups[0].stats["dev_acc"].mean == pytest.approx(by_hand(dense_dev)[0])
    assert f"- {crashed} (pos-tiny, seed 4): unfinished after 1 of 3 epoch(s)" in out
    data = json.loads(render_json(report))
    assert data["unfinished"] == [{"run": str(crashed), "preset": "pos-tiny", "seed": 4,
                                   "stage": "training", "epochs_done": 1}]


# ---- language models: Table 1 and Table 3 ------------------------------------------------

SPARSE_LM_PARAMS = {"total": 23822900, "embedding": 4000000, "embedding_dense": 4000000,
                    "recurrent": 19812900, "decoder_bias": 10000, "mos": 0}


def test_language_models_give_table1(tmp_path, lm_params, write_run, lm_config, lm_metrics):
    runs = []
    for seed, (v, t, fv, ft) in enumerate([(61.0, 58.9, 60.0, 57.8), (61.4, 59.1, 60.4, 58.0)]):
        log = [{"epoch": 1, "elapsed_s": 1.0, "train_loss": 5.0, "valid_loss": 4.2, "valid_ppl": 66.7,
                "lr": 30.0, "asgd": False}]
        runs.append(write_run(tmp_path, f"awd-lstm-seed{seed}", "train-lm", lm_config("awd-lstm", seed),
                              lm_metrics(v, t), lm_params, log=log,
                              finetune=(lm_metrics(fv, ft), log, True)))
    sparse_cfg = lm_config("awd-sparse", 0, nhid=1725, sparse_mode="sparse_hidden", sparse_fract=0.66666)
    runs.append(write_run(tmp_path, "awd-sparse-seed0", "train-lm", sparse_cfg, lm_metrics(60.1, 57.9),
                          SPARSE_LM_PARAMS, finetune=(None, [{"epoch": 1, "elapsed_s": 1.0}], False)))
    report = build_report(runs)
    rows = _markdown_rows(render_markdown(report))
    assert [r["setting"] for r in rows] == ["awd-lstm", "awd-sparse"]
    assert list(rows[0])[:10] == ["setting", "runs", "params", "embedding", "recurrent", "decoder bias",
                                  "valid ppl", "test ppl", "finetuned valid ppl", "finetuned test ppl"]
    assert rows[0]["params"] == "24,221,600" and rows[0]["recurrent"] == "20,211,600"
    assert rows[0]["valid ppl"] == "61.20 ± 0.28" and rows[0]["finetuned test ppl"] == "57.90 ± 0.14"
    assert rows[1]["recurrent"] == "19,812,900" and rows[1]["test ppl"] == "57.90"
    assert rows[1]["finetuned valid ppl"] == "–"   # its finetuning has not finished
    assert [(r.path.name, r.finetune_epochs_done) for r in report.unfinished] == [("awd-sparse-seed0", 1)]
    assert "finetuning unfinished after 1 epoch(s)" in render_markdown(report)


def test_overfit_runs_give_table3(tmp_path, lm_params, write_run, lm_config):
    runs = []
    for name, preset, model, memorized in (
            ("dense-reduced", "recite-dense-reduced", {"emsize": 200, "nhid": 575}, [None, None]),
            ("sparse1", "recite-sparse1", {"emsize": 200, "sparse_mode": "sparse_hidden", "sparse_fract": 0.5},
             [80, 90])):
        for seed, mem in zip((0, 1), memorized):
            metrics = {"train_ppl": 1.0 if mem else 3.0 + seed, "train_acc": 0.99995 if mem else 0.7 + seed / 10,
                       "epochs_to_memorize": mem}
            runs.append(write_run(tmp_path, f"{name}-seed{seed}", "overfit", lm_config(preset, seed, **model),
                                  metrics, dict(lm_params, total=7068300), epochs=mem or 150))
    rows = _markdown_rows(render_markdown(build_report(runs)))
    assert "Learning to recite (Table 3)" in render_markdown(build_report(runs))
    assert [r["setting"] for r in rows] == ["recite-dense-reduced", "recite-sparse1"]
    assert rows[0]["train ppl"] == "3.50 ± 0.71" and rows[0]["train acc %"] == "75.00 ± 7.07"
    assert rows[0]["epochs to memorize"] == "not reached"
    assert rows[1]["epochs to memorize"] == "85.0 ± 7.1"
    assert rows[0]["params"] == "7,068,300"


def test_table3_says_when_no_run_memorized(tmp_path, lm_params, write_run, lm_config):
    runs = [write_run(tmp_path, f"r{seed}", "overfit", lm_config("recite-dense", seed),
                      {"train_ppl": 3.0, "train_acc": 0.7, "epochs_to_memorize": None}, lm_params)
            for seed in (0, 1)]
    assert _markdown_rows(render_markdown(build_report(runs)))[0]["epochs to memorize"] == "not reached"


def test_one_run_in_a_group_without_a_number_is_counted(tmp_path, lm_params, write_run, lm_config):
    runs = [write_run(tmp_path, f"r{seed}", "overfit", lm_config("recite-sparse2", seed),
                      {"train_ppl": 1.0, "train_acc": 1.0, "epochs_to_memorize": mem}, lm_params)
            for seed, mem in ((0, 100), (1, None))]
    assert _markdown_rows(render_markdown(build_report(runs)))[0]["epochs to memorize"] == "100.0 (1/2)"


def test_mixed_kinds_give_one_table_each_in_paper_order(
        pos_sweep, tmp_path, lm_params, write_run, lm_config, lm_metrics):
    lm = write_run(tmp_path, "lm", "train-lm", lm_config("lm-tiny", 1), lm_metrics(100.0, 90.0), lm_params)
    text = render_markdown(build_report(pos_sweep + [lm]))
    assert text.index("Table 1") < text.index("Figure 3")
    rows = list(csv.DictReader(io.StringIO(render_csv(build_report(pos_sweep + [lm])))))
    assert [r["phase"] for r in rows] == ["train-lm", "train-pos", "train-pos"]
    assert [r["task"] for r in rows] == ["lm", "pos", "pos"]


# ---- bad input: one line, exit 2 -----------------------------------------------------------

def _fails(args):
    result = CliRunner().invoke(app, ["report", *args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    return lines[0]


def test_a_folder_that_is_not_a_run_is_an_error(tmp_path):
    assert "is not a run folder" in _fails([str(tmp_path)])
    assert "does not exist" in _fails([str(tmp_path / "missing")])


def test_corrupt_results_are_an_error(tmp_path, pos_params, write_run, pos_config, pos_metrics):
    run = write_run(tmp_path, "r", "train-pos", pos_config(), pos_metrics(0.9), pos_params)
    (run / "results.json").write_text("{not json")
    assert "cannot read" in _fails([str(run)])
    (run / "results.json").write_text(json.dumps({"task": "pos", "phase": "train-pos"}))
    assert "lacks config, params, metrics" in _fails([str(run)])
    bare = {"config": {}, "params": {}, "metrics": {}}
    (run / "results.json").write_text(json.dumps({"task": "pos", "phase": "dance", **bare}))
    assert "unknown phase 'dance'" in _fails([str(run)])
    (run / "results.json").write_text(json.dumps({"task": "lm", "phase": "train-pos", **bare}))
    assert "task 'lm' for phase train-pos" in _fails([str(run)])


def test_unreadable_config_of_unfinished_run_is_an_error(tmp_path, pos_params, write_run, pos_config):
    run = write_run(tmp_path, "r", "train-pos", pos_config(), {}, pos_params, finished=False)
    (run / "config.yaml").write_text("model: [unclosed\n")
    assert "config.yaml is not valid YAML at line 2" in _fails([str(run)])


def test_bad_group_by_key_is_an_error(pos_sweep, pos_params, write_run, pos_config, pos_metrics):
    assert "did you mean emsize" in _fails([str(pos_sweep[0]), "--group-by", "emsiz"])
    cfg = pos_config()
    cfg["data"]["seed"] = 3   # a second key named seed: the bare name no longer says which
    run = write_run(pos_sweep[0].parent, "two-seeds", "train-pos", cfg, pos_metrics(0.9), pos_params)
    with pytest.raises(SparseseqError, match="ambiguous: use one of data.seed, train.seed"):
        build_report([run], ["seed"])


def test_plot_file_must_be_png(pos_sweep, tmp_path):
    assert "ending in .png" in _fails([str(pos_sweep[0]), "--plot", str(tmp_path / "fig.pdf")])
