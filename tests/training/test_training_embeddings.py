"""spacy_aner.training.embeddings: text sources, Word2Vec training, and reading vectors in every format."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from aner_support import TINY_SENTENCES, VECTOR_WORDS, write_conll

from spacy_aner.training.embeddings import (
    build_embedding_matrix,
    iter_conll_sentences,
    iter_saudinewsnet,
    iter_text_file,
    load_vectors,
    tokenize_for_embeddings,
    train_word2vec,
    vectors_by_key,
    write_tokenized_corpus,
)


@pytest.fixture(scope="module")
def kv():
    from gensim.models import KeyedVectors

    vectors = KeyedVectors(vector_size=4)
    vectors.add_vectors(["أحمد", "احمد", "القاهرة", "في"], np.arange(16, dtype="float32").reshape(4, 4))
    return vectors


def test_tokenize_for_embeddings_gives_lookup_keys():
    assert tokenize_for_embeddings("زار أحمدُ القاهرةَ، عام 2024 \u200f.") == ["زار", "احمد", "القاهره", "،", "عام",
                                                                             "0000", "."]
    assert tokenize_for_embeddings("\u064b \u200b") == []


def test_text_sources(tmp_path):
    (tmp_path / "a.txt").write_bytes("سطر أول\n\n  \nثان\n".encode())
    assert list(iter_text_file(tmp_path / "a.txt")) == ["سطر أول\n", "ثان\n"]
    conll = write_conll(tmp_path / "c.conll", TINY_SENTENCES[:2])
    assert list(iter_conll_sentences(conll)) == [TINY_SENTENCES[0][0], TINY_SENTENCES[1][0]]
    articles = [{"title": "عنوان", "content": "فقرة أولى\nفقرة ثانية\n\n"}, {"title": None, "content": "ثالثة"}]
    with zipfile.ZipFile(tmp_path / "news.zip", "w") as zf:
        zf.writestr("2015-01-01.json", json.dumps(articles, ensure_ascii=False))
        zf.writestr("readme.txt", "not an article")
    assert list(iter_saudinewsnet(tmp_path)) == ["عنوان", "فقرة أولى", "فقرة ثانية", "ثالثة"]
    with pytest.raises(FileNotFoundError, match="no SaudiNewsNet"):
        list(iter_saudinewsnet(tmp_path / "c.conll"))


def test_write_tokenized_corpus(tmp_path):
    n = write_tokenized_corpus(["محمد في الرباط", "", "\u064b", "أحمد"], tmp_path / "c.txt", progress=False)
    assert n == 4
    assert (tmp_path / "c.txt").read_text(encoding="utf-8") == "محمد في الرباط\nاحمد\n"


def test_train_word2vec_on_a_tiny_text():
    texts = [text for text, _ in TINY_SENTENCES] * 20
    kv = train_word2vec(texts, dim=6, window=2, min_count=1, epochs=1, workers=1, progress=False)
    assert kv.vector_size == 6 and "القاهره" in kv.key_to_index and "القاهرة" not in kv.key_to_index
    assert kv.n_training_words == 20 * sum(len(text.split()) for text, _ in TINY_SENTENCES)
    with pytest.raises(ValueError, match="no words"):
        train_word2vec(["\u064b"], progress=False)
    with pytest.raises(ValueError, match="no word occurs min_count=1000 times or more"):
        train_word2vec(texts, dim=6, min_count=1000, epochs=1, workers=1, progress=False)


def test_a_text_file_that_is_not_utf8_is_an_error_naming_the_line(tmp_path):
    path = tmp_path / "cp1256.txt"
    path.write_bytes("سطر أول\n".encode() + "محمد في الرباط\n".encode("cp1256"))
    lines = iter_text_file(path)
    assert next(lines) == "سطر أول\n"
    with pytest.raises(ValueError, match=r"cp1256\.txt:2: not UTF-8"):
        next(lines)


def test_load_vectors_in_every_format(kv, tmp_path):
    from gensim.models import Word2Vec

    kv.save(str(tmp_path / "v.kv"))
    kv.save_word2vec_format(str(tmp_path / "v.txt"))
    kv.save_word2vec_format(str(tmp_path / "v.vec.gz"))
    kv.save_word2vec_format(str(tmp_path / "v.bin"), binary=True)
    model = Word2Vec([["في", "القاهرة"]] * 3, vector_size=4, min_count=1, epochs=1, workers=1)
    model.save(str(tmp_path / "w.model"))
    for name in ("v.kv", "v.txt", "v.vec.gz", "v.bin"):
        loaded = load_vectors(tmp_path / name)
        assert loaded.index_to_key == kv.index_to_key, name
        np.testing.assert_allclose(loaded.vectors, kv.vectors, rtol=1e-5, err_msg=name)
    assert set(load_vectors(tmp_path / "w.model").index_to_key) == {"في", "القاهرة"}


def test_load_vectors_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="word vectors not found"):
        load_vectors(tmp_path / "missing.kv")
    (tmp_path / "bad.txt").write_text("not a header\n", encoding="utf-8")
    with pytest.raises(ValueError, match="could not read word vectors from"):
        load_vectors(tmp_path / "bad.txt")


def test_a_kv_file_that_is_not_keyed_vectors_is_an_error(kv, tmp_path):
    import pickle

    from gensim.models import Word2Vec

    kv.save(str(tmp_path / "good.kv"))
    (tmp_path / "truncated.kv").write_bytes((tmp_path / "good.kv").read_bytes()[:300])
    (tmp_path / "dict.kv").write_bytes(pickle.dumps({"a": 1}))
    Word2Vec([["أحمد", "في"]] * 5, vector_size=4, min_count=1, epochs=1).save(str(tmp_path / "model.kv"))
    for name in ("truncated", "dict", "model"):
        with pytest.raises(ValueError, match=f"could not read word vectors from .*{name}.kv"):
            load_vectors(tmp_path / f"{name}.kv")


def test_vectors_that_are_none_or_not_finite_are_refused(kv, tmp_path):
    """Such vectors trained a model of NaN weights that tagged nothing, and train said it succeeded."""
    from gensim.models import KeyedVectors

    KeyedVectors(vector_size=4).save(str(tmp_path / "empty.kv"))
    with pytest.raises(ValueError, match="empty.kv holds no word vectors"):
        load_vectors(tmp_path / "empty.kv")
    kv.vectors[1, 2] = np.nan
    kv.vectors[3, 0] = np.inf
    kv.save_word2vec_format(str(tmp_path / "nan.txt"))
    with pytest.raises(ValueError, match="nan.txt: 2 word vectors hold NaN or infinite values"):
        load_vectors(tmp_path / "nan.txt")


def test_vectors_by_key_keeps_the_most_frequent_source_word(kv):
    assert vectors_by_key(kv) == {"احمد": 0, "القاهره": 2, "في": 3}  # أحمد comes first, احمد shares its key


def test_build_embedding_matrix(kv):
    words = ["<pad>", "<unk>", "احمد", "جديد", "القاهره"]
    matrix, hits = build_embedding_matrix(words, kv)
    assert matrix.shape == (5, 4) and matrix.dtype == np.float32 and hits == 2
    assert not matrix[0].any()
    np.testing.assert_array_equal(matrix[2], kv.vectors[0])
    np.testing.assert_array_equal(matrix[4], kv.vectors[2])
    assert matrix[3].any() and matrix[1].any()  # random rows keep unknown words distinguishable
    again, _ = build_embedding_matrix(words, kv)
    np.testing.assert_array_equal(again, matrix)  # seeded: every training seed gets the same table


def test_the_suite_vectors_file(tiny_vectors_kv):
    loaded = load_vectors(tiny_vectors_kv)
    assert loaded.index_to_key == VECTOR_WORDS and loaded.vector_size == 8
