"""A model's architecture, the files of a model directory and their format versions."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

from .normalize import NORMALIZATION_VERSION
from .tags import TAGS

#: 3: the network is an ONNX graph and the word table a NumPy file (2: Keras weights in HDF5).
FORMAT_VERSION = 4
CONFIG_FILE = "config.json"
VOCAB_FILE = "vocab.json"
GRAPH_FILE = "tagger.onnx"
VECTORS_FILE = "word_vectors.npy"
VECTOR_SCALE_FILE = "word_vector_scale.npy"
META_FILE = "meta.json"
TRAINING_LOG_FILE = "training.json"
LICENSE_FILE = "LICENSE-MODEL.txt"
GAZETTEER_FILE = "gazetteer.json.gz"
#: What a model needs to predict; the rest of MODEL_FILES is its record.
REQUIRED_FILES = (CONFIG_FILE, VOCAB_FILE, GRAPH_FILE, VECTORS_FILE)
MODEL_FILES = REQUIRED_FILES + (GAZETTEER_FILE, VECTOR_SCALE_FILE, META_FILE, TRAINING_LOG_FILE, LICENSE_FILE)
#: The model files a loaded tagger keeps as bytes, unread, to write them with the rest.
RECORD_FILES = (TRAINING_LOG_FILE, LICENSE_FILE)
PAD, UNK = 0, 1
#: Target id of padding positions; masked out of the loss.
PAD_LABEL = -1


class ModelLoadError(ValueError):
    """A model directory that cannot be used; the message names the file and the problem."""


@dataclass
class ModelConfig:
    word_dim: int = 100
    char_dim: int = 32
    char_filters: int = 64
    #: One char CNN per width (``char_filters`` each, max-pooled, joined).
    char_kernels: List[int] = field(default_factory=lambda: [2, 3, 4, 5])
    max_word_chars: int = 20
    lstm_units: int = 128
    lstm_layers: int = 2
    dropout: float = 0.5
    #: Word vectors are frozen when they come from a vector file; without one they are learnt.
    trainable_embeddings: bool = False
    #: How the word-vector table is stored: 16 (float16) or 8 (int8 with one scale per row,
    #: so a model can keep every row of a large vector file in a small package).
    word_vector_bits: int = 16
    clitic_backoff: bool = True  # unknown words fall back to their proclitic-stripped form
    #: Taggers over one shared, frozen word table whose tag scores and CRF transitions are
    #: averaged: a product of experts that Viterbi decodes exactly.
    members: int = 1
    #: Labels of the gazetteer the network reads (B and I features per label); none: no gazetteer.
    gazetteer_labels: List[str] = field(default_factory=list)
    window: int = 128  # longest token sequence given to the network at once
    context: int = 16  # tokens of overlap on each side when a longer sequence is cut
    tags: List[str] = field(default_factory=lambda: list(TAGS))
    format_version: int = FORMAT_VERSION
    normalization_version: int = NORMALIZATION_VERSION

    def __post_init__(self) -> None:
        if self.context < 0 or self.window <= 2 * self.context:
            raise ValueError(f"window must be longer than twice the context, and the context 0 or more: got "
                             f"window {self.window}, context {self.context}")
        if self.members < 1:
            raise ValueError(f"members must be at least 1, got {self.members}")
        kernels = [int(k) for k in self.char_kernels]
        if not kernels or min(kernels) < 1 or len(set(kernels)) != len(kernels):
            raise ValueError(f"char_kernels must be distinct positive widths, got {self.char_kernels}")
        self.char_kernels = kernels
        if self.word_vector_bits not in (8, 16):
            raise ValueError(f"word_vector_bits must be 8 or 16, got {self.word_vector_bits}")
        if self.word_vector_bits != 16 and self.trainable_embeddings:
            raise ValueError("word_vector_bits applies to frozen word vectors, not trainable ones")
