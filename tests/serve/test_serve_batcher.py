"""spacy_aner.serve.batcher: concurrent requests share one ``nlp.pipe`` call, each getting its own results."""
from __future__ import annotations

import asyncio

import pytest

from spacy_aner.annotate import entity_records
from spacy_aner.serve.batcher import Busy, MicroBatcher, ShuttingDown
from spacy_aner.serve.tagging import annotate_batch

TEXTS = ["محمد يعيش في الرباط", "باريس هي عاصمة فرنسا", "", "زار أحمد علي القاهرة أمس", "hello 😀",
         "أعلنت الأمم المتحدة عن خطة جديدة", "  ", "وصلت سارة إلى لندن مع شركة سوني", "اللغة العربية جميلة", "في"]


class Recorder:
    """The real ``annotate_batch`` on the scrambled pipeline, recording the texts of every call."""

    def __init__(self, nlp):
        self.nlp = nlp
        self.calls = []

    def __call__(self, texts):
        self.calls.append(list(texts))
        return annotate_batch(self.nlp, "aner_lstm", texts)


def expected_entities(nlp, text):
    return [{k: r[k] for k in ("start", "end", "label", "text")} for r in entity_records(nlp(text))]


def plain(records):
    return [{k: r[k] for k in ("start", "end", "label", "text")} for r in records]


async def submit_all(batcher, groups):
    await batcher.start()
    try:
        return await asyncio.gather(*(batcher.submit(group) for group in groups))
    finally:
        await batcher.stop()


def test_concurrent_requests_run_as_one_pipe_call_in_order(scrambled_nlp):
    run = Recorder(scrambled_nlp)
    groups = [[text] for text in TEXTS[:6]] + [TEXTS[6:]]
    results = asyncio.run(submit_all(MicroBatcher(run, max_docs=64, max_wait=0.05), groups))
    assert run.calls == [TEXTS]  # one call, the texts in the order they were submitted
    for group, result in zip(groups, results):
        assert len(result) == len(group)
        for text, entities in zip(group, result):
            assert plain(entities) == expected_entities(scrambled_nlp, text)
            assert all("score" in e for e in entities)
    assert sum(len(r) for result in results for r in result) > 0


def test_batches_hold_at_most_max_docs_texts_from_whole_requests(scrambled_nlp):
    run = Recorder(scrambled_nlp)
    batcher = MicroBatcher(run, max_docs=4, max_wait=0.05)
    results = asyncio.run(submit_all(batcher, [[text] for text in TEXTS]))
    assert [len(call) for call in run.calls] == [4, 4, 2]
    assert [text for call in run.calls for text in call] == TEXTS
    assert [plain(r[0]) for r in results] == [expected_entities(scrambled_nlp, t) for t in TEXTS]
    assert batcher.stats.as_dict() == {"batches": 3, "requests": 10, "docs": 10, "largest_batch": 4}


def test_a_request_that_does_not_fit_waits_for_the_next_batch(scrambled_nlp):
    """max_docs bounds a batch: a request is never split, and one larger than max_docs runs alone."""
    run = Recorder(scrambled_nlp)
    groups = [TEXTS[:1], TEXTS[1:6], TEXTS[6:7], TEXTS[7:9], TEXTS[9:10]]  # 1, 5, 1, 2, 1 texts
    results = asyncio.run(submit_all(MicroBatcher(run, max_docs=4, max_wait=0.05), groups))
    assert [len(call) for call in run.calls] == [1, 5, 4]
    assert [text for call in run.calls for text in call] == TEXTS
    assert [len(r) for r in results] == [len(g) for g in groups]


def test_stopping_fails_the_batch_under_way_without_waiting_for_it(scrambled_nlp):
    import threading
    import time

    started, release = threading.Event(), threading.Event()

    def slow(texts):
        started.set()
        release.wait(30)
        return [[] for _ in texts]

    batcher = MicroBatcher(slow, max_wait=0)

    async def scenario():
        await batcher.start()
        running = asyncio.ensure_future(batcher.submit(["محمد"]))
        while not started.is_set():
            await asyncio.sleep(0.01)
        waiting = asyncio.ensure_future(batcher.submit(["باريس"]))
        await asyncio.sleep(0.01)
        begun = time.monotonic()
        await batcher.stop()
        return await asyncio.gather(running, waiting, return_exceptions=True), time.monotonic() - begun

    try:
        (running, waiting), seconds = asyncio.run(scenario())
    finally:
        release.set()
    assert isinstance(running, ShuttingDown) and "while this request was being tagged" in str(running)
    assert isinstance(waiting, ShuttingDown) and seconds < 5


def test_an_empty_request_never_reaches_the_pipeline(scrambled_nlp):
    run = Recorder(scrambled_nlp)
    assert asyncio.run(submit_all(MicroBatcher(run), [[]])) == [[]]
    assert run.calls == []


def test_a_failing_batch_fails_its_requests_and_the_next_batch_runs(scrambled_nlp):
    run = Recorder(scrambled_nlp)
    batcher = MicroBatcher(run, max_wait=0.05)

    async def scenario():
        await batcher.start()
        try:
            bad = await asyncio.gather(batcher.submit(["محمد"]), batcher.submit([None]), return_exceptions=True)
            good = await batcher.submit(["محمد يعيش في الرباط"])
            return bad, good
        finally:
            await batcher.stop()

    bad, good = asyncio.run(scenario())
    assert all(isinstance(err, Exception) for err in bad)  # spaCy refuses a None text: both requests of its batch
    assert plain(good[0]) == expected_entities(scrambled_nlp, "محمد يعيش في الرباط")
    assert batcher.stats.batches == 1


def test_a_cancelled_request_leaves_the_others_their_results(scrambled_nlp):
    run = Recorder(scrambled_nlp)
    batcher = MicroBatcher(run, max_wait=0.05)

    async def scenario():
        await batcher.start()
        try:
            gone = asyncio.ensure_future(batcher.submit(["باريس"]))
            kept = asyncio.ensure_future(batcher.submit(["محمد يعيش في الرباط"]))
            await asyncio.sleep(0)
            gone.cancel()  # the client went away while its request waited for the batch
            return await kept, gone.cancelled()
        finally:
            await batcher.stop()

    kept, cancelled = asyncio.run(scenario())
    assert cancelled and plain(kept[0]) == expected_entities(scrambled_nlp, "محمد يعيش في الرباط")


def test_a_request_cancelled_while_waiting_leaves_the_queue_untagged(scrambled_nlp):
    run = Recorder(scrambled_nlp)
    batcher = MicroBatcher(run, max_wait=0.05, max_queued=3)

    async def scenario():
        await batcher.start()
        try:
            gone = asyncio.ensure_future(batcher.submit(["باريس", "لندن"]))
            await asyncio.sleep(0)
            gone.cancel()  # the client went away while its request waited for the batch
            await asyncio.sleep(0)
            # its two texts no longer count: three more fit in a queue of three
            return await batcher.submit(["محمد يعيش في الرباط", "a", "b"])
        finally:
            await batcher.stop()

    kept = asyncio.run(scenario())
    assert plain(kept[0]) == expected_entities(scrambled_nlp, "محمد يعيش في الرباط")
    assert run.calls == [["محمد يعيش في الرباط", "a", "b"]]


def test_a_full_queue_refuses_instead_of_growing(scrambled_nlp):
    batcher = MicroBatcher(Recorder(scrambled_nlp), max_queued=2)

    async def scenario():
        await batcher.start()
        try:
            await batcher.submit(["a", "b", "c"])
        finally:
            await batcher.stop()

    with pytest.raises(Busy, match="at most 2"):
        asyncio.run(scenario())


def test_submit_before_start_and_bad_settings_are_errors(scrambled_nlp):
    with pytest.raises(RuntimeError, match="not running"):
        asyncio.run(MicroBatcher(Recorder(scrambled_nlp)).submit(["محمد"]))
    for bad in ({"max_docs": 0}, {"max_wait": -1}, {"max_wait": float("inf")}, {"max_wait": float("nan")},
                {"max_queued": 0}):
        with pytest.raises(ValueError):
            MicroBatcher(Recorder(scrambled_nlp), **bad)
