"""Data-parallel training (issue 7): two ranks on gloo/CPU equal one process.

One module fixture spawns two ranks (torch.multiprocessing, 127.0.0.1, a free port) that
run every distributed scenario in turn, so the processes start once; the tests compare
their run folders with single-process runs of the same configurations. With every dropout
0, N steps of 2 ranks must give the single-process parameters (to 1e-5: only the order of
floating-point sums differs); a distributed run interrupted mid-epoch and resumed must give
exactly the uninterrupted distributed run (with dropout, so every rank's generators count).
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest
import torch
import torch.multiprocessing as mp
from typer.testing import CliRunner

from sparseseq_cli.cli import app
from sparseseq_cli.config import load_config
from sparseseq_cli.corpora import synthetic
from sparseseq_cli.corpora.tag_batches import Batch
from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.training import distributed, tagging, tagging_loop
from sparseseq_cli.training import lm_phases as lm
from sparseseq_cli.training.distributed import World, data_parallel
from sparseseq_cli.run_folder import FINETUNE, TRAIN, RunFolder

NO_DROPOUT = ["dropout=0.0", "dropouth=0.0", "dropouti=0.0", "dropoute=0.0", "wdrop=0.0"]
DENSE = ["sparse_mode=direct", "emblocks=1", "emdensity=1.0"]
POS = ["emsize=8", "nhid=8", "emblocks=2", "emdensity=0.75", "lr=0.01", "epochs=2",
       "batch_size=6", "eval_batch_size=16", "dropouti=0.0", "dropoute=0.0", "dropouth=0.0", "wdrop=0.0"]
TIMEOUT = 300     # seconds: a hang (a collective one rank missed) fails instead of blocking CI
STOP_AT = 8 + 4   # rank 0's Ctrl-C comes at batch 4 of epoch 2 (8 batches an epoch) ...
VOTE = 3          # ... and the ranks vote every 3 steps: both stop before batch 6


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rank(rank, port, root, cfgs, cpu, stop_after):
    """One rank: every distributed scenario, in the same order on both ranks (``cpu`` and
    ``stop_after`` are the fixtures' values, passed in: a spawned process has no fixtures)."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE="2")
    torch.set_num_threads(1)
    distributed.AGREE_EVERY = VOTE
    with data_parallel("cpu") as world:
        kw = dict(device=cpu, quiet=True, world=world)
        lm.train_lm(cfgs["dense"], root / "dense", **kw)
        lm.train_lm(cfgs["sparse"], root / "sparse", **kw)
        lm.finetune_lm(root / "sparse", flags={"train.epochs": 2}, **kw)
        lm.overfit(cfgs["sparse"], root / "overfit", **kw)
        tagging.train_pos(cfgs["pos"], root / "pos", **kw)
        lm.train_lm(cfgs["dropout"], root / "dropout", **kw)
        for name in ("dropout", "sparse"):
            # rank 0 alone is asked to stop; rank 1 must stop with it
            real = lm.StopRequest
            lm.StopRequest = lambda: stop_after(STOP_AT if rank == 0 else 10 ** 9)
            with pytest.raises(lm.TrainingInterrupted):
                lm.train_lm(cfgs[name], root / f"{name}-resumed", **kw)
            lm.StopRequest = real
            if world.is_main:
                shutil.copytree(root / f"{name}-resumed", root / f"{name}-interrupted")
            lm.train_lm(cfgs[name], root / f"{name}-resumed", resume=True, **kw)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, make_lm_corpus, make_lm_config, cpu, stop_after):
    """Run folders of the two-rank scenarios (``dp``) and of single processes (``single``)."""
    root = tmp_path_factory.mktemp("distributed")
    corpus = make_lm_corpus(root / "corpus")
    base = make_lm_config(corpus, root / "tiny.yaml", epochs=2, max_batches=8, log_interval=4)
    pos_data = root / "pos-data"
    pos_data.mkdir()
    tagged = synthetic.tagged_corpus(0)
    # 61 = 10 x 6 + 1: the last batch has one sentence, and rank 1 none of it
    for split, n in (("train", 61), ("valid", 20), ("test", 20)):
        text = "".join("".join(f"{w}\t{t}\n" for w, t in s) + "\n" for s in tagged[split][:n])
        (pos_data / f"{split}.conll").write_text(text)
    (pos_data / "tags.txt").write_text("\n".join(synthetic.TAGS) + "\n")
    cfgs = {"dense": load_config(config_file=base, overrides=NO_DROPOUT + DENSE),
            "sparse": load_config(config_file=base, overrides=NO_DROPOUT),
            "dropout": load_config(config_file=base),
            "pos": load_config("pos-tiny", overrides=POS, flags={"data.path": str(pos_data)}, task="pos")}
    dp, single = root / "dp", root / "single"
    ranks = mp.spawn(_rank, args=(_free_port(), dp, cfgs, cpu, stop_after), nprocs=2, join=False)
    deadline = time.time() + TIMEOUT
    while not ranks.join(timeout=1):           # raises when a rank failed
        if time.time() > deadline:             # a collective one rank never reached
            for process in ranks.processes:
                process.kill()
            pytest.fail(f"the two ranks did not finish within {TIMEOUT} s")

    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # tiny matrices: more threads only wait on each other
    try:
        lm.train_lm(cfgs["dense"], single / "dense", device=cpu, quiet=True)
        lm.train_lm(cfgs["sparse"], single / "sparse", device=cpu, quiet=True)
        lm.finetune_lm(single / "sparse", device=cpu, flags={"train.epochs": 2}, quiet=True)
        lm.overfit(cfgs["sparse"], single / "overfit", device=cpu, quiet=True)
        tagging.train_pos(cfgs["pos"], single / "pos", device=cpu, quiet=True)
        # the interrupted two-rank run, continued by one process
        shutil.copytree(dp / "sparse-interrupted", single / "sparse-continued")
        lm.train_lm(cfgs["sparse"], single / "sparse-continued", device=cpu, resume=True, quiet=True)
    finally:
        torch.set_num_threads(threads)
    return dp, single


def _model(folder, name=TRAIN.last):
    return RunFolder(folder).load(name)["model"]


def _assert_close(a, b, atol=1e-5):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], rtol=0, atol=atol), (key, (a[key] - b[key]).abs().max())


def _assert_equal(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def _metrics(folder, name="metrics.jsonl"):
    return [{k: v for k, v in json.loads(line).items() if k != "elapsed_s"}
            for line in (folder / name).read_text().splitlines()]


def _results(folder, name="results.json"):
    return json.loads((folder / name).read_text())


@pytest.mark.parametrize("model", ["dense", "sparse"])
def test_two_ranks_take_the_single_process_steps(runs, model):
    dp, single = runs
    _assert_close(_model(dp / model), _model(single / model))
    _assert_close(_model(dp / model, TRAIN.best), _model(single / model, TRAIN.best))
    got, want = _results(dp / model), _results(single / model)
    assert got["metrics"] == pytest.approx(want["metrics"], rel=1e-5)
    assert got["epochs"] == want["epochs"] == 2
    for a, b in zip(_metrics(dp / model), _metrics(single / model), strict=True):
        assert a == pytest.approx(b, rel=1e-5)


def test_rank_0_alone_writes_the_run(runs):
    dp, single = runs
    log = (dp / "dense" / "log.txt").read_text()
    assert "data parallel: 2 processes (gloo), 2 of the 4 batch columns each" in log
    assert log.count("| end of epoch   2 |") == 1            # not once per rank
    assert len(_metrics(dp / "dense")) == 2
    logged = [line for line in log.splitlines() if line.startswith("| epoch ")]
    reference = [line for line in (single / "dense" / "log.txt").read_text().splitlines()
                 if line.startswith("| epoch ")]
    # the logged interval loss is the whole batch's, as in one process
    assert [line.split("| loss")[1] for line in logged] == [line.split("| loss")[1] for line in reference]


def test_finetuning_averages_the_same_weights(runs):
    dp, single = runs
    for name in (FINETUNE.last, FINETUNE.best):
        _assert_close(_model(dp / "sparse", name), _model(single / "sparse", name))
    got = RunFolder(dp / "sparse").load(FINETUNE.last)["averaging"]
    want = RunFolder(single / "sparse").load(FINETUNE.last)["averaging"]
    assert got["count"] == want["count"] == 16
    for a, b in zip(got["mean"], want["mean"], strict=True):
        assert torch.allclose(a, b, rtol=0, atol=1e-5)
    got, want = _results(dp / "sparse", "results_finetune.json"), _results(single / "sparse", "results_finetune.json")
    assert got["metrics"] == pytest.approx(want["metrics"], rel=1e-5)


def test_overfit_counts_every_rank(runs):
    dp, single = runs
    _assert_close(_model(dp / "overfit"), _model(single / "overfit"))
    got, want = _results(dp / "overfit")["metrics"], _results(single / "overfit")["metrics"]
    assert got["train_acc"] == want["train_acc"] and got["train_ppl"] == pytest.approx(want["train_ppl"], rel=1e-5)


def test_tagger_shards_sentences_to_the_single_process_step(runs):
    dp, single = runs
    _assert_close(_model(dp / "pos"), _model(single / "pos"))
    got, want = _results(dp / "pos")["metrics"], _results(single / "pos")["metrics"]
    assert got == pytest.approx(want, rel=1e-6)
    assert "2 processes (gloo), each takes one sentence in 2 of every batch" in \
        (dp / "pos" / "log.txt").read_text()


@pytest.mark.parametrize("name", ["dropout", "sparse"])
def test_interrupted_two_rank_run_resumes_exactly(runs, name):
    dp, _ = runs
    cursor = RunFolder(dp / f"{name}-interrupted").load(TRAIN.last)["cursor"]
    assert cursor["batch"] == 6 and len(cursor["ranks"]) == 2   # both ranks stopped at the vote
    assert [h.shape[1] for h, _ in cursor["hidden"]] == [4, 4]   # the whole batch's columns
    uninterrupted = dp / name
    _assert_equal(_model(dp / f"{name}-resumed"), _model(uninterrupted))
    _assert_equal(_model(dp / f"{name}-resumed", TRAIN.best), _model(uninterrupted, TRAIN.best))
    assert _metrics(dp / f"{name}-resumed") == _metrics(uninterrupted)
    assert _results(dp / f"{name}-resumed")["metrics"] == _results(uninterrupted)["metrics"]


def test_two_rank_checkpoint_resumes_in_one_process(runs):
    dp, single = runs
    _assert_close(_model(single / "sparse-continued"), _model(single / "sparse"))
    assert _results(single / "sparse-continued")["metrics"] == pytest.approx(
        _results(single / "sparse")["metrics"], rel=1e-5)


def test_torchrun_command_line(runs, tmp_path):
    """The real launcher: torchrun's environment, the CLI, rank 0 alone printing."""
    _, single = runs
    config = tmp_path / "dense.yaml"
    config.write_text((single / "dense" / "config.yaml").read_text())
    torchrun = subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "sparseseq_cli", "train-lm", "--config", str(config), "--save", str(tmp_path / "run"),
         "--device", "cpu", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = torchrun.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        torchrun.terminate()                            # torchrun passes it on to its processes
        torchrun.communicate()
        pytest.fail(f"torchrun did not finish within {TIMEOUT} s")
    assert torchrun.returncode == 0, err
    record = json.loads(out)                            # one JSON document: rank 0's
    assert record["metrics"] == pytest.approx(_results(single / "dense")["metrics"], rel=1e-5)
    _assert_close(_model(tmp_path / "run"), _model(single / "dense"))


# ---- a world without processes: sharding and bad input --------------------------------------
def test_columns_of_each_rank():
    data = torch.arange(12).view(2, 6)
    assert World(1, 2).shard_columns(data).tolist() == [[3, 4, 5], [9, 10, 11]]
    assert World(1, 2).shard_columns(data).is_contiguous()      # cuDNN's hidden states must be
    assert World(0, 4).split_columns(data).tolist() == [[0, 1], [6, 7]]
    assert World(3, 4).split_columns(data).tolist() == [[5], [11]]
    assert World(1, 8).split_columns(data[:, :1]).shape == (2, 0)    # no column left: no work
    with pytest.raises(SparseseqError, match="batch_size 6 does not split over 4 processes"):
        World(0, 4).shard_columns(data)


def test_batch_size_not_divisible_fails_before_the_run_folder(tmp_path, make_lm_corpus, make_lm_config, cpu):
    corpus = make_lm_corpus(tmp_path / "corpus", lines=(20, 5, 5))
    cfg = load_config(config_file=make_lm_config(corpus, tmp_path / "t.yaml"))     # batch_size 4
    with pytest.raises(SparseseqError, match=r"^train.batch_size 4 does not split over 3 processes: give "):
        lm.train_lm(cfg, tmp_path / "run", device=cpu, quiet=True, world=World(0, 3))
    assert not (tmp_path / "run").exists()


def test_tagger_batch_shares():
    ids = torch.arange(5 * 3).view(5, 3)                # 3 sentences of lengths 5, 3, 2
    batch = Batch(ids, ids + 100, torch.tensor([5, 3, 2]))
    share = tagging_loop._share(batch, World(1, 2))
    assert share.lengths.tolist() == [3] and share.ids.tolist() == [[1], [4], [7]]
    assert share.tags.tolist() == [[101], [104], [107]]
    assert tagging_loop._share(batch, World(0, 2)).lengths.tolist() == [5, 2]
    assert tagging_loop._share(batch, World(3, 4)) is None   # fewer sentences than ranks
    assert tagging_loop._share(batch, World()) is batch


def test_a_world_of_one_without_torchrun(monkeypatch, cpu):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with data_parallel("cpu") as world:
        assert world == World(0, 1, cpu) and not world.distributed
        assert world.on_main(lambda: 7) == 7 and world.gather("x") == ["x"]
        assert world.stop_now(True, 5) and not world.stop_now(False, 0)
    assert not torch.distributed.is_initialized()


@pytest.mark.parametrize("env, message", [
    ({"WORLD_SIZE": "2"}, "WORLD_SIZE=2 is set but RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT not"),
    ({"WORLD_SIZE": "two"}, "WORLD_SIZE='two' is not a number"),
])
def test_half_a_torchrun_environment_is_one_line_exit_2(tmp_path, monkeypatch, env, message):
    for name in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(app, ["train-lm", "--preset", "lm-tiny", "--save", str(tmp_path / "r"),
                                      "--device", "cpu"], env=env)
    assert result.exit_code == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: " + message), result.stderr


def test_each_rank_takes_the_gpu_of_its_local_rank(monkeypatch, cpu):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    # a torchrun environment of two processes, whose process group is never joined
    monkeypatch.setattr(torch.cuda, "set_device", lambda *args, **kwargs: None)
    monkeypatch.setattr(torch.distributed, "init_process_group", lambda *args, **kwargs: None)
    monkeypatch.setattr(torch.distributed, "destroy_process_group", lambda *args, **kwargs: None)
    for name, value in (("WORLD_SIZE", "2"), ("RANK", "1"), ("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", "1")):
        monkeypatch.setenv(name, value)

    def rank_device(device, local_rank):
        monkeypatch.setenv("LOCAL_RANK", str(local_rank))
        with data_parallel(device) as world:
            return world.device

    assert rank_device("auto", 1) == torch.device("cuda", 1)
    assert rank_device("cpu", 1) == cpu
    with pytest.raises(SparseseqError, match="give --device cuda \\(or auto\\), not cuda:1"):
        rank_device("cuda:1", 0)
    with pytest.raises(SparseseqError, match="local rank 2 has no GPU of its own \\(this node has 2\\)"):
        rank_device("cuda", 2)
