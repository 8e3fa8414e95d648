"""Is the F1 difference between two models on one file more than sentence sampling noise?

Both models tag the gold words of ``--data``; each sentence gives its entity counts (true
positives, predicted, gold; seqeval default mode, as ``spacy-aner evaluate``). The
sentences are resampled with replacement ``--samples`` times, the same draw for both
models (paired), and micro F1 recomputed from the summed counts. Reported: each model's
F1 on the whole file, the mean difference B - A, its 95 % percentile interval, and the
share of draws where B is not worse than A (a one-sided p-value for "B is worse").

    python benchmarks/paired_bootstrap.py models/refit_ens spacy_aner/models/aner-lstm \\
        --data ../shared/data/anercorp/ANERCorp_CamelLab_test.txt

This reports a difference between models already chosen; it is not a way to choose
between them on the test split.
Writes ``benchmarks/results/paired_bootstrap.json`` (``--output``).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import warnings
from pathlib import Path
from typing import Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RESULTS = Path(__file__).parent / "results"


def sentence_counts(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]):
    """(true positives, predicted, gold) entities per sentence, as an (n, 3) integer array."""
    import numpy as np
    from seqeval.metrics.sequence_labeling import get_entities

    rows = []
    for g, p in zip(gold, pred, strict=True):
        g_ents, p_ents = set(get_entities(list(g))), set(get_entities(list(p)))
        rows.append((len(g_ents & p_ents), len(p_ents), len(g_ents)))
    return np.asarray(rows, dtype=np.int64).reshape(-1, 3)


def f1(counts) -> float:
    """Micro F1 (0-100) from summed counts; 0 when there is nothing to score."""
    tp, n_pred, n_gold = counts.sum(axis=0)
    return 200.0 * tp / (n_pred + n_gold) if n_pred + n_gold else 0.0


def paired_bootstrap(a, b, samples: int = 2000, seed: int = 0) -> dict:
    """Resample sentences (rows of both count arrays alike) and summarise F1(b) - F1(a)."""
    import numpy as np

    if a.shape != b.shape:
        raise ValueError("the two count arrays must cover the same sentences")
    rng = np.random.default_rng(seed)
    n = len(a)
    diffs = np.empty(samples)
    for k in range(samples):
        idx = rng.integers(0, n, n)
        diffs[k] = f1(b[idx]) - f1(a[idx])
    low, high = np.percentile(diffs, [2.5, 97.5])
    return {"f1_a": f1(a), "f1_b": f1(b), "difference_b_minus_a": f1(b) - f1(a),
            "bootstrap_mean": float(diffs.mean()), "ci95": [float(low), float(high)],
            "share_b_not_worse": float((diffs >= 0).mean()), "samples": samples, "seed": seed}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model_a", type=Path, help="model directory A (the reference)")
    ap.add_argument("model_b", type=Path, help="model directory B")
    ap.add_argument("--data", type=Path, required=True, help="WORD TAG file both models are scored on")
    ap.add_argument("--samples", type=int, default=2000, help="bootstrap draws")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--output", type=Path, default=RESULTS / "paired_bootstrap.json")
    args = ap.parse_args(argv)
    if args.samples < 1:
        ap.error("--samples must be at least 1")

    from spacy_aner.corpus import read_conll
    from spacy_aner.evaluation import model_hash
    from spacy_aner.model import Tagger

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the release's stray I- tags
        sentences = read_conll(args.data).sentences
    words, gold = [s.words for s in sentences], [s.tags for s in sentences]
    counts = {}
    for key, model_dir in (("a", args.model_a), ("b", args.model_b)):
        counts[key] = sentence_counts(gold, Tagger.load(model_dir).predict(words))
    result = paired_bootstrap(counts["a"], counts["b"], samples=args.samples, seed=args.seed)
    out = {"command": "python benchmarks/paired_bootstrap.py " + " ".join(
        [str(args.model_a), str(args.model_b), "--data", str(args.data), "--samples", str(args.samples),
         "--seed", str(args.seed)]),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "data": {"file": str(args.data), "sentences": len(sentences)},
        "model_a": {"dir": str(args.model_a), "sha256": model_hash(args.model_a)},
        "model_b": {"dir": str(args.model_b), "sha256": model_hash(args.model_b)}, **result}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=2))
    low, high = result["ci95"]
    print(f"A {result['f1_a']:.2f}  B {result['f1_b']:.2f}  B - A {result['difference_b_minus_a']:+.2f} "
          f"(95 % interval {low:+.2f} to {high:+.2f}; B not worse in {100 * result['share_b_not_worse']:.1f} % "
          f"of {args.samples} draws)")
    print(f"-> {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
