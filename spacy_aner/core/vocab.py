"""Word and character ids, keyed by the normalised look-up form of each word."""
from __future__ import annotations

import operator
from array import array
from collections import Counter
from functools import lru_cache
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from .config import UNK
from .normalize import normalize_word

def proclitic_forms(key: str) -> List[str]:
    """Forms of a normalised word without its proclitics و/ف (conjunctions) and ب/ل/ك
    (prepositions), most specific first; the article ال stays (بالقاهره -> القاهره)."""
    out: List[str] = []
    forms = [key] + ([key[1:]] if key[:1] in ("و", "ف") else [])
    for k in forms:
        if k is not key:
            out.append(k)
        if k.startswith(("بال", "كال")):
            out.append("ال" + k[3:])
        elif k.startswith("لل"):
            out.append("ال" + k[2:])
        elif k[:1] in ("ب", "ل", "ك"):
            out.append(k[1:])
    return list(dict.fromkeys(k for k in out if len(k) >= 2 and k != key))


def clitic_candidates(key: str) -> List[str]:
    """:func:`proclitic_forms`, then those forms and ``key`` without the article, most specific first.

    A name seen once in a corpus mostly appears in a form never seen: والقاهره, بالقاهره,
    للقاهره all back off to القاهره, then to قاهره.
    """
    forms = proclitic_forms(key)
    bare = [k[2:] for k in forms + [key] if k.startswith("ال")]
    return list(dict.fromkeys(k for k in forms + bare if len(k) >= 2 and k != key))


#: Rows 0 and 1, ``<pad>`` and ``<unk>``, come before the sorted words of a stored vocabulary.
RESERVED_ROWS = UNK + 1


class WordList(Sequence):
    """A stored vocabulary's words as one string, one word per line: the reserved rows, then
    the words in sorted order, so a word is found by binary search. Loading then makes no
    Python object per word: a dict of 100k+ words would take more memory than the rest of
    the tagger's Python state."""

    def __init__(self, joined: str) -> None:
        if joined and not joined.endswith("\n"):
            raise ValueError("the word list must end with a line break")
        self.joined = joined
        codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32)
        # array.array, not NumPy: indexing it gives a Python int at once, which the search needs.
        self.starts = array("q", np.concatenate([[0], np.flatnonzero(codes == ord("\n")) + 1]).astype(np.int64).tobytes())

    @staticmethod
    def storage_order(words: Sequence[str]) -> List[int]:
        """Ids of ``words`` in the order a WordList keeps them."""
        return list(range(min(RESERVED_ROWS, len(words)))) + sorted(range(RESERVED_ROWS, len(words)),
                                                                     key=words.__getitem__)

    @classmethod
    def from_words(cls, words: Iterable[str]) -> "WordList":
        """A WordList of ``words``, which must be in :meth:`storage_order` already."""
        words = list(words)
        if any("\n" in w for w in words) or len(set(words)) != len(words):
            raise ValueError("vocabulary words must be distinct and hold no line break")
        if WordList.storage_order(words) != list(range(len(words))):
            raise ValueError("vocabulary words are not in storage order")
        return cls("".join(w + "\n" for w in words))

    def __len__(self) -> int:
        return len(self.starts) - 1

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n, i = len(self), operator.index(i)
        i = i + n if i < 0 else i
        if not 0 <= i < n:
            raise IndexError("word id out of range")
        return self.joined[self.starts[i]: self.starts[i + 1] - 1]

    def __iter__(self) -> Iterator[str]:
        return iter(self.joined.split("\n")[:-1])

    def __eq__(self, other) -> bool:
        return list(self) == list(other) if isinstance(other, (list, WordList)) else NotImplemented

    def get(self, key: str, default: Optional[int] = None) -> Optional[int]:
        """The id of ``key`` among the sorted words, as ``dict.get`` would give it."""
        joined, starts = self.joined, self.starts
        lo, hi = RESERVED_ROWS, len(starts) - 1
        while lo < hi:  # bisect_left, written out: a call per step would cost more than the step
            mid = (lo + hi) // 2
            if joined[starts[mid]: starts[mid + 1] - 1] < key:
                lo = mid + 1
            else:
                hi = mid
        return lo if lo < len(starts) - 1 and joined[starts[lo]: starts[lo + 1] - 1] == key else default


class Vocabulary:
    """Word ids keyed by :func:`normalize_word`, character ids over those keys."""

    def __init__(self, words: Union[Sequence[str], WordList], chars: Sequence[str], max_word_chars: int,
                 clitic_backoff: bool = False) -> None:
        self.words = words if isinstance(words, WordList) else list(words)
        self.chars = list(chars)
        self.max_word_chars = max_word_chars
        self.clitic_backoff = clitic_backoff
        self.word_index = self.words if isinstance(self.words, WordList) else {w: i for i, w in enumerate(self.words)}
        self.char_index = {c: i for i, c in enumerate(self.chars)}
        self._cache_lookups()

    def _cache_lookups(self) -> None:
        self._char_ids = lru_cache(maxsize=200_000)(self._char_ids_uncached)
        self._word_id = lru_cache(maxsize=200_000)(self._word_id_uncached)

    def __getstate__(self):
        """Without the look-up caches (bound ``lru_cache`` wrappers do not pickle); a copy starts empty."""
        return {k: v for k, v in self.__dict__.items() if k not in ("_char_ids", "_word_id")}

    def __setstate__(self, state) -> None:
        self.__dict__.update(state)
        self._cache_lookups()

    def _lookup(self, key: str) -> Optional[int]:
        idx = self.word_index.get(key)
        return idx if idx is not None and idx > UNK else None  # a text word "<pad>" is not padding

    def _word_id_uncached(self, key: str) -> int:
        idx = self._lookup(key)
        if idx is None and self.clitic_backoff:
            idx = next((i for i in map(self._lookup, clitic_candidates(key)) if i is not None), None)
        return UNK if idx is None else idx

    @classmethod
    def build(cls, words: Iterable[str], max_word_chars: int, min_char_count: int = 2,
              clitic_backoff: bool = False) -> "Vocabulary":
        keys = ["<pad>", "<unk>"]
        seen = set(keys)
        char_counts: Counter = Counter()
        for w in words:
            if w not in seen:
                seen.add(w)
                keys.append(w)
            char_counts.update(w)
        chars = ["<pad>", "<unk>"] + sorted(c for c, n in char_counts.items() if n >= min_char_count)
        return cls(keys, chars, max_word_chars, clitic_backoff)

    def _char_ids_uncached(self, key: str) -> Tuple[int, ...]:
        half = self.max_word_chars // 2
        if len(key) > self.max_word_chars:  # keep both ends: Arabic marks words at both
            key = key[:half] + key[-(self.max_word_chars - half):]
        return tuple(self.char_index.get(c, UNK) for c in key)

    def encode(self, sequences: Sequence[Sequence[str]], length: int) -> Tuple[np.ndarray, np.ndarray]:
        """Word ids ``(n, length)`` and char ids ``(n, length, max_word_chars)`` for raw words."""
        word_ids = np.zeros((len(sequences), length), dtype="int32")
        char_ids = np.zeros((len(sequences), length, self.max_word_chars), dtype="int32")
        for i, words in enumerate(sequences):
            for j, word in enumerate(words):
                key = normalize_word(word) or word
                word_ids[i, j] = self._word_id(key)
                ids = self._char_ids(key)
                char_ids[i, j, : len(ids)] = ids
        return word_ids, char_ids

    def distinct_rows(self, sequences: Sequence[Sequence[str]]) -> Tuple[Dict[str, np.ndarray], List[np.ndarray]]:
        """One row per distinct look-up key of ``sequences`` (row 0: padding), in order of first
        use: its key ``row_keys`` (u,), word id ``row_words`` (u,) and char ids ``char_rows``
        (u, max_word_chars); and each sequence's rows, word by word.

        Everything the network reads about a word depends on its key alone and most tokens
        repeat a key, so the char CNNs run once per row.
        """
        keys: Dict[str, int] = {}  # key -> row (from 1)
        rows = [[keys.setdefault(normalize_word(w) or w, len(keys) + 1) for w in words] for words in sequences]
        row_words = np.zeros(len(keys) + 1, dtype="int32")
        char_rows = np.zeros((len(keys) + 1, self.max_word_chars), dtype="int32")
        for key, r in keys.items():
            row_words[r] = self._word_id(key)
            ids = self._char_ids(key)
            char_rows[r, : len(ids)] = ids
        row_keys = np.array([None, *keys], dtype=object)
        return ({"row_keys": row_keys, "row_words": row_words, "char_rows": char_rows},
                [np.asarray(r, dtype="int32") for r in rows])

    def stored(self) -> Tuple[dict, List[int]]:
        """What ``vocab.json`` holds (the words as a :class:`WordList` string), and the current
        id of each stored word, by which the word table's rows are put in the same order."""
        order = WordList.storage_order(self.words)
        words = WordList.from_words(self.words[i] for i in order)
        return {"words": words.joined, "chars": self.chars, "max_word_chars": self.max_word_chars}, order
