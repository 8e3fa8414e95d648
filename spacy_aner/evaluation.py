"""Entity-level scoring with seqeval (CoNLL conventions)."""
from __future__ import annotations

from typing import Dict, List, Sequence

from .tags import LABELS


def entity_scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], strict: bool = False) -> Dict:
    """seqeval entity-level scores in percent: micro and macro P/R/F1 and per class.

    ``strict=False`` is seqeval's default (conlleval) mode, where a stray ``I-X`` opens an
    entity; ``strict=True`` is IOB2 mode, where only well-formed entities count.
    """
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2

    if len(gold) != len(pred) or any(len(g) != len(p) for g, p in zip(gold, pred)):
        raise ValueError("gold and predicted tag sequences differ in length")
    kwargs = {"mode": "strict", "scheme": IOB2} if strict else {}
    gold_l: List[List[str]] = [list(g) for g in gold]
    pred_l: List[List[str]] = [list(p) for p in pred]
    report = classification_report(gold_l, pred_l, output_dict=True, zero_division=0, **kwargs)

    def pct(d: Dict) -> Dict:
        return {"precision": 100 * float(d["precision"]), "recall": 100 * float(d["recall"]),
                "f1": 100 * float(d["f1-score"]), "support": int(d["support"])}

    return {
        "mode": "strict IOB2" if strict else "default (conlleval)",
        "micro": pct(report["micro avg"]),
        "macro": pct(report["macro avg"]),
        "per_type": {label: pct(report[label]) for label in LABELS if label in report},
    }
