"""`sparseseq bench` on small sizes: every candidate timed, ratios to the stated reference."""
import json

from typer.testing import CliRunner

from sparseseq_cli.bench import BenchSettings, run_bench
from sparseseq_cli.cli import app
from sparseseq_cli.devices import resolve_device

SMALL = dict(lstm_size=30, reduce=0.6, seq_len=5, batch_size=3, vocab_size=200, emsize=20,
             emblocks=4, emdensity=0.5, repeats=2)


def test_run_bench_times_all_candidates_with_exact_parameter_counts():
    result = run_bench(BenchSettings(**SMALL, warmup=1), resolve_device("cpu"))
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
    assert emb[1]["ratio"] == 1.0
    assert emb[0]["ratio"] == emb[0]["ms"] / emb[1]["ms"]


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
