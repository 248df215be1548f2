"""``generate``: sample text from a trained language model.

The model starts from a fresh state after an ``<eos>`` (the start of a sentence, as in
training), reads the prompt's words if any, and then samples ``words`` tokens one at a
time, each from softmax(log p / temperature). A sampled ``<eos>`` ends a line (it counts
as one of the ``words``); ``<unk>`` is sampled like any other word, as AWD-LSTM's
generate.py does (PTB writes rare words as ``<unk>``, and so does the model).

The draws come from a ``torch.Generator`` on the CPU seeded with ``seed``, so a seed gives
the same text on every device (up to the last bits of the device's arithmetic). A
temperature below ``GREEDY_BELOW`` takes the most probable word instead of sampling.
"""
from __future__ import annotations

from typing import Optional

import torch

from sparseseq_cli.corpora.lm_data import EOS
from sparseseq_cli.corpora.vocab import Vocabulary
from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.models.language_model import LanguageModel

GREEDY_BELOW = 1e-4


def prompt_ids(vocab: Vocabulary, prompt: Optional[str]) -> list[int]:
    words = (prompt or "").split()
    outside = [w for w in words if w not in vocab]
    if outside:
        shown = ", ".join(repr(w) for w in dict.fromkeys(outside))
        raise SparseseqError(f"the prompt has words outside the model's vocabulary ({shown}): use "
                             f"words of the run's vocab.txt")
    return [vocab[w] for w in words]


@torch.no_grad()
def generate(model: LanguageModel, vocab: Vocabulary, *, words: int = 100, temperature: float = 1.0,
             seed: Optional[int] = None, prompt: Optional[str] = None,
             device: torch.device = torch.device("cpu")) -> str:
    """``words`` sampled tokens after ``prompt``, as text: words separated by spaces, a line
    break for each ``<eos>``; the prompt itself is not repeated."""
    if not temperature > 0:
        raise SparseseqError(f"temperature {temperature} must be > 0 (near 0: always the most "
                             f"probable word; 1: the model's own distribution)")
    if words < 0:
        raise SparseseqError(f"cannot generate {words} words: give a number >= 0")
    if EOS not in vocab:
        raise SparseseqError(f"the model's vocabulary has no {EOS}: it was not trained on lines of text")
    context = [vocab[EOS], *prompt_ids(vocab, prompt)]
    generator = torch.Generator()
    if seed is None:
        generator.seed()   # a fresh, nondeterministic seed
    else:
        generator.manual_seed(seed)
    model.eval()
    out = model(torch.tensor(context, device=device).unsqueeze(1), model.init_hidden(1))
    sampled: list[int] = []
    for _ in range(words):
        log_probs = out.log_probs[-1].double()
        if temperature < GREEDY_BELOW:
            word = int(log_probs.argmax())
        else:
            probs = torch.softmax(log_probs / temperature, dim=0).cpu()
            word = int(torch.multinomial(probs, 1, generator=generator))
        sampled.append(word)
        out = model(torch.tensor([[word]], device=device), out.hidden)
    return _text(vocab, sampled)


def _text(vocab: Vocabulary, ids: list[int]) -> str:
    eos = vocab[EOS]
    lines, line = [], []
    for i in ids:
        if i == eos:
            lines.append(" ".join(line))
            line = []
        else:
            line.append(vocab.words[i])
    return "\n".join(lines + [" ".join(line)]) if line else "".join(f"{x}\n" for x in lines)
