"""spacy_aner.core.crf (Viterbi in NumPy) and the CRF loss of spacy_aner.training.network, against brute force."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from spacy_aner.core.crf import viterbi_decode, viterbi_decode_batch
from spacy_aner.core.tags import TAGS


def path_score(path, scores, transitions, start, end):
    s = start[path[0]] + end[path[-1]] + sum(scores[t, k] for t, k in enumerate(path))
    return s + sum(transitions[a, b] for a, b in zip(path[:-1], path[1:]))


def test_viterbi_equals_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(150):
        T, K = int(rng.integers(1, 6)), 3
        scores, transitions = rng.normal(size=(T, K)), rng.normal(size=(K, K))
        start, end = rng.normal(size=K), rng.normal(size=K)
        paths = list(itertools.product(range(K), repeat=T))
        best = max(paths, key=lambda p: path_score(p, scores, transitions, start, end))
        got = viterbi_decode(scores, transitions, start, end)
        assert got.shape == (T,)
        assert tuple(int(k) for k in got) == best


def test_viterbi_empty_sequence():
    K = 3
    assert viterbi_decode(np.zeros((0, K)), np.zeros((K, K)), np.zeros(K), np.zeros(K)).shape == (0,)


def test_batched_viterbi_equals_one_sequence_at_a_time():
    rng = np.random.default_rng(1)
    K = len(TAGS)
    start, end = np.round(rng.normal(size=K)), np.round(rng.normal(size=K))
    for _ in range(60):
        lengths = rng.integers(0, 20, size=int(rng.integers(1, 9)))
        # Small whole numbers make equal candidates common: ties must be broken alike.
        # T beyond the longest row, as predict() pads.
        scores = rng.integers(-2, 3, size=(len(lengths), int(lengths.max()) + 3, K)).astype(float)
        transitions = rng.integers(-1, 2, size=(K, K)).astype(float)
        paths = viterbi_decode_batch(scores, lengths, transitions, start, end)
        assert paths.shape == (len(lengths), max(int(lengths.max()), 1))
        for b, n in enumerate(lengths):
            np.testing.assert_array_equal(paths[b, :n], viterbi_decode(scores[b, :n], transitions, start, end))
    transitions = np.zeros((K, K))
    assert viterbi_decode_batch(np.zeros((2, 1, K)), [0, 0], transitions, start, end).shape == (2, 1)


def brute_nll(scores, transitions, start, end, gold):
    n = len(gold)
    all_scores = np.array([path_score(p, scores[:n], transitions, start, end)
                           for p in itertools.product(range(scores.shape[1]), repeat=n)])
    return np.logaddexp.reduce(all_scores) - path_score(gold, scores[:n], transitions, start, end)


def test_crf_nll_equals_brute_force_and_ignores_padding():
    import tensorflow as tf

    from spacy_aner.training.network import crf_nll

    rng = np.random.default_rng(1)
    B, T, K = 6, 5, 3
    for _ in range(3):
        lengths = [5, 1, 3, 2, 4, int(rng.integers(1, 6))]
        scores = rng.normal(0, 2, size=(B, T, K)).astype("float32")
        transitions, start, end = (rng.normal(0, 1, size=s).astype("float32") for s in [(K, K), (K,), (K,)])
        y = np.full((B, T), -1, dtype="int32")
        for i, n in enumerate(lengths):
            y[i, :n] = rng.integers(0, K, size=n)
        args = [tf.constant(a) for a in (transitions, start, end)]
        got = crf_nll(tf.constant(y), tf.constant(scores), *args).numpy()
        assert got.shape == (B,) and (got > 0).all()
        want = [brute_nll(scores[i].astype("float64"), transitions.astype("float64"), start.astype("float64"),
                          end.astype("float64"), y[i, :n]) for i, n in enumerate(lengths)]
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-5)
        noisy = scores.copy()  # scores at padded positions are never read
        for i, n in enumerate(lengths):
            noisy[i, n:] = rng.normal(0, 50, size=(T - n, K))
        np.testing.assert_allclose(crf_nll(tf.constant(y), tf.constant(noisy), *args).numpy(), got, atol=1e-4)


def test_crf_probabilities_of_all_paths_sum_to_one():
    import tensorflow as tf

    from spacy_aner.training.network import crf_nll

    rng = np.random.default_rng(2)
    T, K = 4, 3
    paths = np.array(list(itertools.product(range(K), repeat=T)), dtype="int32")  # all 81 gold paths
    scores = np.repeat(rng.normal(size=(1, T, K)).astype("float32"), len(paths), 0)
    transitions, start, end = (tf.constant(rng.normal(size=s).astype("float32")) for s in [(K, K), (K,), (K,)])
    nll = crf_nll(tf.constant(paths), tf.constant(scores), transitions, start, end).numpy()
    assert np.exp(-nll.astype("float64")).sum() == pytest.approx(1.0, abs=1e-4)
