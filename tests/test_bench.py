"""`sparseseq bench` on small sizes: every candidate timed, ratios to the stated reference."""
import json

from typer.testing import CliRunner

from sparseseq_cli.bench import BenchSettings, ratio_rows, run_bench
from sparseseq_cli.cli import app

SMALL = dict(lstm_size=30, reduce=0.6, seq_len=5, batch_size=3, vocab_size=200, emsize=20,
             emblocks=4, emdensity=0.5, repeats=2)


def test_run_bench_times_all_candidates_with_exact_parameter_counts(cpu):
    result = run_bench(BenchSettings(**SMALL, warmup=1), cpu)
    names = [r["name"] for r in result["lstm"]]
    assert names[:3] == ["SparseLSTM impl=auto", "SparseLSTM impl=sequential (reference)",
                         "SparseLSTM impl=dense"]
    assert names[3:] == ["nn.LSTM 18x18 (equal params)", "nn.LSTM 30x30 (equal width)"]
    rows = {r["name"]: r for r in result["lstm"]}
    assert rows["nn.LSTM 18x18 (equal params)"]["ratio"] == 1.0
    assert rows["nn.LSTM 30x30 (equal width)"]["params"] == 4 * (30 * 30 * 2 + 60)
    for row in result["lstm"] + result["embedding"]:
        assert row["ms"] > 0
    emb = result["embedding"]
    assert [r["params"] for r in emb] == [2000, 4000, 2000]
    assert emb[1]["ratio"] == emb[1]["ratio_low"] == emb[1]["ratio_high"] == 1.0
    for row in result["lstm"] + result["embedding"]:
        assert 0 < row["ratio_low"] <= row["ratio"] <= row["ratio_high"]


def test_ratios_are_paired_per_round_with_quartiles():
    # per-round ratios 1.0, 3.0, 0.5: median 1.0, inclusive quartiles 0.75 and 2.0; the
    # ratio of the medians (20 / 10) would say 2.0
    samples = {"ref": [10.0, 10.0, 40.0], "cand": [10.0, 30.0, 20.0]}
    cand, ref = ratio_rows({"cand": 7, "ref": 9}, samples, "ref")
    assert (cand.name, cand.params, cand.ms) == ("cand", 7, 20.0)
    assert (cand.ratio, cand.ratio_low, cand.ratio_high) == (1.0, 0.75, 2.0)
    assert (ref.name, ref.params, ref.ms) == ("ref", 9, 10.0)
    assert (ref.ratio, ref.ratio_low, ref.ratio_high) == (1.0, 1.0, 1.0)
    single = ratio_rows({"c": 1}, {"c": [3.0], "r": [2.0]}, "r")[0]
    assert (single.ratio, single.ratio_low, single.ratio_high) == (1.5, 1.5, 1.5)


def test_cli_table_is_not_folded_off_a_terminal():
    # CliRunner's stdout is no terminal, as in `sparseseq bench | cat`
    args = ["bench", "--device", "cpu"] + [f"--{k.replace('_', '-')}={v}" for k, v in SMALL.items()]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    line = next(line for line in done.stdout.splitlines() if "SparseEmbedding 200x20" in line)
    assert "SparseEmbedding 200x20 (4 blocks, density 0.5)" in line and "2,000" in line


def test_cli_json_and_bad_settings():
    runner = CliRunner()
    args = ["bench", "--device", "cpu", "--json"] + [
        f"--{k.replace('_', '-')}={v}" for k, v in SMALL.items()]
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["settings"]["lstm_size"] == 30
    # infeasible settings are refused before any (long) timing starts
    for flags, words in ((["--emblocks", "4", "--emdensity", "0.1"], "below 1/blocks"),
                         (["--reduce", "0.001"], "too small"), (["--repeats", "0"], "--repeats")):
        bad = runner.invoke(app, ["bench", "--device", "cpu", *flags])
        assert bad.exit_code == 2 and words in bad.output, bad.output
