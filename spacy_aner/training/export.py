"""Writing a model directory: the trained weights as an ONNX graph (:mod:`spacy_aner.core.graph`),
the word table as NumPy."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from ..core.config import LICENSE_FILE, ModelConfig
from ..core.gazetteer import Gazetteer
from ..core.graph import Weights, build_graph, read_weights
from ..core.storage import WordVectors, write_model
from ..core.vocab import Vocabulary


def store_table(table: np.ndarray, bits: int):
    """The word table as stored: float16, or int8 with one scale per row (``(table, scale or None)``)."""
    if bits == 16:
        return table.astype(np.float16), None
    scale = (np.abs(table).max(axis=1) / 127.0).astype(np.float32)
    scale[scale == 0] = 1.0  # the padding row
    return np.rint(table / scale[:, None]).astype(np.int8), scale


def save_model(path: Path | str, config: ModelConfig, vocab: Vocabulary, weights: Weights, table: np.ndarray,
               meta: dict, gazetteer: Optional[Gazetteer] = None) -> None:
    """Write a model directory from trained layer ``weights`` and the float32 word ``table``."""
    if table.shape != (len(vocab.words), config.word_dim):
        raise ValueError(f"word table of shape {table.shape} for {len(vocab.words)} words of size {config.word_dim}")
    graph = build_graph(weights, config).SerializeToString()
    write_model(Path(path), config, vocab, graph, WordVectors(*store_table(table, config.word_vector_bits)), meta,
                gazetteer)


def save_network(path: Path | str, config: ModelConfig, vocab: Vocabulary, network, meta: dict,
                 gazetteer: Optional[Gazetteer] = None) -> None:
    """Write a model directory from a trained Keras network (a new model: the license file of
    an earlier one in the folder is removed, as it is not this model's)."""
    from .network import layer_weights

    (Path(path) / LICENSE_FILE).unlink(missing_ok=True)
    weights = layer_weights(network)
    table = weights.pop("word_embedding")[0]
    save_model(path, config, vocab, weights, table, meta, gazetteer)


def keras_network(path: Path | str):
    """The Keras network of a model directory, for training tools and for checking the graph against it."""
    from ..core.tagger import Tagger
    from .network import build_network, set_layer_weights

    tagger = Tagger.load(path)
    weights = read_weights(path)
    weights["word_embedding"] = [tagger.vectors.as_float32()]
    network = build_network(tagger.config, len(tagger.vocab.words), len(tagger.vocab.chars))
    set_layer_weights(network, weights)
    return network
