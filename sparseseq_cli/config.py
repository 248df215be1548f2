"""Presets and configuration: find, load, ``extends``, ``--set`` overrides, validation, dump.

A configuration is three sections, ``data``, ``model`` and ``train``, validated into the
dataclasses below; their defaults are the only defaults (the CLI's dedicated flags default to
"not given"). Keys keep the original code's names. Sources apply in this order, later ones
winning:

    1. the dataclass defaults of the task (lm or pos)
    2. the preset's ``extends`` chain, base first, then the preset itself
    3. ``--config FILE`` (any YAML of the same shape, e.g. a run's saved config.yaml;
       it may ``extends:`` a preset too)
    4. ``--set key=value`` left to right (``nhid=1725`` or ``model.nhid=1725``)
    5. dedicated flags (``--seed``, ``--epochs``, ``--data``, ...)

Values are coerced to the field's type: PyYAML reads ``1e-3`` as a string, so strings are
parsed as numbers where a number is due, and booleans are refused where a number is due.
"""
from __future__ import annotations

import dataclasses
import difflib
import importlib.resources
import json
import typing
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Iterable, Mapping, NamedTuple, Optional, Union

import yaml

from sparseseq_cli.corpora.vocab import VocabOrder
from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.layers.geometry import embedding_geometry, lstm_geometry
from sparseseq_cli.models.sparse_modes import SparseMode, lstm_stack
from sparseseq_cli.tasks import Task


class OptimizerName(str, Enum):
    ADAM = "adam"
    SGD = "sgd"


# ---- language model (SPEC 3; the original's args.py defaults) --------------------------
@dataclass
class LMData:
    path: str = "data/penn"            # a folder with train/valid/test token files, or builtin:toy
    vocab_order: VocabOrder = VocabOrder.UP
    corpus_seed: int = 0               # seed of the built-in synthetic corpus (ignored for files)
    vocab_size: Optional[int] = None   # the corpus's vocabulary size, for count-params without the data


@dataclass
class LMModel:
    emsize: int = 400
    nhid: int = 1150
    nhidlast: Optional[int] = None     # None: emsize, so the decoder can be tied to the embedding
    nlayers: int = 3
    dropout: float = 0.4               # locked dropout on the last LSTM output
    dropouth: float = 0.25             # locked dropout between LSTM layers
    dropouti: float = 0.4              # variational dropout on embedding dimensions
    dropoute: float = 0.1              # dropout of whole words from the embedding
    wdrop: float = 0.5                 # DropConnect on the hidden-to-hidden weights
    dropoutl: Optional[float] = None   # MoS latent dropout; None: dropouth
    n_experts: int = 1                 # > 1: Mixture-of-Softmaxes output
    emblocks: int = 1
    emdensity: float = 1.0
    sparse_mode: SparseMode = SparseMode.DIRECT
    sparse_fract: float = 1.0


@dataclass
class LMTrain:
    lr: float = 30.0
    clip: float = 0.25                 # gradient norm clip; 0 = none
    epochs: int = 500
    batch_size: int = 20
    eval_batch_size: int = 10
    test_batch_size: int = 1
    bptt: int = 70
    max_seq_len_delta: int = 40
    alpha: float = 2.0                 # activation regularization (AR)
    beta: float = 1.0                  # temporal activation regularization (TAR)
    wdecay: float = 1.2e-6
    nonmono: int = 5                   # NT-ASGD: epochs of non-monotone patience
    asgd_patience: int = 20            # stop averaged training after this many worse epochs in a row
    finetune_min_epochs: int = 100     # finetune-lm never stops before this
    momentum: float = 0.0              # SGD momentum (overfit: 0.9)
    lr_gamma: float = 1.0              # learning rate x gamma after each epoch (overfit: 0.97)
    memorize_eps: float = 1e-4         # overfit stops once train accuracy > 1 - memorize_eps
    seed: int = 141
    log_interval: int = 200            # batches between log lines
    max_batches: Optional[int] = None  # smoke runs/sizing: at most this many batches per pass


@dataclass
class LMConfig:
    preset: Optional[str] = None
    task: Task = Task.LM
    data: LMData = field(default_factory=LMData)
    model: LMModel = field(default_factory=LMModel)
    train: LMTrain = field(default_factory=LMTrain)


# ---- part-of-speech tagger (SPEC 4; the original tagger's defaults) ---------------------
@dataclass
class POSData:
    path: str = "data/wsj-pos"         # a folder with train/valid[/test].conll and tags.txt, or builtin:toy
    vocab_order: VocabOrder = VocabOrder.UP
    corpus_seed: int = 0
    vocab_size: Optional[int] = None   # for count-params without the data


@dataclass
class POSModel:
    emsize: int = 100
    nhid: int = 50                     # per direction
    emblocks: int = 1
    emdensity: float = 1.0
    dropouti: float = 0.0
    dropoute: float = 0.0
    dropouth: float = 0.0
    wdrop: float = 0.0
    wdrop_reverse: bool = False        # the original dropped the forward direction's weights only


@dataclass
class POSTrain:
    optimizer: OptimizerName = OptimizerName.ADAM
    lr: float = 0.001
    momentum: float = 0.0
    epochs: int = 300
    batch_size: int = 20
    eval_batch_size: int = 1000        # sentences per dev/test batch (results do not depend on it)
    wdecay: float = 0.0
    seed: int = 1982
    max_batches: Optional[int] = None


@dataclass
class POSConfig:
    preset: Optional[str] = None
    task: Task = Task.POS
    data: POSData = field(default_factory=POSData)
    model: POSModel = field(default_factory=POSModel)
    train: POSTrain = field(default_factory=POSTrain)


Config = Union[LMConfig, POSConfig]
SCHEMAS: dict[Task, type] = {Task.LM: LMConfig, Task.POS: POSConfig}
SECTIONS = ("data", "model", "train")
_TOP_KEYS = ("extends", "task", "preset") + SECTIONS


# ---- presets on disk ---------------------------------------------------------------------
class PresetInfo(NamedTuple):
    name: str
    task: Task
    description: str
    path: Path


def _preset_files() -> dict[str, tuple[Task, Path]]:
    root = importlib.resources.files("sparseseq_cli.configs")
    found: dict[str, tuple[Task, Path]] = {}
    for task in Task:
        folder = root / task.value
        if not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir(), key=lambda e: e.name.rsplit(".", 1)[0]):
            if entry.name.endswith(".yaml"):
                found[entry.name[:-len(".yaml")]] = (task, Path(str(entry)))
    return found


def list_presets() -> list[PresetInfo]:
    """Every shipped preset with the one-line description from its first comment line."""
    presets = []
    for name, (task, path) in _preset_files().items():
        first = path.read_text(encoding="utf-8").splitlines()[:1]
        line = first[0].lstrip("#").strip() if first and first[0].startswith("#") else ""
        if line.startswith(name + ":"):
            line = line[len(name) + 1:].strip()
        presets.append(PresetInfo(name, task, line, path))
    return presets


def print_presets(*, as_json: bool = False) -> None:
    """``sparseseq presets``: one line per preset (or a JSON list)."""
    presets = list_presets()
    if as_json:
        print(json.dumps([{"name": p.name, "task": p.task.value, "description": p.description}
                          for p in presets], indent=2))
        return
    width = max(len(p.name) for p in presets)
    for p in presets:
        print(f"{p.name:<{width}}  {p.task.value:<3}  {p.description}")


def preset_path(name: str) -> Path:
    files = _preset_files()
    if name not in files:
        close = difflib.get_close_matches(name, list(files), n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise SparseseqError(f"unknown preset {name!r}: {hint}`sparseseq presets` lists them all")
    return files[name][1]


# ---- reading YAML ------------------------------------------------------------------------
def _read_yaml(path: Path, what: str) -> dict:
    """``what`` names the file in messages ("preset awd-lstm", "config file x.yaml")."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SparseseqError(f"{what} does not exist: check the path") from None
    except (OSError, UnicodeDecodeError) as err:
        raise SparseseqError(f"cannot read {what} ({err.__class__.__name__}): "
                             f"give a readable UTF-8 YAML file") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise SparseseqError(f"{what} is not valid YAML{where}: fix the syntax") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SparseseqError(f"{what} must be a mapping with data/model/train sections")
    unknown = [k for k in data if k not in _TOP_KEYS]
    if unknown:
        raise SparseseqError(f"unknown top-level key {unknown[0]!r} in {what}: "
                             f"valid keys are {', '.join(_TOP_KEYS)}")
    for section in SECTIONS:
        if data.get(section) is not None and not isinstance(data[section], dict):
            raise SparseseqError(f"section {section!r} in {what} must be a mapping of keys")
    return data


class _Layer(NamedTuple):
    """One source of values, with a name for error messages."""
    source: str
    task: Optional[Task]
    values: dict  # section -> {key: value}


def _chain(path: Path, what: str, seen: tuple[str, ...] = ()) -> list[_Layer]:
    """The layers of a YAML file: its ``extends`` chain (base first), then itself."""
    data = _read_yaml(path, what)
    layers: list[_Layer] = []
    base = data.get("extends")
    if base is not None:
        if not isinstance(base, str):
            raise SparseseqError(f"'extends' in {what} must be a preset name")
        if base in seen:
            raise SparseseqError(f"presets extend each other in a loop: {' -> '.join(seen + (base,))}")
        layers = _chain(preset_path(base), f"preset {base}", seen + (base,))
    task = data.get("task")
    if task is not None:
        task = _coerce_enum(Task, task, "task", what)
    layers.append(_Layer(what, task, {s: dict(data.get(s) or {}) for s in SECTIONS}))
    if data.get("preset") is not None:
        layers[-1].values["__name__"] = str(data["preset"])
    return layers


# ---- coercion ----------------------------------------------------------------------------
_NULLS = ("null", "none", "~", "")
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def _coerce_enum(enum: type[Enum], value: Any, key: str, source: str) -> Enum:
    try:
        return enum(value)
    except ValueError:
        choices = ", ".join(m.value for m in enum)
        raise SparseseqError(f"{key}={value!r} ({source}) is not a valid choice: use one of {choices}") from None


def _coerce(value: Any, kind: Any, key: str, source: str) -> Any:
    """``value`` as the field type ``kind`` (int, float, bool, str, an Enum, or Optional of one)."""
    optional = typing.get_origin(kind) is Union
    if optional:
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
        if value is None or (isinstance(value, str) and value.strip().lower() in _NULLS):
            return None
    elif value is None:
        raise SparseseqError(f"{key} ({source}) needs a value, got null")
    if isinstance(kind, type) and issubclass(kind, Enum):
        return _coerce_enum(kind, value.strip() if isinstance(value, str) else value, key, source)
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    bad = SparseseqError(f"{key} ({source}) must be {names[kind]}, got {value!r}")
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        raise bad
    if kind is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise bad
    if isinstance(value, bool):  # YAML's yes/no/on/off: never a number
        raise bad
    if isinstance(value, str):
        try:
            value = kind(value.strip()) if kind is float else int(value.strip(), 10)
        except ValueError:
            raise bad from None
    if kind is int:
        if isinstance(value, float) and not value.is_integer():
            raise bad
        if not isinstance(value, (int, float)):
            raise bad
        return int(value)
    if not isinstance(value, (int, float)):
        raise bad
    return float(value)


def _field_types(schema: type) -> dict[str, dict[str, Any]]:
    hints = typing.get_type_hints(schema)
    return {s: typing.get_type_hints(hints[s]) for s in SECTIONS}


def _unknown_key(key: str, known: Iterable[str], source: str) -> SparseseqError:
    known = list(known)
    # match on the bare names, so the shared "model." prefix does not make everything close
    bare = {k.rsplit(".", 1)[-1]: k for k in known}
    close = [bare[k] for k in difflib.get_close_matches(key.rsplit(".", 1)[-1], list(bare), n=3)]
    hint = f"did you mean {' or '.join(close)}?" if close else f"valid keys: {', '.join(known)}"
    return SparseseqError(f"unknown key {key!r} ({source}): {hint}")


def _resolve_key(key: str, types: dict[str, dict[str, Any]], source: str) -> tuple[str, str]:
    """``section.key`` or a bare key found in exactly one section."""
    if "." in key:
        section, name = key.split(".", 1)
        if section not in types:
            raise SparseseqError(f"unknown section {section!r} in {key!r} ({source}): "
                                 f"use one of {', '.join(SECTIONS)}")
        if name not in types[section]:
            raise _unknown_key(key, [f"{section}.{k}" for k in types[section]], source)
        return section, name
    owners = [s for s in SECTIONS if key in types[s]]
    if not owners:
        raise _unknown_key(key, [k for s in SECTIONS for k in types[s]], source)
    if len(owners) > 1:
        raise SparseseqError(f"key {key!r} ({source}) is in several sections: write "
                             f"{' or '.join(f'{s}.{key}' for s in owners)}")
    return owners[0], key


def parse_override(text: str) -> tuple[str, str]:
    """``key=value`` split on the first ``=``."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise SparseseqError(f"--set {text!r} must look like key=value (e.g. --set nhid=1725)")
    return key.strip(), value


# ---- validation ----------------------------------------------------------------------------
def _check_range(cfg: Config) -> None:
    def need(ok: bool, key: str, rule: str) -> None:
        if not ok:
            section, name = key.split(".")
            value = getattr(getattr(cfg, section), name)
            raise SparseseqError(f"{key}={value} is out of range: it must be {rule}")

    m, t = cfg.model, cfg.train
    positive_ints = ["model.emsize", "model.nhid", "model.emblocks", "train.epochs", "train.batch_size"]
    if isinstance(cfg, LMConfig):
        positive_ints += ["model.nlayers", "model.n_experts", "train.eval_batch_size",
                          "train.test_batch_size", "train.bptt", "train.log_interval",
                          "train.asgd_patience"]
        need(m.nhidlast is None or m.nhidlast >= 1, "model.nhidlast", ">= 1 (or null: emsize)")
        need(t.max_seq_len_delta >= 0, "train.max_seq_len_delta", ">= 0")
        need(t.nonmono >= 0, "train.nonmono", ">= 0")
        need(t.finetune_min_epochs >= 0, "train.finetune_min_epochs", ">= 0")
        need(t.clip >= 0, "train.clip", ">= 0 (0 = no clipping)")
        need(t.alpha >= 0, "train.alpha", ">= 0")
        need(t.beta >= 0, "train.beta", ">= 0")
        need(0 < t.lr_gamma <= 1, "train.lr_gamma", "in (0, 1]")
        need(0 < t.memorize_eps < 1, "train.memorize_eps", "in (0, 1)")
        need(0 < m.sparse_fract <= 1, "model.sparse_fract", "in (0, 1]")
        need(m.dropoutl is None or 0 <= m.dropoutl < 1, "model.dropoutl", "in [0, 1) (or null: dropouth)")
        for name in ("dropout", "dropouth", "dropouti", "dropoute", "wdrop"):
            need(0 <= getattr(m, name) < 1, f"model.{name}", "in [0, 1)")
    else:
        positive_ints.append("train.eval_batch_size")
        for name in ("dropouth", "dropouti", "dropoute", "wdrop"):
            need(0 <= getattr(m, name) < 1, f"model.{name}", "in [0, 1)")
    for key in positive_ints:
        section, name = key.split(".")
        need(getattr(getattr(cfg, section), name) >= 1, key, ">= 1")
    need(t.lr > 0, "train.lr", "> 0")
    need(t.momentum >= 0, "train.momentum", ">= 0")
    need(t.wdecay >= 0, "train.wdecay", ">= 0")
    need(t.max_batches is None or t.max_batches >= 1, "train.max_batches", ">= 1 (or null: all)")


def _check_sparse(cfg: Config) -> None:
    """Refuse sparse settings the layers could not build, naming the config keys."""
    m = cfg.model
    try:
        # the block geometry's validity does not depend on the vocabulary size
        embedding_geometry(10_000, m.emsize, blocks=m.emblocks, density=m.emdensity)
    except ValueError as err:
        raise SparseseqError(f"model.emblocks={m.emblocks}, model.emdensity={m.emdensity} are "
                             f"infeasible: {err}") from None
    if not isinstance(cfg, LMConfig):
        return
    nhidlast = m.emsize if m.nhidlast is None else m.nhidlast
    try:
        stack = lstm_stack(m.emsize, m.nhid, nhidlast, m.nlayers, m.sparse_mode, m.sparse_fract)
    except ValueError as err:
        raise SparseseqError(f"model.sparse_mode={m.sparse_mode.value} with model.nlayers="
                             f"{m.nlayers}: {err}") from None
    for i, spec in enumerate(stack):
        try:
            lstm_geometry(spec.input_size, spec.hidden_size,
                          reduce_in=spec.reduce_in, reduce_out=spec.reduce_out)
        except ValueError as err:
            raise SparseseqError(
                f"model.sparse_fract={m.sparse_fract} is infeasible for LSTM layer {i} "
                f"({spec.input_size} -> {spec.hidden_size}) in sparse_mode {m.sparse_mode.value}: "
                f"{err}; raise sparse_fract") from None


# ---- the one entry point -------------------------------------------------------------------
def load_config(preset: str | None = None, config_file: str | Path | None = None,
                overrides: Iterable[str] = (), flags: Mapping[str, Any] | None = None,
                task: Task | str | None = None) -> Config:
    """Resolve a configuration (see the module docstring for the order).

    ``overrides`` are ``--set`` strings; ``flags`` maps ``section.key`` to the value of a
    dedicated flag, ``None`` meaning "not given". ``task`` is the task the caller runs; a
    preset or file of another task is an error.
    """
    layers: list[_Layer] = []
    name = preset
    if preset is not None:
        layers += _chain(preset_path(preset), f"preset {preset}", (preset,))
    if config_file is not None:
        path = Path(config_file)
        file_layers = _chain(path, f"config file {path}")
        layers += file_layers
        name = file_layers[-1].values.pop("__name__", None) or name or path.stem
    for layer in layers:
        layer.values.pop("__name__", None)

    declared = [(layer.task, layer.source) for layer in layers if layer.task is not None]
    wanted = Task(task) if task is not None else None
    for found, source in declared:
        if wanted is not None and found is not wanted:
            raise SparseseqError(f"{source} is a {found.value} configuration, not {wanted.value}: "
                                 f"use a {wanted.value} preset (see `sparseseq presets`)")
        wanted = found
    if wanted is None:
        if preset is None and config_file is None:
            wanted = Task.LM
        else:
            raise SparseseqError(f"{layers[-1].source} does not say its task: add 'task: lm' or 'task: pos'")

    schema = SCHEMAS[wanted]
    types = _field_types(schema)
    values: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    for layer in layers:
        for section in SECTIONS:
            for key, value in layer.values[section].items():
                if key not in types[section]:
                    raise _unknown_key(f"{section}.{key}", [f"{section}.{k}" for k in types[section]],
                                       layer.source)
                values[section][key] = _coerce(value, types[section][key], f"{section}.{key}", layer.source)
    for text in overrides:
        key, raw = parse_override(text)
        section, field_name = _resolve_key(key, types, f"--set {text}")
        values[section][field_name] = _coerce(raw, types[section][field_name], f"{section}.{field_name}",
                                              f"--set {text}")
    for key, value in (flags or {}).items():
        if value is None:
            continue
        section, field_name = key.split(".")
        values[section][field_name] = _coerce(value, types[section][field_name], key, "flag")

    sections = typing.get_type_hints(schema)
    cfg = schema(preset=name, task=wanted,
                 **{s: sections[s](**values[s]) for s in SECTIONS})
    _check_range(cfg)
    _check_sparse(cfg)
    return cfg


def config_from_dict(data: Mapping[str, Any], source: str = "saved config") -> Config:
    """Rebuild a resolved configuration (as :func:`config_to_dict` wrote it), validated."""
    task = _coerce_enum(Task, data.get("task", "lm"), "task", source)
    schema = SCHEMAS[task]
    types = _field_types(schema)
    sections = typing.get_type_hints(schema)
    built = {}
    for section in SECTIONS:
        given = dict(data.get(section) or {})
        for key in given:
            if key not in types[section]:
                raise _unknown_key(f"{section}.{key}", types[section], source)
        built[section] = sections[section](**{k: _coerce(v, types[section][k], f"{section}.{k}", source)
                                              for k, v in given.items()})
    cfg = schema(preset=data.get("preset"), task=task, **built)
    _check_range(cfg)
    _check_sparse(cfg)
    return cfg


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """Plain data (enums as their values): the form written to config.yaml and checkpoints."""
    def plain(value: Any) -> Any:
        return value.value if isinstance(value, Enum) else value

    out: dict[str, Any] = {"preset": cfg.preset, "task": cfg.task.value}
    for section in SECTIONS:
        out[section] = {f.name: plain(getattr(getattr(cfg, section), f.name))
                        for f in dataclasses.fields(getattr(cfg, section))}
    return out


def dump_config(cfg: Config) -> str:
    """The resolved configuration as YAML, loadable again with ``--config``."""
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=False)


def run_name(cfg: Config) -> str:
    """Default run directory name: ``<preset>-seed<seed>``."""
    return f"{cfg.preset or cfg.task.value}-seed{cfg.train.seed}"
