"""sparseseq: predefined sparseness in recurrent sequence models (Demeester et al., CoNLL 2018).

The reusable layers live in :mod:`sparseseq_cli.layers`; the rest of the package is the
command-line tool that reproduces the paper's experiments. ``load_run`` opens a trained run
from Python (:mod:`sparseseq_cli.inference`).
"""
__version__ = "0.1.0"
__all__ = ["load_run"]


def __getattr__(name: str):
    # load_run pulls in the configuration, corpora and models: import them only when asked,
    # so that `from sparseseq_cli.layers import SparseLSTM` stays light
    if name == "load_run":
        from sparseseq_cli.inference import load_run
        return load_run
    raise AttributeError(f"module 'sparseseq_cli' has no attribute {name!r}")
