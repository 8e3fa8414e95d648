"""The tagger: BIO tags for word sequences of any length, from a model directory, and each
entity's probability under the CRF."""
from __future__ import annotations

import multiprocessing
import numbers
import os
from bisect import bisect_right
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Protocol, Sequence, Tuple

import numpy as np

from .config import ModelConfig, ModelLoadError
from .crf import forward_backward_batch, span_probabilities, viterbi_decode_batch
from .gazetteer import Gazetteer, GazetteerError
from .normalize import has_arabic_letters
from .runtime import OnnxScorer
from .storage import (WordVectors, files_state, first_members_meta, keep_first_members_log, read_config,
                      read_gazetteer, read_meta, read_records, read_vocab, write_model)
from .tags import Tagging, bio_to_spans
from .vocab import Vocabulary

#: Most padded tokens per network call in ``Tagger.predict`` (bounds peak memory).
MAX_BATCH_TOKENS = 8192

#: A window of a sequence: sequence index, start, end, core start, core end.
Piece = Tuple[int, int, int, int, int]
#: One network call's result: its piece indices, their tags and their unary scores.
CallResult = Tuple[List[int], List[List[str]], np.ndarray]


def check_count(name: str, value, least: int = 1, zero: str = "") -> int:
    """``value`` if it is a whole number of at least ``least`` (0 or 1), else a ``ValueError`` naming
    the option ``name``, ``zero`` saying what 0 means. A config can hand over a string ("8")."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        allowed = f"0 ({zero}) or a positive whole number" if least == 0 else "a positive whole number"
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return int(value)


def usable_cores() -> int:
    """The cores this process may run on (a container's or ``taskset``'s limit, not the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class Scorer(Protocol):
    """What computes the network: :class:`~.runtime.OnnxScorer`, or Keras while training."""

    def scores(self, feeds: Dict[str, np.ndarray]) -> np.ndarray: ...

    def crf(self) -> Tuple[np.ndarray, ...]: ...


def padded_length(n: int, multiple: int = 16) -> int:
    """``n`` rounded up to a multiple of ``multiple`` (at least one multiple)."""
    return max(multiple, -(-n // multiple) * multiple)


def make_windows(n: int, size: int, context: int) -> List[Tuple[int, int, int, int]]:
    """Cut ``n`` tokens into windows of at most ``size``: ``(start, end, core_start, core_end)``.

    Cores tile ``[0, n)`` exactly; each window adds up to ``context`` tokens either side so
    that tags near a cut are predicted with context. Linear in ``n``.
    """
    if size <= 2 * context:
        raise ValueError(f"window size {size} must be longer than twice the context {context}")
    if n <= size:
        return [(0, n, 0, n)]
    out = []
    core_start = 0
    while core_start < n:
        start = max(0, core_start - context)
        end = min(n, start + size)
        core_end = n if end == n else end - context
        out.append((start, end, core_start, core_end))
        core_start = core_end
    return out



class Tagger:
    """A trained tagger: vocabulary, word vectors, gazetteer, the network's scorer and CRF decoding.

    ``threads`` network calls run at once, each on one thread: a batch's calls are
    independent, so they scale with the cores where one call's own threads do not. The
    scorer must then be thread-safe, as :class:`~.runtime.OnnxScorer` is. 0 is
    :meth:`workers`' choice.
    """

    def __init__(self, config: ModelConfig, vocab: Vocabulary, scorer: Scorer,
                 vectors: Optional[WordVectors] = None, meta: Optional[dict] = None,
                 gazetteer: Optional[Gazetteer] = None, threads: int = 1) -> None:
        if bool(config.gazetteer_labels) != (gazetteer is not None):
            raise ValueError("a tagger has a gazetteer exactly when its network reads one")
        self.config = config
        self.vocab = vocab
        self.scorer = scorer
        self.vectors = vectors
        self.meta = meta or {}
        self.gazetteer = gazetteer  # what the network reads: the model's lists and any user names
        self.model_gazetteer = gazetteer  # the model's own lists, as its files hold them
        self.threads = check_count("threads", threads, 0, "one per core")
        self.records: Dict[str, bytes] = {}  # files of RECORD_FILES, written with the model
        self.source: Optional[Tuple[Path, tuple]] = None  # the directory loaded from, and its files_state
        self._pool: Optional[ThreadPoolExecutor] = None
        self._pool_pid: Optional[int] = None

    def __getstate__(self):
        return {**self.__dict__, "_pool": None, "_pool_pid": None}  # threads do not pickle

    def workers(self) -> int:
        """Network calls run at once in this process: ``threads``, or for 0 one per core, but
        one in a worker process of :mod:`multiprocessing` (``nlp.pipe(n_process=N)``), whose
        sibling processes share the cores already."""
        if self.threads:
            return self.threads
        return 1 if multiprocessing.parent_process() is not None else usable_cores()

    def pool(self) -> Optional[ThreadPoolExecutor]:
        """The threads running network calls, made on first use in each process (a forked
        child has none of its parent's threads); None for one."""
        if self._pool_pid != os.getpid():
            workers = self.workers()
            self._pool = ThreadPoolExecutor(workers, thread_name_prefix="aner-network") if workers > 1 else None
            self._pool_pid = os.getpid()
        return self._pool

    def close(self) -> None:
        """Stop :meth:`pool`'s threads, dropping the calls not yet begun (a call under way raises
        ``CancelledError``), so that a process stopping mid-batch need not finish the batch
        first; the next call makes new threads."""
        pool, self._pool, self._pool_pid = self._pool, None, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    @classmethod
    def load(cls, path: Path | str, threads: int = 1, members: int = 0) -> "Tagger":
        """Load a model directory; every problem raises :class:`ModelLoadError` naming the file.

        ``threads``: network calls run at once (0: one per core). ``members``: compute
        with the ensemble's first ``members`` members only (0: all); a ``ValueError`` if the
        model has fewer."""
        path = Path(path)
        if not path.is_dir():
            raise ModelLoadError(f"model directory not found: {path}")
        state = files_state(path)  # before reading: a file rewritten meanwhile then differs
        config = read_config(path)
        vocab = read_vocab(path, config)
        vectors = WordVectors.load(path, config, len(vocab.words))
        scorer = OnnxScorer(path, config, len(vocab.chars), members)
        tagger = cls(config, vocab, scorer, vectors, read_meta(path), read_gazetteer(path, config), threads)
        tagger.records, tagger.source = read_records(path), (path.resolve(), state)
        return tagger

    def holds_files_of(self, path: Path | str) -> bool:
        """Whether ``path`` still holds the files this tagger was loaded from, so that a copy
        of them is a copy of this tagger."""
        return self.source is not None and self.source == (Path(path).resolve(), files_state(Path(path)))

    @property
    def cut(self) -> bool:
        """Whether this tagger computes with fewer networks than its model has (``members``)."""
        return self.scorer.members != self.config.members

    def write(self, path: Path | str) -> None:
        """Save the model this tagger computes with to ``path``, from memory (the files it was
        loaded from may be gone or replaced), with the training log and license it was loaded
        with. With ``members``, that is the ensemble's first networks as a model of their own:
        their graph, configuration and record, and their curves in the training log."""
        path, config, meta, members = Path(path), self.config, self.meta, self.scorer.members
        if self.cut:
            config, meta = replace(config, members=members), first_members_meta(meta, members, config.members)
        write_model(path, config, self.vocab, self.scorer.graph, self.vectors, meta, self.model_gazetteer)
        for name, data in self.records.items():
            (path / name).write_bytes(data)
        if self.cut:
            keep_first_members_log(path, members)

    def add_names(self, names: Gazetteer) -> "Tagger":
        """Add a user's names to the lists the network reads (no retraining)."""
        if self.gazetteer is None:
            raise GazetteerError("this model reads no gazetteer: it was trained without one")
        self.gazetteer = self.gazetteer.merged(names)
        return self

    # ---- scores
    def rows(self, sequences: Sequence[Sequence[str]]) -> Tuple[Dict[str, np.ndarray], List[np.ndarray]]:
        """:meth:`Vocabulary.distinct_rows` with each row's word vector (``row_vectors``)."""
        table, rows = self.vocab.distinct_rows(sequences)
        if self.vectors is not None:
            table["row_vectors"] = self.vectors.rows(table["row_words"])
        return table, rows

    def name_features(self, sequences: Sequence[Sequence[str]]) -> Optional[List[np.ndarray]]:
        """Each sequence's gazetteer features ``(n, 2 * labels)``, or None for a model without a gazetteer."""
        g = self.gazetteer
        return None if g is None else [g.features(len(words), g.matches(words)) for words in sequences]

    @staticmethod
    def feeds(table: Dict[str, np.ndarray], rows: Sequence[np.ndarray], length: int,
              features: Optional[Sequence[np.ndarray]] = None) -> Dict[str, np.ndarray]:
        """One network call's inputs for windows given by their rows of :meth:`rows` (and their
        slices of :meth:`name_features`)."""
        index = np.zeros((len(rows), length), dtype="int64")  # padding: row 0
        for i, r in enumerate(rows):
            index[i, : len(r)] = r
        used, local = np.unique(index, return_inverse=True)
        feeds = {"char_rows": table["char_rows"][used].astype("int64"), "row_words": table["row_words"][used],
                 "row_keys": table["row_keys"][used],
                 "index": local.reshape(index.shape).astype("int64"),
                 "lengths": np.array([len(r) for r in rows], dtype="int32")}
        if "row_vectors" in table:
            feeds["row_vectors"] = table["row_vectors"][used]
        if features is not None:
            names = np.zeros((len(rows), length, features[0].shape[1]), dtype=np.float32)
            for i, f in enumerate(features):
                names[i, : len(f)] = f
            feeds["gazetteer"] = names
        return feeds

    def unary_scores(self, sequences: Sequence[Sequence[str]], length: int) -> np.ndarray:
        """Unary scores ``(n, length, n_tags)`` of one padded batch of word sequences."""
        table, rows = self.rows(sequences)
        return self.scorer.scores(self.feeds(table, rows, length, self.name_features(sequences)))

    def decode(self, scores: np.ndarray, lengths: Sequence[int], crf=None) -> List[List[str]]:
        """Tags from unary scores; ``crf`` is the scorer's CRF parameters when the caller has them."""
        trans, start, end = crf if crf is not None else self.scorer.crf()
        paths = viterbi_decode_batch(scores, lengths, trans, start, end)
        names = np.array(self.config.tags, dtype=object)
        return [names[p[:n]].tolist() for p, n in zip(paths, lengths)]

    # ---- prediction
    @staticmethod
    def batches(pieces: Sequence[Tuple[int, int, int, int, int]], batch_size: int) -> List[List[int]]:
        """Windows sorted by length and cut into batches that share one padded length:
        ``[length, piece index, ...]`` each. A few long windows then never pad a batch of
        short ones; the token cap bounds the activations."""
        order = sorted(range(len(pieces)), key=lambda k: pieces[k][2] - pieces[k][1])
        batches: List[List[int]] = []
        for k in order:
            n = pieces[k][2] - pieces[k][1]
            length = padded_length(n, 4 if n <= 32 else 16)  # a text of short sentences must not pay for 16
            if (not batches or length != batches[-1][0] or len(batches[-1]) > batch_size
                    or len(batches[-1]) * length > MAX_BATCH_TOKENS):
                batches.append([length])
            batches[-1].append(k)
        return batches

    def predict(self, sequences: Sequence[Sequence[str]], batch_size: int = 256) -> List[List[str]]:
        """BIO tags for each word sequence, of any length (long ones are windowed)."""
        return self.tag_windows(sequences, batch_size)[0]

    def tag(self, sequences: Sequence[Sequence[str]], batch_size: int = 256) -> List[Tagging]:
        """:meth:`predict`'s tags and each decoded entity with its probability, from the same network calls.

        The probability is that of exactly this entity under the CRF (the averaged scores an
        ensemble's Viterbi decodes), from forward-backward (:func:`~.crf.span_probabilities`):
        the sum over every tag path that decodes it. In a windowed sequence an entity is
        scored in the window whose core holds its first word; one running past that window's
        end (longer than its context) is scored over its part in the window.
        """
        tags, pieces, kept = self.tag_windows(sequences, batch_size, keep=True)
        entities = [bio_to_spans(t) for t in tags]
        probs = self.entity_probabilities(entities, pieces, kept, batch_size)
        return [Tagging(t, [(a, b, lab, p) for (a, b, lab), p in zip(ents, ps)])
                for t, ents, ps in zip(tags, entities, probs)]

    def tag_windows(self, sequences: Sequence[Sequence[str]], batch_size: int,
                    keep: bool = False) -> Tuple[List[List[str]], List[Piece], Dict[int, np.ndarray]]:
        """Tags of each sequence, its windows (``pieces``) and, with ``keep``, the unary scores
        of each window that tags something in its core (by piece index), for scoring entities.
        A sequence without an Arabic letter (English text, numbers) is all ``O``."""
        pieces: List[Piece] = []
        for i, words in enumerate(sequences):
            if words and has_arabic_letters(words):
                pieces.extend((i, *w) for w in make_windows(len(words), self.config.window, self.config.context))
        out: List[List[str]] = [["O"] * len(words) for words in sequences]
        kept: Dict[int, np.ndarray] = {}
        if not pieces:
            return out, pieces, kept
        table, rows = self.rows(sequences)  # each distinct word looked up once per call
        call = partial(self.tag_call, pieces, table, rows, self.name_features(sequences), self.scorer.crf())
        for ks, tags_of, scores in self.calls(call, self.batches(pieces, batch_size)):
            for k, tags, unary in zip(ks, tags_of, scores):
                i, s, e, cs, ce = pieces[k]
                out[i][cs:ce] = core = tags[cs - s: ce - s]
                if keep and any(t != "O" for t in core):
                    kept[k] = unary[: e - s]
        return out, pieces, kept

    def calls(self, call, batches: List[List[int]]) -> Iterable[CallResult]:
        """``call`` of each batch, in order; side by side on :meth:`pool`'s threads if there are several."""
        pool = self.pool() if len(batches) > 1 else None
        return map(call, batches) if pool is None else pool.map(call, batches)

    def tag_call(self, pieces: Sequence[Piece], table: Dict[str, np.ndarray], rows: Sequence[np.ndarray],
                 features: Optional[Sequence[np.ndarray]], crf, batch: List[int]) -> CallResult:
        """One network call (``[length, piece index, ...]`` of :meth:`batches`) and its Viterbi tags."""
        length, *ks = batch
        windows = [pieces[k] for k in ks]
        lengths = [e - s for _, s, e, _, _ in windows]
        window_features = None if features is None else [features[i][s:e] for i, s, e, _, _ in windows]
        scores = self.scorer.scores(self.feeds(table, [rows[i][s:e] for i, s, e, _, _ in windows], length,
                                               window_features))
        return ks, self.decode(scores, lengths, crf), scores

    def entity_probabilities(self, entities: Sequence[Sequence[Tuple[int, int, str]]], pieces: Sequence[Piece],
                             kept: Dict[int, np.ndarray], batch_size: int) -> List[List[float]]:
        """The probability of each entity (word spans per sequence) in the window holding its
        first word, from the unary scores :meth:`tag_windows` kept; windows batched as for the network."""
        probs: List[List[float]] = [[0.0] * len(e) for e in entities]
        windows: Dict[int, List[int]] = {}  # sequence -> its pieces, in order
        for k, (i, *_) in enumerate(pieces):
            windows.setdefault(i, []).append(k)
        queries: Dict[int, List[Tuple[int, int, int, int, int, int]]] = {}  # piece -> (seq, entity, first, stop, B, I)
        names = self.config.tags
        for i, ents in enumerate(entities):
            if not ents:
                continue
            core_starts = [pieces[k][3] for k in windows[i]]
            for j, (a, b, label) in enumerate(ents):
                k = windows[i][bisect_right(core_starts, a) - 1]
                _, s, e, _, _ = pieces[k]
                queries.setdefault(k, []).append((i, j, a - s, min(b, e) - s, names.index(f"B-{label}"),
                                                   names.index(f"I-{label}")))
        with_entities = sorted(queries)
        trans, start, end = self.scorer.crf()
        for length, *ks in self.batches([pieces[k] for k in with_entities], batch_size):
            ks = [with_entities[k] for k in ks]
            scores = np.zeros((len(ks), length, len(names)), dtype="float64")
            for row, k in enumerate(ks):
                scores[row, : len(kept[k])] = kept[k]
            lengths = [len(kept[k]) for k in ks]
            spans = [(row, *q[2:]) for row, k in enumerate(ks) for q in queries[k]]
            forward = forward_backward_batch(scores, lengths, trans, start, end)
            got = span_probabilities(scores, lengths, forward, trans, start, end, spans)
            for p, (i, j, *_) in zip(got, (q for k in ks for q in queries[k])):
                probs[i][j] = float(p)
        return probs
