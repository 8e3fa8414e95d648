"""spacy_aner.core.config: the architecture record, its checks, and the model directory's names."""
from __future__ import annotations

from dataclasses import asdict, fields

import pytest

from spacy_aner.core.config import (
    CONFIG_FILE,
    FORMAT_VERSION,
    GRAPH_FILE,
    META_FILE,
    MODEL_FILES,
    PAD,
    PAD_LABEL,
    REQUIRED_FILES,
    UNK,
    VECTOR_SCALE_FILE,
    VECTORS_FILE,
    VOCAB_FILE,
    ModelConfig,
    ModelLoadError,
)
from spacy_aner.core.normalize import NORMALIZATION_VERSION
from spacy_aner.core.tags import TAGS


def test_defaults_are_the_shipped_architecture():
    config = ModelConfig()
    assert config.char_kernels == [2, 3, 4, 5]
    assert (config.lstm_units, config.lstm_layers, config.window, config.context) == (128, 2, 128, 16)
    assert config.members == 1 and config.word_vector_bits == 16 and config.clitic_backoff is True
    assert config.tags == list(TAGS)
    assert config.format_version == FORMAT_VERSION == 4 and config.normalization_version == NORMALIZATION_VERSION


def test_removed_fields_are_gone():
    """CRF only (no ``output``), several CNN widths only (no ``char_kernel``)."""
    names = {f.name for f in fields(ModelConfig)}
    assert not names & {"output", "char_kernel", "token_loss", "word_dropout", "unknown_without_vector"}
    with pytest.raises(TypeError):
        ModelConfig(output="softmax")
    with pytest.raises(TypeError):
        ModelConfig(char_kernel=3)


@pytest.mark.parametrize("kwargs, message", [
    ({"window": 8, "context": 4}, "window"),
    ({"members": 0}, "members"),
    ({"char_kernels": []}, "char_kernels"),
    ({"char_kernels": [3, 3]}, "char_kernels"),
    ({"char_kernels": [0, 2]}, "char_kernels"),
    ({"word_vector_bits": 4}, "word_vector_bits"),
    ({"word_vector_bits": 8, "trainable_embeddings": True}, "frozen"),
])
def test_invalid_values_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(**kwargs)


def test_valid_edge_values():
    assert ModelConfig(window=9, context=4).window == 9
    assert ModelConfig(char_kernels=["3", 2]).char_kernels == [3, 2]  # JSON or cfg strings become ints
    assert ModelConfig(word_vector_bits=8).word_vector_bits == 8


def test_config_round_trips_through_its_dict():
    config = ModelConfig(members=3, word_vector_bits=8, char_kernels=[2, 5])
    assert ModelConfig(**asdict(config)) == config


def test_file_names_and_ids():
    assert (CONFIG_FILE, VOCAB_FILE, GRAPH_FILE, VECTORS_FILE, VECTOR_SCALE_FILE, META_FILE) == (
        "config.json", "vocab.json", "tagger.onnx", "word_vectors.npy", "word_vector_scale.npy", "meta.json")
    assert REQUIRED_FILES == (CONFIG_FILE, VOCAB_FILE, GRAPH_FILE, VECTORS_FILE)
    assert set(MODEL_FILES) == set(REQUIRED_FILES) | {VECTOR_SCALE_FILE, META_FILE, "training.json",
                                                      "LICENSE-MODEL.txt", "gazetteer.json.gz"}
    assert not [name for name in MODEL_FILES if name.endswith(".h5")]  # format 3: no HDF5
    assert (PAD, UNK, PAD_LABEL) == (0, 1, -1)
    assert issubclass(ModelLoadError, ValueError)
