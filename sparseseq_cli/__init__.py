"""sparseseq: predefined sparseness in recurrent sequence models (Demeester et al., CoNLL 2018).

The reusable layers live in :mod:`sparseseq_cli.layers`; the rest of the package is the
command-line tool that reproduces the paper's experiments.
"""
__version__ = "0.1.0"
