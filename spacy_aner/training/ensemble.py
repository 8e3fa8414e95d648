"""Seed ensembles and vector rows: model directories made from other model directories."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..about import __version__
from ..core.config import LICENSE_FILE, META_FILE, TRAINING_LOG_FILE, ModelConfig
from ..core.graph import member_prefix, read_weights
from ..core.tagger import Tagger
from ..core.vocab import Vocabulary
from .corpus import sha256_file
from .embeddings import load_vectors, vectors_by_key
from .evaluation import entity_scores, read_gold
from .export import save_model
from .plots import read_training_log

#: Recipe settings that may differ between members: the seed, and the schedule a refit replays.
MEMBER_SETTINGS = ("seed", "epochs", "lr_drops")


def provenance_differences(a: dict, b: dict):
    """(what, value in a, value in b) for training data and recipe settings that differ."""
    def facts(meta):
        config = meta.get("config") or {}
        training = {k: v for k, v in (config.get("training") or {}).items() if k not in MEMBER_SETTINGS}
        return {"training data": meta.get("train_sha256"), "vectors": (meta.get("vectors") or {}).get("sha256"),
                "gazetteer": (meta.get("gazetteer") or {}).get("sha256"),
                "recipe": {**config, "training": training, "paths": None} if config else None}
    fa, fb = facts(a), facts(b)
    return [(k, fa[k], fb[k]) for k in fa if fa[k] != fb[k] and fa[k] is not None and fb[k] is not None]


#: Fields of meta.json that ensemble and add-vectors read inside (tagging reads none of them).
META_OBJECTS = {"config": dict, "vectors": dict, "gazetteer": dict, "members": list}


def training_tagger(model_dir: Path | str) -> Tagger:
    """The model at ``model_dir``, its meta.json checked for what the training tools read:
    a hand-edited field of another type is a ``ValueError`` naming it, not a traceback."""
    tagger = Tagger.load(model_dir)
    for key, kind in META_OBJECTS.items():
        value = tagger.meta.get(key)
        if value is not None and not isinstance(value, kind):
            what = "an object" if kind is dict else "an array"
            raise ValueError(f"{Path(model_dir) / META_FILE}: {key!r} must be {what} or null, not {value!r:.40}")
    return tagger


def member_files(model_dirs: Sequence[Path | str]) -> List[Tuple[Tagger, Dict[str, List[np.ndarray]]]]:
    """Each model's tagger and stored layer weights."""
    return [(training_tagger(d), read_weights(d)) for d in model_dirs]


def merge_members(members: Sequence[Tuple[Tagger, Dict[str, List[np.ndarray]]]]):
    """One ensemble ``(config, vocab, weights, table)`` from single models trained with different seeds.

    They must share the vocabulary, the frozen word vectors and the architecture (the
    vectors are stored once); each keeps its own char CNNs, BiLSTMs and CRF, under the
    layer names of its member prefix.
    """
    if len(members) < 2:
        raise ValueError("an ensemble needs at least two models")
    first, _ = members[0]
    base = {**asdict(first.config), "members": 1}
    table = first.vectors.as_float32()
    for k, (t, _) in enumerate(members[1:], 2):
        for what, a, b in provenance_differences(first.meta, t.meta):
            raise ValueError(f"model {k} was trained with other {what} than model 1 ({b!r} vs {a!r})")
    for k, (t, _) in enumerate(members, 1):
        if t.config.members != 1:
            raise ValueError(f"model {k} is already an ensemble; merge single models")
        if {**asdict(t.config), "members": 1} != base:
            raise ValueError(f"model {k} has a different configuration from model 1")
        if t.config.trainable_embeddings:
            raise ValueError("members must have frozen word vectors, which they share")
        if t.vocab.words != first.vocab.words or t.vocab.chars != first.vocab.chars:
            raise ValueError(f"model {k} has a different vocabulary from model 1 (train them on the same data and vectors)")
        if not np.array_equal(t.vectors.as_float32(), table):
            raise ValueError(f"model {k} has different word vectors from model 1")
    weights = {member_prefix(m) + layer: arrays for m, (_, w) in enumerate(members) for layer, arrays in w.items()}
    return ModelConfig(**{**base, "members": len(members)}), first.vocab, weights, table


def add_word_vectors(tagger: Tagger, kv, max_vocab: Optional[int] = None) -> Tuple[Vocabulary, np.ndarray, int]:
    """``tagger``'s vocabulary and word table with a row for every key of ``kv`` they lack,
    and the number of rows added.

    With frozen vectors, training only ever looks up the rows of training words: every
    training key has a row, so the other rows (the most frequent news words, up to
    ``max_vocab``) are never seen by the gradient. Adding more rows of the *same* vector
    file leaves every trained weight as it is; it only gives words the model had to treat
    as unknown their vectors. ``kv`` must be the file the model was trained with: every
    row whose key is in ``kv`` must match it (within the stored precision).
    """
    config = tagger.config
    if config.trainable_embeddings:
        raise ValueError("the model fine-tuned its word vectors: rows from the vector file would not fit them")
    if kv.vector_size != config.word_dim:
        raise ValueError(f"the vectors have {kv.vector_size} dimensions, the model {config.word_dim}")
    table = tagger.vectors.as_float32()
    key_index = vectors_by_key(kv)
    shared = [(i, key_index[w]) for i, w in enumerate(tagger.vocab.words) if i >= 2 and w in key_index]
    if not shared:
        raise ValueError("no word of the model has a vector in this file: not the vectors it was trained with")
    rows, kv_rows = table[[i for i, _ in shared]], kv.vectors[[j for _, j in shared]]
    # An 8-bit table is within half a step (max |row| / 254) of the file; float16 much closer.
    tolerance = np.abs(kv_rows).max(axis=1, keepdims=True) / 254 + 1e-3
    differ = int(np.any(np.abs(rows - kv_rows) > tolerance, axis=1).sum())
    if differ:
        raise ValueError(f"{differ} of the model's {len(shared)} rows with a vector in this file differ from it: "
                         "not the vectors the model was trained with")
    have = set(tagger.vocab.words)
    limit = max_vocab if max_vocab is not None else len(have) + len(key_index)
    new = [k for k in key_index if k not in have][: max(0, limit - len(tagger.vocab.words))]
    vocab = Vocabulary(list(tagger.vocab.words) + new, tagger.vocab.chars, tagger.vocab.max_word_chars,
                       tagger.vocab.clitic_backoff)
    if new:
        table = np.concatenate([table, kv.vectors[[key_index[k] for k in new]].astype("float32")])
    return vocab, table, len(new)


def ensemble(model_dirs: Sequence[Path | str], output: Path | str, *, dev_path: Optional[Path | str] = None,
             command: str = "") -> Dict:
    """Merge models trained with different seeds into one ensemble model; score it on dev.

    Each member's dev F1 is recorded next to the ensemble's, measured on dev only. Refit
    members have no held-out dev (a refit trains on its whole training file): leave
    ``dev_path`` out.
    """
    output = Path(output)
    places = [Path(d).resolve() for d in model_dirs]
    if len(set(places)) != len(places):
        raise ValueError("a model is named twice: an ensemble's members are different networks")
    if output.resolve() in places:
        raise ValueError(f"the output {output} is one of the members: write the ensemble elsewhere")
    dev_sents = read_gold(dev_path).sentences if dev_path is not None else []  # refused as `evaluate` refuses it
    members = member_files(model_dirs)
    histories = [read_training_log(d) for d in model_dirs]  # a damaged log fails before anything is written
    taggers = [t for t, _ in members]
    refit = [bool(t.meta.get("refit")) for t in taggers]
    if dev_path is not None and any(refit):
        raise ValueError("refit members have no held-out dev set (a refit trains on its whole training file, which "
                         "usually holds the dev sentences): a dev score would not be held out; leave out --dev")
    config, vocab, weights, table = merge_members(members)
    first = taggers[0].meta
    meta = {
        **{k: first[k] for k in ("name", "train_sha256", "sentences", "vectors", "gazetteer", "license") if k in first},
        "spacy_aner_version": __version__,
        "command": command,
        "members": [{"dir": str(d), "command": t.meta.get("command"), "config": t.meta.get("config"), "refit": r,
                     "best_epoch": t.meta.get("best_epoch"), "epochs_run": t.meta.get("epochs_run"),
                     "training_minutes": t.meta.get("training_minutes"), "dev_f1": None}
                    for d, t, r in zip(model_dirs, taggers, refit)],
        "training_minutes": round(sum(t.meta.get("training_minutes") or 0 for t in taggers), 1),
        "dev_sha256": sha256_file(dev_path) if dev_path is not None else None,
        "refit": all(refit),
        "dev_scores": None,
    }
    (output / LICENSE_FILE).unlink(missing_ok=True)  # an earlier model's, in a reused folder
    save_model(output, config, vocab, weights, table, meta, taggers[0].gazetteer)
    if dev_path is not None:
        words, gold = [s.words for s in dev_sents], [s.tags for s in dev_sents]
        meta["dev_scores"] = entity_scores(gold, Tagger.load(output).predict(words))
        for record, t in zip(meta["members"], taggers):
            record["dev_f1"] = entity_scores(gold, t.predict(words))["micro"]["f1"]
        (output / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
    runs = [log["epochs"] if log and "epochs" in log else [] for log in histories]
    (output / TRAINING_LOG_FILE).write_text(json.dumps({"members": runs}, indent=2))
    return meta


def add_vectors(model_dir: Path | str, vectors: Path | str, output: Path | str, *, max_vocab: Optional[int] = None,
                word_vector_bits: Optional[int] = None, command: str = "") -> Dict:
    """Write ``model_dir`` with a row for every key of ``vectors`` it lacks (:func:`add_word_vectors`).

    Scores recorded in the model's meta (dev, test) were measured without the new rows, so
    they move into ``added_vectors`` and are not reported as the new model's.
    """
    tagger = training_tagger(model_dir)
    vocab, table, added = add_word_vectors(tagger, load_vectors(vectors), max_vocab=max_vocab)
    bits = word_vector_bits if word_vector_bits is not None else tagger.config.word_vector_bits
    config = ModelConfig(**{**asdict(tagger.config), "word_vector_bits": bits})
    meta = dict(tagger.meta)
    before = {k: meta.pop(k) for k in ("dev_scores", "test_scores") if meta.get(k) is not None}
    meta["dev_scores"] = None
    meta["vectors"] = {**(meta.get("vectors") or {}), "kept_rows": len(vocab.words),
                       "rows_with_vectors": (meta.get("vectors") or {}).get("rows_with_vectors", 0) + added}
    meta["added_vectors"] = {"from_model": str(model_dir), "sha256": sha256_file(vectors), "rows_added": added,
                             "word_vector_bits": bits, "command": command,
                             "spacy_aner_version": __version__, "scores_before": before or None}
    output = Path(output)
    save_model(output, config, vocab, read_weights(model_dir), table, meta, tagger.gazetteer)
    log = Path(model_dir) / TRAINING_LOG_FILE
    if log.is_file():
        (output / TRAINING_LOG_FILE).write_text(log.read_text(encoding="utf-8"), encoding="utf-8")
    return meta
