"""Are the entity scores calibrated? Reliability bins, expected calibration error, thresholds.

An entity's score (``doc.spans[name].attrs["scores"]``) is its probability under the
model's CRF. It is calibrated if, among predicted entities scored about ``p``, a share
``p`` is exactly right: same words and type as a gold entity (gold entities decoded as in
seqeval's default mode, as :func:`~.evaluation.entity_scores` counts them).
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np

from ..core.tags import ScoredSpan, bio_to_spans

#: Thresholds of the precision/recall table: where a user might cut.
THRESHOLDS = (0.0, 0.3, 0.5, 0.7, 0.9, 0.95)


def predict_scored(nlp, sentences: Sequence[Sequence[str]], batch_size: int = 256, progress: bool = True,
                   key: str = "aner_lstm") -> List[List[ScoredSpan]]:
    """The scored entities of component ``key`` on Docs of the gold words (as
    :func:`~.evaluation.predict_gold_words` runs the pipeline): ``(start word, end word,
    label, score)`` per sentence."""
    from tqdm import tqdm

    from .evaluation import gold_words_doc

    docs = (gold_words_doc(nlp.vocab, w) for w in sentences)
    out = []
    for doc in tqdm(nlp.pipe(docs, batch_size=batch_size), total=len(sentences), desc="predicting",
                    unit=" sentences", disable=not progress):
        group = doc.spans[key]
        out.append([(s.start, s.end, s.label_, float(p)) for s, p in zip(group, group.attrs["scores"])])
    return out


def entity_outcomes(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[ScoredSpan]]
                    ) -> Tuple[np.ndarray, np.ndarray, List[str]]:
    """Each predicted entity's score, whether it is exactly right, and its label."""
    scores, correct, labels = [], [], []
    for tags, entities in zip(gold, predicted):
        spans = set(bio_to_spans(tags))
        for start, end, label, score in entities:
            scores.append(score)
            correct.append((start, end, label) in spans)
            labels.append(label)
    return np.array(scores, dtype="float64"), np.array(correct, dtype=bool), labels


def reliability(scores: np.ndarray, correct: np.ndarray, bins: int = 10) -> Dict:
    """Equal-width score bins: count, mean score and share correct in each; the expected
    calibration error (the bins' count-weighted mean |share correct - mean score|), the
    largest bin gap, and the Brier score."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(scores, edges[1:-1], right=True), 0, bins - 1)  # (lo, hi], the first [0, hi]
    rows, ece, worst = [], 0.0, 0.0
    for b in range(bins):
        mask = which == b
        n = int(mask.sum())
        row = {"low": round(float(edges[b]), 3), "high": round(float(edges[b + 1]), 3), "count": n}
        if n:
            mean, share = float(scores[mask].mean()), float(correct[mask].mean())
            row.update(mean_score=round(mean, 4), share_correct=round(share, 4))
            ece += n / len(scores) * abs(share - mean)
            worst = max(worst, abs(share - mean))
        rows.append(row)
    brier = float(np.mean((scores - correct) ** 2)) if len(scores) else 0.0
    return {"bins": rows, "entities": int(len(scores)), "share_correct": round(float(correct.mean()), 4)
            if len(scores) else None, "mean_score": round(float(scores.mean()), 4) if len(scores) else None,
            "ece": round(ece, 4), "max_calibration_error": round(worst, 4), "brier": round(brier, 4)}


def threshold_table(scores: np.ndarray, correct: np.ndarray, n_gold: int,
                    thresholds: Sequence[float] = THRESHOLDS) -> List[Dict]:
    """Entity precision, recall and F1 (percent) keeping the entities scored at least each threshold."""
    rows = []
    for t in thresholds:
        kept = scores >= t
        tp = int(correct[kept].sum())
        p = 100 * tp / int(kept.sum()) if kept.any() else 0.0
        r = 100 * tp / n_gold if n_gold else 0.0
        rows.append({"threshold": t, "entities": int(kept.sum()), "precision": round(p, 2), "recall": round(r, 2),
                     "f1": round(2 * p * r / (p + r), 2) if p + r else 0.0})
    return rows
