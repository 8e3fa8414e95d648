"""spacy_aner.core.runtime: the char features kept between calls change no score, the cache
keeps the most recent words, and a graph exported before the cache is refused."""
from __future__ import annotations

import multiprocessing
import pickle
import random
import shutil
import threading

import numpy as np
import pytest
from aner_support import WORDS

from spacy_aner.core.config import GRAPH_FILE, ModelLoadError
from spacy_aner.core.graph import CACHED_INPUT, CHAR_FEATURES
from spacy_aner.core.runtime import FeatureCache
from spacy_aner.core.tagger import Tagger

LETTERS = "ابتثجحخدذرزسشصضطظعغفقكلمنهوي"


def random_sentences(seed: int, n: int, vocabulary: int = 400):
    """Sentences over ``vocabulary`` made-up words and the tiny data's words, so calls share some words."""
    rng = random.Random(seed)
    made_up = ["".join(rng.choice(LETTERS) for _ in range(rng.randint(1, 24))) for _ in range(vocabulary)]
    return [[rng.choice(made_up + WORDS) for _ in range(rng.randint(1, 40))] for _ in range(n)]


def feeds_of(tagger: Tagger, sentences):
    table, rows = tagger.rows(sentences)
    return tagger.feeds(table, rows, max(map(len, sentences)), tagger.name_features(sentences))


@pytest.fixture()
def fresh_tagger(scrambled_model_dir):
    """A scrambled tagger of its own, with a cache small enough to drop words."""
    tagger = Tagger.load(scrambled_model_dir)
    tagger.scorer.cache = FeatureCache(tagger.scorer.cache.width, size=64)
    return tagger


def test_kept_features_give_the_scores_of_a_call_without_them(fresh_tagger):
    sentences = random_sentences(0, 30)
    scorer = fresh_tagger.scorer
    plain = dict(feeds_of(fresh_tagger, sentences))
    del plain["row_keys"]
    expected = scorer.scores(plain)  # no keys: nothing read from or written to the cache
    assert not scorer.cache.slots
    cold = scorer.scores(feeds_of(fresh_tagger, sentences))
    assert len(scorer.cache.slots) == 64
    warm = scorer.scores(feeds_of(fresh_tagger, sentences))
    np.testing.assert_array_equal(cold, expected)
    np.testing.assert_array_equal(warm, expected)
    for k in range(0, 30, 7):  # rows partly kept, in another order than their first call's
        np.testing.assert_array_equal(scorer.scores(feeds_of(fresh_tagger, sentences[k:k + 9])),
                                      expected[k:k + 9, : max(map(len, sentences[k:k + 9]))])
    few = [WORDS[:5], WORDS[3:6]]
    first = scorer.scores(feeds_of(fresh_tagger, few))
    assert scorer.cache.lookup(feeds_of(fresh_tagger, few)["row_keys"])[1].shape[0] == 7  # every row kept
    np.testing.assert_array_equal(scorer.scores(feeds_of(fresh_tagger, few)), first)


def test_tags_and_probabilities_with_and_without_the_cache(fresh_tagger, scrambled_model_dir):
    sentences = random_sentences(1, 200)
    uncached = Tagger.load(scrambled_model_dir)
    uncached.scorer.cache = FeatureCache(uncached.scorer.cache.width, size=0)
    for batch_size in (1, 16, 256):
        assert fresh_tagger.tag(sentences, batch_size) == uncached.tag(sentences, batch_size)
    assert not uncached.scorer.cache.slots


def test_threads_sharing_one_cache_get_their_own_scores(fresh_tagger, scrambled_model_dir):
    groups = [random_sentences(seed, 12) for seed in range(4)]
    uncached = Tagger.load(scrambled_model_dir)
    uncached.scorer.cache = FeatureCache(uncached.scorer.cache.width, size=0)
    expected = [uncached.tag(g, 4) for g in groups]
    results, errors = {}, []

    def work(i):
        try:
            results[i] = [fresh_tagger.tag(groups[i], 4) for _ in range(5)]
        except Exception as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and len(results) == 4
    assert all(run == expected[i] for i, runs in results.items() for run in runs)


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_a_forked_process_starts_with_an_empty_cache(fresh_tagger):
    """A thread of the parent may be inside the cache when it forks: the child makes its own."""
    sentences = random_sentences(3, 20)
    expected = fresh_tagger.tag(sentences, 8)
    assert fresh_tagger.scorer.cache.slots
    FORKED["tagger"] = fresh_tagger  # inherited by the forked child, not pickled
    try:
        with multiprocessing.get_context("fork").Pool(1) as pool:
            kept, tags = pool.apply(tag_in_child, (sentences,))
    finally:
        FORKED.clear()
    assert kept == 0 and tags == expected


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_calls_side_by_side_give_uncached_tags_alone_pickled_and_forked(scrambled_model_dir):
    """Several threads share one session and one cache; a pickled or forked copy makes its own threads."""
    sentences = random_sentences(5, 120)
    uncached = Tagger.load(scrambled_model_dir)
    uncached.scorer.cache = FeatureCache(uncached.scorer.cache.width, size=0)
    expected = uncached.tag(sentences, 8)
    tagger = Tagger.load(scrambled_model_dir, threads=2)
    assert uncached.pool() is None and tagger.pool() is not None
    assert tagger.tag(sentences, 8) == expected and tagger.tag(sentences, 8) == expected  # cache empty, then warm
    copy = pickle.loads(pickle.dumps(tagger))
    assert copy._pool is None and copy.tag(sentences, 8) == expected
    FORKED["tagger"] = tagger
    try:
        with multiprocessing.get_context("fork").Pool(1) as pool:
            assert pool.apply(tag_in_child, (sentences,))[1] == expected
    finally:
        FORKED.clear()


def test_close_drops_queued_calls_and_the_next_tagging_makes_new_threads(scrambled_model_dir):
    import threading

    sentences = random_sentences(5, 120)
    tagger = Tagger.load(scrambled_model_dir, threads=2)
    expected = tagger.tag(sentences, 8)
    pool = tagger.pool()
    gate, started = threading.Event(), threading.Barrier(3)

    def busy():
        started.wait(30)
        return gate.wait(30)

    running = [pool.submit(busy) for _ in range(2)]
    started.wait(30)  # both threads busy
    queued = pool.submit(tagger.tag, sentences, 8)
    tagger.close()
    gate.set()
    assert queued.cancelled() and all(f.result(timeout=30) for f in running)
    assert tagger.pool() is not pool and tagger.tag(sentences, 8) == expected


FORKED: dict = {}


def tag_in_child(sentences):
    tagger = FORKED["tagger"]
    tagger.scorer.session()
    return len(tagger.scorer.cache.slots), tagger.tag(sentences, 8)


def test_cache_keeps_the_most_recently_used_words():
    cache = FeatureCache(2, size=3)
    cache.store(["a", "b", "c"], np.array([[1, 1], [2, 2], [3, 3]], np.float32))
    assert cache.lookup(["a"])[0] == [0]  # "a" is now the most recent
    cache.store(["d"], np.array([[4, 4]], np.float32))  # drops "b"
    found, features = cache.lookup(["b", "c", "a", "d", "e"])
    assert found == [1, 2, 3]
    np.testing.assert_array_equal(features, [[3, 3], [1, 1], [4, 4]])
    cache.store(["c"], np.array([[5, 5]], np.float32))  # a word stored again takes the new features
    np.testing.assert_array_equal(cache.lookup(["c"])[1], [[5, 5]])
    assert len(cache.slots) == 3 and sorted(cache.slots.values()) == [0, 1, 2]


def test_cache_of_a_call_longer_than_its_size_keeps_the_last_words():
    cache = FeatureCache(1, size=2)
    cache.store(list("abcde"), np.arange(5, dtype=np.float32)[:, None])
    assert list(cache.slots) == ["d", "e"]
    np.testing.assert_array_equal(cache.lookup(list("de"))[1], [[3], [4]])
    assert cache.lookup([])[1].shape == (0, 1)


def test_cache_of_size_zero_keeps_nothing_and_a_copy_starts_empty():
    empty = FeatureCache(3, size=0)
    empty.store(["a"], np.ones((1, 3), np.float32))
    assert not empty.slots
    cache = FeatureCache(3, size=4)
    cache.store(["a"], np.ones((1, 3), np.float32))
    copy = pickle.loads(pickle.dumps(cache))
    assert (copy.width, copy.size, len(copy.slots)) == (3, 4, 0)
    copy.store(["b"], np.ones((1, 3), np.float32))  # its lock works
    assert list(copy.slots) == ["b"]


def test_a_graph_exported_before_the_cache_is_refused(scrambled_model_dir, tmp_path):
    """Development graphs of 0.6.0 read every row's characters and have no cache input."""
    import onnx
    from onnx import numpy_helper

    old_dir = tmp_path / "old"
    shutil.copytree(scrambled_model_dir, old_dir)
    model = onnx.load(str(old_dir / GRAPH_FILE))
    graph = model.graph
    (cached,) = [i for i in graph.input if i.name == CACHED_INPUT]
    width = cached.type.tensor_type.shape.dim[1].dim_value
    graph.input.remove(cached)
    graph.initializer.append(numpy_helper.from_array(np.zeros((0, width), np.float32), CACHED_INPUT))
    graph.output.remove([o for o in graph.output if o.name == CHAR_FEATURES][0])
    onnx.save(model, str(old_dir / GRAPH_FILE))
    with pytest.raises(ModelLoadError, match=f"tagger.onnx: a graph without the input '{CACHED_INPUT}'.*retrain"):
        Tagger.load(old_dir)
