"""Fixtures shared by the test modules: the CPU device, tiny language-model data, the getdata
server and archives, and hand-written run folders for the report tests.

The helpers behind them live in the package tests/support/, which only this file imports
(relatively: tests/ is a package, so this works wherever pytest is started and in either
import mode). Test modules ask for fixtures; none imports another test module or tests/support.

Fixtures that return a helper function or class are session-scoped (module-scoped fixtures may
use them); those that return data hand each test its own copy.
"""
import functools

import pytest
import torch

from .support import getdata as getdata_support
from .support import lm as lm_support
from .support import report as report_support


# ---- devices ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def cpu() -> torch.device:
    return torch.device("cpu")


# ---- language models: tiny corpora and configs --------------------------------------------------
@pytest.fixture(scope="session")
def make_lm_corpus(tmp_path_factory):
    """``make_lm_corpus(folder=None, lines=(240, 40, 40), seed=0, grammatical=False)``: writes
    train/valid/test.txt of short sentences over ten words into ``folder`` (a fresh temporary
    folder when None) and returns the folder."""
    def make(folder=None, **kw):
        return lm_support.write_corpus(tmp_path_factory.mktemp("corpus") if folder is None else folder, **kw)
    return make


@pytest.fixture
def lm_corpus(make_lm_corpus, tmp_path):
    """The default corpus of make_lm_corpus, in tmp_path / "corpus"."""
    return make_lm_corpus(tmp_path / "corpus")


@pytest.fixture(scope="session")
def make_lm_config(tmp_path_factory):
    """``make_lm_config(data, path=None, **train)``: writes the config of a tiny sparse 2-layer
    model on the corpus folder ``data`` to ``path`` (a fresh temporary "tiny.yaml" when None; the
    file name is the run's preset name) and returns the path; ``train`` keys override the train
    section."""
    def make(data, path=None, **train):
        if path is None:
            path = tmp_path_factory.mktemp("config") / "tiny.yaml"
        return lm_support.write_config(path, data, **train)
    return make


@pytest.fixture
def table_3_1() -> dict:
    """The presets table of docs/training.md at V = 10,000: preset -> (recurrent, total)."""
    return dict(lm_support.TABLE_3_1)


@pytest.fixture(params=sorted(lm_support.TABLE_3_1))
def table_3_1_preset(request) -> str:
    """Each preset of table_3_1 in turn (a test asking for it runs once per preset)."""
    return request.param


@pytest.fixture(scope="session")
def stop_after():
    """The class ``StopAfter(n)``: a StopRequest whose Ctrl-C arrives at the n-th check (one
    check per batch). A class, so it also pickles into spawned processes."""
    return lm_support.StopAfter


@pytest.fixture
def script_validation(monkeypatch):
    """``script_validation(losses)``: from now on (in this test) the LM phases' validation
    losses are ``losses``, in order; training and testing still run for real."""
    return functools.partial(lm_support.script_validation, monkeypatch)


# ---- getdata: a local HTTP server, archives, a registry -------------------------------------------
@pytest.fixture
def file_server():
    """A running FileServer on 127.0.0.1 (files, statuses, delays, cuts, requests, url()),
    stopped after the test."""
    with getdata_support.FileServer() as server:
        yield server


@pytest.fixture
def closed_file_server():
    """A FileServer that was started and stopped again: its addresses refuse connections."""
    with getdata_support.FileServer() as server:
        pass
    return server


@pytest.fixture(scope="session")
def closed_port_url():
    """``closed_port_url(path="x.tgz")``: an address on 127.0.0.1 where nothing listens."""
    return getdata_support.closed_port_url


@pytest.fixture(scope="session")
def make_tar():
    """``make_tar(members, links=None)``: the bytes of a reproducible .tgz."""
    return getdata_support.make_tar


@pytest.fixture(scope="session")
def make_zip():
    """``make_zip(members, symlinks=None)``: the bytes of a reproducible .zip."""
    return getdata_support.make_zip


@pytest.fixture(params=[getdata_support.make_tar, getdata_support.make_zip], ids=["make_tar", "make_zip"])
def make_archive(request):
    """make_tar, then make_zip (a test asking for it runs once with each)."""
    return request.param


@pytest.fixture
def ptb_text() -> dict:
    """The three small PTB files: split -> bytes."""
    return dict(getdata_support.PTB_TEXT)


@pytest.fixture
def wiki_text() -> dict:
    """The three small WikiText-2 files: split -> bytes."""
    return dict(getdata_support.WIKI_TEXT)


@pytest.fixture(scope="session")
def ptb_archive():
    """``ptb_archive(files=PTB_TEXT)``: a repackaged simple-examples.tgz of ``files``."""
    return getdata_support.ptb_archive


@pytest.fixture(scope="session")
def wiki_archive():
    """``wiki_archive(files=WIKI_TEXT)``: a wikitext-2-v1.zip of ``files``."""
    return getdata_support.wiki_archive


@pytest.fixture(scope="session")
def getdata_registry():
    """``getdata_registry(server, wiki_zip=None)``: a registry like the real one, pointing at
    ``server`` and at the test files' hashes."""
    return getdata_support.registry


@pytest.fixture(scope="session")
def sha():
    """``sha(data)``: the sha256 hex digest of ``data``."""
    return getdata_support.sha


@pytest.fixture(scope="session")
def snapshot():
    """``snapshot(folder)``: every file under ``folder`` with its content."""
    return getdata_support.snapshot


# ---- report: run folders written by hand --------------------------------------------------------
@pytest.fixture(scope="session")
def write_run():
    """``write_run(root, name, phase, config, metrics, params, epochs=3, log=None,
    finetune=None, finished=True, wall_time_s=10.0, tokens_per_s=1000.0)``: a run folder as the
    training commands leave it (``finished=False``: no results.json)."""
    return report_support.write_run


@pytest.fixture(scope="session")
def pos_config():
    """``pos_config(preset="pos-tiny", seed=1, emsize=5, emblocks=1, emdensity=1.0,
    vocab_order="up")``: a tagger run's config as a dict."""
    return report_support.pos_config


@pytest.fixture(scope="session")
def lm_config():
    """``lm_config(preset, seed, **model)``: a language-model run's config as a dict."""
    return report_support.lm_config


@pytest.fixture(scope="session")
def pos_metrics():
    """``pos_metrics(dev, test=None, best_epoch=3)``: a tagger run's metrics."""
    return report_support.pos_metrics


@pytest.fixture(scope="session")
def lm_metrics():
    """``lm_metrics(valid_ppl, test_ppl)``: a language-model run's metrics."""
    return report_support.lm_metrics


@pytest.fixture(scope="session")
def by_hand():
    """``by_hand(values)``: mean and sample standard deviation, written out independently."""
    return report_support.by_hand


@pytest.fixture
def pos_params() -> dict:
    """A tagger run's parameter counts."""
    return dict(report_support.POS_PARAMS)


@pytest.fixture
def lm_params() -> dict:
    """An awd-lstm run's parameter counts."""
    return dict(report_support.LM_PARAMS)


# A tagging sweep: two settings (dense emsize 5, sparse emsize 20 at density 0.25), three seeds each.
@pytest.fixture
def dense_dev() -> list:
    return list(report_support.DENSE_DEV)


@pytest.fixture
def dense_test() -> list:
    return list(report_support.DENSE_TEST)


@pytest.fixture
def sparse_dev() -> list:
    return list(report_support.SPARSE_DEV)


@pytest.fixture
def sparse_test() -> list:
    return list(report_support.SPARSE_TEST)
