"""Entity scores (``doc.spans[name].attrs["scores"]``), the ``threshold`` and ``labels`` options
(spacy_aner.pipeline.entities through the ``aner_lstm`` component), and ``load()``'s ``max_length``.

Pipelines use the scrambled tiny model, which tags most words with every label.
"""
from __future__ import annotations

import math
import random

import pytest
import spacy
from aner_support import WORDS, check_ents, tagging
from spacy.scorer import get_ner_prf
from spacy.tokens import Doc, Span
from spacy.training import Example

import spacy_aner
from spacy_aner.pipeline.entities import relabel_references, span_scores
from spacy_aner.pipeline.loading import MAX_DOC_CHARS
from spacy_aner.pipeline.sentences import word_positions

TEXTS = [
    "محمد يعيش في الرباط",
    "زار أحمد علي القاهرة أمس، ثم عاد إلى بيروت!",
    "أعلنت الأمم المتحدة عن خطة جديدة\n\nفي  لندن   مع شركة سوني",
    "",
    "   ",
    " ".join(WORDS * 12),
] + [" ".join(random.Random(i).choice(WORDS) for _ in range(random.Random(i).randint(1, 40))) for i in range(20)]


@pytest.fixture(scope="module")
def nlp(scrambled_nlp):
    return scrambled_nlp


@pytest.fixture(scope="module")
def model(scrambled_model_dir):
    return str(scrambled_model_dir)


def scored_ents(doc, key="aner_lstm"):
    group = doc.spans[key]
    return [(s.start, s.end, s.label_, p) for s, p in zip(group, group.attrs["scores"])]


# --------------------------------------------------------------------------- scores


def test_spans_are_the_entities_with_one_probability_each(nlp):
    n = 0
    for doc in nlp.pipe(TEXTS):
        group = doc.spans["aner_lstm"]
        assert list(group) == list(doc.ents)
        scores = group.attrs["scores"]
        assert len(scores) == len(group) and all(isinstance(p, float) and 0.0 <= p <= 1.0 for p in scores)
        n += len(scores)
    assert n > 100
    assert len({round(p, 3) for d in nlp.pipe(TEXTS) for p in d.spans["aner_lstm"].attrs["scores"]}) > 10


def test_scores_are_the_taggers_entity_probabilities(model):
    """Consistency off, one sequence per doc: each span's score is Tagger.tag's probability of that entity."""
    nlp = spacy_aner.load(model, consistency_window=0, split_sentences=False)
    comp = nlp.get_pipe("aner_lstm")
    for text in TEXTS:
        doc = nlp(text)
        positions = word_positions(doc)
        (tagged,) = comp.tagger.tag([[doc[i].text for i in positions]])
        want = [(positions[a], positions[b - 1] + 1, label, p) for a, b, label, p in tagged.entities]
        assert scored_ents(doc) == want


def test_a_component_named_otherwise_stores_its_spans_under_its_name(model):
    nlp = spacy.blank("ar")
    nlp.add_pipe("aner_lstm", name="arabic_ner", config={"model": model})
    doc = nlp("محمد يعيش في الرباط")
    assert "aner_lstm" not in doc.spans and list(doc.spans["arabic_ner"]) == list(doc.ents)
    assert doc.ents and span_scores(doc, "arabic_ner") == {k[:3]: k[3] for k in scored_ents(doc, "arabic_ner")}


def test_empty_docs_have_an_empty_span_group(nlp):
    for text in ("", " ", "\n\n\t", "\u200f"):
        doc = nlp(text)
        assert doc.ents == () and list(doc.spans["aner_lstm"]) == [] and doc.spans["aner_lstm"].attrs["scores"] == []


def test_scores_survive_doc_serialisation_and_worker_processes(nlp):
    docs = list(nlp.pipe(TEXTS[:8]))
    again = [Doc(nlp.vocab).from_bytes(d.to_bytes()) for d in docs]
    assert [scored_ents(d) for d in again] == [scored_ents(d) for d in docs]
    piped = list(nlp.pipe(TEXTS[:8], n_process=2, batch_size=3))
    assert [scored_ents(d) for d in piped] == [scored_ents(d) for d in docs]


def test_recurrences_take_the_score_of_the_mention_they_copy(lazy_component):
    nlp, comp = lazy_component
    doc = nlp.make_doc("قال كريم إن كريم وكريم سافر إلى باريس")
    tags = ["O", "B-PERS", "O", "O", "O", "O", "O", "B-LOC"]
    comp.set_annotations([doc], [tagging(tags, 0.625)._replace(entities=[(1, 2, "PERS", 0.625), (7, 8, "LOC", 0.25)])])
    assert [(e.text, e.label_) for e in doc.ents] == [("كريم", "PERS"), ("كريم", "PERS"), ("وكريم", "PERS"),
                                                       ("باريس", "LOC")]
    assert doc.spans["aner_lstm"].attrs["scores"] == [0.625, 0.625, 0.625, 0.25]


@pytest.fixture()
def lazy_component():
    """A component whose model is never loaded: for set_annotations and config tests."""
    nlp = spacy.blank("ar")
    return nlp, nlp.add_pipe("aner_lstm", config={"model": "/nonexistent/model"})


# --------------------------------------------------------------------------- threshold


def test_threshold_drops_the_entities_scoring_below_it(nlp, model):
    assert nlp.get_pipe("aner_lstm").threshold == 0.0 == nlp.config["components"]["aner_lstm"]["threshold"]
    everything = [scored_ents(d) for d in nlp.pipe(TEXTS)]
    scores = sorted(e[3] for ents in everything for e in ents)
    cut = scores[len(scores) // 2]
    above = spacy_aner.load(model, threshold=cut)
    for doc, ents in zip(above.pipe(TEXTS), everything):
        assert scored_ents(doc) == [e for e in ents if e[3] >= cut]
        assert [(e.start, e.end, e.label_) for e in doc.ents] == [e[:3] for e in ents if e[3] >= cut]
    assert sum(len(d.ents) for d in spacy_aner.load(model, threshold=1.0).pipe(TEXTS)) == sum(
        p == 1.0 for p in scores)


def test_threshold_on_hand_written_scores(lazy_component):
    nlp, comp = lazy_component
    comp.threshold = 0.5
    doc = nlp.make_doc("محمد يعيش في الرباط")
    comp.set_annotations([doc], [tagging(["B-PERS", "O", "O", "B-LOC"])._replace(
        entities=[(0, 1, "PERS", 0.49), (3, 4, "LOC", 0.5)])])
    assert [(e.text, e.label_) for e in doc.ents] == [("الرباط", "LOC")]
    assert doc.spans["aner_lstm"].attrs["scores"] == [0.5]


@pytest.mark.parametrize("bad", [-0.1, 1.01, math.nan, "0.5"])
def test_a_threshold_outside_zero_one_is_refused(bad):
    with pytest.raises(ValueError, match="threshold"):
        spacy_aner.AnerLSTM(spacy.blank("ar").vocab, model="/nonexistent", threshold=bad)


# --------------------------------------------------------------------------- labels


MAP = {"PERS": "PERSON", "ORG": "COMPANY", "MISC": ""}


def mapped_labels(labels, label_map=MAP):
    """``labels`` as ``label_map`` renames them, dropped ones left out."""
    return {label_map.get(lab, lab) for lab in labels} - {""}


def test_a_label_map_renames_and_drops(nlp, model):
    mapped = spacy_aner.load(model, labels=MAP)
    comp = mapped.get_pipe("aner_lstm")
    assert comp.labels == ("PERSON", "LOC", "COMPANY") and nlp.get_pipe("aner_lstm").labels == ("PERS", "LOC", "ORG", "MISC")
    n = 0
    for plain, doc in zip(nlp.pipe(TEXTS), mapped.pipe(TEXTS)):
        want = [(a, b, MAP.get(lab, lab), p) for a, b, lab, p in scored_ents(plain) if lab != "MISC"]
        assert scored_ents(doc) == want
        assert [(e.start, e.end, e.label_) for e in doc.ents] == [w[:3] for w in want]
        n += len(want)
    plain_labels = {e.label_ for d in nlp.pipe(TEXTS) for e in d.ents}
    assert {"PERS", "ORG", "MISC"} <= plain_labels  # the scrambled model's texts exercise the map
    assert n > 50 and {e.label_ for d in mapped.pipe(TEXTS) for e in d.ents} == mapped_labels(plain_labels)


def test_labels_may_merge_and_keep_names():
    comp = spacy_aner.AnerLSTM(spacy.blank("ar").vocab, model="/nonexistent",
                               labels={"LOC": "PLACE", "ORG": "PLACE", "PERS": "PERS"})
    assert comp.labels == ("PERS", "PLACE", "MISC")


@pytest.mark.parametrize("labels,match", [
    ({"PERSON": "PER"}, "'PERSON' is not a label of this component; it predicts PERS, LOC, ORG, MISC"),
    ({"GPE": ""}, "'GPE' is not a label"),
    ({"LOC": " GPE"}, "give a label name"),
    ({"LOC": "  "}, "give a label name"),
])
def test_a_bad_label_map_is_a_clear_error(labels, match):
    with pytest.raises(ValueError, match=match):
        spacy.blank("ar").add_pipe("aner_lstm", config={"model": "/nonexistent", "labels": labels})


def test_a_label_map_survives_to_disk_and_spacy_load(model, tmp_path):
    nlp = spacy_aner.load(model, labels=MAP, threshold=0.25)
    before = [scored_ents(d) for d in nlp.pipe(TEXTS)]
    nlp.to_disk(tmp_path / "pipeline")
    cfg = (tmp_path / "pipeline" / "config.cfg").read_text(encoding="utf-8")
    assert 'MISC = ""' in cfg and 'PERS = "PERSON"' in cfg
    loaded = spacy.load(tmp_path / "pipeline")
    comp = loaded.get_pipe("aner_lstm")
    assert comp.label_map == MAP and comp.threshold == 0.25 and comp.labels == ("PERSON", "LOC", "COMPANY")
    assert [scored_ents(d) for d in loaded.pipe(TEXTS)] == before
    # a load-time override is merged into the saved map, as spaCy merges config dicts
    other = spacy.load(tmp_path / "pipeline", config={"components": {"aner_lstm": {"labels": {"ORG": ""}}}})
    assert other.get_pipe("aner_lstm").labels == ("PERSON", "LOC")
    plain_labels = {e.label_ for d in spacy_aner.load(model, threshold=0.25).pipe(TEXTS) for e in d.ents}
    assert {e.label_ for d in other.pipe(TEXTS) for e in d.ents} == mapped_labels(plain_labels, {**MAP, "ORG": ""})


def gold_example(nlp, text, ents):
    pred = nlp(text)
    ref = nlp.make_doc(text)
    ref.ents = [Span(ref, a, b, label=lab) for a, b, lab in ents]
    return Example(pred, ref)


def test_score_reads_the_reference_through_the_label_map(nlp, model):
    """Gold in the model's labels scores in the new names; a dropped label counts neither way."""
    mapped = spacy_aner.load(model, labels=MAP)
    texts = [t for t in TEXTS if t.strip()][:12]
    plain_docs = [nlp(t) for t in texts]
    # gold: what the unmapped pipeline predicts, with every third entity removed (misses and false hits)
    gold = [[(e.start, e.end, e.label_) for k, e in enumerate(d.ents) if k % 3] for d in plain_docs]
    plain = nlp.get_pipe("aner_lstm").score([gold_example(nlp, t, g) for t, g in zip(texts, gold)])
    got = mapped.get_pipe("aner_lstm").score([gold_example(mapped, t, g) for t, g in zip(texts, gold)])
    seen = {lab for g in gold for *_, lab in g} | {e.label_ for d in plain_docs for e in d.ents}
    assert set(got["ents_per_type"]) == mapped_labels(seen) and {"PERSON", "COMPANY"} <= mapped_labels(seen)
    for source, target in (("PERS", "PERSON"), ("ORG", "COMPANY")):
        assert got["ents_per_type"][target] == plain["ents_per_type"][source]
    # the same as spaCy's own scorer on references renamed by hand, MISC gold left out
    renamed = [[(a, b, MAP.get(lab, lab)) for a, b, lab in g if lab != "MISC"] for g in gold]
    want = get_ner_prf([gold_example(mapped, t, g) for t, g in zip(texts, renamed)])
    assert got == want and 0 < got["ents_f"] < 1
    assert any(lab == "MISC" for g in gold for _, _, lab in g)


def test_relabel_references_keeps_missing_annotation_and_other_labels(nlp):
    text = "محمد يعيش في الرباط مع سوني"
    ref = nlp.make_doc(text)
    ref.set_ents([Span(ref, 0, 1, label="PERS"), Span(ref, 3, 4, label="MISC"), Span(ref, 5, 6, label="NORP")],
                 default="missing")
    (eg,) = relabel_references([Example(nlp.make_doc(text), ref)], MAP)
    assert [(e.start, e.label_) for e in eg.reference.ents] == [(0, "PERSON"), (5, "NORP")]  # MISC dropped
    assert [t.ent_iob_ for t in eg.reference] == ["B", "", "", "O", "", "B"]
    assert [(e.start, e.label_) for e in ref.ents] == [(0, "PERS"), (3, "MISC"), (5, "NORP")]  # not changed


# --------------------------------------------------------------------------- overwrite_ents False


def test_overwrite_ents_false_with_a_label_map_and_threshold(model):
    text = "محمد يعيش في الرباط باريس هي عاصمة فرنسا زار أحمد علي القاهرة"
    alone = spacy_aner.load(model, labels={"PERS": "PERSON"}, threshold=0.3)(text)
    keep = spacy_aner.load(model, labels={"PERS": "PERSON"}, threshold=0.3, overwrite_ents=False)
    doc = keep.make_doc(text)
    doc.ents = [Span(doc, 1, 3, label="GPE")]
    doc = keep.get_pipe("aner_lstm")(doc)
    added = [e for e in scored_ents(alone) if e[1] <= 1 or e[0] >= 3]
    assert scored_ents(doc) == added and len(added) < len(scored_ents(alone))
    assert sorted((e.start, e.end, e.label_) for e in doc.ents) == sorted([(1, 3, "GPE")] + [e[:3] for e in added])
    plain = spacy_aner.load(model, threshold=0.3)(text)
    assert scored_ents(alone) == [(a, b, "PERSON" if lab == "PERS" else lab, p) for a, b, lab, p in scored_ents(plain)]
    again = keep.get_pipe("aner_lstm")(doc)  # tagged a second time: its own spans keep their scores
    assert scored_ents(again) == added and len(again.ents) == len(added) + 1


def test_a_doc_tagged_again_without_overwriting_keeps_its_scores(model):
    nlp = spacy_aner.load(model, overwrite_ents=False)
    first = scored_ents(nlp("محمد يعيش في الرباط وزار أحمد علي القاهرة"))
    assert first and scored_ents(nlp(nlp("محمد يعيش في الرباط وزار أحمد علي القاهرة"))) == first


# --------------------------------------------------------------------------- max_length


def test_load_sets_max_length_to_annotates_limit(model):
    from spacy_aner.annotate.runner import MAX_DOC_CHARS as ANNOTATE_LIMIT

    assert spacy_aner.load(model).max_length == MAX_DOC_CHARS == ANNOTATE_LIMIT == 5_000_000
    assert spacy_aner.load(ner=False).max_length == MAX_DOC_CHARS
    with pytest.raises(ValueError, match="E088"):
        spacy_aner.load(ner=False)("م" * (MAX_DOC_CHARS + 1))


def test_a_saved_pipeline_keeps_its_max_length(model, tmp_path):
    """spaCy does not save ``nlp.max_length``; the pipeline's config does (``[nlp.after_creation]``)."""
    spacy_aner.load(model).to_disk(tmp_path / "pipeline")
    assert spacy.load(tmp_path / "pipeline").max_length == MAX_DOC_CHARS
    smaller = spacy.load(tmp_path / "pipeline", config={"nlp": {"after_creation": {"max_length": 1000}}})
    assert smaller.max_length == 1000
    with pytest.raises(ValueError, match="E088"):
        smaller("م" * 1001)
    with pytest.raises(ValueError, match="max_length must be positive"):
        spacy.load(tmp_path / "pipeline", config={"nlp": {"after_creation": {"max_length": 0}}})


@pytest.mark.slow
def test_a_document_over_spacys_default_limit_through_nlp(shipped_nlp):
    """A 1.2 MB (over 1,000,000 characters) document, which spaCy's default max_length refuses."""
    rng = random.Random(9)
    names = "محمد الرباط باريس القاهرة أحمد الأمم المتحدة لندن".split()
    words = "قال في إلى من عن ثم زار يعيش هي عاصمة مع شركة خطة جديدة".split()
    parts, size = [], 0
    while size <= 1_050_000:
        sentence = " ".join(rng.choice(words if rng.random() < 0.7 else names) for _ in range(12)) + " ."
        parts.append(sentence)
        size += len(sentence) + 1
    text = " ".join(parts)
    assert len(text) > spacy.blank("ar").max_length == 1_000_000
    doc = shipped_nlp(text)
    assert doc.text == text and len(doc.ents) > 10_000
    assert doc.ents[-1].end_char > len(text) - 1000
    assert list(doc.spans["aner_lstm"]) == list(doc.ents)
    check_ents(doc, text)
