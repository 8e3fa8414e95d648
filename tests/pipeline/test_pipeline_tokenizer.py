"""spacy_aner.pipeline.tokenizer: lossless CAMeL Tools tokenisation as a spaCy tokenizer."""
from __future__ import annotations

import re

import pytest
import spacy
from aner_support import TOKENIZER_CONFIG
from camel_tools.tokenizers.word import simple_word_tokenize
from hypothesis import given, settings
from hypothesis import strategies as st
from spacy.util import registry

from spacy_aner.core.normalize import normalize_word
from spacy_aner.pipeline.tokenizer import (
    TOKENIZER_NAME,
    CamelTokenizer,
    InvalidTextError,
    create_camel_tokenizer,
    is_invisible,
    split_words,
)

CONFIG_NO_NORMALIZE = {"nlp": {"tokenizer": {"@tokenizers": TOKENIZER_NAME, "normalize": False}}}


def assert_lossless(doc, text: str) -> None:
    """doc.text is the input; every token sits at its offset; spaCy's whitespace convention holds."""
    assert doc.text == text
    assert "".join(t.text_with_ws for t in doc) == text
    pos = 0
    for tok in doc:
        assert len(tok) > 0, f"empty token in {text!r}"
        assert tok.idx == pos, f"token {tok.text!r} at {tok.idx}, expected {pos} in {text!r}"
        assert text[tok.idx: tok.idx + len(tok)] == tok.text
        assert tok.whitespace_ in ("", " ")
        pos += len(tok.text_with_ws)
    assert pos == len(text)
    for i, tok in enumerate(doc):
        # A token is either all whitespace (an is_space token) or contains none.
        if tok.is_space:
            assert tok.text.isspace()
            # Only a word carries the single trailing space; runs of whitespace are tokens.
            assert tok.whitespace_ == ""
            assert not (i + 1 < len(doc) and doc[i + 1].is_space), "two adjacent whitespace tokens"
        else:
            assert not any(ch.isspace() for ch in tok.text), f"whitespace inside token {tok.text!r}"


LOSSLESS_CASES = [
    pytest.param("مُحَمَّدٌ يَعِيشُ فِي الرِّبَاطِ", id="diacritics"),
    pytest.param("محـــمد", id="tatweel"),
    pytest.param("\u200fمحمد في الرباط", id="rlm-start"),
    pytest.param("محمد \u200f في\u200fالرباط", id="rlm-middle"),
    pytest.param("محمد في الرباط\u200f", id="rlm-end"),
    pytest.param("\u200bمحمد", id="zwsp-start"),
    pytest.param("محمد\u200bفي \u200b الرباط", id="zwsp-middle"),
    pytest.param("محمد\u200b", id="zwsp-end"),
    pytest.param("\ufeffمحمد في الرباط", id="bom-start"),
    pytest.param("محمد\ufeffفي \ufeff", id="bom-middle"),
    pytest.param("الرباط\ufeff", id="bom-end"),
    pytest.param("محمد\tفي\t\tالرباط", id="tabs"),
    pytest.param("محمد\nفي\n\nالرباط\n", id="newlines"),
    pytest.param("محمد\r\nفي الرباط\r\n", id="crlf"),
    pytest.param("محمد     في  \n  الرباط", id="space-runs"),
    pytest.param("   محمد في الرباط  \n\t ", id="leading-trailing-ws"),
    pytest.param("Mohammed lives in Rabat, Morocco.", id="latin"),
    pytest.param("عام 2024 و ١٢٣ و ١٢٣٤٥٦", id="digits"),
    pytest.param("ارتفع 3.5% إلى 10,000", id="percent"),
    pytest.param("👨\u200d👩\u200d👧 👍🏽 عائلة👨\u200d👩\u200d👧👍🏽!", id="emoji-zwj-skin"),
    pytest.param("🇲🇦🇪🇬 المغرب 🇲🇦", id="flags"),
    pytest.param("", id="empty"),
    pytest.param("   ", id="spaces-only"),
    pytest.param("\n\t ", id="whitespace-only"),
    pytest.param("a\x00b \x00 \x01\x02\x1b[0m\x7f", id="nul-control"),
    pytest.param("\x1c\x1d\x1e\x1f\x85\u2028\u2029\x0b\x0c", id="unicode-whitespace-controls"),
    pytest.param(".\u064b", id="mark-after-punct"),
    pytest.param("(د ب أ)", id="glued-punct"),
    pytest.param("«محمد»، قال: \"نعم\"؟!", id="arabic-punct"),
    pytest.param("\u064b\u064c محمد \u0651", id="lone-marks"),
    pytest.param("\u00a0محمد\u00a0\u3000في", id="nbsp-ideographic-space"),
]


@pytest.mark.parametrize("text", LOSSLESS_CASES)
def test_lossless(nlp_camel, text):
    doc = nlp_camel(text)
    assert_lossless(doc, text)


def test_empty_and_whitespace_only(nlp_camel):
    assert len(nlp_camel("")) == 0
    for text in ("   ", "\n\t "):
        doc = nlp_camel(text)
        assert [t.text for t in doc] == [text]
        assert doc[0].is_space


def test_diacritics_and_tatweel_stay_in_one_word(nlp_camel):
    doc = nlp_camel("مُحَمَّدٌ يَعِيشُ فِي الرِّبَاطِ")
    assert [t.text for t in doc] == ["مُحَمَّدٌ", "يَعِيشُ", "فِي", "الرِّبَاطِ"]
    assert [t.text for t in nlp_camel("محـــمد")] == ["محـــمد"]


def test_emoji_sequences_are_single_tokens(nlp_camel):
    doc = nlp_camel("👨\u200d👩\u200d👧 👍🏽 🇲🇦")
    assert [t.text for t in doc] == ["👨\u200d👩\u200d👧", "👍🏽", "🇲🇦"]


def test_glued_punctuation_split(nlp_camel):
    assert [t.text for t in nlp_camel("(د ب أ)")] == ["(", "د", "ب", "أ", ")"]


def test_arabic_sentence_punctuation_split(nlp_camel):
    doc = nlp_camel("محمد يعيش في الرباط.")
    assert [t.text for t in doc] == ["محمد", "يعيش", "في", "الرباط", "."]
    assert [t.whitespace_ for t in doc] == [" ", " ", " ", "", ""]


# --- spaCy's whitespace convention -------------------------------------------------------


@pytest.fixture(scope="module")
def nlp_en():
    return spacy.blank("en")


def _pairs(doc):
    return [(t.text, t.whitespace_, t.is_space) for t in doc]


@pytest.mark.parametrize(
    "text",
    ["a  b", " a", "a \n b", "a\n\nb ", "  ", "a b", "a\tb", "a \tb", "a\n b", "a   ", "\n",
     "ab  ba \t\n ab\n", "\t a", "a \r\n b", " ", "a", "a b c  d   e"],
)
def test_whitespace_convention_matches_spacy(nlp_camel, nlp_en, text):
    ours, theirs = nlp_camel(text), nlp_en.tokenizer(text)
    assert _pairs(ours) == _pairs(theirs)
    for tok in ours:
        assert tok.is_space == tok.text.isspace()


def test_whitespace_tokens_are_is_space(nlp_camel):
    doc = nlp_camel("a  b\n\nc \t d")
    assert [(t.text, t.whitespace_, t.is_space) for t in doc] == [
        ("a", " ", False), (" ", "", True), ("b", "", False), ("\n\n", "", True),
        ("c", " ", False), ("\t ", "", True), ("d", "", False),
    ]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "ab", " ", "  ", "\n", "\t", "\r\n"]), max_size=12).map("".join))
def test_whitespace_convention_matches_spacy_property(nlp_camel, nlp_en, text):
    assert _pairs(nlp_camel(text)) == _pairs(nlp_en.tokenizer(text))


# --- normalisation into token.norm_ ------------------------------------------------------


def test_normalize_sets_norm(nlp_camel):
    text = "مُحَمَّد أحمد محـــمد مدرسة مستشفى Hello"
    doc = nlp_camel(text)
    assert doc.text == text
    assert [t.norm_ for t in doc] == ["محمد", "احمد", "محمد", "مدرسه", "مستشفي", "hello"]
    assert [t.text for t in doc] == ["مُحَمَّد", "أحمد", "محـــمد", "مدرسة", "مستشفى", "Hello"]


def test_normalize_default_is_true(nlp_camel):
    assert isinstance(nlp_camel.tokenizer, CamelTokenizer)
    assert nlp_camel.tokenizer.normalize is True


def test_normalize_false_keeps_default_norm():
    nlp = spacy.blank("ar", config=CONFIG_NO_NORMALIZE)
    assert nlp.tokenizer.normalize is False
    text = "مُحَمَّد أحمد Hello"
    doc = nlp(text)
    assert doc.text == text
    assert [t.norm_ for t in doc] == ["مُحَمَّد", "أحمد", "hello"]
    assert [t.norm_ for t in doc] == [t.lower_ for t in doc]


def test_normalize_marks_only_word_keeps_default_norm(nlp_camel):
    # A token made only of removed characters has an empty key: norm_ stays the default.
    doc = nlp_camel(".\u064b \u200b")
    assert [t.text for t in doc] == [".", "\u064b", "\u200b"]
    assert all(t.norm_ == t.lower_ for t in doc)
    assert all(t.norm_ for t in doc)


@pytest.mark.parametrize("text", ["«", "»", "€", "…", "—"])
def test_normalize_norm_is_normalize_word_key(nlp_camel, text):
    # Documented contract: normalize=True stores the look-up key of normalize_word in norm_.
    assert nlp_camel(text)[0].norm_ == normalize_word(text)


# --- property tests ----------------------------------------------------------------------

_ALPHABET = (
    "".join(chr(c) for c in range(0x0621, 0x064B))  # Arabic letters
    + "".join(chr(c) for c in range(0x064B, 0x0653))  # diacritics
    + "\u0640"  # tatweel
    + "abcXYZé"
    + "0123456789"
    + "٠١٢٣٤٥٦٧٨٩"
    + ".,;:!?()[]«»،؛؟\"'-%/\\@#"
    + " \t\n\r\x0b\x0c\u00a0"
    + "\u200b\u200f\ufeff\u200d\u200e"
    + "\x00\x01\x1b\x7f\x85"
    + "👨👩👧👍🏽🇲🇦\ufe0f\u20e3"
)
_PIECES = [
    "👨\u200d👩\u200d👧", "👍🏽", "🇲🇦", "🇪🇬", "1\ufe0f\u20e3", "محمد", "الرباط", "  ", "\r\n", ".\u064b",
]

arabic_mix = st.one_of(
    st.text(alphabet=_ALPHABET),
    st.lists(st.one_of(st.sampled_from(_PIECES), st.text(alphabet=_ALPHABET, max_size=3))).map("".join),
)


def _check_doc(nlp, text):
    doc = nlp(text)
    assert_lossless(doc, text)
    for tok in doc:
        assert tok.is_space == tok.text.isspace()
        key = normalize_word(tok.text)
        if not tok.is_space and key:
            assert tok.norm_ == key
        else:
            # Whitespace and invisible-only tokens keep spaCy's default (lexeme) norm.
            assert tok.norm_ == nlp.vocab[tok.text].norm_


@settings(max_examples=500, deadline=None)
@given(arabic_mix)
def test_property_lossless_arabic_mix(nlp_camel, text):
    _check_doc(nlp_camel, text)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",))))
def test_property_lossless_any_unicode(nlp_camel, text):
    _check_doc(nlp_camel, text)


# --- invalid input -----------------------------------------------------------------------


@pytest.mark.parametrize("text, offset", [("a\ud800b", 1), ("محمد \udc00", 5), ("\udfff", 0)])
def test_lone_surrogate_raises(nlp_camel, text, offset):
    with pytest.raises(InvalidTextError) as info:
        nlp_camel(text)
    assert isinstance(info.value, ValueError)
    assert f"offset {offset}" in str(info.value)


@pytest.mark.parametrize("value", [None, b"abc", 123, ["a", "b"]])
def test_non_str_raises_type_error(nlp_camel, value):
    with pytest.raises(TypeError, match="expects a str"):
        nlp_camel.tokenizer(value)


# --- registration ------------------------------------------------------------------------


def test_registry_lookup():
    factory = registry.tokenizers.get("spacy_aner.CamelTokenizer.v1")
    assert factory is create_camel_tokenizer
    nlp = spacy.blank("ar")
    tok = factory(normalize=False)(nlp)
    assert isinstance(tok, CamelTokenizer)
    assert tok.normalize is False
    assert tok.vocab is nlp.vocab


# --- serialisation -----------------------------------------------------------------------

SAMPLE = "قال مُحَمَّد بن أحمد (د ب أ) في الرباط،  يوم ١٢ مايو 2024.\n👍🏽"


def _tokens(doc):
    return [(t.text, t.whitespace_, t.norm_) for t in doc]


@pytest.mark.parametrize("config, normalize", [(TOKENIZER_CONFIG, True), (CONFIG_NO_NORMALIZE, False)])
def test_to_disk_and_load(tmp_path, config, normalize):
    nlp = spacy.blank("ar", config=config)
    nlp.to_disk(tmp_path)
    loaded = spacy.load(tmp_path)
    assert isinstance(loaded.tokenizer, CamelTokenizer)
    assert loaded.tokenizer.normalize is normalize
    assert _tokens(loaded(SAMPLE)) == _tokens(nlp(SAMPLE))
    assert loaded(SAMPLE).text == SAMPLE


def test_to_disk_keeps_setting_changed_after_creation(tmp_path):
    nlp = spacy.blank("ar", config=TOKENIZER_CONFIG)
    nlp.tokenizer.normalize = False
    nlp.to_disk(tmp_path)
    assert (tmp_path / "tokenizer" / "cfg.json").is_file()
    loaded = spacy.load(tmp_path)
    assert loaded.tokenizer.normalize is False
    assert loaded("أحمد")[0].norm_ == "أحمد"


@pytest.mark.parametrize("content", [b"{true", b"\xff\xfe", b"[1]"])
def test_a_broken_tokenizer_setting_file_is_named(tmp_path, content):
    spacy.blank("ar", config=TOKENIZER_CONFIG).to_disk(tmp_path)
    (tmp_path / "tokenizer" / "cfg.json").write_bytes(content)
    with pytest.raises(ValueError, match=r"tokenizer[/\\]cfg.json: not a tokenizer setting file"):
        spacy.load(tmp_path)


def test_tokenizer_bytes_round_trip():
    nlp = spacy.blank("ar", config=CONFIG_NO_NORMALIZE)
    data = nlp.tokenizer.to_bytes()
    fresh = spacy.blank("ar", config=TOKENIZER_CONFIG)
    assert fresh.tokenizer.normalize is True
    result = fresh.tokenizer.from_bytes(data)
    assert result is fresh.tokenizer
    assert fresh.tokenizer.normalize is False
    assert fresh("أحمد")[0].norm_ == "أحمد"


@pytest.mark.parametrize("config, normalize", [(TOKENIZER_CONFIG, True), (CONFIG_NO_NORMALIZE, False)])
def test_nlp_bytes_round_trip(config, normalize):
    nlp = spacy.blank("ar", config=config)
    data = nlp.to_bytes()
    other = spacy.blank("ar", config=config)
    other.from_bytes(data)
    assert isinstance(other.tokenizer, CamelTokenizer)
    assert other.tokenizer.normalize is normalize
    assert _tokens(other(SAMPLE)) == _tokens(nlp(SAMPLE))


def test_pipe_matches_call(nlp_camel):
    texts = ["محمد يعيش في الرباط.", "", "  a  ", "(د ب أ)"]
    piped = list(nlp_camel.tokenizer.pipe(texts))
    assert [_tokens(d) for d in piped] == [_tokens(nlp_camel(t)) for t in texts]
    assert [d.text for d in nlp_camel.pipe(texts)] == texts


@pytest.mark.parametrize("text, words", [
    ("\u200fمحمد يعيش", ["\u200f", "محمد", "يعيش"]),            # right-to-left mark before a name
    ("\ufeffباريس", ["\ufeff", "باريس"]),                          # byte-order mark
    ("باريس\x00فرنسا", ["باريس", "\x00", "فرنسا"]),                # NUL between two names
    ("القاهرة\u200e\u202bلندن\u202c", ["القاهرة", "\u200e\u202b", "لندن", "\u202c"]),
    ("محمد\u200dعلي", ["محمد\u200dعلي"]),                          # a joiner stays inside its word
    ("محمد\u200bإن", ["محمد", "\u200b", "إن"]),                  # a zero-width space breaks words
    ("محمد\u200b إن", ["محمد", "\u200b", "إن"]),
])
def test_invisible_characters_are_tokens_of_their_own(text, words):
    from spacy_aner.pipeline.tokenizer import is_invisible, split_words

    got, spaces = split_words(text)
    assert got == words and "".join(w + (" " if s else "") for w, s in zip(got, spaces)) == text
    assert [is_invisible(w) for w in got] == [all(not c.isalpha() for c in w) for w in words]
    assert not is_invisible("") and not is_invisible("a\u200f")


def test_nlp_evaluate_reports_tokenization_scores():
    from spacy.tokens import Doc
    from spacy.training import Example

    nlp = spacy.blank("ar", config={"nlp": {"tokenizer": {"@tokenizers": "spacy_aner.CamelTokenizer.v1"}}})
    gold_right = Doc(nlp.vocab, words=["زار", "محمد", "القاهرة", "."], spaces=[True, True, False, False])
    gold_other = Doc(nlp.vocab, words=["زار", "محمد القاهرة"], spaces=[True, False])  # one gold token where we cut two
    scores = nlp.evaluate([Example(nlp.make_doc(gold_right.text), gold_right)])
    assert scores["token_acc"] == 1.0 and scores["token_f"] == 1.0
    scores = nlp.evaluate([Example(nlp.make_doc(gold_other.text), gold_other)])
    assert scores["token_p"] == pytest.approx(1 / 3) and scores["token_r"] == pytest.approx(1 / 2)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["محمد", "،", ".", "«ال", "x😀y", "\u200fب", "\x00", "a" * 70, "أ.د."]), max_size=12),
       st.lists(st.sampled_from([" ", "  ", "\n", "\u00a0", "\t "]), min_size=12, max_size=12))
def test_cached_chunks_give_camel_tools_words(words, gaps):
    """Chunks are split once and cached (short ones only); the tokens are still CAMeL Tools' words,
    each cut around invisible characters, whichever path a chunk takes and however often it recurs."""
    text = "".join(w + g for w, g in zip(words, gaps))
    for _ in range(2):
        tokens, spaces = split_words(text)
        assert "".join(t + " " * s for t, s in zip(tokens, spaces)) == text
        assert [t for t in tokens if not t.isspace() and not is_invisible(t)] == \
            [p for w in simple_word_tokenize(text) for p in re.split(r"[\u200f\x00]+", w) if p]


def test_norms_survive_a_memory_zone(nlp_camel):
    """Norm strings are added to the vocabulary for every doc, so they resolve after a memory zone drops them."""
    with nlp_camel.memory_zone():
        assert nlp_camel("مُحَمَّد")[0].norm_ == normalize_word("مُحَمَّد")
    assert nlp_camel("مُحَمَّد")[0].norm_ == normalize_word("مُحَمَّد")
