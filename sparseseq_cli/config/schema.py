"""The configuration's shape: the dataclasses of each task, whose defaults are the only defaults.

A configuration is four sections, ``data``, ``model``, ``train`` and ``log``. Keys keep the original
code's names; docs/training.md gives the recipes these defaults reproduce.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Optional, Union

from sparseseq_cli.corpora.vocab import VocabOrder
from sparseseq_cli.models.sparse_modes import SparseMode
from sparseseq_cli.tasks import Task


class OptimizerName(str, Enum):
    ADAM = "adam"
    SGD = "sgd"


class Precision(str, Enum):
    """What the forward pass computes in (autocast); weights, optimizer, averaging and
    checkpoints stay fp32 whatever it is."""
    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"      # CUDA only, with a gradient scaler


@dataclass
class Log:
    """What a run records besides its run folder's files (changing it changes no number)."""
    tensorboard: bool = False          # also write TensorBoard events to RUN/tensorboard/


# ---- language model (the original's args.py defaults) ------------------------------------
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
    precision: Precision = Precision.FP32


@dataclass
class LMConfig:
    preset: Optional[str] = None
    task: Task = Task.LM
    data: LMData = field(default_factory=LMData)
    model: LMModel = field(default_factory=LMModel)
    train: LMTrain = field(default_factory=LMTrain)
    log: Log = field(default_factory=Log)


# ---- part-of-speech tagger (the original tagger's defaults) -------------------------------
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
    precision: Precision = Precision.FP32


@dataclass
class POSConfig:
    preset: Optional[str] = None
    task: Task = Task.POS
    data: POSData = field(default_factory=POSData)
    model: POSModel = field(default_factory=POSModel)
    train: POSTrain = field(default_factory=POSTrain)
    log: Log = field(default_factory=Log)


Config = Union[LMConfig, POSConfig]
SCHEMAS: dict[Task, type] = {Task.LM: LMConfig, Task.POS: POSConfig}
SECTIONS = ("data", "model", "train", "log")
