"""Micro-batching: the texts of concurrent requests go through one ``nlp.pipe`` call.

The tagger is much faster per document in batches (windows of all documents are grouped
by length into network calls), so requests that arrive together are run together: the
first request of a batch waits ``max_wait`` seconds for others, then takes whole requests
while they fit in ``max_docs`` texts (a larger request runs alone), and one worker thread
runs the batch while the event loop goes on accepting requests, which form the next batch.
One worker keeps the pipeline single-threaded. It is a daemon thread: a batch under way
when the server stops does not keep the process alive, and its requests are told so.
"""
from __future__ import annotations

import asyncio
import queue
import threading
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence, Tuple

#: Texts per batch: enough to fill the tagger's network calls, few enough to keep latency low.
DEFAULT_MAX_DOCS = 64
#: Seconds the first request of a batch waits for company.
DEFAULT_MAX_WAIT = 0.005
#: Texts waiting at most; beyond that new requests are refused (503) instead of queueing forever.
DEFAULT_MAX_QUEUED = 10_000

Request = Tuple[List[str], asyncio.Future]


class Busy(RuntimeError):
    """The queue holds ``max_queued`` texts already."""


class ShuttingDown(RuntimeError):
    """The batcher stopped before the request's batch was done."""


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
        if not (max_docs >= 1 and 0 <= max_wait < float("inf") and max_queued >= 1):
            raise ValueError(f"need max_docs >= 1, a finite max_wait >= 0, max_queued >= 1; got {max_docs}, "
                             f"{max_wait}, {max_queued}")
        self.run = run
        self.max_docs = max_docs
        self.max_wait = max_wait
        self.max_queued = max_queued
        self.stats = BatchStats()
        self._waiting: Deque[Request] = deque()
        self._arrived: Optional[asyncio.Event] = None
        self._queued_docs = 0
        self._task: Optional[asyncio.Task] = None
        self._jobs: Optional[queue.SimpleQueue] = None

    async def start(self) -> None:
        self._arrived = asyncio.Event()
        self._jobs = queue.SimpleQueue()
        threading.Thread(target=self._work, args=(self._jobs,), name="aner-batch", daemon=True).start()
        self._task = asyncio.get_running_loop().create_task(self._serve())

    async def stop(self) -> None:
        """Stop taking batches; requests waiting, or in a batch still under way, get :class:`ShuttingDown`."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self._jobs is not None:
            self._jobs.put(None)  # the worker ends after the batch it may be running
            self._jobs = None
        self._fail(self._waiting, ShuttingDown("the server is shutting down"))
        self._waiting.clear()
        self._queued_docs = 0

    async def submit(self, texts: List[str]) -> List[Any]:
        if not texts:
            return []
        if self._task is None or self._arrived is None:
            raise RuntimeError("the batcher is not running (start() it in the event loop first)")
        if self._queued_docs + len(texts) > self.max_queued:
            raise Busy(f"{self._queued_docs:,} texts are waiting already (at most {self.max_queued:,})")
        future = asyncio.get_running_loop().create_future()
        item = (texts, future)
        self._queued_docs += len(texts)
        self._waiting.append(item)
        self._arrived.set()
        try:
            return await future
        except asyncio.CancelledError:
            self._withdraw(item)
            raise

    def _withdraw(self, item: Request) -> None:
        """A cancelled request still waiting leaves the queue, so that its texts neither count nor get tagged."""
        for i, waiting in enumerate(self._waiting):
            if waiting is item:
                del self._waiting[i]
                self._queued_docs -= len(item[0])
                return

    def _work(self, jobs: queue.SimpleQueue) -> None:
        """The worker thread: each job's texts through ``run``, the outcome handed back to the loop."""
        while True:
            job = jobs.get()
            if job is None:
                return
            texts, loop, settle = job
            try:
                outcome: Tuple[Any, Optional[BaseException]] = (self.run(texts), None)
            except Exception as err:  # noqa: BLE001  (each waiting request gets the error)
                outcome = (None, err)
            try:
                loop.call_soon_threadsafe(settle, outcome)
            except RuntimeError:  # the loop is closed: nobody waits any more
                return

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            if not batch:
                continue
            texts = [text for item_texts, _ in batch for text in item_texts]
            done = loop.create_future()

            def settle(outcome, done=done) -> None:
                if not done.done():
                    done.set_result(outcome)

            self._jobs.put((texts, loop, settle))
            try:
                results, err = await done
            except asyncio.CancelledError:
                self._fail(batch, ShuttingDown("the server stopped while this request was being tagged"))
                raise
            if err is not None:
                self._fail(batch, err)
                continue
            self._count(batch, len(texts))
            start = 0
            for item_texts, future in batch:
                if not future.done():  # a client that went away cancelled its future
                    future.set_result(list(results[start:start + len(item_texts)]))
                start += len(item_texts)

    async def _collect(self) -> List[Request]:
        """The next batch: the first request, then, after ``max_wait``, whole requests while they fit
        in ``max_docs`` texts. Requests whose client went away are dropped."""
        while not self._waiting:
            self._arrived.clear()
            await self._arrived.wait()
        if self._queued_docs < self.max_docs and self.max_wait > 0:
            await asyncio.sleep(self.max_wait)  # not already full: give concurrent requests a moment
        batch: List[Request] = []
        n = 0
        while self._waiting and (not batch or n + len(self._waiting[0][0]) <= self.max_docs):
            item = self._waiting.popleft()
            self._queued_docs -= len(item[0])
            if not item[1].done():
                batch.append(item)
                n += len(item[0])
        return batch

    @staticmethod
    def _fail(requests: Sequence[Request], error: BaseException) -> None:
        """``error`` for each of ``requests`` still waited for (a client that went away cancelled its own)."""
        for _, future in requests:
            if not future.done():
                future.set_exception(error)

    def _count(self, batch, n_docs: int) -> None:
        self.stats.batches += 1
        self.stats.requests += len(batch)
        self.stats.docs += n_docs
        self.stats.largest_batch = max(self.stats.largest_batch, n_docs)
