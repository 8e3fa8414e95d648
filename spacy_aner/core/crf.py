"""Linear-chain CRF decoding (Viterbi) in NumPy."""
from __future__ import annotations

from typing import Sequence

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
    b, _, _ = scores.shape
    lengths = np.asarray(lengths, dtype="int64")
    longest = int(lengths.max(initial=0))
    path = np.zeros((b, max(longest, 1)), dtype="int64")
    if longest == 0:
        return path
    score = start + scores[:, 0]
    back = np.zeros((b, longest, scores.shape[2]), dtype="int64")
    for t in range(1, longest):
        cand = score[:, :, None] + transitions
        back[:, t] = cand.argmax(1)
        score = np.where((t < lengths)[:, None], cand.max(1) + scores[:, t], score)
    rows = np.arange(b)
    best = (score + end).argmax(1)
    for t in range(longest - 1, -1, -1):
        active = t < lengths
        path[active, t] = best[active]
        if t:
            best = np.where(active, back[rows, t, best], best)
    return path
