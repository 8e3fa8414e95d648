"""K-fold cross-validation over one training file: the folds, their files and the pooled scores.

The file is cut into ``k`` contiguous blocks of whole sentences, as the corpus's own
train/test split is cut, so an article's names do not sit on both sides of a fold. Fold
``i`` trains on every other block (in file order) and is early-stopped and scored on
block ``i``. Scores are pooled over the held-out sentences of all folds (one micro F1 over
every entity), not averaged over folds, and recipes are compared fold by fold, since the
spread between blocks is larger than most differences between recipes.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Set, Tuple

from ..core.tags import bio_to_spans
from .evaluation import entity_scores

TRAIN_NAME = "train.conll"
HELDOUT_NAME = "heldout.conll"
PARTS = ("seen", "unseen")


@dataclass(frozen=True)
class Fold:
    index: int
    start: int  # first held-out sentence
    end: int  # one past the last held-out sentence
    train: Path
    heldout: Path


def sentence_blocks(text: str) -> List[str]:
    """A ``WORD TAG`` file's sentences as their raw lines, split where ``read_conll`` splits.

    The lines are kept as written (only ``\\r\\n`` becomes ``\\n``) so that fold files repeat the
    source's quirks, such as stray ``I-`` tags, instead of a re-encoding of them.
    """
    blocks: List[str] = []
    lines: List[str] = []
    for line in text.lstrip("\ufeff").split("\n"):
        line = line.rstrip("\r")
        if line.strip():
            lines.append(line)
        elif lines:
            blocks.append("\n".join(lines))
            lines = []
    if lines:
        blocks.append("\n".join(lines))
    return blocks


def fold_bounds(n: int, k: int) -> List[Tuple[int, int]]:
    """``k`` contiguous ``[start, end)`` ranges of near-equal size covering ``0..n``."""
    if not 2 <= k <= n:
        raise ValueError(f"need 2 <= folds <= sentences ({n}), got {k} folds")
    return [(n * i // k, n * (i + 1) // k) for i in range(k)]


def write_if_changed(path: Path, content: str) -> None:
    """Leave an identical file untouched, so its date still says when the fold was cut."""
    if not path.is_file() or path.read_text(encoding="utf-8") != content:
        path.write_text(content, encoding="utf-8")


def write_folds(blocks: Sequence[str], k: int, workdir: Path | str) -> List[Fold]:
    """``workdir/fold_i/train.conll`` (the other blocks, in order) and ``heldout.conll`` for each fold."""
    folds = []
    for i, (start, end) in enumerate(fold_bounds(len(blocks), k)):
        folder = Path(workdir) / f"fold_{i}"
        folder.mkdir(parents=True, exist_ok=True)
        fold = Fold(i, start, end, folder / TRAIN_NAME, folder / HELDOUT_NAME)
        write_if_changed(fold.train, "\n\n".join([*blocks[:start], *blocks[end:]]) + "\n")
        write_if_changed(fold.heldout, "\n\n".join(blocks[start:end]) + "\n")
        folds.append(fold)
    return folds


def pooled_scores(gold: Sequence[Sequence[Sequence[str]]], pred: Sequence[Sequence[Sequence[str]]]) -> Dict:
    """Each fold's micro P/R/F1 and the scores of all folds' sentences pooled (seqeval default mode).

    ``gold[i]`` and ``pred[i]`` are fold ``i``'s held-out tag sequences.
    """
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold folds but {len(pred)} predicted ones")
    folds = []
    for g, p in zip(gold, pred):
        micro = entity_scores(g, p)["micro"]
        folds.append({"sentences": len(g), **{k: round(micro[k], 2) for k in ("precision", "recall", "f1")},
                      "entities": micro["support"]})
    pooled = entity_scores([s for fold in gold for s in fold], [s for fold in pred for s in fold])
    return {"folds": folds, "pooled": pooled}


def paired_differences(base: Dict, other: Dict) -> Dict:
    """``other`` minus ``base`` (both :func:`pooled_scores` results of the same folds): per fold and pooled."""
    if len(base["folds"]) != len(other["folds"]):
        raise ValueError("the two results cover different numbers of folds")
    diffs = [round(o["f1"] - b["f1"], 2) for b, o in zip(base["folds"], other["folds"])]
    return {"fold_differences": diffs, "mean": round(sum(diffs) / len(diffs), 2),
            "folds_ahead": sum(d > 0 for d in diffs), "folds_behind": sum(d < 0 for d in diffs),
            "pooled_difference": round(other["pooled"]["micro"]["f1"] - base["pooled"]["micro"]["f1"], 2)}


def entity_strings(words: Sequence[Sequence[str]], tags: Sequence[Sequence[str]]) -> Set[Tuple[str, ...]]:
    """The word sequences that are an entity (of any type) somewhere in these sentences."""
    return {tuple(w[s:e]) for w, t in zip(words, tags) for s, e, _ in bio_to_spans(t)}


def recall_by_seen(words: Sequence[Sequence[str]], gold: Sequence[Sequence[str]],
                   pred: Sequence[Sequence[str]], seen: Set[Tuple[str, ...]]) -> Dict:
    """Recall (percent) over gold entities whose words are in ``seen`` and over the others, also per type.

    A gold entity counts as found when a predicted entity has its exact span and type,
    as in the entity-level F1; entities are decoded as seqeval's default mode does.
    """
    hits = []  # (label, "seen" or "unseen", found)
    for w, g, p in zip(words, gold, pred):
        predicted = set(bio_to_spans(p))
        for start, end, label in bio_to_spans(g):
            part = "seen" if tuple(w[start:end]) in seen else "unseen"
            hits.append((label, part, (start, end, label) in predicted))

    def tally(rows) -> Dict:
        return with_recall({"gold": len(rows), "found": sum(found for _, _, found in rows)})

    result: Dict = {part: tally([h for h in hits if h[1] == part]) for part in PARTS}
    result["per_type"] = {label: {part: tally([h for h in hits if h[0] == label and h[1] == part]) for part in PARTS}
                          for label in sorted({h[0] for h in hits})}
    return result


def with_recall(counts: Dict[str, int]) -> Dict:
    return {**counts, "recall": round(100.0 * counts["found"] / counts["gold"], 2) if counts["gold"] else 0.0}


def sum_counts(parts: Iterable[Dict]) -> Dict:
    """:func:`recall_by_seen` results of several folds added up into one (pooled recall)."""
    total = {part: {"gold": 0, "found": 0} for part in PARTS}
    for result in parts:
        for part in total:
            total[part]["gold"] += result[part]["gold"]
            total[part]["found"] += result[part]["found"]
    return {part: with_recall(c) for part, c in total.items()}
