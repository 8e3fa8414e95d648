"""Hostile input through the full pipeline (CAMeL tokenizer + aner_lstm): nothing crashes, nothing is lost.

Every document must come back with ``doc.text == text`` and entities whose character
offsets slice the original text back to ``ent.text`` and never start or end on whitespace.

The pipeline uses a real model: the session's tiny model (``tiny_model_dir``, trained
in seconds) scrambled (``scrambled_model_dir``), so that it tags most words as entities of
every type, in runs of one or more words. An untuned tiny model tags nothing, and offset
checks over no entities would prove nothing.
"""
from __future__ import annotations

import random
import time

import pytest
from aner_support import check_ents
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spacy_aner.annotate.runner import annotate_texts, entity_records
from spacy_aner.core.tags import bio_to_spans
from spacy_aner.pipeline.tokenizer import InvalidTextError

# --------------------------------------------------------------------------- alphabets

ARABIC = [chr(c) for c in range(0x0621, 0x064B)]  # hamza .. yeh
ARABIC_MARKS = [chr(c) for c in range(0x064B, 0x0653)] + ["\u0640", "\u0670"]  # harakat, tatweel, dagger alef
LATIN = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZéàüßçñøÆ")
DIGITS = list("0123456789٠١٢٣٤٥٦٧٨٩")
PUNCT = list(".,;:!?؟،؛«»\"'()[]{}<>-–—/\\|@#$%^&*_+=~`…")
WHITESPACE = [" ", "  ", "\t", "\n", "\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\xa0",
              "\u1680", "\u2000", "\u2009", "\u200a", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000"]
CONTROL = [chr(c) for c in range(0x00, 0x09)] + [chr(c) for c in range(0x0e, 0x1c)] + ["\x7f", "\x80", "\x9f"]
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e",
             "\u2060", "\u2066", "\u2067", "\u2068", "\u2069", "\ufeff", "\u00ad", "\u061c", "\ufff9", "\ufffc"]
EMOJI = ["😀", "👍🏽", "👨‍👩‍👧", "🇸🇦", "❤️", "🏳️‍🌈", "🤖", "\U0001f3f4\U000e0067\U000e0062\U000e007f"]
COMBINING = ["\u0301", "\u0308", "\u20dd", "\ufe0f"]
SINGLES = PUNCT + WHITESPACE + CONTROL + INVISIBLE + EMOJI + COMBINING + DIGITS


def _words(alphabet):
    return st.text(alphabet=st.sampled_from(alphabet), min_size=1, max_size=12)


#: Word-like runs of Arabic (with marks), Latin, digits, glued to or separated by
#: punctuation, whitespace of every kind, control, invisible and emoji characters.
STRUCTURED = st.lists(
    st.one_of(_words(ARABIC + ARABIC_MARKS), _words(ARABIC), _words(LATIN), _words(DIGITS + ARABIC),
              st.sampled_from(SINGLES), st.sampled_from([" ", " ", " "])),
    max_size=40,
).map("".join)
#: Any Unicode text but lone surrogates (which are not text: see test_lone_surrogate_*).
ANY_TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=60)
HOSTILE_TEXT = st.one_of(STRUCTURED, STRUCTURED, STRUCTURED, ANY_TEXT)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def nlp(scrambled_nlp):
    return scrambled_nlp


def check_doc(doc, text):
    """The invariants every document must satisfy."""
    check_ents(doc, text)
    assert all(t.text for t in doc)


# --------------------------------------------------------------------------- properties


def test_entity_model_is_not_vacuous(nlp):
    doc = nlp("محمد يعيش في الرباط، وزار أحمد علي القاهرة مع شركة سوني أمس")
    assert len(doc.ents) >= 3
    assert len({e.label_ for e in doc.ents}) >= 2 or any(len(e) > 1 for e in doc.ents)


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=HOSTILE_TEXT)
def test_random_hostile_strings(nlp, text):
    """Random strings over Arabic, Latin, control and invisible characters, emoji."""
    check_doc(nlp(text), text)


@settings(max_examples=30, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(HOSTILE_TEXT, min_size=1, max_size=20))
def test_annotate_texts_matches_the_docs(nlp, texts):
    """Batch annotation gives, in order, exactly the entities of each doc, and slices back."""
    records = list(annotate_texts(nlp, texts, batch_size=7))
    assert len(records) == len(texts)
    for text, rec, doc in zip(texts, records, nlp.pipe(texts, batch_size=7)):
        check_doc(doc, text)
        assert rec == {"entities": entity_records(doc)}
        for ent in rec["entities"]:
            assert text[ent["start"]:ent["end"]] == ent["text"]


def test_batches_do_not_change_predictions(nlp):
    """Batch size and padding never change a document's entities."""
    rng = random.Random(5)
    pool = ARABIC + LATIN + SINGLES
    texts = ["".join(rng.choice(pool) for _ in range(rng.randint(0, 300))) for _ in range(50)]
    single = [entity_records(nlp(t)) for t in texts]
    for batch_size in (1, 16, 1000):
        assert [r["entities"] for r in annotate_texts(nlp, texts, batch_size=batch_size)] == single


# --------------------------------------------------------------------------- specific cases


@pytest.mark.parametrize("text", [
    " " * 100_000,
    "\n \t\u3000\u200b" * 20_000,
    "محمد" + " " * 100_000 + "علي",
], ids=["100k-spaces", "100k-mixed-whitespace", "words-around-100k-spaces"])
def test_huge_whitespace(nlp, text):
    doc = nlp(text)
    check_doc(doc, text)


@pytest.mark.parametrize("letters", [["ب"], ARABIC, LATIN + ARABIC_MARKS], ids=["one-letter", "arabic", "latin+marks"])
def test_one_50000_letter_word(nlp, letters):
    rng = random.Random(0)
    text = "".join(rng.choice(letters) for _ in range(50_000))
    doc = nlp(text)
    check_doc(doc, text)
    assert len(doc) == 1


@pytest.mark.parametrize("text", [
    "\x00",
    "\x00" * 1000,
    "محمد\x00علي\x00",
    "a\x01b\x02c\x1b[31mred\x1b[0m\x7f",
    "\x0b\x0c\x1c\x1d\x1e\x1f\x85",
    "\r\r\r",
    "".join(chr(c) for c in range(0x20)),
    "\u200f\ufeffمحمد\u200e \u202eعلي\u202c \u2066Paris\u2069",
    "\ufeff" * 10,
    "محمد😀علي 👨‍👩‍👧 🇸🇦الرياض",
    "Barack Obama زار القاهرة في 2009",
    "ال\u0640\u0640\u0640قاهرة مُحَمَّد",
])
def test_control_invisible_and_mixed(nlp, text):
    check_doc(nlp(text), text)


@pytest.mark.parametrize("text,offset", [("\ud800", 0), ("abc\udfff", 3), ("محمد \udc00 علي", 5), ("😀\ud83d", 1)])
def test_lone_surrogate_is_a_clear_error(nlp, text, offset):
    with pytest.raises(InvalidTextError, match=f"offset {offset}"):
        nlp(text)


def test_annotate_texts_turns_bad_texts_into_error_records(nlp):
    nlp_max = nlp.max_length
    texts = ["محمد في الرباط", "\ud800", None, "", "x" * (nlp_max + 1), "علي"]
    records = list(annotate_texts(nlp, texts, batch_size=2))
    assert len(records) == len(texts)
    assert "lone surrogate U+D800 at offset 0" in records[1]["error"]
    assert "expected a str" in records[2]["error"]
    assert records[3] == {"entities": []}
    assert "nlp.max_length" in records[4]["error"]
    for i in (0, 5):
        assert records[i] == {"entities": entity_records(nlp(texts[i]))}
    for i in (1, 2, 4):
        assert records[i]["entities"] == []
    # errors only, and errors at both ends
    assert [r.get("error", "") != "" for r in annotate_texts(nlp, ["\ud800", "\udfff"])] == [True, True]
    assert list(annotate_texts(nlp, [])) == []


#: Everyday Arabic words (no punctuation) for long documents.
LONG_DOC_WORDS = ("محمد يعيش في الرباط باريس هي عاصمة فرنسا زار أحمد علي القاهرة أمس أعلنت الأمم المتحدة "
                  "عن خطة جديدة فاز فريق ريال مدريد بكأس العالم قال الرئيس حسني مبارك بيروت وصلت سارة "
                  "إلى لندن مع شركة سوني اللغة العربية جميلة").split()


def _long_text(n_bytes: int, seed: int = 0) -> str:
    """Arabic words joined by single spaces: no punctuation, no sentence to cut at."""
    rng = random.Random(seed)
    parts, size = [], 0
    while size < n_bytes:
        w = rng.choice(LONG_DOC_WORDS)
        parts.append(w)
        size += len(w.encode("utf-8")) + 1
    return " ".join(parts)


def test_200kb_document_without_punctuation_is_tagged_to_the_end(nlp):
    text = _long_text(200_000)
    start = time.perf_counter()
    doc = nlp(text)
    seconds = time.perf_counter() - start
    check_doc(doc, text)
    n_words = len(text.split(" "))
    assert len(doc) == n_words
    tagger = nlp.get_pipe("aner_lstm").tagger
    assert n_words > 10 * tagger.config.window  # many windows
    # Windows cover it all: entities in every twentieth of the document, up to its last words.
    assert {ent.start * 20 // n_words for ent in doc.ents} == set(range(20))
    assert doc.ents[-1].end > n_words - 20
    # Every entity of the tagger's own windowed prediction is there, word for word; the
    # component's document-level consistency only adds recurrences of those names.
    words = text.split(" ")
    tags = tagger.predict([words])[0]
    assert len(tags) == n_words
    found = {(s, e, lab) for s, e, lab in bio_to_spans(tags)}
    ents = {(e.start, e.end, e.label_) for e in doc.ents}
    assert found <= ents
    names = {(tuple(words[s:e]), lab) for s, e, lab in found}
    assert all((tuple(words[s:e]), lab) in names and tags[s:e] == ["O"] * (e - s) for s, e, lab in ents - found)
    assert seconds < 60, f"200 KB took {seconds:.1f} s"
