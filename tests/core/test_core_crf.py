"""spacy_aner.core.crf (Viterbi, forward-backward and entity probabilities in NumPy) and the CRF loss of
spacy_aner.training.network, against brute force."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from spacy_aner.core.crf import forward_backward_batch, span_probabilities, viterbi_decode, viterbi_decode_batch
from spacy_aner.core.tags import TAGS, bio_to_spans


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


# --------------------------------------------------------------------------- entity probabilities

#: Two labels are enough for every case (another label's tags around an entity) and keep 5^T paths small.
SMALL_TAGS = ("O", "B-A", "I-A", "B-B", "I-B")


def brute_span_probabilities(scores, transitions, start, end, tags=SMALL_TAGS):
    """{(first, stop, label): probability} summed over every tag path, each read by bio_to_spans."""
    n, k = scores.shape
    paths = list(itertools.product(range(k), repeat=n))
    log_w = np.array([path_score(p, scores, transitions, start, end) for p in paths])
    prob = np.exp(log_w - np.logaddexp.reduce(log_w))
    out = {}
    for p, w in zip(paths, prob):
        for span in bio_to_spans([tags[i] for i in p]):
            out[span] = out.get(span, 0.0) + w
    return out, np.logaddexp.reduce(log_w)


def random_crf(rng, k, scale=1.5):
    return rng.normal(0, scale, size=(k, k)), rng.normal(0, scale, size=k), rng.normal(0, scale, size=k)


def all_spans(n, tags=SMALL_TAGS):
    labels = sorted({t[2:] for t in tags if t != "O"})
    return [(a, b, lab) for a in range(n) for b in range(a + 1, n + 1) for lab in labels]


def test_span_probabilities_equal_brute_force_on_small_random_crfs():
    """Every possible span of a padded batch of random CRFs, including spans no path but a
    stray ``I-`` opens, spans touching either end, and padding filled with noise."""
    rng = np.random.default_rng(3)
    k = len(SMALL_TAGS)
    index = {t: i for i, t in enumerate(SMALL_TAGS)}
    for _ in range(25):
        lengths = [int(n) for n in rng.integers(1, 6, size=4)]
        scores = rng.normal(0, 2, size=(len(lengths), max(lengths) + 2, k))  # padded past the longest
        transitions, start, end = random_crf(rng, k)
        forward = forward_backward_batch(scores, lengths, transitions, start, end)
        queries, want = [], []
        for row, n in enumerate(lengths):
            brute, log_z = brute_span_probabilities(scores[row, :n], transitions, start, end)
            assert forward[2][row] == pytest.approx(log_z, abs=1e-9)
            for a, b, lab in all_spans(n):
                queries.append((row, a, b, index[f"B-{lab}"], index[f"I-{lab}"]))
                want.append(brute.get((a, b, lab), 0.0))
        got = span_probabilities(scores, lengths, forward, transitions, start, end, queries)
        np.testing.assert_allclose(got, want, atol=1e-9)
        assert ((got >= 0) & (got <= 1)).all()


def test_span_probabilities_of_a_peaked_crf_are_near_one_for_the_viterbi_entities():
    rng = np.random.default_rng(4)
    k = len(TAGS)
    scores = rng.normal(0, 1, size=(1, 12, k))
    path = [0, 1, 2, 0, 3, 0, 0, 5, 6, 6, 0, 7]  # O B-PERS I-PERS O B-LOC O O B-ORG I-ORG I-ORG O B-MISC
    scores[0, np.arange(12), path] += 40.0
    transitions, start, end = (np.zeros(s) for s in [(k, k), k, k])
    assert viterbi_decode(scores[0], transitions, start, end).tolist() == path
    spans = bio_to_spans([TAGS[i] for i in path])
    forward = forward_backward_batch(scores, [12], transitions, start, end)
    queries = [(0, a, b, TAGS.index(f"B-{lab}"), TAGS.index(f"I-{lab}")) for a, b, lab in spans]
    got = span_probabilities(scores, [12], forward, transitions, start, end, queries)
    assert len(got) == 4 and (got > 0.999).all() and (got <= 1).all()
    # a span one token shorter is almost never decoded: its next token is I- on nearly every path
    short = span_probabilities(scores, [12], forward, transitions, start, end, [(0, 7, 9, 5, 6)])
    assert short[0] < 1e-10


def test_forward_backward_marginals_sum_to_one_and_match_one_sequence_at_a_time():
    rng = np.random.default_rng(5)
    k = len(TAGS)
    lengths = [7, 1, 0, 30, 12]
    scores = rng.normal(0, 3, size=(len(lengths), 33, k)).astype("float32")  # float32, as the network gives
    transitions, start, end = random_crf(rng, k)
    alpha, beta, log_z = forward_backward_batch(scores, lengths, transitions, start, end)
    assert log_z[2] == 0.0
    for row, n in enumerate(lengths):
        if not n:
            continue
        marginals = np.exp(alpha[row, :n] + beta[row, :n] - log_z[row])
        np.testing.assert_allclose(marginals.sum(1), 1.0, atol=1e-9)
        a1, b1, z1 = forward_backward_batch(scores[row:row + 1, :n], [n], transitions, start, end)
        np.testing.assert_allclose(a1[0], alpha[row, :n])
        np.testing.assert_allclose(b1[0], beta[row, :n])
        assert z1[0] == pytest.approx(log_z[row])
    empty = forward_backward_batch(np.zeros((2, 0, k)), [0, 0], transitions, start, end)
    assert empty[2].tolist() == [0.0, 0.0]
    assert span_probabilities(scores, lengths, (alpha, beta, log_z), transitions, start, end, []).shape == (0,)


def log_space_forward_backward(scores, transitions, start, end):
    """The textbook recursions for one sequence, in log space throughout (the reference)."""
    n, k = scores.shape
    alpha, beta = np.zeros((n, k)), np.zeros((n, k))
    alpha[0] = start + scores[0]
    for t in range(1, n):
        alpha[t] = np.logaddexp.reduce(alpha[t - 1][:, None] + transitions, axis=0) + scores[t]
    beta[n - 1] = end
    for t in range(n - 2, -1, -1):
        beta[t] = np.logaddexp.reduce(transitions + scores[t + 1] + beta[t + 1], axis=1)
    return alpha, beta, np.logaddexp.reduce(alpha[n - 1] + end)


@pytest.mark.parametrize("scale", [0.1, 3.0, 60.0])
def test_rescaled_forward_backward_equals_log_space_recursions(scale):
    """The rescaled products stay exact where plain exponentials would overflow or underflow
    (scores of hundreds), for every row of a padded batch."""
    rng = np.random.default_rng(6)
    k = len(TAGS)
    lengths = [1, 2, 9, 25, 0, 25]
    scores = rng.normal(0, scale, size=(len(lengths), 27, k))
    transitions, start, end = random_crf(rng, k, scale=scale / 4)
    alpha, beta, log_z = forward_backward_batch(scores, lengths, transitions, start, end)
    for row, n in enumerate(lengths):
        if n:
            a, b, z = log_space_forward_backward(scores[row, :n], transitions, start, end)
            tolerance = 1e-9 * max(1.0, abs(z))
            np.testing.assert_allclose(alpha[row, :n], a, rtol=0, atol=tolerance)
            np.testing.assert_allclose(beta[row, :n], b, rtol=0, atol=tolerance)
            assert log_z[row] == pytest.approx(z, abs=tolerance)


def test_first_and_last_tokens_are_exact_for_crf_scores_of_any_range():
    """Start and end scores far outside a trained CRF's range still give the exact edge values."""
    scores = np.zeros((1, 1, 3))
    start, end, transitions = np.array([0.0, 0.0, -800.0]), np.array([0.0, 0.0, 900.0]), np.zeros((3, 3))
    alpha, beta, log_z = forward_backward_batch(scores, [1], transitions, start, end)
    assert alpha[0, 0].tolist() == start.tolist() and beta[0, 0].tolist() == end.tolist()
    assert log_z[0] == pytest.approx(100.0)
