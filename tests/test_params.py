"""count-params: the paper's Table 1 and Table 3 totals exactly, parity checks, vocabulary sources."""
import json

import pytest
from typer.testing import CliRunner

from sparseseq_cli.cli import app
from sparseseq_cli.config import load_config
from sparseseq_cli.params import count_params

runner = CliRunner()


def test_totals_equal_the_papers_tables(table_3_1_preset, table_3_1, tmp_path, monkeypatch):
    preset = table_3_1_preset
    monkeypatch.chdir(tmp_path)       # no data/penn here: the preset's vocabulary size is used
    count = count_params(load_config(preset=preset))
    assert count.vocab_size == 10_000 and "preset" in count.vocab_source
    recurrent = sum(p.trainable for p in count.parts if p.name.startswith("LSTM"))
    assert (recurrent, count.total) == table_3_1[preset]


def test_sparse_layer_rows_carry_geometry(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    parts = {p.name: p for p in count_params(load_config(preset="awd-sparse")).parts}
    middle = parts["LSTM 2: 1725 -> 1725"]
    assert (middle.k, middle.windows, middle.trainable, middle.target) == (3, [957, 958, 958], 10_589_200, 10_589_200)
    assert parts["LSTM 1: 400 -> 1725"].target == 7_139_200
    assert parts["embedding 10000x400"].dense == 4_000_000
    emb = {p.name: p for p in count_params(load_config(preset="recite-sparse2")).parts}["embedding 10000x400"]
    assert (emb.trainable, emb.dense) == (2_000_000, 4_000_000)


def test_parity_passes_at_2_percent_and_fails_at_1(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ok = runner.invoke(app, ["count-params", "awd-lstm", "awd-sparse", "--check-parity"])
    assert ok.exit_code == 0, ok.output
    assert "-1.65%" in ok.output
    bad = runner.invoke(app, ["count-params", "awd-lstm", "awd-sparse", "--check-parity", "--tolerance", "0.01"])
    assert bad.exit_code == 1
    # without --check-parity a difference is reported, not an error
    assert runner.invoke(app, ["count-params", "awd-lstm", "recite-sparse1"]).exit_code == 0


def test_without_presets_the_papers_parity_groups(tmp_path, monkeypatch, table_3_1):
    monkeypatch.chdir(tmp_path)       # no data/penn: every preset falls back to data.vocab_size
    done = runner.invoke(app, ["count-params", "--check-parity", "--json"])
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    assert data["parity_ok"] is True and data["tolerance"] == 0.02
    groups = {g["table"]: g for g in data["groups"]}
    assert [[p["preset"] for p in g["presets"]] for g in groups.values()] == [
        ["awd-lstm", "awd-sparse"], ["recite-dense-reduced", "recite-sparse1", "recite-sparse2"]]
    for group in groups.values():
        assert group["parity_ok"] is True
        for preset in group["presets"]:
            assert preset["vocab_size"] == 10_000 and preset["total"] == table_3_1[preset["preset"]][1]
    # Table 3's sparse models are compared to the dense reduced one, not to recite-dense's 24M
    base = table_3_1["recite-dense-reduced"][1]
    assert [r["relative_difference"] for r in groups["Table 3"]["parity"]] == pytest.approx(
        [(table_3_1[r["preset"]][1] - base) / base for r in groups["Table 3"]["parity"]])
    assert runner.invoke(app, ["count-params", "--check-parity", "--tolerance", "0.01"]).exit_code == 1
    text = runner.invoke(app, ["count-params"])
    assert text.exit_code == 0, text.output
    assert "the paper's Table 1: awd-lstm, awd-sparse" in text.output
    assert "the paper's Table 3: recite-dense-reduced, recite-sparse1, recite-sparse2" in text.output
    assert text.output.count("parity (tolerance 2.0% of the first)") == 2


def test_tables_are_not_folded_off_a_terminal(tmp_path, monkeypatch):
    # CliRunner's stdout is no terminal, as in `sparseseq count-params awd-lstm | cat`
    monkeypatch.chdir(tmp_path)
    done = runner.invoke(app, ["count-params", "awd-lstm"])
    assert done.exit_code == 0, done.output
    line = next(line for line in done.output.splitlines() if "LSTM 1:" in line)
    assert "LSTM 1: 400 -> 1150" in line and "7,139,200" in line


def test_json_and_overrides(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    done = runner.invoke(app, ["count-params", "awd-lstm", "--set", "nhid=575", "--vocab-size", "50", "--json"])
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    preset = data["presets"][0]
    assert preset["vocab_size"] == 50 and preset["vocab_source"] == "--vocab-size"
    assert preset["total"] == sum(p["trainable"] for p in preset["parts"])
    assert data["parity_ok"] is True


def test_vocabulary_from_the_data_when_present(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    penn = tmp_path / "data" / "penn"
    penn.mkdir(parents=True)
    for split in ("train", "valid", "test"):
        (penn / f"{split}.txt").write_text("a b c\nb c d\n")
    count = count_params(load_config(preset="awd-lstm"))
    assert count.vocab_size == 5            # a b c d <eos>
    assert count.parts[0].trainable == 5 * 400


def test_tagging_presets_on_builtin_data_and_without_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tiny = count_params(load_config(preset="pos-tiny"))
    assert tiny.task == "pos" and tiny.vocab_source.startswith("data builtin:")
    names = [p.name for p in tiny.parts]
    assert names[0].startswith("embedding") and names[-1].startswith("head")
    dense, sparse = (count_params(load_config(preset=p), vocab_size=1000) for p in ("pos-dense", "pos-sparse"))
    # the paper's pairing: sparse emsize 20 at density 0.25 trains as many embedding rows as dense 5
    assert dense.parts[0].trainable == sparse.parts[0].trainable == 5000
    missing = runner.invoke(app, ["count-params", "pos-dense"])
    assert missing.exit_code == 2 and "--vocab-size" in missing.output


@pytest.mark.parametrize("args, words", [
    (["count-params", "no-such-preset"], "unknown preset"),
    (["count-params", "awd-lstm", "--set", "nhidd=3"], "nhidd"),
    (["count-params", "awd-lstm", "--vocab-size", "0"], "at least 1"),
    (["count-params", "awd-lstm", "awd-sparse", "--check-parity", "--tolerance", "2"], "fraction"),
    (["count-params", "awd-lstm", "--check-parity"], "at least two presets"),
])
def test_bad_input_is_one_line_exit_2(args, words, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    done = runner.invoke(app, args)
    assert done.exit_code == 2 and words in done.output
    assert "Traceback" not in done.output
