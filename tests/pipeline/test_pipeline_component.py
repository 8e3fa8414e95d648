"""spacy_aner.pipeline.component (the ``aner_lstm`` component) and spacy_aner.pipeline.loading (``load``).

Pipelines use the session's tiny trained model (``tiny_model_dir``) or, where entities
are needed, its scrambled copy (``scrambled_model_dir``) that tags most words with
every label; an untuned model tags nothing and would make entity checks vacuous.
"""
from __future__ import annotations

import random
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import spacy
from aner_support import TINY_SENTENCES, WORDS, check_ents, ents_of, random_words, read_json, tagging
from spacy.scorer import get_ner_prf
from spacy.tokens import Doc, Span
from spacy.training import Example

import spacy_aner
from spacy_aner.core.config import (
    GRAPH_FILE,
    MODEL_FILES,
    REQUIRED_FILES,
    VECTORS_FILE,
    ModelLoadError,
)
from spacy_aner.core.tags import join_taggings
from spacy_aner.pipeline.component import DEFAULT_MODEL, AnerLSTM
from spacy_aner.pipeline.tokenizer import CamelTokenizer

LABELS = {"PERS", "LOC", "ORG", "MISC"}
SAMPLE_TEXTS = [
    "محمد يعيش في الرباط",
    "باريس هي عاصمة فرنسا.",
    "زار أحمد علي القاهرة أمس، ثم عاد إلى بيروت!",
    "أعلنت الأمم المتحدة عن خطة جديدة\n\nفي  لندن   مع شركة سوني",
    "",
    "   ",
    "\n",
    " ".join(WORDS * 12),  # longer than several windows
]


def random_text(rng: random.Random, max_words: int) -> str:
    seps = [" ", " ", " ", "  ", "\n", "\n\n", "، ", ". "]
    n = rng.randint(0, max_words)
    return "".join(rng.choice(WORDS) + rng.choice(seps) for _ in range(n)).strip(" ") if n else rng.choice(
        ["", " ", "\n\n", "\t"])


@pytest.fixture(scope="module")
def nlp(scrambled_nlp):
    """CAMeL tokenizer + aner_lstm with the scrambled (entity-happy) model."""
    return scrambled_nlp


@pytest.fixture(scope="module")
def blank_nlp(scrambled_model_dir):
    """spaCy's default Arabic tokenizer + aner_lstm (whitespace tokens for extra spaces)."""
    nlp = spacy.blank("ar")
    nlp.add_pipe("aner_lstm", config={"model": str(scrambled_model_dir)})
    return nlp


@pytest.fixture()
def lazy_component():
    """A component whose model is never loaded: for set_annotations and config tests."""
    nlp = spacy.blank("ar")
    return nlp, nlp.add_pipe("aner_lstm", config={"model": "/nonexistent/model"})


# --------------------------------------------------------------------------- factory


def test_add_pipe_config_and_meta(tiny_model_dir):
    nlp = spacy.blank("ar")
    comp = nlp.add_pipe("aner_lstm", config={"model": str(tiny_model_dir), "batch_size": 7})
    assert isinstance(comp, AnerLSTM) and nlp.pipe_names == ["aner_lstm"]
    meta = nlp.get_pipe_meta("aner_lstm")
    assert meta.default_score_weights["ents_f"] == 1.0
    assert "doc.ents" in meta.assigns
    cfg = nlp.config["components"]["aner_lstm"]
    assert cfg["factory"] == "aner_lstm"
    assert cfg["model"] == str(tiny_model_dir) and cfg["batch_size"] == 7 and cfg["overwrite_ents"] is True
    assert comp.batch_size == 7 and comp.labels == ("PERS", "LOC", "ORG", "MISC")
    assert nlp("محمد يعيش في الرباط").text == "محمد يعيش في الرباط"
    assert comp.meta["name"] == "aner_lstm"


def test_the_default_model_is_the_shipped_one_and_loads_lazily():
    comp = spacy.blank("ar").add_pipe("aner_lstm")
    assert comp.model_path == DEFAULT_MODEL and DEFAULT_MODEL.name == "aner-lstm"
    assert comp._tagger is None  # nothing loaded until the first document
    assert comp.split_sentences is True and comp.overwrite_ents is True and comp.batch_size == 256


@pytest.mark.parametrize("option, bad", [("batch_size", 0), ("batch_size", "8"), ("consistency_window", -1),
                                         ("consistency_window", "250"), ("threads", -1), ("threads", "2"),
                                         ("members", -1), ("members", "1")])
def test_count_options_must_be_whole_numbers(option, bad):
    """A string from a config ("8") passes spaCy's check and failed deep inside with a TypeError."""
    with pytest.raises(ValueError, match=rf"^{option} must be .*whole number, got {re.escape(repr(bad))}$"):
        spacy.blank("ar").add_pipe("aner_lstm", config={"model": "/nonexistent", option: bad})


def test_missing_model_is_reported_on_first_use():
    nlp = spacy.blank("ar")
    nlp.add_pipe("aner_lstm", config={"model": "/nonexistent"})  # loading is lazy: no error yet
    with pytest.raises(ModelLoadError, match="/nonexistent"):
        nlp("محمد يعيش في الرباط")
    with pytest.raises(ModelLoadError, match="/nonexistent"):
        list(nlp.pipe(["محمد", "في"]))


# --------------------------------------------------------------------------- entities


@pytest.mark.parametrize("which", ["nlp", "blank_nlp"])
def test_entities_are_valid_spans(which, request):
    pipeline = request.getfixturevalue(which)
    labels = set()
    for text in SAMPLE_TEXTS + [random_text(random.Random(i), 40) for i in range(30)]:
        doc = pipeline(text)
        check_ents(doc, text)
        labels.update(e.label_ for e in doc.ents)
    assert labels == LABELS, "the scrambled model predicts every label, so every check above ran"


def test_entities_skip_whitespace_tokens(blank_nlp):
    text = "محمد  يعيش\n\nفي   الرباط\n باريس"
    doc = blank_nlp(text)
    assert any(t.is_space for t in doc)
    check_ents(doc, text)
    words = [t for t in doc if not t.is_space]
    assert len(words) == 5
    tagged = {t.i for e in doc.ents for t in e if not t.is_space}
    assert tagged, "something is tagged"
    # Whatever is tagged, entity boundaries are on word tokens only.
    assert {doc[e.start].i for e in doc.ents} <= {t.i for t in words}


@pytest.mark.parametrize("tags,expected", [
    (["I-LOC", "O", "O", "O"], [(0, "LOC")]),
    (["O", "I-PERS", "O", "O"], [(1, "PERS")]),
    (["B-LOC", "I-PERS", "O", "O"], [(0, "LOC"), (1, "PERS")]),
    (["B-ORG", "I-ORG", "I-ORG", "I-ORG"], [((0, 3), "ORG")]),
    (["B-MISC", "O", "I-MISC", "B-MISC"], [(0, "MISC"), (2, "MISC"), (3, "MISC")]),
    (["O", "O", "O", "O"], []),
    (["I-PERS", "I-LOC", "I-ORG", "I-MISC"], [(0, "PERS"), (1, "LOC"), (2, "ORG"), (3, "MISC")]),
])
def test_set_annotations_with_hand_written_tags(lazy_component, tags, expected):
    nlp, comp = lazy_component
    text = "محمد  يعيش\n\nفي الرباط\n"
    doc = nlp.make_doc(text)
    assert [t.text for t in doc] == ["محمد", " ", "يعيش", "\n\n", "في", "الرباط", "\n"]
    positions = [0, 2, 4, 5]  # token index of each non-space word
    comp.set_annotations([doc], [tagging(tags)])
    want = []
    for where, label in expected:
        first, last = (where, where) if isinstance(where, int) else where
        want.append((positions[first], positions[last] + 1, label))
    assert [(e.start, e.end, e.label_) for e in doc.ents] == want
    check_ents(doc, text)
    assert comp._tagger is None  # set_annotations never needs the network


def test_a_name_found_once_is_tagged_where_it_recurs_in_the_doc(lazy_component):
    nlp, comp = lazy_component
    assert comp.consistency_window == 250 == nlp.config["components"]["aner_lstm"]["consistency_window"]
    text = "قال كريم إن كريم سافر"
    tags = ["O", "B-PERS", "O", "O", "O"]
    doc = nlp.make_doc(text)
    comp.set_annotations([doc], [tagging(tags, 0.75)])
    assert [(e.text, e.start_char) for e in doc.ents] == [("كريم", 4), ("كريم", 12)]
    assert doc.spans["aner_lstm"].attrs["scores"] == [0.75, 0.75]  # the copy takes its mention's score
    comp.consistency_window = 0
    doc = nlp.make_doc(text)
    comp.set_annotations([doc], [tagging(tags, 0.75)])
    assert [(e.text, e.start_char) for e in doc.ents] == [("كريم", 4)]


def test_split_sentences_tags_each_sentence_as_the_tagger_does_alone(blank_nlp):
    comp = blank_nlp.get_pipe("aner_lstm")
    assert comp.split_sentences is True  # the default
    first, second = "زار أحمد علي القاهرة أمس .".split(), "باريس هي عاصمة فرنسا".split()
    doc = blank_nlp.make_doc(" ".join(first + second))
    alone = comp.tagger.predict([first])[0] + comp.tagger.predict([second])[0]
    try:
        assert [t.tags for t in comp.predict([doc])] == [alone]
        # sentence boundaries set by another component win over the punctuation rule
        doc = blank_nlp.make_doc(" ".join(first[:-1] + second))
        for token in doc:
            token.is_sent_start = token.i in (0, 2)
        parts = comp.tagger.tag([first[:2], first[2:-1] + second])
        (got,) = comp.predict([doc])
        assert got.entities == parts[0].entities + [(a + 2, b + 2, lab, p) for a, b, lab, p in parts[1].entities]
        # the parts' tags, joined so that no entity runs across the boundary (join_taggings, tested in core)
        assert got.tags == join_taggings(parts).tags
        assert [t.tags for t in comp.predict([blank_nlp.make_doc(""), blank_nlp.make_doc(" . ")])] == \
            [[], comp.tagger.predict([["."]])[0]]
        comp.split_sentences = False  # the doc's words as one text
        assert comp.predict([blank_nlp.make_doc(" ".join(first + second))]) == comp.tagger.tag([first + second])
    finally:
        comp.split_sentences = True


def test_split_sentences_on_a_doc_with_partly_set_boundaries(blank_nlp):
    """Doc.from_docs marks only each part's first token: the end-mark rule fills in the rest."""
    comp = blank_nlp.get_pipe("aner_lstm")
    a, b, c = "زار أحمد القاهرة .".split(), "باريس هي عاصمة فرنسا .".split(), "قال محمد".split()
    doc = Doc.from_docs([blank_nlp.make_doc(" ".join(a + b)), blank_nlp.make_doc(" ".join(c))])
    assert doc.has_annotation("SENT_START") and doc[1].is_sent_start is None
    assert [t.tags for t in comp.predict([doc])] == [join_taggings(comp.tagger.tag([a, b, c])).tags]


def test_consistency_with_overwrite_ents_false_keeps_existing_entities(lazy_component):
    nlp, comp = lazy_component
    comp.overwrite_ents = False
    try:
        doc = nlp.make_doc("قال كريم إن كريم سافر")
        doc.ents = [Span(doc, 3, 4, label="MISC")]  # the second كريم, set by someone else
        comp.set_annotations([doc], [tagging(["O", "B-PERS", "O", "O", "O"])])
        assert [(e.start, e.label_) for e in doc.ents] == [(1, "PERS"), (3, "MISC")]
        assert [(s.start, s.label_) for s in doc.spans["aner_lstm"]] == [(1, "PERS")]  # only what it added
    finally:
        comp.overwrite_ents = True


def test_set_annotations_on_empty_and_whitespace_docs(lazy_component):
    nlp, comp = lazy_component
    docs = [nlp.make_doc(t) for t in ("", "  \n\n ", "محمد")]
    comp.set_annotations(docs, [tagging([]), tagging([]), tagging(["I-PERS"])])
    assert [ents_of(d) for d in docs[:2]] == [[], []]
    assert [(list(d.spans["aner_lstm"]), d.spans["aner_lstm"].attrs["scores"]) for d in docs[:2]] == [([], [])] * 2
    assert [(e.text, e.label_) for e in docs[2].ents] == [("محمد", "PERS")]


def test_predict_ignores_whitespace_tokens(blank_nlp):
    comp = blank_nlp.get_pipe("aner_lstm")
    doc = blank_nlp.make_doc("محمد  يعيش\n\nفي الرباط\n")
    tags = comp.predict([doc])
    assert len(tags) == 1 and len(tags[0].tags) == 4


def test_overwrite_ents_false_keeps_existing_entities(scrambled_model_dir, nlp):
    text = "محمد يعيش في الرباط باريس هي عاصمة فرنسا زار أحمد علي القاهرة"
    keep = spacy_aner.load(scrambled_model_dir, overwrite_ents=False)
    replace = nlp
    assert keep.config["components"]["aner_lstm"]["overwrite_ents"] is False
    predicted = [(e.start, e.end, e.label_) for e in replace(text).ents]
    assert len(predicted) >= 3

    doc = keep.make_doc(text)
    doc.ents = [Span(doc, 1, 3, label="GPE")]
    doc = keep.get_pipe("aner_lstm")(doc)
    got = [(e.start, e.end, e.label_) for e in doc.ents]
    assert (1, 3, "GPE") in got
    added = [s for s in predicted if s[1] <= 1 or s[0] >= 3]
    assert sorted(got) == sorted([(1, 3, "GPE")] + added)
    assert any(s[0] < 3 and s[1] > 1 for s in predicted), "some prediction overlapped the kept entity"
    assert len(added) < len(predicted)

    # overwrite_ents=True replaces the existing entity.
    doc = replace.make_doc(text)
    doc.ents = [Span(doc, 1, 3, label="GPE")]
    doc = replace.get_pipe("aner_lstm")(doc)
    assert [(e.start, e.end, e.label_) for e in doc.ents] == predicted


# --------------------------------------------------------------------------- batching


def mixed_texts(n: int, seed: int = 0):
    rng = random.Random(seed)
    texts = [random_text(rng, rng.choice([3, 10, 60, 300])) for _ in range(n)]
    texts[::97] = [""] * len(texts[::97])
    texts[5::101] = ["  \n\t "] * len(texts[5::101])
    return texts


def test_pipe_keeps_order_text_and_count(nlp):
    texts = mixed_texts(600)
    assert "" in texts and "  \n\t " in texts
    docs = list(nlp.pipe(texts, batch_size=64))
    assert len(docs) == 600
    assert [d.text for d in docs] == texts
    for doc, text in zip(docs, texts):
        check_ents(doc, text)
    assert sum(len(d.ents) for d in docs) > 600
    assert all(not d.ents for d, t in zip(docs, texts) if not t.strip())


@pytest.mark.slow
def test_pipe_equals_one_by_one(nlp):
    texts = mixed_texts(1000, seed=1)
    piped = [ents_of(d) for d in nlp.pipe(texts)]
    single = [ents_of(nlp(t)) for t in texts]
    assert piped == single


def test_pipe_equals_one_by_one_for_equal_length_docs(nlp):
    """Docs of one length share a padding bucket whatever the batch: here batching changes nothing."""
    rng = random.Random(2)
    texts = [" ".join(rng.choice(WORDS) for _ in range(12)) for _ in range(200)]
    piped = [ents_of(d) for d in nlp.pipe(texts, batch_size=50)]
    assert piped == [ents_of(nlp(t)) for t in texts]
    assert sum(map(len, piped)) > 200


def test_pipe_batches_network_calls(nlp, monkeypatch):
    comp = nlp.get_pipe("aner_lstm")
    scorer = comp.tagger.scorer
    real = scorer.scores
    calls = []

    def counting(feeds):
        calls.append(feeds["index"].shape)
        return real(feeds)

    monkeypatch.setattr(scorer, "scores", counting)
    texts = [" ".join(random.Random(i).choice(WORDS) for _ in range(1 + i % 6)) for i in range(600)]
    docs = list(nlp.pipe(texts, batch_size=256))
    assert len(docs) == 600 and [d.text for d in docs] == texts
    # 3 minibatches of <= 256 docs; in each, one network call per padded length (1-6 words: 4 or 8)
    assert 1 <= len(calls) <= 6, calls
    assert sum(shape[0] for shape in calls) == 600
    calls.clear()
    nlp("محمد يعيش في الرباط")
    assert len(calls) == 1


# --------------------------------------------------------------------------- serialisation


def test_to_disk_is_self_contained(scrambled_model_dir, tmp_path):
    model = tmp_path / "model_copy"
    shutil.copytree(scrambled_model_dir, model)
    nlp = spacy_aner.load(model)
    texts = SAMPLE_TEXTS + [random_text(random.Random(i), 30) for i in range(20)]
    before = [ents_of(d) for d in nlp.pipe(texts)]
    assert any(before)
    nlp.to_disk(tmp_path / "pipeline")
    shutil.rmtree(model)
    saved = tmp_path / "pipeline" / "aner_lstm"
    assert {*REQUIRED_FILES, "meta.json"} <= {p.name for p in saved.iterdir()}
    assert {GRAPH_FILE, VECTORS_FILE} <= set(REQUIRED_FILES)
    assert not (saved / "cfg.json").exists()  # settings live in the pipeline's config only
    loaded = spacy.load(tmp_path / "pipeline")
    assert loaded.pipe_names == ["aner_lstm"]
    assert isinstance(loaded.tokenizer, CamelTokenizer)
    assert [ents_of(d) for d in loaded.pipe(texts)] == before
    assert [d.text for d in loaded.pipe(texts)] == texts


def test_to_disk_after_model_dir_deleted_saves_loaded_model(scrambled_model_dir, tmp_path):
    model = tmp_path / "model_copy"
    shutil.copytree(scrambled_model_dir, model)
    nlp = spacy_aner.load(model, batch_size=32)
    texts = SAMPLE_TEXTS[:4]
    before = [ents_of(d) for d in nlp.pipe(texts)]  # loads the network
    shutil.rmtree(model)
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    assert loaded.get_pipe("aner_lstm").batch_size == 32  # from the saved config
    assert [ents_of(d) for d in loaded.pipe(texts)] == before


@pytest.mark.parametrize("lost", [GRAPH_FILE, VECTORS_FILE])
def test_save_a_loaded_pipeline_in_place(scrambled_model_dir, tmp_path, lost):
    """Saved back over its own folder: the files stay as they are, and a missing one is rewritten from
    memory (the word table the model has memory-mapped from that folder included)."""
    import hashlib

    spacy_aner.load(scrambled_model_dir).to_disk(tmp_path / "pipeline")
    saved = tmp_path / "pipeline" / "aner_lstm"
    digests = {f: hashlib.sha256((saved / f).read_bytes()).hexdigest() for f in REQUIRED_FILES}
    nlp = spacy.load(tmp_path / "pipeline")
    before = [ents_of(d) for d in nlp.pipe(SAMPLE_TEXTS)]
    assert any(before)
    nlp.to_disk(tmp_path / "pipeline")
    assert {f: hashlib.sha256((saved / f).read_bytes()).hexdigest() for f in REQUIRED_FILES} == digests
    (saved / lost).unlink()
    nlp.to_disk(tmp_path / "pipeline")
    assert (saved / lost).is_file()
    assert [ents_of(d) for d in nlp.pipe(SAMPLE_TEXTS)] == before  # the loaded model is unharmed
    assert [ents_of(d) for d in spacy.load(tmp_path / "pipeline").pipe(SAMPLE_TEXTS)] == before


def test_nlp_to_bytes_round_trip(nlp):
    texts = SAMPLE_TEXTS
    before = [ents_of(d) for d in nlp.pipe(texts)]
    data = nlp.to_bytes()
    fresh = spacy.util.get_lang_class("ar").from_config(nlp.config)
    assert fresh.pipe_names == ["aner_lstm"]
    fresh.from_bytes(data)
    assert isinstance(fresh.tokenizer, CamelTokenizer)
    assert [ents_of(d) for d in fresh.pipe(texts)] == before


def test_component_to_bytes_round_trip(nlp, lazy_component):
    comp = nlp.get_pipe("aner_lstm")
    other_nlp, other = lazy_component
    other.from_bytes(comp.to_bytes())
    assert other._tagger is not None  # loaded at once, not lazily
    words = [WORDS, WORDS[:3], []]
    assert other.tagger.predict(words) == comp.tagger.predict(words)
    assert other.batch_size == comp.batch_size and other.overwrite_ents == comp.overwrite_ents
    text = "زار أحمد علي القاهرة أمس"
    assert ents_of(other(other_nlp.make_doc(text))) == ents_of(comp(nlp.make_doc(text)))


def test_component_from_bytes_rejects_path_names_and_leaves_no_directory(lazy_component, tmp_path, monkeypatch):
    import tempfile

    import srsly

    _, comp = lazy_component
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where from_bytes makes its directory
    for name in ("../config.json", "sub/config.json", ".hidden", ""):
        with pytest.raises(ModelLoadError, match="unexpected file name"):
            comp.from_bytes(srsly.msgpack_dumps({"vocab.json": b"{}", name: b"{}"}))
    for data in (srsly.msgpack_dumps([1, 2]), srsly.msgpack_dumps({"vocab.json": "{}"}),
                 srsly.msgpack_dumps({1: b"{}"}), b"\xc1", b""):
        with pytest.raises(ModelLoadError, match="serialised aner_lstm: "):
            comp.from_bytes(data)
    with pytest.raises(ModelLoadError, match="missing model file"):
        comp.from_bytes(srsly.msgpack_dumps({"vocab.json": b"{}"}))
    assert list(tmp_path.iterdir()) == []


def _damage(path: Path, how: str) -> None:
    if how == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif how == "random bytes":
        path.write_bytes(random.Random(0).randbytes(max(path.stat().st_size, 4096)))
    elif how == "empty":
        path.write_bytes(b"")
    else:
        assert how == "missing"
        path.unlink()


@pytest.mark.parametrize("how", ["truncated", "random bytes", "empty", "missing"])
@pytest.mark.parametrize("name", [GRAPH_FILE, VECTORS_FILE])
def test_a_broken_model_file_in_a_saved_pipeline_is_named(tiny_model_dir, tmp_path, name, how):
    spacy_aner.load(tiny_model_dir).to_disk(tmp_path / "pipeline")
    broken = tmp_path / "pipeline" / "aner_lstm" / name
    _damage(broken, how)
    with pytest.raises(ModelLoadError) as err:
        spacy.load(tmp_path / "pipeline")
    assert str(broken) in str(err.value)
    if how == "missing":
        assert f"missing model file: {broken}" in str(err.value)


@pytest.mark.parametrize("how", ["truncated", "random bytes"])
@pytest.mark.parametrize("name", [GRAPH_FILE, VECTORS_FILE])
def test_a_broken_model_file_is_named_on_first_use(tiny_model_dir, model_copy, name, how):
    model = model_copy(tiny_model_dir)
    _damage(model / name, how)
    nlp = spacy_aner.load(model)  # lazy: nothing read yet
    with pytest.raises(ModelLoadError, match=re.escape(str(model / name))):
        nlp("محمد يعيش في الرباط")


# --------------------------------------------------------------------------- scoring


def gold_examples(nlp):
    examples = []
    for text, tags in TINY_SENTENCES:
        words = text.split()
        gold = Doc(nlp.vocab, words=words, spaces=[True] * (len(words) - 1) + [False], ents=tags.split())
        assert [t.text for t in nlp.make_doc(text)] == words
        examples.append(Example(nlp.make_doc(text), gold))
    return examples


def test_score_matches_spacy_ner_prf(nlp):
    examples = gold_examples(nlp)
    assert sum(len(e.reference.ents) for e in examples) == 15
    evaluated = nlp.evaluate(examples)
    # nlp.evaluate tags the predicted docs in one batch; do the same by hand.
    predicted = list(nlp.pipe([e.predicted.text for e in examples]))
    annotated = [Example(doc, e.reference) for doc, e in zip(predicted, examples)]
    reference = get_ner_prf(annotated)
    comp = nlp.get_pipe("aner_lstm")
    scores = comp.score(annotated)
    for key in ("ents_p", "ents_r", "ents_f"):
        assert scores[key] == pytest.approx(reference[key])
        assert evaluated[key] == pytest.approx(reference[key])
        assert 0.0 <= scores[key] <= 1.0
    # Hand count of exact (start, end, label) matches.
    gold = {(i, e.start, e.end, e.label_) for i, ex in enumerate(annotated) for e in ex.reference.ents}
    pred = {(i, e.start, e.end, e.label_) for i, ex in enumerate(annotated) for e in ex.predicted.ents}
    tp = len(gold & pred)
    assert len(pred) > 0
    assert scores["ents_p"] == pytest.approx(tp / len(pred))
    assert scores["ents_r"] == pytest.approx(tp / len(gold))
    assert set(scores["ents_per_type"]) <= LABELS


def test_score_of_perfect_and_empty_predictions(nlp):
    comp = nlp.get_pipe("aner_lstm")
    examples = gold_examples(nlp)
    perfect = [Example(e.reference.copy(), e.reference) for e in examples]
    scores = comp.score(perfect)
    assert scores["ents_p"] == scores["ents_r"] == scores["ents_f"] == 1.0
    assert set(scores["ents_per_type"]) == LABELS
    empty = [Example(nlp.make_doc(e.reference.text), e.reference) for e in examples]
    scores = comp.score(empty)
    assert scores["ents_r"] == 0.0 and scores["ents_f"] == 0.0


# --------------------------------------------------------------------------- spacy_aner.load


def test_load_uses_camel_tokenizer(tiny_model_dir):
    nlp = spacy_aner.load(tiny_model_dir)
    assert isinstance(nlp.tokenizer, CamelTokenizer)
    assert nlp.pipe_names == ["aner_lstm"]
    assert nlp.lang == "ar"
    assert Path(nlp.get_pipe("aner_lstm").model_path) == Path(tiny_model_dir)
    doc = nlp("زار أحمد القاهرة، ثم بيروت.")
    assert [t.text for t in doc] == ["زار", "أحمد", "القاهرة", "،", "ثم", "بيروت", "."]
    assert all(e.label_ in LABELS for e in doc.ents)


def test_load_without_ner():
    nlp = spacy_aner.load(ner=False)
    assert nlp.pipe_names == []
    assert isinstance(nlp.tokenizer, CamelTokenizer)
    assert [t.text for t in nlp("محمد، في الرباط")] == ["محمد", "،", "في", "الرباط"]


# --------------------------------------------------------------------------- settings, bytes, processes


def test_load_time_config_overrides_apply(scrambled_model_dir, tmp_path):
    spacy_aner.load(scrambled_model_dir, batch_size=32, overwrite_ents=False,
                    consistency_window=40).to_disk(tmp_path / "pipeline")
    plain = spacy.load(tmp_path / "pipeline").get_pipe("aner_lstm")
    assert (plain.batch_size, plain.overwrite_ents, plain.consistency_window) == (32, False, 40)
    nlp = spacy.load(tmp_path / "pipeline", config={"components": {"aner_lstm": {
        "overwrite_ents": True, "batch_size": 8, "consistency_window": 0}}})
    pipe = nlp.get_pipe("aner_lstm")
    assert (pipe.batch_size, pipe.overwrite_ents, pipe.consistency_window) == (8, True, 0)
    assert nlp.config["components"]["aner_lstm"]["batch_size"] == 8  # the config says what the component does


def test_from_bytes_directory_goes_with_the_component(scrambled_model_dir):
    import gc

    data = spacy_aner.load(scrambled_model_dir).to_bytes()  # files copied, nothing loaded
    nlp = spacy_aner.load(scrambled_model_dir)
    nlp.from_bytes(data)
    first = nlp.get_pipe("aner_lstm").model_path
    assert first.is_dir()
    before = [ents_of(d) for d in nlp.pipe(SAMPLE_TEXTS)]
    nlp.from_bytes(data)  # a second load replaces the first directory
    second = nlp.get_pipe("aner_lstm").model_path
    assert not first.exists() and second.is_dir()
    assert [ents_of(d) for d in nlp.pipe(SAMPLE_TEXTS)] == before
    del nlp
    gc.collect()
    assert not second.exists()
    with pytest.raises(ModelLoadError):
        spacy_aner.load(scrambled_model_dir).get_pipe("aner_lstm").from_bytes(b"\x80")  # not msgpack of files


def test_a_used_pipeline_pickles_and_the_copy_tags_alike(nlp):
    import pickle

    docs = list(nlp.pipe(SAMPLE_TEXTS))  # the network is loaded now
    before = [(ents_of(d), list(d.spans["aner_lstm"].attrs["scores"])) for d in docs]
    copy = pickle.loads(pickle.dumps(nlp))
    assert copy.get_pipe("aner_lstm")._tagger is None  # reloads lazily from model_path
    assert copy.get_pipe("aner_lstm").name == "aner_lstm"
    assert [(ents_of(d), list(d.spans["aner_lstm"].attrs["scores"])) for d in copy.pipe(SAMPLE_TEXTS)] == before
    assert nlp.get_pipe("aner_lstm")._tagger is not None  # the original keeps its network



def test_a_model_rewritten_after_loading_is_not_what_copies_and_saves_take(scrambled_model_dir, tiny_model_dir,
                                                                            tmp_path):
    """A model folder overwritten after the pipeline loaded it (a training run writing over
    ``model-best``): saving, pickling, deep-copying and bytes keep the network in memory."""
    import copy
    import pickle

    model = tmp_path / "model"
    shutil.copytree(scrambled_model_dir, model)
    (model / "training.json").write_text('{"note": "the loaded model\'s record"}', encoding="utf-8")
    nlp = spacy_aner.load(model)
    before = [(ents_of(d), list(d.spans["aner_lstm"].attrs["scores"])) for d in nlp.pipe(SAMPLE_TEXTS)]

    def tags(pipeline):
        return [(ents_of(d), list(d.spans["aner_lstm"].attrs["scores"])) for d in pipeline.pipe(SAMPLE_TEXTS)]

    shutil.rmtree(model)
    shutil.copytree(tiny_model_dir, model)
    assert tags(spacy_aner.load(model)) != before  # the folder now holds another model
    assert tags(nlp) == before
    pickled = pickle.loads(pickle.dumps(nlp))
    assert pickled.get_pipe("aner_lstm")._tagger is not None  # carried, not reloaded from the folder
    assert tags(pickled) == before
    assert tags(copy.deepcopy(nlp)) == before
    fresh = spacy.util.get_lang_class("ar").from_config(nlp.config)
    assert tags(fresh.from_bytes(nlp.to_bytes())) == before
    for saver in (nlp, pickled):
        shutil.rmtree(tmp_path / "pipeline", ignore_errors=True)
        saver.to_disk(tmp_path / "pipeline")
        assert tags(spacy.load(tmp_path / "pipeline")) == before
        assert "the loaded model" in (tmp_path / "pipeline" / "aner_lstm" / "training.json").read_text(encoding="utf-8")


def test_saving_over_a_loaded_pipeline_leaves_it_as_it_was(shipped_model_dir, tiny_model_dir, tmp_path):
    """Another model saved over the folder of a loaded pipeline (its word table memory-mapped from
    there): the loaded one keeps its own vectors, where rewriting the file in place changed them
    or, for a smaller table, crashed the process (SIGBUS). In a subprocess, which a crash kills."""
    folder = str(tmp_path / "pipeline")
    script = f"""
import spacy, spacy_aner
spacy_aner.load({str(shipped_model_dir)!r}).to_disk({folder!r})
nlp = spacy.load({folder!r})
text = "قال محمد إن الرباط جميلة " + " ".join(list(nlp.get_pipe("aner_lstm").tagger.vocab.words)[-50:])
before = [(e.text, e.label_) for e in nlp(text).ents]
spacy_aner.load({str(tiny_model_dir)!r}).to_disk({folder!r})
nlp.get_pipe("aner_lstm").tagger.scorer.cache.clear()
assert [(e.text, e.label_) for e in nlp(text).ents] == before and before
print("unchanged")
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0 and "unchanged" in run.stdout, run.stderr[-3000:]
    assert len(spacy.load(folder).get_pipe("aner_lstm").tagger.vocab.words) < 1000  # the tiny model now
    saved = {p.name for p in (tmp_path / "pipeline" / "aner_lstm").iterdir()} & set(MODEL_FILES)
    assert saved == {p.name for p in tiny_model_dir.iterdir()} & set(MODEL_FILES)  # none of the other's left


def test_a_copy_of_a_pipeline_from_bytes_outlives_the_original(scrambled_model_dir):
    import copy
    import gc

    nlp = spacy_aner.load(scrambled_model_dir)
    nlp.from_bytes(spacy_aner.load(scrambled_model_dir).to_bytes())
    before = [ents_of(d) for d in nlp.pipe(SAMPLE_TEXTS)]
    folder = nlp.get_pipe("aner_lstm").model_path
    twin = copy.deepcopy(nlp)
    del nlp
    gc.collect()
    assert not folder.exists()  # the directory went with the original
    assert [ents_of(d) for d in twin.pipe(SAMPLE_TEXTS)] == before


def test_a_lenient_error_handler_gives_the_doc_back(scrambled_model_dir, monkeypatch):
    from spacy.util import ignore_error

    nlp = spacy_aner.load(scrambled_model_dir)
    comp = nlp.get_pipe("aner_lstm")
    doc = nlp.make_doc("محمد يعيش في الرباط")

    def fail(docs):
        raise RuntimeError("network down")

    monkeypatch.setattr(comp, "predict", fail)
    with pytest.raises(RuntimeError, match="network down"):
        comp(doc)
    comp.set_error_handler(ignore_error)
    assert comp(doc) is doc and not doc.ents
    assert list(map(comp, [doc, doc])) == [doc, doc]
    assert not nlp("محمد يعيش في الرباط").ents


_PROCESSES_SCRIPT = r"""
import multiprocessing as mp, sys
import spacy_aner
method, model = sys.argv[1], sys.argv[2]
nlp = spacy_aner.load(model)
texts = ["زار محمد علي القاهرة أمس", "باريس هي عاصمة فرنسا"] * 8
def entities(doc):  # with the scores, which only the component's own span group holds
    return [(e.start_char, e.end_char, e.label_) for e in doc.ents], list(doc.spans["aner_lstm"].attrs["scores"])
one = [entities(d) for d in nlp.pipe(texts)]  # the session exists now
assert any(ents for ents, _ in one), "the scrambled model tags something"
mp.set_start_method(method, force=True)
try:
    for _ in range(3):  # the workers of one pool inherit a session from the parent, those of the next two too
        two = [entities(d) for d in nlp.pipe(texts, n_process=2, batch_size=4)]
        print("SAME" if two == one else "DIFFERENT", flush=True)
except Exception as err:
    print("ERROR", type(err).__name__, err)
"""


@pytest.mark.parametrize("method", ["fork", pytest.param("forkserver", marks=pytest.mark.slow)])
def test_nlp_pipe_with_processes_after_the_model_ran(scrambled_model_dir, method):
    """Workers forked after the parent ran the network make their own ONNX Runtime session and tag alike
    (freeing the inherited one would hang: its thread pool's threads stayed in the parent)."""
    import os
    import signal

    proc = subprocess.Popen([sys.executable, "-c", _PROCESSES_SCRIPT, method, str(scrambled_model_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the script and its workers
        out, err = proc.communicate()
        pytest.fail(f"nlp.pipe(n_process=2) under {method} hung; output so far: {out!r}")
    assert out.splitlines() == ["SAME"] * 3, out + err[-3000:]


# --------------------------------------------------------------------------- threads


def test_threads_default_is_zero():
    comp = spacy.blank("ar").add_pipe("aner_lstm", config={"model": "/nonexistent"})
    assert comp.threads == 0  # the default: one per core


def test_threads_run_calls_side_by_side_with_the_same_results(scrambled_model_dir, tmp_path):
    rng = random.Random(7)
    texts = [" ".join(random_words(rng, rng.randint(1, 60))) for _ in range(300)] + list(SAMPLE_TEXTS)
    one = spacy_aner.load(scrambled_model_dir, threads=1)
    expected = [(ents_of(d), list(d.spans["aner_lstm"].attrs["scores"])) for d in one.pipe(texts, batch_size=64)]
    nlp = spacy_aner.load(scrambled_model_dir, threads=3)
    comp = nlp.get_pipe("aner_lstm")
    assert comp.threads == 3 and nlp.config["components"]["aner_lstm"]["threads"] == 3
    scorer, callers = comp.tagger.scorer, set()
    real = scorer.scores
    scorer.scores = lambda feeds: (callers.add(threading.current_thread().name), real(feeds))[1]
    got = [(ents_of(d), list(d.spans["aner_lstm"].attrs["scores"])) for d in nlp.pipe(texts, batch_size=64)]
    del scorer.scores
    assert got == expected and any(ents for ents, _ in got)
    assert len(callers) > 1 and all(name.startswith("aner-network") for name in callers)  # calls side by side
    assert comp.tagger.pool()._max_workers == 3
    assert comp.tagger.scorer.session().get_session_options().intra_op_num_threads == 1
    # from_disk (spacy.load) loads the model at once: a load-time override reaches it too
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline", config={"components": {"aner_lstm": {"threads": 1}}})
    assert loaded.get_pipe("aner_lstm").tagger.threads == 1 and loaded.get_pipe("aner_lstm").tagger.pool() is None
    assert spacy.load(tmp_path / "pipeline").get_pipe("aner_lstm").tagger.threads == 3  # as saved


def test_threads_zero_is_one_per_usable_core(scrambled_model_dir):
    from spacy_aner.core.tagger import usable_cores

    assert spacy_aner.load(scrambled_model_dir).get_pipe("aner_lstm").tagger.workers() == usable_cores() >= 1


# --------------------------------------------------------------------------- members


def test_members_is_checked_against_the_model(scrambled_model_dir):
    assert spacy.blank("ar").add_pipe("aner_lstm", config={"model": "/nonexistent"}).members == 0  # all
    nlp = spacy_aner.load(scrambled_model_dir, members=2)  # a single network
    with pytest.raises(ValueError, match=r"members=2, but the model in .* has 1 network$"):
        nlp("محمد يعيش في الرباط")


def test_the_shipped_ensemble_with_one_member_saves_and_loads_as_configured(shipped_model_dir, shipped_nlp,
                                                                           tmp_path):
    nlp = spacy_aner.load(members=1)
    comp = nlp.get_pipe("aner_lstm")
    text = "زار محمد علي القاهرة أمس مع وفد من الأمم المتحدة ."
    doc = nlp(text)
    assert {(e.text, e.label_) for e in doc.ents} >= {("القاهرة", "LOC"), ("الأمم المتحدة", "ORG")}
    assert comp.tagger.config.members == 3 and comp.tagger.scorer.cache.width * 3 == \
        shipped_nlp.get_pipe("aner_lstm").tagger.scorer.cache.width
    nlp.to_disk(tmp_path / "pipeline")
    saved = tmp_path / "pipeline" / "aner_lstm"  # the network computed with, as a model of its own
    assert (saved / "tagger.onnx").stat().st_size < (shipped_model_dir / "tagger.onnx").stat().st_size / 2
    assert read_json(saved / "config.json")["members"] == 1
    meta, shipped_meta = read_json(saved / "meta.json"), read_json(shipped_model_dir / "meta.json")
    assert meta["members"] == shipped_meta["members"][:1] and "test_scores" not in meta
    assert meta["ensemble"] == {"members": 3, "dev_scores": shipped_meta["dev_scores"],  # not this model's scores
                                "test_scores": shipped_meta["test_scores"]}
    assert len(read_json(saved / "training.json")["members"]) == 1
    assert (saved / "LICENSE-MODEL.txt").read_bytes() == (shipped_model_dir / "LICENSE-MODEL.txt").read_bytes()
    loaded = spacy.load(tmp_path / "pipeline")
    assert loaded.config["components"]["aner_lstm"]["members"] == 1
    assert ents_of(loaded(text)) == ents_of(doc)
    assert [s for s in loaded(text).spans["aner_lstm"].attrs["scores"]] == list(doc.spans["aner_lstm"].attrs["scores"])
    alone = spacy.load(tmp_path / "pipeline", config={"components": {"aner_lstm": {"members": 0}}})
    assert ents_of(alone(text)) == ents_of(doc) and alone.get_pipe("aner_lstm").tagger.config.members == 1
    # Loading it builds no graph, so it does not import the onnx package.
    probe = f"import spacy, sys; spacy.load({str(tmp_path / 'pipeline')!r})('{text}'); print('onnx' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout == "False\n"
    # Saved back over its own folder, an ensemble pipeline keeps all of its networks.
    shipped_nlp.to_disk(tmp_path / "whole")
    spacy.load(tmp_path / "whole", config={"components": {"aner_lstm": {"members": 1}}}).to_disk(tmp_path / "whole")
    assert (tmp_path / "whole" / "aner_lstm" / "tagger.onnx").read_bytes() == \
        (shipped_model_dir / "tagger.onnx").read_bytes()
    assert ents_of(spacy.load(tmp_path / "whole")(text)) == ents_of(doc)  # members=1, as its config now says
    whole = spacy.load(tmp_path / "whole", config={"components": {"aner_lstm": {"members": 0}}})
    assert ents_of(whole(text)) == ents_of(shipped_nlp(text))



def test_one_member_with_user_names_through_bytes_and_worker_processes(shipped_model_dir, tmp_path):
    names = tmp_path / "names.tsv"
    names.write_text("سعيد الزهراني\tPERS\n", encoding="utf-8")
    nlp = spacy_aner.load(members=1, gazetteers=[str(names)])
    texts = ["التقى سعيد الزهراني وفدا في جدة .", "زار محمد علي القاهرة أمس ."] * 4
    docs = list(nlp.pipe(texts))
    assert ("سعيد الزهراني", "PERS") in {(e.text, e.label_) for e in docs[0].ents}
    copy = spacy_aner.load(ner=False)
    copy.add_pipe("aner_lstm", config={"members": 1}).from_bytes(nlp.get_pipe("aner_lstm").to_bytes())
    assert copy.get_pipe("aner_lstm").tagger.scorer.members == 1
    assert copy.get_pipe("aner_lstm").tagger.config.members == 1  # the bytes hold that network alone
    assert [ents_of(d) for d in copy.pipe(texts)] == [ents_of(d) for d in docs]
    forked = list(nlp.pipe(texts, n_process=2, batch_size=2))
    assert [ents_of(d) for d in forked] == [ents_of(d) for d in docs]
    assert [list(d.spans["aner_lstm"].attrs["scores"]) for d in forked] == \
        [list(d.spans["aner_lstm"].attrs["scores"]) for d in docs]


def test_invisible_characters_stay_out_of_entities(nlp):
    """The tagger sees the same words with or without direction marks, BOM or NUL around them."""
    for text in SAMPLE_TEXTS[:6]:
        plain = ents_of(nlp(text))
        marked = "\ufeff\u200f" + text.replace(" ", " \u200f", 2) + "\x00"
        doc = nlp(marked)
        assert doc.text == marked
        for ent in doc.ents:
            assert ent.text == marked[ent.start_char:ent.end_char]
            assert ent.text[0] not in "\ufeff\u200f\x00" and ent.text[-1] not in "\ufeff\u200f\x00"
        assert [e.label_ for e in doc.ents] == [label for *_, label in plain]
        assert [e.text.replace("\u200f", "").replace(" ", "") for e in doc.ents] == \
            [text[e[2]:e[3]].replace(" ", "") for e in plain]
