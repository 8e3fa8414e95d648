"""spacy_aner.training.calibration (reliability bins, ECE, thresholds) and its reliability diagram."""
from __future__ import annotations

import numpy as np
import pytest
from aner_support import TINY_SENTENCES

from spacy_aner.core.tags import spans_to_bio
from spacy_aner.training.calibration import entity_outcomes, predict_scored, reliability, threshold_table
from spacy_aner.training.evaluation import predict_gold_words
from spacy_aner.training.plots import reliability_diagram

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_entity_outcomes_match_exact_spans_and_types():
    gold = [["B-PERS", "I-PERS", "O", "I-LOC"], ["B-ORG"]]  # a stray I-LOC opens an entity, as in seqeval
    predicted = [[(0, 2, "PERS", 0.9), (3, 4, "LOC", 0.6), (2, 3, "MISC", 0.2)], [(0, 1, "LOC", 0.7)]]
    scores, correct, labels = entity_outcomes(gold, predicted)
    assert scores.tolist() == [0.9, 0.6, 0.2, 0.7]
    assert correct.tolist() == [True, True, False, False]
    assert labels == ["PERS", "LOC", "MISC", "LOC"]


def test_reliability_bins_and_expected_calibration_error():
    scores = np.array([0.05, 0.1, 0.15, 0.55, 0.6, 0.95, 0.97, 1.0])
    correct = np.array([False, False, True, True, False, True, True, True])
    r = reliability(scores, correct, bins=10)
    counts = [b["count"] for b in r["bins"]]
    assert counts == [2, 1, 0, 0, 0, 2, 0, 0, 0, 3]  # (lo, hi]: 0.1 is in the first bin, 0.6 in the sixth
    first, last = r["bins"][0], r["bins"][9]
    assert first["mean_score"] == pytest.approx(0.075) and first["share_correct"] == 0.0
    assert last["mean_score"] == pytest.approx(0.9733, abs=1e-4) and last["share_correct"] == 1.0
    want = (2 * 0.075 + 1 * abs(1 - 0.15) + 2 * abs(0.5 - 0.575) + 3 * abs(1 - 2.92 / 3)) / 8
    assert r["ece"] == pytest.approx(want, abs=1e-4)
    assert r["max_calibration_error"] == pytest.approx(0.85) and r["entities"] == 8
    assert r["brier"] == pytest.approx(float(np.mean((scores - correct) ** 2)), abs=1e-4)
    perfect = reliability(np.array([1.0, 1.0, 0.0]), np.array([True, True, False]))
    assert perfect["ece"] == 0.0 and perfect["brier"] == 0.0
    empty = reliability(np.array([]), np.array([], dtype=bool))
    assert empty["entities"] == 0 and empty["ece"] == 0.0 and empty["share_correct"] is None


def test_threshold_table():
    scores = np.array([0.2, 0.6, 0.8, 0.95])
    correct = np.array([False, True, False, True])
    rows = threshold_table(scores, correct, n_gold=4, thresholds=(0.0, 0.7, 0.99))
    assert rows[0] == {"threshold": 0.0, "entities": 4, "precision": 50.0, "recall": 50.0, "f1": 50.0}
    assert rows[1]["entities"] == 2 and rows[1]["precision"] == 50.0 and rows[1]["recall"] == 25.0
    assert rows[2] == {"threshold": 0.99, "entities": 0, "precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_predict_scored_gives_the_entities_evaluate_scores(scrambled_nlp):
    sentences = [text.split() for text, _ in TINY_SENTENCES] + [[]]
    predicted = predict_scored(scrambled_nlp, sentences, batch_size=3, progress=False)
    assert len(predicted) == len(sentences) and predicted[-1] == [] and sum(map(len, predicted)) > 5
    tags = predict_gold_words(scrambled_nlp, sentences, batch_size=3, progress=False)
    assert [spans_to_bio([e[:3] for e in ents], len(w)) for w, ents in zip(sentences, predicted)] == tags
    assert all(0.0 <= e[3] <= 1.0 for ents in predicted for e in ents)


def test_reliability_diagram_is_a_png(tmp_path):
    rng = np.random.default_rng(0)
    scores = rng.uniform(size=300)
    result = reliability(scores, rng.uniform(size=300) < scores)
    reliability_diagram(result, tmp_path / "r.png", "random")
    assert (tmp_path / "r.png").read_bytes()[:8] == PNG_MAGIC
