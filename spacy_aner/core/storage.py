"""A model directory on disk: plain files, nothing pickled.

* ``config.json``  architecture, tag set, format and normalisation versions
* ``vocab.json``   the word and character vocabularies (index = id)
* ``model.weights.h5``  the Keras weights, the frozen word table stored in 16 or 8 bits
* ``meta.json``    how it was trained: recipe, data hashes, scores, license

Every problem raises :class:`ModelLoadError` naming the file.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .config import CONFIG_FILE, FORMAT_VERSION, META_FILE, VOCAB_FILE, WEIGHTS_FILE, ModelConfig, ModelLoadError
from .network import build_network
from .normalize import NORMALIZATION_VERSION
from .vocab import Vocabulary

#: Where an 8-bit table's per-row scales live in the weights file; Keras ignores the group.
SCALE_DATASET = "spacy_aner/word_vector_scale"


def read_json(path: Path):
    if not path.is_file():
        raise ModelLoadError(f"missing model file: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelLoadError(f"{path}: not valid JSON ({err})") from None


def read_config(path: Path) -> ModelConfig:
    data = read_json(path / CONFIG_FILE)
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path / CONFIG_FILE}: expected a JSON object")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelLoadError(f"{path / CONFIG_FILE}: model format version {version!r}, this spacy-aner "
                             f"reads version {FORMAT_VERSION}; retrain or install a matching spacy-aner")
    if data.get("normalization_version") != NORMALIZATION_VERSION:
        raise ModelLoadError(f"{path / CONFIG_FILE}: trained with normalisation version "
                             f"{data.get('normalization_version')!r}, this spacy-aner has {NORMALIZATION_VERSION}")
    try:
        return ModelConfig(**data)
    except (TypeError, ValueError) as err:
        raise ModelLoadError(f"{path / CONFIG_FILE}: invalid configuration: {err}") from None


def read_vocab(path: Path, config: ModelConfig) -> Vocabulary:
    data = read_json(path / VOCAB_FILE)
    try:
        vocab = Vocabulary(data["words"], data["chars"], int(data["max_word_chars"]), config.clitic_backoff)
    except (KeyError, TypeError, ValueError) as err:
        raise ModelLoadError(f"{path / VOCAB_FILE}: invalid vocabulary ({err!r})") from None
    if vocab.max_word_chars != config.max_word_chars:
        raise ModelLoadError(f"{path / VOCAB_FILE}: max_word_chars disagrees with {CONFIG_FILE}")
    return vocab


def read_meta(path: Path) -> dict:
    return read_json(path / META_FILE) if (path / META_FILE).exists() else {}


def load_network(path: Path, config: ModelConfig, vocab: Vocabulary):
    """The Keras network of a model directory with its weights."""
    weights = path / WEIGHTS_FILE
    check_weights_file(weights)
    try:
        network = build_network(config, len(vocab.words), len(vocab.chars))
    except Exception as err:  # e.g. a zero or negative size that passed the dataclass
        raise ModelLoadError(f"{path / CONFIG_FILE}: cannot build the network from this configuration "
                             f"({type(err).__name__}: {err})") from None
    try:
        network.load_weights(str(weights))
    except Exception as err:  # Keras raises many types for a file that does not fit
        first_line = str(err).splitlines()[0] if str(err) else ""
        raise ModelLoadError(f"{weights}: weights do not fit the architecture in {CONFIG_FILE} "
                             f"({type(err).__name__}: {first_line})") from None
    if config.word_vector_bits == 8 and not config.trainable_embeddings:
        scale_word_vectors(network, weights)
    return network


def write_model(path: Path, config: ModelConfig, vocab: Vocabulary, network, meta: dict) -> None:
    """Write the four files of a model directory."""
    path.mkdir(parents=True, exist_ok=True)
    (path / CONFIG_FILE).write_text(json.dumps(asdict(config), indent=2), encoding="utf-8")
    (path / VOCAB_FILE).write_text(json.dumps(vocab.to_json(), ensure_ascii=False, separators=(",", ":")),
                                   encoding="utf-8")
    if getattr(network, "optimizer", None) is not None:
        # A compiled network would also save Adam's moments (a quarter of the file), never read.
        fresh = build_network(config, len(vocab.words), len(vocab.chars))
        fresh.set_weights(network.get_weights())
        network = fresh
    network.save_weights(str(path / WEIGHTS_FILE))
    if not config.trainable_embeddings:
        store_word_vectors_compactly(path / WEIGHTS_FILE, network.get_layer("word_embedding").get_weights()[0],
                                     config.word_vector_bits)
    (path / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")


def packed(data: np.ndarray) -> dict:
    return {"compression": "gzip", "compression_opts": 9, "shuffle": True} if data.nbytes > 65536 else {}


def store_word_vectors_compactly(path: Path, table: np.ndarray, bits: int = 16) -> None:
    """Rewrite a weights file with the frozen word-vector table in 16 or 8 bits.

    The table is most of the file (40,000 x 100 floats): half precision takes a single
    tagger's file from 18.9 to 10.9 MB, and the previous shipped model's tags on dev were
    identical with either table. 8 bits (each row scaled to +-127, the scales kept beside
    it) halve it again, for tables of every row of a vector file. Keras casts the stored
    table back to float32 on load; :func:`scale_word_vectors` then applies the scales.
    Trained weights stay float32. Datasets over 64 KiB are stored gzip-compressed after
    HDF5's byte shuffle (lossless, read transparently by h5py): 7 % off a three-member
    file with several char CNNs, which the package's 25 MB limit needed.
    """
    import h5py

    tmp = path.with_name(path.name + ".tmp")
    stored = 0
    if bits == 8:
        scale = (np.abs(table).max(axis=1) / 127.0).astype("float32")
        scale[scale == 0] = 1.0  # padding row
        compact = np.rint(table / scale[:, None]).astype("int8")
    else:
        compact = table.astype("float16")
    with h5py.File(path, "r") as src, h5py.File(tmp, "w") as dst:
        dst.attrs.update(src.attrs)

        def copy(name, obj):
            nonlocal stored
            if isinstance(obj, h5py.Group):
                dst.require_group(name).attrs.update(obj.attrs)
                return
            data = obj[()]
            if data.shape == table.shape and np.array_equal(data, table):
                data = compact
                stored += 1
            dst.create_dataset(name, data=data, **packed(data)).attrs.update(obj.attrs)

        src.visititems(copy)
        if bits == 8:
            dst.create_dataset(SCALE_DATASET, data=scale, **packed(scale))
    if stored == 1:
        os.replace(tmp, path)
    elif bits == 8:  # the 8-bit promise cannot be kept silently
        tmp.unlink()
        raise ValueError(f"{path}: the word-vector table was not found once in the weights file")
    else:  # not found unambiguously: keep Keras's file as it is
        tmp.unlink()


def scale_word_vectors(network, weights: Path) -> None:
    """Turn an 8-bit table, loaded by Keras as whole numbers, back into vectors."""
    import h5py

    layer = network.get_layer("word_embedding")
    table = layer.get_weights()[0]
    try:
        with h5py.File(weights, "r") as f:
            scale = np.asarray(f[SCALE_DATASET][()], dtype="float32")
    except KeyError:
        raise ModelLoadError(f"{weights}: 8-bit word vectors without their scales ({SCALE_DATASET})") from None
    if scale.shape != (table.shape[0],):
        raise ModelLoadError(f"{weights}: {scale.shape[0]} word-vector scales for {table.shape[0]} rows")
    table *= scale[:, None]  # in place: the table is the largest array of the model
    layer.set_weights([table])


def check_weights_file(path: Path) -> None:
    """Open the HDF5 file up front: a truncated file then fails here with its name."""
    if not path.is_file():
        raise ModelLoadError(f"missing model file: {path}")
    import h5py

    try:
        with h5py.File(path, "r") as f:
            def touch(name, obj):
                if isinstance(obj, h5py.Dataset):
                    obj[()]  # reads every array: truncation shows up here, not inside Keras

            f.visititems(touch)
    except Exception as err:
        raise ModelLoadError(f"{path}: unreadable or truncated weights file ({type(err).__name__}: {err})") from None
