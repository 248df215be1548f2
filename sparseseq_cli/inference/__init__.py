"""Using a trained run: score and generate text with a language model, tag sentences.

    load_run(path, finetuned=False, device="cpu")   a LanguageModelRun or a TaggerRun

The modules: ``run`` (the run folder's checks and checkpoint), ``loading`` (load_run and the
two kinds of run), ``scoring``, ``generation``, ``tagging`` (the work, on a model and its
vocabulary) and ``reading`` (a command's input, a file or standard input). The evaluation
passes they share with training are in ``models/evaluation.py``.
"""
from __future__ import annotations

from sparseseq_cli.inference.loading import LanguageModelRun, TaggerRun, load_run
from sparseseq_cli.inference.run import Run
from sparseseq_cli.inference.scoring import LineScore, Scores
from sparseseq_cli.inference.tagging import Tagged

__all__ = ["LanguageModelRun", "LineScore", "Run", "Scores", "Tagged", "TaggerRun", "load_run"]
