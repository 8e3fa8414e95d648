"""spacy_aner.training.corpus: reading, checking and converting ANERCorp-style files."""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from spacy.tokens import DocBin
from spacy.vocab import Vocab

from spacy_aner.core.tags import bio_to_spans
from spacy_aner.training.corpus import (
    RELEASE_WORDS,
    TEST_FILE,
    TRAIN_FILE,
    Corpus,
    CorpusFormatError,
    CorpusWarning,
    Sentence,
    prepare,
    read_conll,
    sentence_to_doc,
    sha256_file,
    split_dev,
    write_conll,
    write_docbin,
)

TRAIN_EXPECTED = {"words": 125_102, "sentences": 3_973, "problems": 39,
                  "entities": {"LOC": 3779, "MISC": 900, "ORG": 1586, "PERS": 2735}}
TEST_EXPECTED = {"words": 25_008, "sentences": 925, "problems": 74,
                 "entities": {"LOC": 676, "MISC": 243, "ORG": 459, "PERS": 907}}


def _read_recording(path, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        corpus = read_conll(path, **kwargs)
    return corpus, [w for w in caught if issubclass(w.category, CorpusWarning)]


# --- the real corpus ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_corpora(anercorp_dir):
    return {
        "train": _read_recording(anercorp_dir / TRAIN_FILE),
        "test": _read_recording(anercorp_dir / TEST_FILE),
    }


@pytest.mark.slow
@pytest.mark.parametrize("part, expected", [("train", TRAIN_EXPECTED), ("test", TEST_EXPECTED)])
def test_real_corpus_counts(real_corpora, part, expected):
    corpus, caught = real_corpora[part]
    assert corpus.n_words == expected["words"] == RELEASE_WORDS[part]
    assert len(corpus.sentences) == expected["sentences"]
    assert corpus.entity_counts() == expected["entities"]
    stats = corpus.stats()
    assert stats["entities"] == sum(expected["entities"].values())
    assert stats["words"] == expected["words"]
    assert all(len(s.words) == len(s.tags) > 0 for s in corpus.sentences)
    # the repairs: stray I- tags only
    assert len(corpus.problems) == expected["problems"]
    assert all("does not continue" in p.message for p in corpus.problems)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert message.startswith(f"{expected['problems']} repaired line(s) in ")
    assert f"{corpus.problems[0].path}:{corpus.problems[0].line}:" in message


@pytest.mark.slow
def test_real_corpus_first_problem_lines(real_corpora):
    train, _ = real_corpora["train"]
    test, _ = real_corpora["test"]
    assert train.problems[0].line == 2779
    assert test.problems[0].line == 348
    assert train.problems[0].path.endswith(TRAIN_FILE)


@pytest.mark.slow
def test_real_corpus_strict_raises(anercorp_dir):
    with pytest.raises(CorpusFormatError) as info:
        read_conll(anercorp_dir / TRAIN_FILE, strict=True)
    message = str(info.value)
    assert TRAIN_FILE in message
    assert ":2779:" in message
    with pytest.raises(CorpusFormatError, match=r":348:"):
        read_conll(anercorp_dir / TEST_FILE, strict=True)


@pytest.fixture(scope="module")
def prepared(anercorp_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CorpusWarning)
        stats = prepare(anercorp_dir, out, dev_fraction=0.1)
    return out, stats


@pytest.mark.slow
def test_prepare_files_and_stats(prepared):
    out, stats = prepared
    for part in ("train", "dev", "test"):
        assert (out / f"{part}.conll").is_file()
        assert (out / f"{part}.spacy").is_file()
    assert stats["train"]["words"] + stats["dev"]["words"] == 125_102
    assert stats["train"]["sentences"] + stats["dev"]["sentences"] == 3_973
    assert stats["dev"]["sentences"] == 397
    assert stats["test"]["words"] == 25_008
    assert stats["test"]["entities"] == 2_285
    source = stats["source"]
    assert source["release_train_words"] == 125_102
    assert source["release_test_words"] == 25_008
    assert source["repaired_lines"] == {"train": 39, "test": 74}
    assert len(source["train_sha256"]) == 64


@pytest.mark.slow
def test_prepare_dev_is_last_part_of_train(prepared, real_corpora):
    out, _ = prepared
    train_src, _ = real_corpora["train"]
    dev, _ = _read_recording(out / "dev.conll")
    train, _ = _read_recording(out / "train.conll")
    assert len(train.sentences) == 3576
    assert dev.sentences[0].words == train_src.sentences[3576].words
    assert dev.sentences[0].tags == train_src.sentences[3576].tags
    assert dev.sentences[-1].words == train_src.sentences[-1].words
    assert train.sentences[-1].words == train_src.sentences[3575].words
    assert train.n_words + dev.n_words == 125_102


@pytest.mark.slow
@pytest.mark.parametrize("part, source_slice", [("train", slice(0, 3576)), ("dev", slice(3576, None)),
                                                ("test", slice(None))])
def test_prepare_conll_round_trip(prepared, real_corpora, part, source_slice):
    out, _ = prepared
    src, _ = real_corpora["test" if part == "test" else "train"]
    expected = src.sentences[source_slice]
    written, _ = _read_recording(out / f"{part}.conll")
    assert [s.words for s in written.sentences] == [s.words for s in expected]
    assert [s.tags for s in written.sentences] == [s.tags for s in expected]


@pytest.mark.slow
def test_prepare_docbin(prepared, real_corpora):
    out, _ = prepared
    test_src, _ = real_corpora["test"]
    docs = list(DocBin().from_disk(out / "test.spacy").get_docs(Vocab()))
    assert len(docs) == 925
    assert sum(len(d.ents) for d in docs) == 2_285
    by_label = {}
    for doc in docs:
        for ent in doc.ents:
            by_label[ent.label_] = by_label.get(ent.label_, 0) + 1
    assert by_label == TEST_EXPECTED["entities"]
    for doc, sent in zip(docs[:50], test_src.sentences[:50]):
        assert [t.text for t in doc] == sent.words
        assert [(e.start, e.end, e.label_) for e in doc.ents] == bio_to_spans(sent.tags)
    train_docs = list(DocBin().from_disk(out / "train.spacy").get_docs(Vocab()))
    dev_docs = list(DocBin().from_disk(out / "dev.spacy").get_docs(Vocab()))
    assert (len(train_docs), len(dev_docs)) == (3576, 397)
    assert sum(len(d) for d in train_docs) + sum(len(d) for d in dev_docs) == 125_102


# --- malformed and unusual files ---------------------------------------------------------


def _write(tmp_path: Path, data: bytes, name: str = "corpus.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _u(text: str) -> bytes:
    return text.encode("utf-8")


MALFORMED = [
    # id, content, bad line, words, tags
    pytest.param(_u("محمد B-PERS\nعلي\nفي O\n"), 2, ["محمد", "علي", "في"], ["B-PERS", "O", "O"], id="no-tag"),
    pytest.param(_u("في O\nمحمد B-PERS extra\n"), 2, ["في", "محمد"], ["O", "O"], id="three-fields"),
    pytest.param(_u("في O\n\nقال O\nمحمد B-PER\n"), 4, ["في", "قال", "محمد"], ["O", "O", "O"],
                 id="unknown-tag"),
    pytest.param(_u("في O\nالرباط I-LOC\n"), 2, ["في", "الرباط"], ["O", "I-LOC"], id="stray-I-after-O"),
    pytest.param(_u("الرباط I-LOC\n"), 1, ["الرباط"], ["I-LOC"], id="stray-I-at-start"),
    pytest.param(_u("محمد B-PERS\nالرباط I-LOC\n"), 2, ["محمد", "الرباط"], ["B-PERS", "I-LOC"],
                 id="I-LOC-after-B-PERS"),
]


@pytest.mark.parametrize("data, bad_line, words, tags", MALFORMED)
def test_malformed_non_strict(tmp_path, data, bad_line, words, tags):
    path = _write(tmp_path, data)
    with pytest.warns(CorpusWarning) as record:
        corpus = read_conll(path)
    messages = [str(w.message) for w in record if issubclass(w.category, CorpusWarning)]
    assert len(messages) == 1
    assert f"{path}:{bad_line}:" in messages[0]
    assert messages[0].startswith("1 repaired line(s)")
    assert [w for s in corpus.sentences for w in s.words] == words
    assert [t for s in corpus.sentences for t in s.tags] == tags
    assert corpus.n_words == len(words)
    assert [(p.path, p.line) for p in corpus.problems] == [(str(path), bad_line)]


@pytest.mark.parametrize("data, bad_line, words, tags", MALFORMED)
def test_malformed_strict(tmp_path, data, bad_line, words, tags):
    path = _write(tmp_path, data)
    with pytest.raises(CorpusFormatError) as info:
        read_conll(path, strict=True)
    assert isinstance(info.value, ValueError)
    assert str(info.value).startswith(f"{path}:{bad_line}: ")


def test_invalid_utf8_line_is_skipped(tmp_path):
    path = _write(tmp_path, _u("محمد B-PERS\n") + b"\xff\xfe O\n" + _u("في O\n"))
    with pytest.warns(CorpusWarning, match=rf"{path}:2: not valid UTF-8"):
        corpus = read_conll(path)
    assert corpus.sentences[0].words == ["محمد", "في"]
    assert corpus.sentences[0].tags == ["B-PERS", "O"]
    with pytest.raises(CorpusFormatError, match=rf"^{path}:2: not valid UTF-8"):
        read_conll(path, strict=True)


def test_several_problems_all_reported(tmp_path):
    lines = ["محمد B-PERS"] + [f"w{i} B-XX" for i in range(7)]
    path = _write(tmp_path, _u("\n".join(lines) + "\n"))
    with pytest.warns(CorpusWarning) as record:
        corpus = read_conll(path)
    assert [p.line for p in corpus.problems] == list(range(2, 9))
    message = str(record[0].message)
    assert message.startswith("7 repaired line(s)")
    assert f"{path}:6:" in message and "... and 2 more" in message
    assert corpus.n_words == 8


def _read_clean(path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", CorpusWarning)
        return read_conll(path)


def test_bom_at_file_start(tmp_path):
    path = _write(tmp_path, b"\xef\xbb\xbf" + _u("محمد B-PERS\nعلي I-PERS\n"))
    corpus = _read_clean(path)
    assert corpus.sentences[0].words == ["محمد", "علي"]
    assert corpus.entity_counts()["PERS"] == 1
    assert corpus.problems == []


@pytest.mark.parametrize("end", ["\r\n", "\r", "\r\r\n"])  # Windows; classic Mac; CRLF saved again on Windows
def test_other_line_endings(tmp_path, end):
    path = _write(tmp_path, _u(end.join(["محمد\tB-PERS", "علي I-PERS", "في\tO", "", "الرباط B-LOC", "", ""])))
    corpus = _read_clean(path)
    assert [s.words for s in corpus.sentences] == [["محمد", "علي", "في"], ["الرباط"]]
    assert [s.tags for s in corpus.sentences] == [["B-PERS", "I-PERS", "O"], ["B-LOC"]]
    assert [s.line for s in corpus.sentences] == [1, 5]


def test_a_cr_inside_a_line_of_a_newline_file_is_white_space(tmp_path):
    """As `paste` joins a CRLF word list and an LF tag list: read as before lone CRs ended lines."""
    path = _write(tmp_path, _u("محمد\r\tB-PERS\nعلي\r\tI-PERS\n\nقال O\r \n"))
    corpus = _read_clean(path)
    assert [s.words for s in corpus.sentences] == [["محمد", "علي"], ["قال"]]
    assert [s.tags for s in corpus.sentences] == [["B-PERS", "I-PERS"], ["O"]]
    assert [s.line for s in corpus.sentences] == [1, 4]


def test_a_long_malformed_line_is_shortened_in_its_message(tmp_path):
    path = _write(tmp_path, _u("محمد B-PERS\n" + "كلمة " * 1000 + "\n"))
    with pytest.warns(CorpusWarning) as caught:
        corpus = read_conll(path)
    assert corpus.sentences[0].words == ["محمد", "كلمة"]
    message = str(corpus.problems[0])
    assert "... (5,000 characters)" in message and len(message) < 300 and len(str(caught[0].message)) < 400


def test_blank_lines_and_missing_final_newline(tmp_path):
    data = _u("\n\nمحمد B-PERS\n\n\n\n \t \nفي O\nالرباط B-LOC\n\n\n\nقال O")
    path = _write(tmp_path, data)
    corpus = _read_clean(path)
    assert [s.words for s in corpus.sentences] == [["محمد"], ["في", "الرباط"], ["قال"]]
    assert [s.line for s in corpus.sentences] == [3, 8, 13]
    assert corpus.n_words == 4
    assert corpus.stats() == {"sentences": 3, "words": 4, "entities": 2,
                              "entities_per_type": {"PERS": 1, "LOC": 1, "ORG": 0, "MISC": 0}}


def test_empty_file(tmp_path):
    corpus = _read_clean(_write(tmp_path, b""))
    assert corpus.sentences == [] and corpus.n_words == 0


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        read_conll(tmp_path / "nope.txt")
    with pytest.raises(FileNotFoundError):
        read_conll(tmp_path)  # a directory is not a corpus file


def test_write_conll_round_trip(tmp_path):
    sents = [Sentence(["محمد", "في", "الرباط"], ["B-PERS", "O", "B-LOC"]),
             Sentence(["(", "د", "ب", "أ", ")"], ["O", "B-ORG", "I-ORG", "I-ORG", "O"])]
    path = tmp_path / "out.conll"
    write_conll(sents, path)
    assert path.read_text(encoding="utf-8").startswith("محمد\tB-PERS\nفي\tO\n")
    back = _read_clean(path)
    assert [(s.words, s.tags) for s in back.sentences] == [(s.words, s.tags) for s in sents]


def test_sentence_to_doc():
    doc = sentence_to_doc(Vocab(), ["قال", "محمد", "علي", "في", "الرباط"], ["O", "B-PERS", "I-PERS", "O", "I-LOC"])
    assert doc.text == "قال محمد علي في الرباط"
    assert [(e.text, e.label_) for e in doc.ents] == [("محمد علي", "PERS"), ("الرباط", "LOC")]
    assert len(sentence_to_doc(Vocab(), [], [])) == 0


# --- prepare() on small synthetic data ---------------------------------------------------


def _make_corpus_dir(tmp_path: Path, train: str, test: str) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / TRAIN_FILE).write_text(train, encoding="utf-8")
    (data / TEST_FILE).write_text(test, encoding="utf-8")
    return data


def test_prepare_small(tmp_path):
    train = "".join(f"w{i} B-LOC\nx O\n\n" for i in range(4))
    data = _make_corpus_dir(tmp_path, train, "محمد B-PERS\n")
    out = tmp_path / "out" / "nested"
    stats = prepare(data, out, dev_fraction=0.25)
    assert stats["train"]["sentences"] == 3 and stats["dev"]["sentences"] == 1
    assert stats["test"]["entities_per_type"]["PERS"] == 1
    dev = _read_clean(out / "dev.conll")
    assert dev.sentences[0].words == ["w3", "x"]
    assert stats["source"]["release_train_words"] == 8
    # dev_fraction 0: no dev part at all
    out0 = tmp_path / "out0"
    stats0 = prepare(data, out0)
    assert "dev" not in stats0 and not (out0 / "dev.conll").exists()
    assert stats0["train"]["sentences"] == 4


def test_prepare_strict_malformed(tmp_path):
    data = _make_corpus_dir(tmp_path, "محمد B-PERS\nعلي\n", "في O\n")
    with pytest.raises(CorpusFormatError, match=rf"{TRAIN_FILE}:2:"):
        prepare(data, tmp_path / "out", strict=True)
    with pytest.warns(CorpusWarning):
        stats = prepare(data, tmp_path / "out2")
    assert stats["source"]["repaired_lines"] == {"train": 1, "test": 0}
    assert stats["train"]["words"] == 2


def test_prepare_refuses_a_release_file_without_sentences(tmp_path):
    """Empty, or gzip-compressed (every line skipped as not UTF-8): it wrote empty parts and succeeded."""
    import gzip

    data = _make_corpus_dir(tmp_path, "", "محمد B-PERS\n")
    with pytest.raises(ValueError, match=rf"{TRAIN_FILE} has no sentences: give the plain-text release"):
        prepare(data, tmp_path / "out")
    (data / TEST_FILE).write_bytes(gzip.compress("محمد B-PERS\n".encode() * 50))
    (data / TRAIN_FILE).write_text("محمد B-PERS\n", encoding="utf-8")
    with pytest.warns(CorpusWarning), pytest.raises(ValueError, match=rf"{TEST_FILE} has no sentences \(\d+ lines"):
        prepare(data, tmp_path / "out")
    with pytest.raises(CorpusFormatError):
        prepare(data, tmp_path / "out", strict=True)
    assert not (tmp_path / "out").exists()  # nothing written, not even the folder


def test_prepare_missing_files(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError) as info:
        prepare(empty, tmp_path / "out")
    assert TRAIN_FILE in str(info.value) and TEST_FILE in str(info.value)
    (empty / TRAIN_FILE).write_text("محمد B-PERS\n", encoding="utf-8")
    with pytest.raises(FileNotFoundError) as info:
        prepare(empty, tmp_path / "out")
    assert TEST_FILE in str(info.value) and TRAIN_FILE not in str(info.value)
    assert not (tmp_path / "out").exists()


# --- split_dev ---------------------------------------------------------------------------


def _sents(n):
    return [Sentence([f"w{i}"], ["O"]) for i in range(n)]


def test_split_dev_zero():
    train, dev = split_dev(_sents(4), 0.0)
    assert dev == [] and len(train) == 4


def test_split_dev_quarter_takes_last():
    sents = _sents(4)
    train, dev = split_dev(sents, 0.25)
    assert dev == [sents[3]]
    assert train == sents[:3]


@pytest.mark.parametrize("fraction, part", [(0.0001, "no dev"), (0.9999, "no training")])
def test_split_dev_refuses_a_fraction_that_leaves_a_part_empty(fraction, part):
    with pytest.raises(ValueError, match=f"a dev fraction of {fraction} leaves {part} sentences of 3,973"):
        split_dev(_sents(3973), fraction)


def test_split_dev_keeps_order_and_everything():
    sents = _sents(3973)
    train, dev = split_dev(sents, 0.1)
    assert (len(train), len(dev)) == (3576, 397)
    assert train + dev == sents


@pytest.mark.parametrize("fraction", [1.0, 1.5, -0.1])
def test_split_dev_invalid(fraction):
    with pytest.raises(ValueError, match="dev fraction"):
        split_dev(_sents(4), fraction)


def test_corpus_entity_counts_include_all_labels():
    corpus = Corpus([Sentence(["a", "b"], ["I-ORG", "I-ORG"])])
    assert corpus.entity_counts() == {"PERS": 0, "LOC": 0, "ORG": 1, "MISC": 0}


def test_write_docbin_and_sha256(tmp_path):
    import hashlib

    sents = [Sentence(["قال", "محمد", "علي"], ["O", "B-PERS", "I-PERS"]), Sentence(["باريس"], ["I-LOC"])]
    write_docbin(sents, tmp_path / "x.spacy")
    docs = list(DocBin().from_disk(tmp_path / "x.spacy").get_docs(Vocab()))
    assert [[t.text for t in d] for d in docs] == [s.words for s in sents]
    assert [[(e.start, e.end, e.label_) for e in d.ents] for d in docs] == [[(1, 3, "PERS")], [(0, 1, "LOC")]]
    data = (tmp_path / "x.spacy").read_bytes()
    assert sha256_file(tmp_path / "x.spacy") == hashlib.sha256(data).hexdigest()
