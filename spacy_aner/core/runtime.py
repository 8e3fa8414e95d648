"""The network at inference: its ONNX graph run by ONNX Runtime, no TensorFlow.

The graph (built by :mod:`.graph`, at export, or at load for an ensemble's first members)
reads one row per distinct word of a call (its vector and its characters) and, per token,
the row it uses, so the char CNNs run once per distinct word. It returns the unary tag
scores, averaged over ensemble members, and the CRF's transition, start and end scores,
averaged likewise.

A word's char features depend on its characters alone, and most words of running text
were seen a few calls before, so the scorer keeps the features of recent words
(:class:`FeatureCache`) and the graph runs the char CNNs only over the others. The kept
features are the graph's own float32 output, so the scores are those of an uncached call.

A session is made on first use in each process: one inherited through ``fork`` would
share the parent's thread pool, so a forked child makes its own (``nlp.pipe(n_process=N)``
works with any start method).
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import Dict, Hashable, List, Optional, Sequence, Tuple

import numpy as np

from .config import GRAPH_FILE, ModelConfig, ModelLoadError
from .graph import CACHED_INPUT, CHAR_FEATURES, GAZETTEER_INPUT, check_record, first_members

#: Sessions inherited through fork, kept alive on purpose (see :meth:`OnnxScorer.session`).
INHERITED_SESSIONS: List = []
CRF_OUTPUTS = ("transitions", "start", "end")
#: Words whose char features a scorer keeps (float32, ``char_width`` each: 24 MiB for the shipped model).
CACHE_WORDS = 8192


class FeatureCache:
    """The char features of the most recently used words, one row each of a table filled as
    words arrive. Thread-safe: each method holds the lock for its whole work."""

    def __init__(self, width: int, size: int = CACHE_WORDS) -> None:
        self.width, self.size = width, size
        self.slots: "OrderedDict[Hashable, int]" = OrderedDict()  # key -> row of table, least recent first
        self.table: Optional[np.ndarray] = None
        self.lock = threading.Lock()

    def __getstate__(self):
        return {"width": self.width, "size": self.size}  # a copy starts empty

    def __setstate__(self, state) -> None:
        self.__init__(state["width"], state["size"])

    def lookup(self, keys: Sequence[Hashable]) -> Tuple[List[int], np.ndarray]:
        """The positions in ``keys`` of the words kept, and a copy of their features."""
        with self.lock:
            found, slots = [], []
            for i, key in enumerate(keys):
                slot = self.slots.get(key)
                if slot is not None:
                    self.slots.move_to_end(key)
                    found.append(i)
                    slots.append(slot)
            features = self.table[slots] if slots else np.zeros((0, self.width), np.float32)
            return found, features

    def store(self, keys: Sequence[Hashable], features: np.ndarray) -> None:
        """Keep ``features`` (one row per key), dropping the least recently used words."""
        if self.size <= 0:
            return
        keys, features = keys[-self.size:], features[-self.size:]
        with self.lock:
            if self.table is None:
                self.table = np.empty((self.size, self.width), np.float32)  # pages are touched as rows fill
            for key, row in zip(keys, features):
                slot = self.slots.pop(key, None)
                if slot is None:
                    slot = len(self.slots) if len(self.slots) < self.size else self.slots.popitem(last=False)[1]
                self.table[slot] = row  # before the key points at it
                self.slots[key] = slot

    def clear(self) -> None:
        """Forget every word (the table's memory stays, for the words to come)."""
        with self.lock:
            self.slots.clear()


class OnnxScorer:
    """Unary scores and CRF parameters of a model directory's ``tagger.onnx``."""

    def __init__(self, path: Path, config: ModelConfig, n_chars: int, members: int = 0) -> None:
        """The graph of the model directory ``path``, checked against ``config`` and ``n_chars``
        (see :func:`~.graph.check_record`); with ``members``, the graph of the ensemble's first
        ``members`` members (:func:`~.graph.first_members`)."""
        self.path = Path(path) / GRAPH_FILE
        if not self.path.is_file():
            raise ModelLoadError(f"missing model file: {self.path}")
        # The graph this scorer runs, kept: a model can be saved again after its files are gone.
        self.graph = self.path.read_bytes()
        if members:
            self.graph = first_members(self.graph, config, n_chars, members, self.path)
            config = replace(config, members=members)
        self.members = config.members  # the networks this scorer computes with
        self._session = None
        self._pid: Optional[int] = None
        self._crf: Optional[Tuple[np.ndarray, ...]] = None
        self._inputs: Tuple[str, ...] = ()
        self.session()  # a broken graph fails now, naming the file
        check_record(self._session.get_modelmeta().custom_metadata_map, config, n_chars, self.path)
        cached = {i.name: i for i in self._session.get_inputs()}.get(CACHED_INPUT)
        if cached is None or not isinstance(cached.shape[1], int):
            raise ModelLoadError(f"{self.path}: a graph without the input {CACHED_INPUT!r}, exported by a "
                                 f"development version of 0.6.0; retrain or install a matching spacy-aner")
        self.cache = FeatureCache(cached.shape[1])

    def __getstate__(self):
        return {**self.__dict__, "_session": None, "_pid": None}

    def session(self):
        if self._session is None or self._pid != os.getpid():
            import onnxruntime as ort

            if self._session is not None:  # inherited through fork
                # Never freed: its destructor would wait on the parent's thread pool, whose
                # threads do not exist in this process, and hang.
                INHERITED_SESSIONS.append(self._session)
                self._session = None
                # Another thread of the parent may have been inside the cache, holding its lock.
                self.cache = FeatureCache(self.cache.width, self.cache.size)

            options = ort.SessionOptions()
            # One thread per call: ONNX Runtime's own threads barely speed up these small
            # recurrent products; calls run side by side instead (Tagger's ``threads``).
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            options.enable_cpu_mem_arena = False  # an arena keeps the largest batch's memory for good
            try:
                self._session = ort.InferenceSession(self.graph, options,
                                                     providers=["CPUExecutionProvider"])
            except Exception as err:  # ONNX Runtime raises its own types for a bad file
                raise ModelLoadError(f"{self.path}: not a usable ONNX graph ({type(err).__name__}: "
                                     f"{str(err).splitlines()[0] if str(err) else ''})") from None
            self._inputs = tuple(i.name for i in self._session.get_inputs())
            self._pid = os.getpid()
        return self._session

    def scores(self, feeds: Dict[str, np.ndarray]) -> np.ndarray:
        """``(B, T, n_tags)`` from ``row_vectors`` (U, dim), ``char_rows`` (U, C), ``index`` (B, T), ``lengths``
        (B,) and, for a model with a gazetteer, ``gazetteer`` (B, T, G). With ``row_keys`` (U,), the
        look-up key of each row, the char features of rows seen in recent calls are reused."""
        session = self.session()
        keys = feeds.get("row_keys")
        found, cached = self.cache.lookup(keys if keys is not None else [])
        order = np.arange(len(feeds["char_rows"]))
        if found:  # rows to compute first, then the kept ones, as the graph reads them
            kept = np.zeros(len(order), bool)
            kept[found] = True
            order = np.concatenate([order[~kept], order[kept]])
        position = np.empty_like(order)
        position[order] = np.arange(len(order))
        computed = order[: len(order) - len(found)]
        run = {"row_vectors": feeds["row_vectors"][order], "char_rows": feeds["char_rows"][computed],
               "index": position[feeds["index"]], "lengths": feeds["lengths"], CACHED_INPUT: cached}
        if GAZETTEER_INPUT in self._inputs:
            run[GAZETTEER_INPUT] = feeds[GAZETTEER_INPUT]
        scores, features = session.run(["scores", CHAR_FEATURES], run)
        if keys is not None:
            self.cache.store([keys[i] for i in computed], features)
        return scores

    def crf(self) -> Tuple[np.ndarray, ...]:
        """Transition, start and end scores (they depend on the weights alone; read once)."""
        if self._crf is None:
            inputs = {i.name: i for i in self.session().get_inputs()}
            dim = inputs["row_vectors"].shape[1]
            width = inputs["char_rows"].shape[1]
            feeds = {"row_vectors": np.zeros((1, dim), np.float32), "char_rows": np.zeros((1, width), np.int64),
                     "index": np.zeros((1, 1), np.int64), "lengths": np.ones(1, np.int32)}
            if GAZETTEER_INPUT in inputs:
                feeds[GAZETTEER_INPUT] = np.zeros((1, 1, inputs[GAZETTEER_INPUT].shape[2]), np.float32)
            feeds[CACHED_INPUT] = np.zeros((0, self.cache.width), np.float32)
            self._crf = tuple(self.session().run(list(CRF_OUTPUTS), feeds))
        return self._crf
