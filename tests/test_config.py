"""Presets, extends, --set coercion, validation and the resolved-config round trip."""
import pytest
import yaml
from typer.testing import CliRunner

from sparseseq_cli.cli import app
from sparseseq_cli.config import presets as presets_module
from sparseseq_cli.config import (LMConfig, POSConfig, Task, config_to_dict, dump_config,
                                  list_presets, load_config, run_name)
from sparseseq_cli.corpora.vocab import VocabOrder
from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.models.sparse_modes import SparseMode

LM_PRESETS = {"awd-lstm", "awd-sparse", "recite-dense", "recite-dense-reduced", "recite-sparse1",
              "recite-sparse2", "awd-lstm-wt2", "awd-sparse-wt2", "lm-tiny"}


def test_every_lm_preset_is_listed_with_a_description_and_loads():
    presets = {p.name: p for p in list_presets()}
    assert LM_PRESETS <= set(presets)
    for name in LM_PRESETS:
        assert presets[name].task is Task.LM and len(presets[name].description) > 20
        cfg = load_config(name)
        assert isinstance(cfg, LMConfig) and cfg.preset == name


def test_extends_chain_and_preset_values():
    sparse = load_config("awd-sparse")
    assert (sparse.model.nhid, sparse.model.sparse_mode, sparse.model.sparse_fract) == \
        (1725, SparseMode.SPARSE_HIDDEN, 0.66666)
    assert sparse.train.lr == 30.0 and sparse.model.wdrop == 0.5       # from awd-lstm
    wt2 = load_config("awd-sparse-wt2")
    assert (wt2.model.nhid, wt2.model.dropouth, wt2.model.dropouti, wt2.train.epochs, wt2.train.seed) == \
        (1725, 0.2, 0.65, 750, 1882)
    recite = load_config("recite-sparse2")
    assert (recite.model.emblocks, recite.model.emdensity, recite.model.sparse_mode) == \
        (10, 0.5, SparseMode.SPARSE_ALL)
    assert (recite.model.dropout, recite.train.momentum, recite.train.lr_gamma, recite.train.seed) == \
        (0.0, 0.9, 0.97, 0)


def test_overrides_apply_in_order_and_coerce():
    cfg = load_config("awd-lstm", overrides=["nhid=1725", "model.nhid=800", "wdecay=1e-3",
                                             "nhidlast=null", "max_batches=3", "vocab_order=down"],
                      flags={"train.seed": 7, "train.epochs": None, "data.path": "somewhere"})
    assert cfg.model.nhid == 800 and cfg.train.wdecay == 0.001 and cfg.model.nhidlast is None
    assert cfg.train.max_batches == 3 and cfg.data.vocab_order is VocabOrder.DOWN
    assert cfg.train.seed == 7 and cfg.train.epochs == 500 and cfg.data.path == "somewhere"
    assert run_name(cfg) == "awd-lstm-seed7"
    # a value may contain "=": split on the first one only
    assert load_config("awd-lstm", overrides=["path=a=b"]).data.path == "a=b"


def test_sources_apply_in_the_documented_order(tmp_path):
    # defaults, extends chain, preset, --config, --set left to right, flags
    file = tmp_path / "c.yaml"
    file.write_text("train: {seed: 5}\n")

    def seed(**sources):
        return load_config("awd-sparse-wt2", **sources).train.seed

    assert load_config().train.seed == 141 and seed() == 1882
    assert seed(config_file=file) == 5
    assert seed(config_file=file, overrides=["seed=3", "seed=4"]) == 4
    assert seed(config_file=file, overrides=["seed=3"], flags={"train.seed": 7}) == 7
    assert seed(overrides=["seed=3"], flags={"train.seed": None}) == 3   # a flag not given


def test_dedicated_flag_wins_over_set_on_the_command_line():
    result = CliRunner().invoke(app, ["train-pos", "--preset", "pos-tiny", "--set", "seed=3",
                                      "--seed", "7", "--set", "epochs=2", "--print-config"])
    assert result.exit_code == 0, result.output
    train = yaml.safe_load(result.stdout)["train"]
    assert (train["seed"], train["epochs"]) == (7, 2)   # --epochs not given keeps the --set


def test_config_file_layers_on_the_preset_and_round_trips(tmp_path):
    file = tmp_path / "mine.yaml"
    file.write_text("extends: awd-lstm\nmodel: {nhid: 64}\ntrain: {wdecay: 1e-5, seed: 3}\n")
    cfg = load_config(config_file=file)
    assert cfg.model.nhid == 64 and cfg.train.wdecay == 1e-5 and cfg.preset == "mine"
    saved = tmp_path / "config.yaml"
    saved.write_text(dump_config(cfg))
    again = load_config(config_file=saved)
    assert config_to_dict(again) == config_to_dict(cfg) and again.preset == "mine"
    plain = tmp_path / "plain.yaml"
    plain.write_text("model: {nhid: 64}\n")
    on_preset = load_config("awd-sparse", config_file=plain)
    assert on_preset.model.nhid == 64 and on_preset.model.sparse_mode is SparseMode.SPARSE_HIDDEN


def test_no_source_gives_the_defaults():
    cfg = load_config()
    assert cfg.task is Task.LM and cfg.model.emsize == 400 and cfg.train.seed == 141


@pytest.mark.parametrize("overrides, message", [
    (["nhidd=3"], "unknown key 'nhidd'.*did you mean nhid"),
    (["model.nhd=3"], "did you mean model.nhid"),
    (["x.nhid=3"], "unknown section 'x'"),
    (["nhid"], "must look like key=value"),
    (["seed=x"], "train.seed .* must be an integer"),
    (["nhid=3.5"], "model.nhid .* must be an integer"),
    (["lr=yes"], "train.lr .* must be a finite number"),
    (["epochs="], "train.epochs .* must be an integer"),
    (["sparse_mode=wide"], "not a valid choice: use one of direct, sparse_hidden"),
    (["dropout=1.0"], r"model.dropout=1.0 is out of range: it must be in \[0, 1\)"),
    (["batch_size=0"], "train.batch_size=0 is out of range"),
    (["sparse_mode=sparse_all", "sparse_fract=0.001"], "model.sparse_fract=0.001 is infeasible"),
    (["nlayers=1", "sparse_mode=sparse_emb"], "needs nlayers >= 2"),
    (["emblocks=10", "emdensity=0.05"], "model.emblocks=10, model.emdensity=0.05 are infeasible"),
    (["emblocks=1", "emdensity=0.5"], "infeasible"),
])
def test_bad_overrides_are_one_line_errors(overrides, message):
    with pytest.raises(SparseseqError, match=message) as err:
        load_config("awd-lstm", overrides=overrides)
    assert "\n" not in str(err.value)


def test_yaml_booleans_are_refused_for_numbers(tmp_path):
    file = tmp_path / "c.yaml"
    file.write_text("task: lm\ntrain: {lr: yes}\n")
    with pytest.raises(SparseseqError, match="train.lr .*must be a finite number, got True"):
        load_config(config_file=file)


@pytest.mark.parametrize("text, message", [
    ("task: lm\nmodel: {nhid: [1, 2]}\n", "must be an integer"),
    ("task: lm\nmodel: {bogus: 1}\n", "unknown key 'model.bogus'"),
    ("task: lm\nweird: {}\n", "unknown top-level key 'weird'"),
    ("task: lm\nmodel: 3\n", "section 'model' .* must be a mapping"),
    ("- a\n- b\n", "must be a mapping"),
    ("task: lm\nmodel: {nhid: 3\n", "not valid YAML"),
    ("task: chess\n", "task='chess' .* not a valid choice"),
    ("task: pos\n", "is a pos configuration, not lm"),
    ("extends: no-such-preset\n", "unknown preset 'no-such-preset'"),
])
def test_bad_config_files(tmp_path, text, message):
    file = tmp_path / "c.yaml"
    file.write_text(text)
    with pytest.raises(SparseseqError, match=message):
        load_config(config_file=file, task="lm")


def test_missing_and_non_utf8_config_files(tmp_path):
    with pytest.raises(SparseseqError, match="does not exist"):
        load_config(config_file=tmp_path / "absent.yaml")
    (tmp_path / "bin.yaml").write_bytes(b"task: lm\n\xff\xfe")
    with pytest.raises(SparseseqError, match="config file .* is not UTF-8 text"):
        load_config(config_file=tmp_path / "bin.yaml")


def test_a_file_must_say_its_task_when_the_caller_does_not(tmp_path):
    (tmp_path / "c.yaml").write_text("model: {nhid: 3}\n")
    assert load_config(config_file=tmp_path / "c.yaml", task="lm").model.nhid == 3
    with pytest.raises(SparseseqError, match="does not say its task"):
        load_config(config_file=tmp_path / "c.yaml")


def test_unknown_preset_suggests_close_names():
    with pytest.raises(SparseseqError, match="unknown preset 'awd-sparce': did you mean awd-sparse"):
        load_config("awd-sparce")


def test_extends_loop_is_detected(tmp_path, monkeypatch):
    (tmp_path / "a.yaml").write_text("extends: b\ntask: lm\n")
    (tmp_path / "b.yaml").write_text("extends: a\n")
    monkeypatch.setattr(presets_module, "_preset_files",
                        lambda: {n: (Task.LM, tmp_path / f"{n}.yaml") for n in "ab"})
    with pytest.raises(SparseseqError, match="loop: a -> b -> a"):
        load_config("a")


def test_pos_schema_defaults_and_task_check(tmp_path):
    file = tmp_path / "p.yaml"
    file.write_text("task: pos\nmodel: {emsize: 20, emblocks: 20, emdensity: 0.25}\n"
                    "train: {optimizer: sgd, momentum: 0.9}\n")
    cfg = load_config(config_file=file, task="pos")
    assert isinstance(cfg, POSConfig) and cfg.model.emblocks == 20 and cfg.train.seed == 1982
    assert cfg.train.optimizer.value == "sgd" and cfg.model.wdrop_reverse is False
    assert yaml.safe_load(dump_config(cfg))["train"]["optimizer"] == "sgd"
    with pytest.raises(SparseseqError, match="is a lm configuration, not pos"):
        load_config("awd-lstm", task="pos")
