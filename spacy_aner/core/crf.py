"""Linear-chain CRF in NumPy: Viterbi decoding, and the probability of a decoded entity (forward-backward)."""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np


def viterbi_decode(scores: np.ndarray, transitions: np.ndarray, start: np.ndarray,
                   end: np.ndarray) -> np.ndarray:
    """Best tag path for one sequence of unary ``scores`` ``(T, K)``."""
    n, _ = scores.shape
    if n == 0:
        return np.zeros(0, dtype="int64")
    score = start + scores[0]
    back = np.zeros((n, scores.shape[1]), dtype="int64")
    for t in range(1, n):
        cand = score[:, None] + transitions
        back[t] = cand.argmax(0)
        score = cand.max(0) + scores[t]
    best = [int((score + end).argmax())]
    for t in range(n - 1, 0, -1):
        best.append(int(back[t, best[-1]]))
    return np.array(best[::-1])


def viterbi_decode_batch(scores: np.ndarray, lengths: Sequence[int], transitions: np.ndarray,
                         start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """:func:`viterbi_decode` for a padded batch ``(B, T, K)`` at once: paths
    ``(B, max(longest, 1))``, valid up to each length. The same float operations per sequence, so the same paths
    (tested); a finished sequence just carries its scores along."""
    b, _, k = scores.shape
    lengths = np.asarray(lengths, dtype="int64")
    longest = int(lengths.max(initial=0))
    path = np.zeros((b, max(longest, 1)), dtype="int64")
    if longest == 0:
        return path
    ragged = bool((lengths < longest).any())  # never for one sequence: no masks per token then
    score = start + scores[:, 0]
    back = np.empty((b, longest, k), dtype="int64")
    for t in range(1, longest):
        cand = score[:, :, None] + transitions
        back[:, t] = cand.argmax(1)
        step = cand.max(1) + scores[:, t]
        score = np.where((t < lengths)[:, None], step, score) if ragged else step
    if ragged:  # past its end a row points each tag at itself, so backtracking carries its last tag
        back[np.arange(longest) >= lengths[:, None]] = np.arange(k)
    rows = np.arange(b)
    best = (score + end).argmax(1)
    path[:, longest - 1] = best
    for t in range(longest - 1, 0, -1):
        best = back[rows, t, best]
        path[:, t - 1] = best
    return path


#: Unary scores more than this far (in log space) below their token's best are floored to it,
#: because the backward pass divides by each unary weight and e**-745 is zero in float64.
LOG_UNARY_FLOOR = -700.0


def forward_backward_batch(scores: np.ndarray, lengths: Sequence[int], transitions: np.ndarray,
                           start: np.ndarray, end: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log-space forward and backward scores of a padded batch ``(B, T, K)``, as in
    :func:`viterbi_decode_batch` with log-sum-exp for max.

    ``alpha[b, t, k]``: log of the summed scores of every path over tokens ``0..t`` that
    ends in tag ``k`` (start and unary scores included); ``beta[b, t, k]``: the same for
    the rest of the sequence after ``t`` given tag ``k`` at ``t`` (end score included);
    ``log_z[b]``: the log partition function. Values beyond a sequence's length are not
    meaningful. Float64 throughout: probabilities come from differences of large sums.

    Both passes run in one loop of matrix products, each step rescaled to sum to one with
    its log scale summed afterwards: a batch of one sentence costs few NumPy calls per
    token, a large batch no log or exp inside the loop. The backward pass runs over each
    row reversed and right-aligned, so that every row starts at its own last token, and
    carries each token's own unary weight so that it has the forward pass's form.

    Exact to rounding while no unary score lies more than ``-LOG_UNARY_FLOOR`` below its
    token's best and the CRF's start, end and transition scores each span less than about
    700: a trained network's scores are far inside both. The first token's ``alpha`` and
    the last token's ``beta`` are set exactly, whatever the range.
    """
    scores = np.asarray(scores, dtype="float64")
    trans, start, end = (np.asarray(a, dtype="float64") for a in (transitions, start, end))
    b, t_max, k = scores.shape
    lengths = np.asarray(lengths, dtype="int64")
    if t_max == 0:
        return np.zeros((b, 0, k)), np.zeros((b, 0, k)), np.zeros(b)
    rows = np.arange(b)[:, None]
    shift = scores.max(2)
    log_unary = np.maximum(scores - shift[:, :, None], LOG_UNARY_FLOOR)
    # step i of the backward pass is token length - 1 - i (negative indices wrap onto padding)
    reverse = ((np.maximum(lengths, 1) - 1)[:, None] - np.arange(t_max)[None, :]) % t_max
    log_u = np.stack([log_unary, log_unary[rows, reverse]])
    unary = np.exp(log_u)
    trans_shift = trans.max()
    weights = np.exp(trans - trans_shift)
    both = np.stack([weights, weights.T])  # forward: previous tag -> tag; backward: the other way
    first = np.stack([start + scores[:, 0], end + log_u[1, :, 0]])
    x = np.exp(first - first.max(2, keepdims=True))
    steps = np.empty((2, b, t_max, k))
    steps[:, :, 0] = x
    totals = np.ones((2, b, t_max))
    tiny = np.finfo("float64").tiny
    for t in range(1, t_max):
        x = np.matmul(x, both) * unary[:, :, t]
        total = x.sum(2, keepdims=True) + tiny
        x = x / total
        steps[:, :, t] = x
        totals[:, :, t] = total[:, :, 0]
    scale = np.log(totals) + trans_shift
    scale[:, :, 0] = first.max(2)
    scale[0, :, 1:] += shift[:, 1:]
    scale[1, :, 1:] += shift[rows, reverse][:, :-1]  # the unary shift of the token after
    with np.errstate(divide="ignore"):  # a tag no path reaches has log weight -inf
        logs = np.log(steps) + np.cumsum(scale, 2)[..., None]
    alpha = logs[0]
    alpha[:, 0] = start + scores[:, 0]
    beta = logs[1][rows, reverse] - log_unary  # ``reverse`` is its own inverse on each row's tokens
    beta[np.arange(b), np.maximum(lengths, 1) - 1] = end
    last = np.clip(lengths - 1, 0, None)
    log_z = np.logaddexp.reduce(alpha[np.arange(b), last] + end, axis=1)
    return alpha, beta, np.where(lengths > 0, log_z, 0.0)


def span_probabilities(scores: np.ndarray, lengths: Sequence[int], forward: Tuple[np.ndarray, ...],
                       transitions: np.ndarray, start: np.ndarray, end: np.ndarray,
                       spans: Sequence[Tuple[int, int, int, int, int]]) -> np.ndarray:
    """The probability under the CRF of each entity span, as :func:`~.tags.bio_to_spans` reads tags.

    ``spans`` are ``(row, first, stop, begin, inside)``: tokens ``first..stop-1`` of batch
    row ``row`` with ``begin``/``inside`` the tag indices of ``B-L``/``I-L``. The
    probability is that of every tag path in which exactly this entity is decoded: token
    ``first`` is ``B-L``, or ``I-L`` after a tag other than ``B-L``/``I-L`` (a stray ``I-``
    opens an entity); the tokens up to ``stop - 1`` are ``I-L``; and token ``stop`` is not
    ``I-L`` (or the sequence ends). ``forward`` is :func:`forward_backward_batch`'s result
    for the same batch. Exact, and linear in the entity's length.
    """
    if not len(spans):
        return np.zeros(0)
    alpha, beta, log_z = forward
    scores = np.asarray(scores, dtype="float64")
    trans, start, end = (np.asarray(a, dtype="float64") for a in (transitions, start, end))
    row, first, stop, begin, inside = (np.asarray(c, dtype="int64") for c in zip(*spans))
    lengths = np.asarray(lengths, dtype="int64")[row]
    last = scores.shape[1] - 1  # indices past a row's end are clipped here; their values are masked out
    tags = np.arange(trans.shape[0])
    both = np.stack([begin, inside], 1)  # (E, 2): the entity's two tags
    # Opening at `first`: B-L after anything, or I-L after a tag outside the entity's label.
    outside = (tags != begin[:, None]) & (tags != inside[:, None])  # (E, K)
    prev = alpha[row, np.maximum(first - 1, 0)] + trans[:, inside].T  # (E, K): previous tag -> I-L
    open_inside = np.where(first > 0, np.logaddexp.reduce(np.where(outside, prev, -np.inf), axis=1), start[inside])
    v = np.stack([alpha[row, first, begin], open_inside + scores[row, first, inside]], 1)  # log weights of B-L, I-L
    for step in range(1, int((stop - first).max())):
        t = np.minimum(first + step, last)
        cont = np.logaddexp.reduce(v + trans[both, inside[:, None]], axis=1) + scores[row, t, inside]
        v = np.where((first + step < stop)[:, None], np.stack([np.full(len(row), -np.inf), cont], 1), v)
    # Closing after `stop - 1`: the end scores, or any next tag but I-L and the rest of the path.
    after = np.minimum(stop, last)
    nxt = trans[both] + (scores[row, after] + beta[row, after])[:, None, :]  # (E, 2, K)
    nxt = np.where((tags != inside[:, None])[:, None, :], nxt, -np.inf)
    close = np.where((stop < lengths)[:, None], np.logaddexp.reduce(nxt, axis=2), end[both])
    log_p = np.logaddexp.reduce(v + close, axis=1) - log_z[row]
    return np.clip(np.exp(log_p), 0.0, 1.0)
