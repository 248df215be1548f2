"""``load_run``: a trained run from Python, and what each kind of run can do.

    from sparseseq_cli import load_run
    run = load_run("runs/awd-sparse-seed141")      # the best checkpoint, on the CPU
    run.score(["the market fell", "stocks rose"]).ppl
    print(run.generate(words=50, seed=1))

A language model's run (:class:`LanguageModelRun`) scores and generates; a tagger's
(:class:`TaggerRun`) tags. The commands ``score``, ``generate`` and ``tag`` call these.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch

from sparseseq_cli.config import config_from_dict
from sparseseq_cli.corpora.lm_data import token_ids
from sparseseq_cli.corpora.vocab import Vocabulary
from sparseseq_cli.devices import resolve_device
from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.inference import generation, scoring, tagging
from sparseseq_cli.inference.run import Run, check_task, open_checkpoint
from sparseseq_cli.models.language_model import LanguageModel
from sparseseq_cli.models.tagger import Tagger


@dataclass
class LanguageModelRun(Run):
    """A trained language model (train-lm, finetune-lm or overfit)."""

    def score(self, lines: Any, independent: bool = False, *, source: str = "the text") -> scoring.Scores:
        """Log-probabilities (natural log) of ``lines`` (strings of whitespace-separated
        words, or lists of words), one text with the state carried over (the default) or
        each line from a fresh state; see :mod:`sparseseq_cli.inference.scoring`."""
        score = scoring.score_independent if independent else scoring.score_continuous
        with self.autocast():
            return score(self.model, self.vocab, scoring.split_lines(lines), bptt=self.config.train.bptt,
                         device=self.device, source=source)

    def generate(self, words: int = 100, temperature: float = 1.0, seed: Optional[int] = None,
                 prompt: Optional[str] = None) -> str:
        """``words`` sampled tokens after ``prompt``, a line break for each ``<eos>``; see
        :mod:`sparseseq_cli.inference.generation`."""
        with self.autocast():
            return generation.generate(self.model, self.vocab, words=words, temperature=temperature,
                                       seed=seed, prompt=prompt, device=self.device)

    def encode(self, line: str) -> torch.Tensor:
        """A line's word ids as the model reads them, (T, 1) on the run's device (words outside
        the vocabulary as ``<unk>``): the input for ``run.model(ids, run.model.init_hidden(1))``."""
        ids, _ = token_ids(line.split(), self.vocab, "the line")
        return ids.unsqueeze(1).to(self.device)


@dataclass
class TaggerRun(Run):
    """A trained part-of-speech tagger (train-pos)."""
    tags: tuple[str, ...] = ()

    def tag(self, sentences: Any) -> list[list[str]]:
        """One predicted tag per word of each sentence (a string or a list of words)."""
        return self.tag_sentences(tagging.as_sentences(sentences), gold=False).tags

    def tag_sentences(self, sentences: list, *, gold: bool) -> tagging.Tagged:
        """``corpora.conll.Sentence`` objects; with ``gold`` their tags give the accuracy."""
        with self.autocast():
            return tagging.tag_sentences(self.model, self.vocab, self.tags, sentences, gold=gold,
                                         batch_size=self.config.train.eval_batch_size, device=self.device)

    def encode(self, sentence: str) -> torch.Tensor:
        """A sentence's word ids, (T, 1) on the run's device, unknown words as ``<unk>``."""
        ids, _ = token_ids(sentence.split(), self.vocab, "the sentence")
        return ids.unsqueeze(1).to(self.device)


def load_run(path: str | Path, finetuned: bool = False, device: str | torch.device = "cpu", *,
             task: Optional[str] = None) -> LanguageModelRun | TaggerRun:
    """The best model of the run folder ``path`` (``finetuned``: finetune-lm's best), in eval
    mode on ``device``. ``task`` ("lm" or "pos"), when given, refuses a run of the other task.
    ``run.note`` says when the run is unfinished (its best model so far is used)."""
    device = resolve_device(device)
    folder, ckpt, note = open_checkpoint(path, finetuned=finetuned)
    where = str(folder.path / folder.files.best)
    found = check_task(ckpt, folder.path, task)
    try:
        cfg = config_from_dict(ckpt["config"], where)
        vocab = Vocabulary(ckpt["vocab"])
        common = dict(path=folder.path, checkpoint=folder.files.best, epoch=ckpt.get("epoch"), task=found,
                      phase=ckpt.get("phase", ""), config=cfg, vocab=vocab, device=device,
                      finished=folder.finished(), note=note)
        if found == "lm":
            model = LanguageModel.from_config(cfg.model, len(vocab))
            run: LanguageModelRun | TaggerRun = LanguageModelRun(model=model, **common)
        else:
            tags = tuple(ckpt["tags"])
            model = Tagger.from_config(cfg.model, len(vocab), len(tags))
            run = TaggerRun(model=model, tags=tags, **common)
        model.load_state_dict(ckpt["model"])
    except (KeyError, RuntimeError) as err:   # a key missing, or weights of another shape
        raise SparseseqError(f"checkpoint {where} does not fit its own configuration "
                             f"({err.__class__.__name__}): retrain with this version") from None
    model.to(device).eval()
    return run
