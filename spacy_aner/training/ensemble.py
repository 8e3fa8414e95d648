"""Seed ensembles and vector rows: model directories made from other model directories."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from ..about import __version__
from ..core.config import TRAINING_LOG_FILE, ModelConfig
from ..core.network import build_network, copy_trained_layers, member_prefix
from ..core.tagger import Tagger
from ..core.vocab import Vocabulary
from .corpus import read_conll, sha256_file
from .embeddings import load_vectors, vectors_by_key
from .evaluation import entity_scores

#: Recipe settings that may differ between members: the seed, and the schedule a refit replays.
MEMBER_SETTINGS = ("seed", "epochs", "lr_drops")


def provenance_differences(a: dict, b: dict):
    """(what, value in a, value in b) for training data and recipe settings that differ."""
    def facts(meta):
        config = meta.get("config") or {}
        training = {k: v for k, v in (config.get("training") or {}).items() if k not in MEMBER_SETTINGS}
        return {"training data": meta.get("train_sha256"), "vectors": (meta.get("vectors") or {}).get("sha256"),
                "recipe": {**config, "training": training, "paths": None} if config else None}
    fa, fb = facts(a), facts(b)
    return [(k, fa[k], fb[k]) for k in fa if fa[k] != fb[k] and fa[k] is not None and fb[k] is not None]


def merge_members(taggers: Sequence["Tagger"]) -> "Tagger":
    """One ensemble tagger from single taggers trained with different seeds.

    They must share the vocabulary, the frozen word vectors and the architecture (the
    vectors are stored once); each keeps its own char CNN, BiLSTMs and CRF.
    """
    if len(taggers) < 2:
        raise ValueError("an ensemble needs at least two models")
    first = taggers[0]
    for k, t in enumerate(taggers[1:], 2):
        for what, a, b in provenance_differences(first.meta, t.meta):
            raise ValueError(f"model {k} was trained with other {what} than model 1 ({b!r} vs {a!r})")
    base = {**asdict(first.config), "members": 1}
    for k, t in enumerate(taggers):
        if t.config.members != 1:
            raise ValueError(f"model {k + 1} is already an ensemble; merge single models")
        if {**asdict(t.config), "members": 1} != base:
            raise ValueError(f"model {k + 1} has a different configuration from model 1")
        if t.config.trainable_embeddings:
            raise ValueError("members must have frozen word vectors, which they share")
        if t.vocab.words != first.vocab.words or t.vocab.chars != first.vocab.chars:
            raise ValueError(f"model {k + 1} has a different vocabulary from model 1 (train them on the same data and vectors)")
    # Compared as stored (float16 or finer): a member's table is the one it was saved with.
    table = first.network.get_layer("word_embedding").get_weights()[0].astype("float16")
    for k, t in enumerate(taggers[1:], 2):
        if not np.array_equal(t.network.get_layer("word_embedding").get_weights()[0].astype("float16"), table):
            raise ValueError(f"model {k} has different word vectors from model 1")
    config = ModelConfig(**{**base, "members": len(taggers)})
    network = build_network(config, len(first.vocab.words), len(first.vocab.chars))
    # The first member's table as loaded: an 8-bit table re-quantises to the same integers.
    network.get_layer("word_embedding").set_weights([first.network.get_layer("word_embedding").get_weights()[0]])
    for m, t in enumerate(taggers):
        copy_trained_layers(t.network, network, member_prefix(m))
    return Tagger(config, first.vocab, network)


def add_word_vectors(tagger: "Tagger", kv, max_vocab: Optional[int] = None,
                     word_vector_bits: Optional[int] = None) -> Tuple["Tagger", int]:
    """The same tagger with a row for every key of ``kv`` it lacks; returns ``(tagger, rows added)``.

    With frozen vectors, training only ever looks up the rows of training words: every
    training key has a row, so the other rows (the most frequent news words, up to
    ``--max-vocab``) are never seen by the gradient. Adding more rows of the *same* vector
    file leaves every trained weight as it is; it only gives words the model had to treat
    as unknown their vectors. (A model trained with those rows from the start could still
    differ: characters found only in them would get ids, and early stopping reads dev
    through them.) ``kv`` must be the file the model was trained with: every row whose key is in ``kv``
    must match it (within the stored precision).
    """
    config = tagger.config
    if config.trainable_embeddings:
        raise ValueError("the model fine-tuned its word vectors: rows from the vector file would not fit them")
    if kv.vector_size != config.word_dim:
        raise ValueError(f"the vectors have {kv.vector_size} dimensions, the model {config.word_dim}")
    table = tagger.network.get_layer("word_embedding").get_weights()[0]
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
    vocab = Vocabulary(tagger.vocab.words + new, tagger.vocab.chars, tagger.vocab.max_word_chars,
                       tagger.vocab.clitic_backoff)
    bits = word_vector_bits if word_vector_bits is not None else config.word_vector_bits
    new_config = ModelConfig(**{**asdict(config), "word_vector_bits": bits})
    network = build_network(new_config, len(vocab.words), len(vocab.chars))
    bigger = np.concatenate([table, kv.vectors[[key_index[k] for k in new]].astype("float32")]) if new else table
    network.get_layer("word_embedding").set_weights([bigger])
    copy_trained_layers(tagger.network, network)
    return Tagger(new_config, vocab, network, dict(tagger.meta)), len(new)


def ensemble(model_dirs: Sequence[Path | str], output: Path | str, *, dev_path: Optional[Path | str] = None,
             command: str = "") -> Dict:
    """Merge models trained with different seeds into one ensemble model; score it on dev.

    Each member's dev F1 is recorded next to the ensemble's, measured on dev only. Refit
    members (trained on their dev set too) have no held-out dev: leave ``dev_path`` out.
    """
    taggers = [Tagger.load(d) for d in model_dirs]
    merged = merge_members(taggers)
    refit = [bool(t.meta.get("refit")) for t in taggers]
    dev_scores, member_f1 = None, [None] * len(taggers)
    if dev_path is not None:
        if any(refit):
            raise ValueError("refit members were trained on their dev set: a dev score would not be held out; leave out --dev")
        dev_sents = read_conll(dev_path).sentences
        words, gold = [s.words for s in dev_sents], [s.tags for s in dev_sents]
        dev_scores = entity_scores(gold, merged.predict(words))
        member_f1 = [entity_scores(gold, t.predict(words))["micro"]["f1"] for t in taggers]
    members = [{"dir": str(d), "command": t.meta.get("command"), "config": t.meta.get("config"), "refit": r,
                "best_epoch": t.meta.get("best_epoch"), "epochs_run": t.meta.get("epochs_run"),
                "training_minutes": t.meta.get("training_minutes"), "dev_f1": f1}
               for d, t, r, f1 in zip(model_dirs, taggers, refit, member_f1)]
    first = taggers[0].meta
    meta = {
        **{k: first[k] for k in ("name", "train_sha256", "sentences", "vectors", "license") if k in first},
        "spacy_aner_version": __version__,
        "command": command,
        "members": members,
        "training_minutes": round(sum(m["training_minutes"] or 0 for m in members), 1),
        "dev_sha256": sha256_file(dev_path) if dev_path is not None else None,
        "refit": all(refit),
        "dev_scores": dev_scores,
    }
    output = Path(output)
    merged.save(output, meta)
    histories = []
    for d in model_dirs:
        log = Path(d) / TRAINING_LOG_FILE
        histories.append(json.loads(log.read_text())["epochs"] if log.is_file() else [])
    (output / TRAINING_LOG_FILE).write_text(json.dumps({"members": histories}, indent=2))
    return meta


def add_vectors(model_dir: Path | str, vectors: Path | str, output: Path | str, *, max_vocab: Optional[int] = None,
                word_vector_bits: Optional[int] = None, command: str = "") -> Dict:
    """Write ``model_dir`` with a row for every key of ``vectors`` it lacks (:func:`add_word_vectors`).

    Scores recorded in the model's meta (dev, test) were measured without the new rows, so
    they move into ``added_vectors`` and are not reported as the new model's.
    """
    tagger = Tagger.load(model_dir)
    bigger, added = add_word_vectors(tagger, load_vectors(vectors), max_vocab=max_vocab,
                                     word_vector_bits=word_vector_bits)
    meta = dict(tagger.meta)
    before = {k: meta.pop(k) for k in ("dev_scores", "test_scores") if meta.get(k) is not None}
    meta["dev_scores"] = None
    meta["vectors"] = {**meta.get("vectors", {}), "kept_rows": len(bigger.vocab.words),
                       "rows_with_vectors": (meta.get("vectors") or {}).get("rows_with_vectors", 0) + added}
    meta["added_vectors"] = {"from_model": str(model_dir), "sha256": sha256_file(vectors), "rows_added": added,
                             "word_vector_bits": bigger.config.word_vector_bits, "command": command,
                             "spacy_aner_version": __version__, "scores_before": before or None}
    output = Path(output)
    bigger.save(output, meta)
    log = Path(model_dir) / TRAINING_LOG_FILE
    if log.is_file():
        (output / TRAINING_LOG_FILE).write_text(log.read_text(encoding="utf-8"), encoding="utf-8")
    return meta
