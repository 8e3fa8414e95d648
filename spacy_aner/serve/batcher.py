"""Micro-batching: the texts of concurrent requests go through one ``nlp.pipe`` call.

The tagger is much faster per document in batches (windows of all documents are grouped
by length into network calls), so requests that arrive together are run together: the
first request of a batch waits ``max_wait`` seconds for others, up to ``max_docs`` texts,
then one worker thread runs the whole batch while the event loop goes on accepting
requests, which form the next batch. One worker keeps the pipeline single-threaded.
"""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

#: Texts per batch: enough to fill the tagger's network calls, few enough to keep latency low.
DEFAULT_MAX_DOCS = 64
#: Seconds the first request of a batch waits for company.
DEFAULT_MAX_WAIT = 0.005
#: Texts waiting at most; beyond that new requests are refused (503) instead of queueing forever.
DEFAULT_MAX_QUEUED = 10_000


class Busy(RuntimeError):
    """The queue holds ``max_queued`` texts already."""


@dataclass
class BatchStats:
    batches: int = 0  # nlp.pipe calls
    requests: int = 0
    docs: int = 0
    largest_batch: int = 0  # most texts in one call

    def as_dict(self) -> Dict[str, int]:
        return asdict(self)


class MicroBatcher:
    """``await submit(texts)`` returns ``run(texts)``'s results for those texts, run in a shared batch.

    ``run`` takes a list of texts and returns one result per text, in order; it runs in
    the batcher's worker thread. Start the batcher inside the running event loop.
    """

    def __init__(self, run: Callable[[List[str]], Sequence[Any]], *, max_docs: int = DEFAULT_MAX_DOCS,
                 max_wait: float = DEFAULT_MAX_WAIT, max_queued: int = DEFAULT_MAX_QUEUED) -> None:
        if max_docs < 1 or max_wait < 0 or max_queued < 1:
            raise ValueError(f"need max_docs >= 1, max_wait >= 0, max_queued >= 1; got {max_docs}, {max_wait}, "
                             f"{max_queued}")
        self.run = run
        self.max_docs = max_docs
        self.max_wait = max_wait
        self.max_queued = max_queued
        self.stats = BatchStats()
        self._queue: Optional[asyncio.Queue] = None
        self._queued_docs = 0
        self._task: Optional[asyncio.Task] = None
        self._executor: Optional[ThreadPoolExecutor] = None

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aner-batch")
        self._task = asyncio.get_running_loop().create_task(self._serve())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        while self._queue is not None and not self._queue.empty():
            _, future = self._queue.get_nowait()
            if not future.done():
                future.set_exception(RuntimeError("the server is shutting down"))

    async def submit(self, texts: List[str]) -> List[Any]:
        if not texts:
            return []
        if self._task is None or self._queue is None:
            raise RuntimeError("the batcher is not running (start() it in the event loop first)")
        if self._queued_docs + len(texts) > self.max_queued:
            raise Busy(f"{self._queued_docs:,} texts are waiting already (at most {self.max_queued:,})")
        future = asyncio.get_running_loop().create_future()
        self._queued_docs += len(texts)
        self._queue.put_nowait((texts, future))
        return await future

    async def _serve(self) -> None:
        while True:
            batch = await self._collect()
            texts = [text for item_texts, _ in batch for text in item_texts]
            try:
                results = await asyncio.get_running_loop().run_in_executor(self._executor, self.run, texts)
            except Exception as err:  # noqa: BLE001  (each waiting request gets the error)
                for _, future in batch:
                    if not future.done():
                        future.set_exception(err)
                continue
            self._count(batch, len(texts))
            start = 0
            for item_texts, future in batch:
                if not future.done():  # a client that went away cancelled its future
                    future.set_result(list(results[start:start + len(item_texts)]))
                start += len(item_texts)

    async def _collect(self) -> List[Tuple[List[str], asyncio.Future]]:
        """The next batch: the first request, then whatever arrives within ``max_wait``, up to ``max_docs``."""
        first = await self._queue.get()
        batch, n = [first], len(first[0])
        self._queued_docs -= n
        if n < self.max_docs and self._queued_docs + n < self.max_docs and self.max_wait > 0:
            await asyncio.sleep(self.max_wait)  # not already full: give concurrent requests a moment
        while n < self.max_docs and not self._queue.empty():
            item = self._queue.get_nowait()
            batch.append(item)
            n += len(item[0])
            self._queued_docs -= len(item[0])
        return batch

    def _count(self, batch, n_docs: int) -> None:
        self.stats.batches += 1
        self.stats.requests += len(batch)
        self.stats.docs += n_docs
        self.stats.largest_batch = max(self.stats.largest_batch, n_docs)
