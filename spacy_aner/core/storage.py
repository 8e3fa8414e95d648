"""Reading a model directory: plain files, nothing pickled.

* ``config.json``  architecture, tag set, format and normalisation versions
* ``vocab.json``   the word and character vocabularies (index = id; the words as one
  string, sorted after ``<pad>`` and ``<unk>``, and the word table's rows in that order)
* ``tagger.onnx``  the network (char CNNs, BiLSTMs, tag scores, CRF), weights included
* ``word_vectors.npy``  the word table, float16 or int8 (``word_vector_scale.npy``: one
  scale per row); memory-mapped, so processes that load one model share its pages
* ``meta.json``    how it was trained: recipe, data hashes, scores, license
* ``gazetteer.json.gz``  the name lists the network reads (a model with ``gazetteer_labels``)

Every problem raises :class:`ModelLoadError` naming the file. Making a graph is the
training layer's job (:mod:`spacy_aner.training.export`); :func:`write_model` writes the
files of a model already made.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np

from .config import (CONFIG_FILE, FORMAT_VERSION, GAZETTEER_FILE, GRAPH_FILE, META_FILE, MODEL_FILES, RECORD_FILES,
                     TRAINING_LOG_FILE, VECTOR_SCALE_FILE, VECTORS_FILE, VOCAB_FILE, ModelConfig, ModelLoadError)
from .gazetteer import Gazetteer, GazetteerError
from .jsonio import loads_json
from .normalize import NORMALIZATION_VERSION
from .vocab import RESERVED_ROWS, Vocabulary, WordList


def read_json(path: Path):
    if not path.is_file():
        raise ModelLoadError(f"missing model file: {path}")
    try:
        return loads_json(path.read_text(encoding="utf-8"))
    except ValueError as err:  # not UTF-8, or not JSON Python can read (see loads_json)
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
        config = ModelConfig(**data)
        check_values(config)
    except (TypeError, ValueError) as err:
        raise ModelLoadError(f"{path / CONFIG_FILE}: invalid configuration: {err}") from None
    return config


def check_values(config: ModelConfig) -> None:
    """What ModelConfig leaves to the network builder: sizes and the tag set (a JSON file may hold anything)."""
    for name in ("word_dim", "char_dim", "char_filters", "max_word_chars", "lstm_units", "lstm_layers", "window"):
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive whole number, got {value!r}")
    if not isinstance(config.dropout, (int, float)) or not 0 <= config.dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {config.dropout!r}")
    if not isinstance(config.tags, list) or not config.tags or not all(isinstance(t, str) for t in config.tags):
        raise ValueError(f"tags must be a non-empty list of tag names, got {config.tags!r}")


def read_vocab(path: Path, config: ModelConfig) -> Vocabulary:
    data = read_json(path / VOCAB_FILE)
    try:
        if not isinstance(data["words"], str):
            raise TypeError("words must be one string, a word per line")
        words = WordList(data["words"])
        if words[:RESERVED_ROWS] != ["<pad>", "<unk>"]:
            raise ValueError("the first two words must be <pad> and <unk>")
        chars = data["chars"]
        if (not isinstance(chars, list) or chars[:RESERVED_ROWS] != ["<pad>", "<unk>"] or len(set(chars)) != len(chars)
                or not all(isinstance(c, str) and len(c) == 1 for c in chars[RESERVED_ROWS:])):
            raise ValueError("chars must be <pad>, <unk> and distinct single characters")
        vocab = Vocabulary(words, chars, int(data["max_word_chars"]), config.clitic_backoff)
    except (KeyError, TypeError, ValueError) as err:
        raise ModelLoadError(f"{path / VOCAB_FILE}: invalid vocabulary ({err!r})") from None
    if vocab.max_word_chars != config.max_word_chars:
        raise ModelLoadError(f"{path / VOCAB_FILE}: max_word_chars disagrees with {CONFIG_FILE}")
    return vocab


def read_gazetteer(path: Path, config: ModelConfig) -> Optional[Gazetteer]:
    """The model's gazetteer, or None for a model that reads none."""
    if not config.gazetteer_labels:
        return None
    if not (path / GAZETTEER_FILE).is_file():
        raise ModelLoadError(f"missing model file: {path / GAZETTEER_FILE}")
    try:
        gazetteer = Gazetteer.read(path / GAZETTEER_FILE)
    except GazetteerError as err:
        raise ModelLoadError(str(err)) from None
    if gazetteer.labels != config.gazetteer_labels:
        raise ModelLoadError(f"{path / GAZETTEER_FILE}: labels {gazetteer.labels}, {CONFIG_FILE} has "
                             f"{config.gazetteer_labels}")
    return gazetteer


def read_meta(path: Path) -> dict:
    meta = read_json(path / META_FILE) if (path / META_FILE).exists() else {}
    if not isinstance(meta, dict):
        raise ModelLoadError(f"{path / META_FILE}: expected a JSON object")
    return meta


def first_members_meta(meta: dict, members: int, ensemble_members: int) -> dict:
    """The record (meta.json) of an ensemble's first ``members`` networks saved as a model of
    their own: their entries under ``members``. The ensemble's dev and test scores are not
    theirs, so they move under ``ensemble`` with its network count (a record already there,
    from an earlier cut, is the original ensemble's and stays)."""
    out = {k: v for k, v in meta.items() if k not in ("dev_scores", "test_scores")}
    if isinstance(meta.get("members"), list):
        out["members"] = meta["members"][:members]
    out["ensemble"] = meta.get("ensemble") or {"members": ensemble_members, "dev_scores": meta.get("dev_scores"),
                                               "test_scores": meta.get("test_scores")}
    return out


def keep_first_members_log(path: Path, members: int) -> None:
    """Cut the training log of the model directory ``path`` (if it has one, of an ensemble) to
    its first ``members`` networks' curves."""
    log_file = path / TRAINING_LOG_FILE
    if log_file.is_file():
        log = read_json(log_file)
        if isinstance(log.get("members"), list):
            log_file.write_text(json.dumps({**log, "members": log["members"][:members]}, indent=2), encoding="utf-8")


def files_state(path: Path) -> Tuple[Tuple[str, int, int, int], ...]:
    """Each model file in ``path`` with its size, modification time and inode. An equal state
    later means the directory still holds the same files: rewriting a file changes its time,
    replacing it its inode."""
    state = []
    for name in MODEL_FILES:
        try:
            s = (path / name).stat()
        except OSError:
            continue
        state.append((name, s.st_size, s.st_mtime_ns, s.st_ino))
    return tuple(state)


def read_records(path: Path) -> Dict[str, bytes]:
    """The files of ``RECORD_FILES`` that ``path`` has, as bytes."""
    records = {}
    for name in RECORD_FILES:
        if (path / name).is_file():
            try:
                records[name] = (path / name).read_bytes()
            except OSError as err:
                raise ModelLoadError(f"{path / name}: unreadable ({err.strerror})") from None
    return records


def read_array(path: Path, mmap: bool = True) -> np.ndarray:
    if not path.is_file():
        raise ModelLoadError(f"missing model file: {path}")
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise ModelLoadError(f"{path}: unreadable or truncated array file ({err})") from None


class WordVectors:
    """The stored word table, read row by row as float32 (an 8-bit table times its row scales)."""

    def __init__(self, table: np.ndarray, scale: np.ndarray | None = None) -> None:
        self.table = table
        self.scale = scale

    @classmethod
    def load(cls, path: Path, config: ModelConfig, n_words: int) -> "WordVectors":
        table = read_array(path / VECTORS_FILE)
        want = {16: np.float16, 8: np.int8}[config.word_vector_bits]
        if table.dtype != want or table.shape != (n_words, config.word_dim):
            raise ModelLoadError(f"{path / VECTORS_FILE}: a {table.dtype} table of shape {table.shape}, expected "
                                 f"{np.dtype(want)} ({n_words}, {config.word_dim}) from {CONFIG_FILE} and {VOCAB_FILE}")
        scale = None
        if config.word_vector_bits == 8:
            scale = read_array(path / VECTOR_SCALE_FILE, mmap=False)
            if scale.shape != (n_words,) or scale.dtype.kind != "f":
                raise ModelLoadError(f"{path / VECTOR_SCALE_FILE}: {scale.dtype} scales of shape {scale.shape}, "
                                     f"expected floats ({n_words},)")
        return cls(table, scale)

    def rows(self, ids: np.ndarray) -> np.ndarray:
        out = np.asarray(self.table[ids], dtype=np.float32)
        if self.scale is not None:
            out *= self.scale[ids, None]
        return out

    def take(self, ids: np.ndarray) -> "WordVectors":
        """The rows ``ids``, stored as they are (a copy, also of a memory-mapped table)."""
        return WordVectors(np.asarray(self.table[ids]), None if self.scale is None else np.asarray(self.scale[ids]))

    def as_float32(self) -> np.ndarray:
        """The whole table as float32."""
        return self.rows(np.arange(len(self.table)))

    def __len__(self) -> int:
        return len(self.table)


def write_model(path: Path, config: ModelConfig, vocab: Vocabulary, graph: bytes, vectors: WordVectors,
                meta: dict, gazetteer: Optional[Gazetteer] = None) -> None:
    """Write a model directory: its ONNX ``graph`` (bytes) and the rest of its files."""
    if bool(config.gazetteer_labels) != (gazetteer is not None) or (gazetteer and gazetteer.labels != config.gazetteer_labels):
        raise ValueError("a model reads a gazetteer exactly when its configuration names the gazetteer's labels")
    stored_vocab, order = vocab.stored()
    if order != list(range(len(order))):
        vectors = vectors.take(np.asarray(order))
    path.mkdir(parents=True, exist_ok=True)
    (path / GRAPH_FILE).write_bytes(graph)
    _save_array(path / VECTORS_FILE, vectors.table)
    if vectors.scale is not None:
        _save_array(path / VECTOR_SCALE_FILE, vectors.scale)
    elif (path / VECTOR_SCALE_FILE).exists():
        (path / VECTOR_SCALE_FILE).unlink()
    (path / CONFIG_FILE).write_text(json.dumps(asdict(config), indent=2), encoding="utf-8")
    (path / VOCAB_FILE).write_text(json.dumps(stored_vocab, ensure_ascii=False, separators=(",", ":")),
                                   encoding="utf-8")
    (path / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
    if gazetteer is not None:
        gazetteer.write(path / GAZETTEER_FILE)
    elif (path / GAZETTEER_FILE).exists():
        (path / GAZETTEER_FILE).unlink()


def copy_model(source: Path, path: Path) -> None:
    """The model files of folder ``source`` copied into folder ``path``, each through a new file
    renamed over the old (see :func:`replace_file`); model files ``source`` lacks are removed
    from ``path``, so that nothing of a model saved there before is read with this one."""
    for name in MODEL_FILES:
        if (source / name).is_file():
            def copy(f, original=source / name) -> None:
                with open(original, "rb") as src:
                    shutil.copyfileobj(src, f)

            replace_file(path / name, copy)
        elif (path / name).exists():
            (path / name).unlink()


def replace_file(path: Path, write) -> None:
    """``write(f)`` into a new file renamed over ``path``. A pipeline may have ``path`` memory-mapped
    (its word table, or the array being saved itself, as when a model is saved back over its own
    folder): rewriting the file in place would change what that pipeline reads, or crash its
    process (SIGBUS) where the file got shorter."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _save_array(path: Path, array: np.ndarray) -> None:
    replace_file(path, lambda f: np.save(f, np.asarray(array), allow_pickle=False))
