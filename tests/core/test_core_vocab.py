"""spacy_aner.core.vocab: word and character ids, clitic back-off, the distinct-key table."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_aner.core.config import PAD, UNK
from spacy_aner.core.normalize import normalize_word
from spacy_aner.core.vocab import Vocabulary, WordList, clitic_candidates


def test_encode_ids_padding_and_shapes():
    vocab = Vocabulary.build(["محمد", "الرباط", "في", "محمد"], max_word_chars=8)
    assert vocab.words[:2] == ["<pad>", "<unk>"] and vocab.words[2:] == ["محمد", "الرباط", "في"]
    words, chars = vocab.encode([["محمد", "مجهول", "في"], ["الرباط"], []], length=5)
    assert words.shape == (3, 5) and chars.shape == (3, 5, 8)
    assert words.dtype == np.int32 and chars.dtype == np.int32
    assert words.tolist() == [[2, UNK, 4, PAD, PAD], [3, PAD, PAD, PAD, PAD], [PAD] * 5]
    assert (chars[0, 3:] == PAD).all() and (chars[2] == PAD).all()
    # Characters of each word fill the row from the left, the rest is padding.
    assert (chars[0, 0, :4] > UNK).all() and (chars[0, 0, 4:] == PAD).all()
    # Unknown words still get their known characters; unseen letters are UNK.
    assert vocab.char_index.get("ج") is None
    assert chars[0, 1, 0] == vocab.char_index["م"] and chars[0, 1, 1] == UNK
    # Letters seen fewer than min_char_count=2 times are unknown too.
    assert "ف" not in vocab.char_index and chars[0, 2, 0] == UNK


def test_words_are_looked_up_by_their_normalised_key():
    vocab = Vocabulary.build(["محمد", "القاهره", "احمد"], max_word_chars=10)
    plain = vocab.encode([["محمد", "القاهره", "احمد"]], 3)
    variants = vocab.encode([["مُحَمَّد", "القـــاهرة", "أحمد"]], 3)  # diacritics, tatweel + teh marbuta, hamza
    assert plain[0].tolist() == [[2, 3, 4]]
    assert variants[0].tolist() == plain[0].tolist()
    np.testing.assert_array_equal(variants[1], plain[1])


def test_long_words_keep_both_ends():
    vocab = Vocabulary.build(["abcdefghijklmnop"] * 2, max_word_chars=6)
    _, chars = vocab.encode([["abcdefghijklmnop", "abcdef"]], 2)
    assert [vocab.chars[i] for i in chars[0, 0]] == list("abc") + list("nop")
    assert [vocab.chars[i] for i in chars[0, 1]] == list("abcdef")
    odd = Vocabulary.build(["abcdefghijklmnop"] * 2, max_word_chars=5)
    _, chars = odd.encode([["abcdefghijklmnop"]], 1)
    assert [odd.chars[i] for i in chars[0, 0]] == list("ab") + list("nop")


@pytest.mark.parametrize("key, candidates", [
    ("والقاهره", ["القاهره", "قاهره"]),
    ("بالقاهره", ["القاهره", "قاهره"]),
    ("للقاهره", ["القاهره", "قاهره"]),
    ("كالبحر", ["البحر", "بحر"]),
    ("وبيروت", ["بيروت", "يروت"]),
    ("فلندن", ["لندن", "ندن"]),
    ("القاهره", ["قاهره"]),
    ("لندن", ["ندن"]),
    ("كتاب", ["تاب"]),
    ("مصر", []),
    ("وب", []),  # nothing of at least two letters is left
])
def test_clitic_candidates_most_specific_first(key, candidates):
    assert clitic_candidates(key) == candidates


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="وفبلكالقاهرمصن", max_size=10))
def test_clitic_candidates_are_distinct_suffixes_never_longer(key):
    out = clitic_candidates(key)
    assert len(out) == len(set(out)) and key not in out
    for cand in out:
        assert 2 <= len(cand) <= len(key)  # للقاهره -> القاهره keeps its length
        assert key.endswith(cand) or key.endswith(cand[2:])  # ال may be put back where لل / بال stood


def test_clitic_backoff_finds_the_bare_name():
    words = ["القاهره"]
    plain = Vocabulary.build(words, max_word_chars=10)
    backoff = Vocabulary.build(words, max_word_chars=10, clitic_backoff=True)
    assert plain.encode([["والقاهرة"]], 1)[0][0, 0] == UNK
    assert backoff.encode([["والقاهرة", "بالقاهرة", "للقاهرة", "كتاب"]], 4)[0].tolist() == [[2, 2, 2, UNK]]
    # an exact key always wins over a back-off
    both = Vocabulary.build(["القاهره", "والقاهره"], max_word_chars=10, clitic_backoff=True)
    assert both.encode([["والقاهرة"]], 1)[0].tolist() == [[3]]


def test_reserved_names_are_not_words():
    vocab = Vocabulary.build(["x"], max_word_chars=5)
    words, _ = vocab.encode([["<pad>", "<PAD>", "x"]], 3)
    assert words[0, 0] != PAD and words[0, 1] != PAD
    assert words[0, 0] == UNK and words[0, 2] == 2


def test_distinct_rows_one_row_per_key_in_order_of_first_use():
    vocab = Vocabulary.build(["محمد", "المستشفيات", "في"] * 2, max_word_chars=20)
    seqs = [["محمد", "مُحَمَّد", "في", "المستشفيات"], [], ["والمستشفيات", "في", "😀"]]
    table, rows = vocab.distinct_rows(seqs)
    keys = {normalize_word(w) or w for s in seqs for w in s}
    assert len(table["row_words"]) == 1 + len(keys)  # row 0 is padding
    assert not table["char_rows"][0].any() and table["row_words"][0] == PAD
    assert [len(r) for r in rows] == [len(s) for s in seqs]
    assert rows[0][0] == rows[0][1]  # one key, one row
    assert rows[0].tolist() == [1, 1, 2, 3] and rows[2].tolist() == [4, 2, 5]
    assert table["row_keys"].tolist() == [None] + [normalize_word(w) or w for w in
                                                   ("محمد", "في", "المستشفيات", "والمستشفيات", "😀")]
    # The table reproduces encode() word by word.
    words, chars = vocab.encode(seqs, 4)
    for i, r in enumerate(rows):
        np.testing.assert_array_equal(table["row_words"][r], words[i, : len(r)])
        np.testing.assert_array_equal(table["char_rows"][r], chars[i, : len(r)])


def test_stored_round_trip_sorts_words_and_keeps_their_lookups():
    vocab = Vocabulary.build(["محمد", "في", "الرباط", "محمد"], max_word_chars=12, clitic_backoff=True)
    data, order = vocab.stored()
    again = Vocabulary(WordList(data["words"]), data["chars"], data["max_word_chars"], clitic_backoff=True)
    assert list(again.words) == [vocab.words[i] for i in order] == ["<pad>", "<unk>", "الرباط", "في", "محمد"]
    assert again.chars == vocab.chars
    # Ids change with the order; the words they stand for do not.
    ids, again_ids = (v.encode([["وفي", "محمد", "مجهول"]], 3)[0][0] for v in (vocab, again))
    assert [vocab.words[i] for i in ids] == [again.words[i] for i in again_ids] == ["في", "محمد", "<unk>"]


@settings(max_examples=50, deadline=None)
@given(st.sets(st.text(alphabet=st.characters(blacklist_characters="\n", blacklist_categories=("Cs",)),
                       min_size=1, max_size=6), max_size=40))
def test_word_list_finds_exactly_the_words_it_holds(words):
    words = ["<pad>", "<unk>"] + sorted(set(words) - {"<pad>", "<unk>"})
    stored = WordList.from_words(words)
    assert len(stored) == len(words) and list(stored) == words and stored[-1] == words[-1]
    assert all(stored.get(w) == i for i, w in enumerate(words) if i >= 2)
    assert stored.get("<pad>") is None and stored.get("not there at all") is None


def test_word_list_refuses_unsorted_repeated_or_multiline_words():
    for bad in (["<pad>", "<unk>", "ب", "ا"], ["<pad>", "<unk>", "ا", "ا"], ["<pad>", "<unk>", "ا\nب"]):
        with pytest.raises(ValueError):
            WordList.from_words(bad)
    with pytest.raises(ValueError, match="line break"):
        WordList("<pad>\n<unk>")
    with pytest.raises(IndexError):
        WordList.from_words(["<pad>", "<unk>"])[2]
