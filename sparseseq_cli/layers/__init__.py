"""The paper's two layers, usable in any PyTorch model.

``from sparseseq_cli.layers import SparseLSTM, SparseEmbedding`` loads torch and this
subpackage only: no CLI, configuration or I/O.
"""
from sparseseq_cli.layers.dropout import LockedDropout
from sparseseq_cli.layers.geometry import (EmbeddingGeometry, LSTMGeometry, embedding_geometry,
                                           lstm_geometry, lstm_params)
from sparseseq_cli.layers.sparse_embedding import SparseEmbedding
from sparseseq_cli.layers.sparse_lstm import LSTMImpl, SparseLSTM

__all__ = ["EmbeddingGeometry", "LSTMGeometry", "LSTMImpl", "LockedDropout", "SparseEmbedding",
           "SparseLSTM", "embedding_geometry", "lstm_geometry", "lstm_params"]
