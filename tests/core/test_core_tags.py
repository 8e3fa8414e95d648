"""spacy_aner.core.tags: BIO (IOB2) decoding and encoding, and joined taggings."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_aner.core.tags import LABELS, TAGS, Tagging, bio_to_spans, join_taggings, repair_bio, spans_to_bio, split_tag


def test_tag_set():
    assert LABELS == ("PERS", "LOC", "ORG", "MISC")
    assert TAGS[0] == "O"
    assert len(TAGS) == 9
    assert set(TAGS) == {"O"} | {f"{p}-{label}" for label in LABELS for p in "BI"}


@pytest.mark.parametrize(
    "tag, expected",
    [("O", ("O", "")), ("B-PERS", ("B", "PERS")), ("I-LOC", ("I", "LOC")), ("B-MISC", ("B", "MISC"))],
)
def test_split_tag(tag, expected):
    assert split_tag(tag) == expected


@pytest.mark.parametrize("tag", ["X-PERS", "B-", "I-", "", "PERS", "B", "O-", "b-PERS"])
def test_split_tag_rejects(tag):
    with pytest.raises(ValueError, match="not a BIO tag"):
        split_tag(tag)


@pytest.mark.parametrize(
    "tags, spans",
    [
        ([], []),
        (["O", "O"], []),
        (["B-PERS", "I-PERS", "O", "B-LOC"], [(0, 2, "PERS"), (3, 4, "LOC")]),
        (["O", "B-ORG", "I-ORG", "I-ORG"], [(1, 4, "ORG")]),
        # stray I- at the start opens an entity
        (["I-PERS", "I-PERS", "O"], [(0, 2, "PERS")]),
        # I- after O opens an entity
        (["O", "I-LOC", "O"], [(1, 2, "LOC")]),
        (["B-LOC", "O", "I-LOC", "I-LOC"], [(0, 1, "LOC"), (2, 4, "LOC")]),
        # I-X after B-Y starts a new X entity
        (["B-PERS", "I-LOC", "I-LOC"], [(0, 1, "PERS"), (1, 3, "LOC")]),
        (["B-PERS", "I-PERS", "I-ORG"], [(0, 2, "PERS"), (2, 3, "ORG")]),
        # B-X B-X is two entities
        (["B-MISC", "B-MISC"], [(0, 1, "MISC"), (1, 2, "MISC")]),
        (["B-MISC", "I-MISC", "B-MISC", "I-MISC"], [(0, 2, "MISC"), (2, 4, "MISC")]),
        (["B-LOC"], [(0, 1, "LOC")]),
    ],
)
def test_bio_to_spans(tags, spans):
    assert bio_to_spans(tags) == spans


def test_bio_to_spans_rejects_bad_tag():
    with pytest.raises(ValueError):
        bio_to_spans(["O", "X-PERS"])


@pytest.mark.parametrize(
    "spans, length, tags",
    [
        ([], 0, []),
        ([], 3, ["O", "O", "O"]),
        ([(0, 2, "PERS"), (3, 4, "LOC")], 5, ["B-PERS", "I-PERS", "O", "B-LOC", "O"]),
        ([(0, 1, "MISC"), (1, 2, "MISC")], 2, ["B-MISC", "B-MISC"]),
    ],
)
def test_spans_to_bio(spans, length, tags):
    assert spans_to_bio(spans, length) == tags
    assert bio_to_spans(tags) == spans


@pytest.mark.parametrize(
    "tags, repaired",
    [
        (["I-PERS", "I-PERS", "O"], ["B-PERS", "I-PERS", "O"]),
        (["O", "I-LOC"], ["O", "B-LOC"]),
        (["B-PERS", "I-LOC", "I-LOC"], ["B-PERS", "B-LOC", "I-LOC"]),
        (["B-ORG", "I-ORG", "O", "B-MISC"], ["B-ORG", "I-ORG", "O", "B-MISC"]),
        ([], []),
    ],
)
def test_repair_bio(tags, repaired):
    assert repair_bio(tags) == repaired
    assert bio_to_spans(repaired) == bio_to_spans(tags)


tag_sequences = st.lists(st.sampled_from(TAGS), max_size=40)


@settings(max_examples=300, deadline=None)
@given(tag_sequences)
def test_property_spans_valid(tags):
    spans = bio_to_spans(tags)
    prev_end = 0
    for start, end, label in spans:
        assert 0 <= start < end <= len(tags)
        assert start >= prev_end  # sorted and non-overlapping
        assert label in LABELS
        assert tags[start] != "O"
        assert all(t != "O" and split_tag(t)[1] == label for t in tags[start:end])
        assert all(split_tag(t)[0] == "I" for t in tags[start + 1:end])
        prev_end = end
    # every non-O token is covered by exactly one span
    covered = {i for s, e, _ in spans for i in range(s, e)}
    assert covered == {i for i, t in enumerate(tags) if t != "O"}


@settings(max_examples=300, deadline=None)
@given(tag_sequences)
def test_property_round_trip(tags):
    spans = bio_to_spans(tags)
    encoded = spans_to_bio(spans, len(tags))
    assert len(encoded) == len(tags)
    assert bio_to_spans(encoded) == spans
    assert repair_bio(tags) == encoded
    assert repair_bio(encoded) == encoded  # idempotent
    # strict IOB2: every I-X follows B-X or I-X
    for prev, tag in zip(["O"] + encoded, encoded):
        if tag.startswith("I-"):
            assert prev in ("B-" + tag[2:], tag)



def scored(tags, p=0.5):
    return Tagging(list(tags), [(a, b, lab, p) for a, b, lab in bio_to_spans(tags)])


def test_join_taggings_keeps_each_parts_entities():
    parts = [scored(["B-PERS", "I-PERS"], 0.9), scored(["I-PERS", "O"], 0.4), scored([]), scored(["I-LOC"], 0.7)]
    joined = join_taggings(parts)
    assert joined.tags == ["B-PERS", "I-PERS", "B-PERS", "O", "I-LOC"]
    assert joined.entities == [(0, 2, "PERS", 0.9), (2, 3, "PERS", 0.4), (4, 5, "LOC", 0.7)]
    assert join_taggings([]) == ([], [])
    assert join_taggings([scored(["B-ORG"]), scored(["I-LOC"])]).tags == ["B-ORG", "I-LOC"]  # another label: as it was


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from(TAGS), max_size=6), max_size=5))
def test_joined_tags_decode_to_the_parts_entities(parts):
    joined = join_taggings([scored(p) for p in parts])
    assert [e[:3] for e in joined.entities] == bio_to_spans(joined.tags)
    assert len(joined.tags) == sum(map(len, parts))
