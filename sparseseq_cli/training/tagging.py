"""``train-pos``: train the tagger (SPEC.md section 4) in a run directory.

Each epoch: one pass over the training sentences (length-grouped batches, cross-entropy
over real tokens), then dev accuracy; the model with the best dev accuracy is kept in
``checkpoint_best.pt``. At the end: accuracy after the last epoch (the original's number)
and of the best-dev model, on dev and (when there is a test split) test, over all tokens
and over tokens other than ``-NONE-``. ``--resume`` continues from the last finished epoch
with model, optimizer, random generators and the best-so-far intact.

Under torchrun every rank takes every size-th sentence of each training batch (the batch
is sorted by length, so the shares get about equal tokens), weighs its mean loss by its
share of the batch's tokens, and the gradients are summed over the ranks: one step equals
the single-process step on the whole batch. The ranks evaluate disjoint sets of batches
and add up the counts, which gives exactly the single-process accuracies.
"""
from __future__ import annotations

import json
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, TextIO

import torch
import torch.nn.functional as F

from sparseseq_cli.config import OptimizerName, POSConfig, config_to_dict, dump_config
from sparseseq_cli.corpora import synthetic
from sparseseq_cli.corpora.conll import TaggedCorpus, check_tags, corpus_from_pairs, load_conll_dir
from sparseseq_cli.corpora.tag_batches import (Batch, build_vocabulary, encode,
                                               eval_batches, none_tag_id, train_batches)
from sparseseq_cli.corpora.vocab import Vocabulary
from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.models.tagger import Tagger, real_tokens
from sparseseq_cli.training.distributed import World, data_parallel
from sparseseq_cli.training.progress import Progress
from sparseseq_cli.training.runs import (TRAIN, RunDir, StopRequest, TrainingInterrupted, config_of,
                                         resolve_run, results_record)

TASK = "train-pos"


# ---- data and model --------------------------------------------------------------------
def load_corpus(cfg: POSConfig) -> TaggedCorpus:
    """The configured data: a CoNLL folder, or the built-in synthetic corpus."""
    if cfg.data.path == synthetic.BUILTIN_PATH:
        return corpus_from_pairs(synthetic.tagged_corpus(cfg.data.corpus_seed), synthetic.TAGS)
    folder = Path(cfg.data.path)
    if not folder.exists():
        raise SparseseqError(f"no data folder {folder}: run `sparseseq getdata wsj-pos`, or give "
                             f"--data DIR (train.conll, valid.conll, optionally test.conll and tags.txt)")
    return load_conll_dir(folder)


def build_tagger(cfg: POSConfig, ntoken: int, ntags: int) -> Tagger:
    m = cfg.model
    return Tagger(ntoken, ntags, emsize=m.emsize, nhid=m.nhid, emblocks=m.emblocks,
                  emdensity=m.emdensity, dropouti=m.dropouti, dropoute=m.dropoute,
                  dropouth=m.dropouth, wdrop=m.wdrop,
                  wdrop_directions=("forward", "reverse") if m.wdrop_reverse else ("forward",))


def tagger_params(model: Tagger) -> dict[str, int]:
    """Trainable parameters per part; ``embedding_dense`` is the V x emsize dense equivalent."""
    def count(module):
        return sum(p.numel() for p in module.parameters())

    parts = {"embedding": count(model.embedding),
             "embedding_dense": model.embedding.num_embeddings * model.embedding.embedding_dim,
             "recurrent": count(model.bilstm), "head": count(model.head)}
    return {"total": count(model), **parts}


def make_optimizer(cfg: POSConfig, model: Tagger) -> torch.optim.Optimizer:
    t = cfg.train
    if t.optimizer is OptimizerName.SGD:
        return torch.optim.SGD(model.parameters(), lr=t.lr, momentum=t.momentum, weight_decay=t.wdecay)
    try:   # one fused kernel instead of ~10 ops per tensor: a third of the step time on CPU
        return torch.optim.Adam(model.parameters(), lr=t.lr, weight_decay=t.wdecay, fused=True)
    except RuntimeError:   # torch < 2.4 fuses on CUDA only
        return torch.optim.Adam(model.parameters(), lr=t.lr, weight_decay=t.wdecay)


# ---- one pass ------------------------------------------------------------------------------
def _share(batch: Batch, world: World) -> Optional[Batch]:
    """This rank's sentences of ``batch``: every size-th column from its rank on, trimmed to
    the longest of them; None when the batch has fewer sentences than there are ranks and
    this rank gets none."""
    if not world.distributed:
        return batch
    columns = torch.arange(world.rank, batch.lengths.numel(), world.size)
    if not columns.numel():
        return None
    lengths = batch.lengths[columns]
    steps = int(lengths[0])
    return Batch(batch.ids[:steps, columns], batch.tags[:steps, columns], lengths)


def train_epoch(model: Tagger, optimizer: torch.optim.Optimizer, batches: list[Batch],
                device: torch.device, bar=None, stop: Optional[StopRequest] = None,
                world: World = World()) -> Optional[float]:
    """Mean over batches of the batch's mean token cross-entropy (the original's train loss);
    None when a stop was requested before the pass ended."""
    model.train()
    params = list(model.parameters())
    total = torch.zeros((), device=device)
    for step, batch in enumerate(batches):
        if stop is not None and world.stop_now(stop.requested, step):
            return None
        share = _share(batch, world)
        optimizer.zero_grad(set_to_none=True)
        if share is not None:
            share = share.to(device)
            loss = F.cross_entropy(model(share.ids, share.lengths), real_tokens(share.tags, share.lengths))
            # the ranks' parts of the batch's mean (times 1.0 in a single process)
            loss = loss * (share.tokens / batch.tokens)
            loss.backward()
            total += loss.detach()
        world.sum_gradients(params)
        optimizer.step()
        if bar is not None:
            bar.advance()
    return world.sum(total).item() / max(len(batches), 1)


@dataclass(frozen=True)
class Accuracy:
    correct: int
    total: int
    correct_no_none: int
    total_no_none: int

    @property
    def acc(self) -> float:
        return self.correct / self.total

    @property
    def acc_no_none(self) -> float:
        return self.correct_no_none / self.total_no_none if self.total_no_none else float("nan")


@torch.no_grad()
def evaluate(model: Tagger, batches: list[Batch], device: torch.device, none_id: Optional[int],
             world: World = World()) -> Accuracy:
    """Token accuracy over all tokens, and over tokens whose gold tag is not ``-NONE-``
    (under torchrun each rank counts every size-th batch, and the counts are added)."""
    model.eval()
    counts = torch.zeros(4, dtype=torch.long, device=device)
    for batch in batches[world.rank::world.size]:
        batch = batch.to(device)
        gold = real_tokens(batch.tags, batch.lengths)
        hit = model(batch.ids, batch.lengths).argmax(dim=1) == gold
        real = gold != none_id if none_id is not None else torch.ones_like(hit)
        counts += torch.stack([hit.sum(), hit.new_tensor(hit.numel(), dtype=torch.long),
                               (hit & real).sum(), real.sum()])
    return Accuracy(*world.sum(counts).tolist())


# ---- the run ---------------------------------------------------------------------------------
@dataclass
class TrainingState:
    """Everything besides model and optimizer that an exact resume needs."""
    epoch: int = 0                  # last finished epoch
    best_epoch: int = 0
    best_dev_acc: float = -1.0
    elapsed_s: float = 0.0          # wall time of finished epochs, training and evaluation
    train_s: float = 0.0            # wall time of the training passes only
    train_tokens: int = 0


def _check_resumable(cfg: POSConfig, saved: POSConfig, run: RunDir) -> None:
    """A resumed run keeps its configuration; only the number of epochs may grow."""
    new, old = config_to_dict(cfg), config_to_dict(saved)
    new["train"]["epochs"] = old["train"]["epochs"]
    for section in ("data", "model", "train"):
        for key, value in old[section].items():
            if new[section][key] != value:
                raise SparseseqError(
                    f"--resume continues {run.path} with its saved config, but {section}.{key} differs "
                    f"(saved {value!r}, given {new[section][key]!r}): drop the change (only "
                    f"train.epochs may change), or --force to start over")


def _prepare(cfg: POSConfig, run: RunDir, saved: Optional[dict]) -> tuple[Vocabulary, tuple[str, ...], dict]:
    """Vocabulary, tag set and encoded splits; a resumed run keeps its own vocabulary and tags."""
    corpus = load_corpus(cfg)
    if saved is None:
        vocab, tags = build_vocabulary(corpus.train, cfg.data.vocab_order), corpus.tags
    else:
        _check_resumable(cfg, config_of(saved, str(run.path / TRAIN.last)), run)
        vocab, tags = Vocabulary(saved["vocab"]), tuple(saved["tags"])
        for name, sentences in corpus.splits().items():
            check_tags(sentences, tags, Path(cfg.data.path) / f"{name}.conll", "the run's tag set")
    return vocab, tags, {name: encode(sentences, vocab, tags) for name, sentences in corpus.splits().items()}


def _final_metrics(model: Tagger, run: RunDir, eval_sets: dict, device: torch.device,
                   none_id: Optional[int], last_dev: Accuracy, state: TrainingState,
                   world: World) -> dict[str, Any]:
    """After the last epoch (the original's number) and with the best-dev model."""
    def test_figures(prefix: str, suffix: str) -> dict[str, Optional[float]]:
        result = evaluate(model, eval_sets["test"], device, none_id, world) if "test" in eval_sets else None
        return {f"{prefix}acc{suffix}": result.acc if result else None,
                f"{prefix}acc_no_none{suffix}": result.acc_no_none if result else None}

    metrics = {"dev_acc": last_dev.acc, "dev_acc_no_none": last_dev.acc_no_none, **test_figures("test_", "")}
    model.load_state_dict(world.on_main(lambda: run.load(TRAIN.best))["model"])
    return {**metrics, "best_epoch": state.best_epoch, "best_dev_acc": state.best_dev_acc,
            **test_figures("test_", "_at_best")}


@contextmanager
def _one_cpu_thread(device: torch.device):
    """The tagger's matrices are tiny (e.g. 20 x 40): on CPU, more threads only add OpenMP
    barriers, and on a busy machine those make an epoch 30x slower (3 s vs 95 s measured)."""
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def train_pos(cfg: POSConfig, path: Path, *, device: torch.device, resume: bool = False,
              force: bool = False, quiet: bool = False, stream: Optional[TextIO] = None,
              world: World = World()) -> dict[str, Any]:
    """Train (or resume) a tagger in the run folder ``path``; returns the results.json record.
    Under torchrun ``world`` is this rank's place (see :func:`data_parallel`)."""
    with _one_cpu_thread(device):
        return _train_pos(cfg, path, device=device, resume=resume, force=force, quiet=quiet,
                          stream=stream, world=world)


def _train_pos(cfg: POSConfig, path: Path, *, device: torch.device, resume: bool, force: bool,
               quiet: bool, stream: Optional[TextIO], world: World) -> dict[str, Any]:
    run = world.open_run(lambda: RunDir.open(path, resume=resume, force=force))
    progress = Progress(quiet=quiet or not world.is_main, log=run.log, stream=stream)
    saved = world.on_main(lambda: run.load(TRAIN.last)) if run.resuming else None
    vocab, tags, splits = _prepare(cfg, run, saved)
    none_id = none_tag_id(tags)

    torch.manual_seed(cfg.train.seed)
    model = build_tagger(cfg, len(vocab), len(tags)).to(device)
    world.broadcast_parameters(model)
    world.seed_dropout(cfg.train.seed)
    optimizer = make_optimizer(cfg, model)
    batching = torch.Generator().manual_seed(cfg.train.seed)
    state = TrainingState()
    params = tagger_params(model)
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        batching.set_state(saved["batching"])
        world.restore_rng(saved, cfg.train.seed)
        state = TrainingState(**saved["state"])
        run.trim_metrics(state.epoch)
        progress.line(f"| resuming {run.path} after epoch {state.epoch}")
    else:
        run.write_config(cfg)
        run.write_vocab(vocab.words)
        progress.line(f"| train-pos {cfg.preset or ''} seed {cfg.train.seed} on {device} | vocabulary "
                      f"{len(vocab):,} ({cfg.data.vocab_order.value}) | {len(tags)} tags | sentences "
                      + ", ".join(f"{k} {len(v):,}" for k, v in splits.items()))
        progress.line("| parameters " + ", ".join(f"{k} {v:,}" for k, v in params.items()))
        if world.distributed:
            progress.line(f"| data parallel: {world.size} processes ({world.backend}), each takes "
                          f"one sentence in {world.size} of every batch")
        majority = int(torch.bincount(torch.cat(splits["train"].tags)).argmax())
        share = float((torch.cat(splits["valid"].tags) == majority).float().mean())
        progress.line(f"| baseline: the most frequent training tag ({tags[majority]}) everywhere "
                      f"gives dev acc {share:.4f}")

    eval_sets = {name: eval_batches(split, cfg.train.eval_batch_size) for name, split in splits.items()
                 if name != "train"}
    essentials = {"config": config_to_dict(cfg), "vocab": vocab.words, "tags": list(tags)}
    last_dev = None
    with StopRequest() as stop:
        for epoch in range(state.epoch + 1, cfg.train.epochs + 1):
            start = time.perf_counter()
            batches = train_batches(splits["train"], cfg.train.batch_size, batching)
            batches = batches[:cfg.train.max_batches] if cfg.train.max_batches else batches
            with progress.bar(f"epoch {epoch}", len(batches)) as bar:
                loss = train_epoch(model, optimizer, batches, device, bar, stop, world)
            if loss is None:
                progress.line(f"| stopped during epoch {epoch}")
                raise TrainingInterrupted(f"stopped during epoch {epoch}: `sparseseq train-pos "
                                          f"--resume --save {run.path}` continues after epoch {state.epoch}")
            train_s = time.perf_counter() - start
            last_dev = evaluate(model, eval_sets["valid"], device, none_id, world)
            state.epoch, state.train_s = epoch, state.train_s + train_s
            state.train_tokens += sum(b.tokens for b in batches)
            state.elapsed_s += time.perf_counter() - start
            if last_dev.acc > state.best_dev_acc:
                state.best_epoch, state.best_dev_acc = epoch, last_dev.acc
                run.save(TRAIN.best, {**essentials, "model": model.state_dict(), "epoch": epoch})
            run.save(TRAIN.last, {**essentials, "model": model.state_dict(),
                                  "optimizer": optimizer.state_dict(), "batching": batching.get_state(),
                                  **world.rng_record(), "state": asdict(state)})
            run.append_metrics({"epoch": epoch, "elapsed_s": round(state.elapsed_s, 3),
                                "train_s": round(train_s, 3), "train_loss": loss,
                                "dev_acc": last_dev.acc, "dev_acc_no_none": last_dev.acc_no_none})
            progress.line(f"| epoch {epoch:3d} | time {train_s:6.2f}s train, "
                          f"{time.perf_counter() - start - train_s:5.2f}s dev | train loss {loss:6.4f} | "
                          f"dev acc {last_dev.acc:.4f} | without -NONE- {last_dev.acc_no_none:.4f}")

    if last_dev is None:   # resumed after the last epoch had finished: the final evaluations remain
        last_dev = evaluate(model, eval_sets["valid"], device, none_id, world)
    metrics = _final_metrics(model, run, eval_sets, device, none_id, last_dev, state, world)
    results = results_record(task=TASK, cfg=cfg, params=params, metrics=metrics, epochs=state.epoch,
                             wall_time_s=state.elapsed_s,
                             tokens_per_s=state.train_tokens / state.train_s if state.train_s else None,
                             device=device)
    run.write_results(results)
    line = f"| end of training | dev acc {last_dev.acc:.4f}"
    if metrics["test_acc"] is not None:
        line += f" | test acc {metrics['test_acc']:.4f} (without -NONE- {metrics['test_acc_no_none']:.4f})"
    progress.line(line + f" | best dev acc {state.best_dev_acc:.4f} at epoch {state.best_epoch}")
    return results


# ---- command-line glue ---------------------------------------------------------------------------
def run_command(preset: Optional[str], config_file: Optional[Path], sets: Iterable[str],
                flags: Mapping[str, Any], save: Optional[Path], *, resume: bool, force: bool,
                device: str, print_config: bool, as_json: bool, quiet: bool) -> None:
    """``sparseseq train-pos``: resolve, train, print the results (JSON or one line); under
    torchrun every process trains and rank 0 prints."""
    with data_parallel(device) as world:
        cfg, path = world.on_main(lambda: resolve_run("pos", preset, config_file, sets, flags, save, resume))
        if print_config:
            if world.is_main:
                print(dump_config(cfg), end="")
            return
        record = train_pos(cfg, path, device=world.device, resume=resume, force=force,
                           quiet=quiet or as_json, world=world)
    if not world.is_main:
        return
    if as_json:
        print(json.dumps(record, indent=2))
    elif not quiet:
        m = record["metrics"]
        shown = [f"{key} {m[key]:.4f}" for key in ("dev_acc", "dev_acc_no_none", "test_acc",
                                                    "test_acc_no_none") if m[key] is not None]
        shown.append(f"best_dev_acc {m['best_dev_acc']:.4f} (epoch {m['best_epoch']})")
        print(" | ".join(shown + [f"{record['tokens_per_s']:,.0f} tokens/s"]))
