"""spacy_aner.pipeline.consistency: document-level label consistency."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_aner.core.tags import LABELS, TAGS, Tagging, bio_to_spans
from spacy_aner.pipeline.consistency import (PROCLITICS, find_recurrences, propagate_labels, propagate_over_sentences,
                                             with_recurrences)


def test_untagged_recurrence_gets_the_label():
    words = "قال محمد علي إن محمد علي سافر".split()
    tags = ["O", "B-PERS", "I-PERS", "O", "O", "O", "O"]
    assert propagate_labels(words, tags, window=10) == ["O", "B-PERS", "I-PERS", "O", "B-PERS", "I-PERS", "O"]


def test_window_limits_the_reach():
    words = ["باريس"] + ["و"] * 19 + ["باريس"]
    tags = ["B-LOC"] + ["O"] * 20
    assert propagate_labels(words, tags, window=20) == ["B-LOC"] + ["O"] * 19 + ["B-LOC"]
    assert propagate_labels(words, tags, window=19) == tags
    assert propagate_labels(words, tags, window=0) == tags


def test_predicted_entities_are_never_changed():
    words = "فرنسا فرنسا فرنسا".split()
    tags = ["B-LOC", "B-ORG", "O"]
    out = propagate_labels(words, tags, window=5)
    assert out[:2] == tags[:2]
    # one vote each: the tie goes to the label listed first in LABELS (LOC before ORG)
    assert out[2] == "B-LOC"


def test_majority_label_wins():
    words = "أ أ أ أ".split()
    assert propagate_labels(words, ["B-ORG", "B-ORG", "B-LOC", "O"], window=5)[3] == "B-ORG"


def test_longest_match_first_and_no_partial_overlap():
    words = "الأمم المتحدة و الأمم المتحدة و الأمم".split()
    tags = ["B-ORG", "I-ORG", "O", "O", "O", "O", "B-LOC"]
    out = propagate_labels(words, tags, window=10)
    assert out[3:5] == ["B-ORG", "I-ORG"]
    # a match must be all O: "الأمم" alone (LOC) is spread only where it is free
    assert out[0:2] == ["B-ORG", "I-ORG"]


def test_numbers_and_punctuation_are_not_spread():
    words = ["1990", "،", "1990"]
    assert propagate_labels(words, ["B-MISC", "O", "O"], window=5) == ["B-MISC", "O", "O"]


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="2 words but 1 tags"):
        propagate_labels(["a", "b"], ["O"], window=3)


def test_over_sentences_keeps_shapes_and_never_crosses_a_boundary():
    sents = [["عبد", "الله"], ["عبد"], ["الله", "عبد", "الله"]]
    tags = [["B-PERS", "I-PERS"], ["O"], ["O", "O", "O"]]
    out = propagate_over_sentences(sents, tags, window=10)
    assert [len(t) for t in out] == [2, 1, 3]
    # "عبد | الله" across the end of sentence 2 is not a match; inside sentence 3 it is
    assert out[1] == ["O"]
    assert out[2] == ["O", "B-PERS", "I-PERS"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["أ", "ب", "ج", "1"]), st.sampled_from(TAGS)), max_size=40),
       st.integers(0, 50))
def test_only_adds_entities(pairs, window):
    words = [w for w, _ in pairs]
    tags = [t for _, t in pairs]
    out = propagate_labels(words, tags, window)
    assert len(out) == len(tags)
    before, after = set(bio_to_spans(tags)), set(bio_to_spans(out))
    assert before <= after
    for start, end, label in after - before:
        assert all(t == "O" for t in tags[start:end])
        assert any((tuple(words[s:e]), lab) == (tuple(words[start:end]), label) for s, e, lab in before)


def _reference_propagate(words, tags, window, segments=None, clitics=True):
    """The rule written the slow, obvious way: every length at every untagged word."""
    from collections import Counter

    out = list(tags)
    if window <= 0:
        return out
    mentions = [(s, tuple(words[s:e]), lab) for s, e, lab in bio_to_spans(tags)
                if any(ch.isalpha() for w in words[s:e] for ch in w)]
    longest = max((len(k) for _, k, _ in mentions), default=0)

    def match(i, first):
        for n in range(min(longest, len(words) - i), 0, -1):
            key = (first, *words[i + 1:i + n])
            if any(t != "O" for t in out[i:i + n]) or (segments and segments[i] != segments[i + n - 1]):
                continue
            votes = Counter(lab for s, k, lab in mentions if k == key and abs(s - i) <= window)
            if votes:
                label = max(votes, key=lambda lab: (votes[lab], -LABELS.index(lab)))
                out[i:i + n] = [f"B-{label}"] + [f"I-{label}"] * (n - 1)
                if i + n < len(out) and out[i + n] == f"I-{label}":
                    out[i + n] = f"B-{label}"
                return n
        return 0

    i = 0
    while i < len(words):
        n = match(i, words[i])
        if not n and clitics:
            for p in PROCLITICS:
                if words[i].startswith(p) and len(words[i]) - len(p) >= 2:
                    n = match(i, words[i][len(p):])
                    if n:
                        break
        i += max(n, 1)
    return out


#: Rows of (word, tag, segment) with few distinct words, so recurrences are common.
ROWS = st.lists(st.tuples(st.sampled_from(["أب", "ب", "وأب", "وبأب", "1"]), st.sampled_from(TAGS),
                          st.integers(0, 2)), max_size=50)


def unpack(rows, with_segments):
    """Words, tags and (sorted) segment ids of ``ROWS``' rows, or no segments."""
    return [w for w, _, _ in rows], [t for _, t, _ in rows], sorted(s for _, _, s in rows) if with_segments else None


@settings(max_examples=300, deadline=None)
@given(ROWS, st.integers(0, 30), st.booleans(), st.booleans())
def test_indexed_scan_equals_the_obvious_rule(rows, window, with_segments, clitics):
    words, tags, segments = unpack(rows, with_segments)
    assert (propagate_labels(words, tags, window, segments, clitics)
            == _reference_propagate(words, tags, window, segments, clitics))


@settings(max_examples=300, deadline=None)
@given(ROWS, st.integers(0, 30), st.booleans(), st.booleans())
def test_recurrences_are_what_propagation_adds_and_copy_the_nearest_mention(rows, window, with_segments, clitics):
    words, tags, segments = unpack(rows, with_segments)
    found = find_recurrences(words, tags, window, segments, clitics)
    mentions = bio_to_spans(tags)
    assert sorted(bio_to_spans(propagate_labels(words, tags, window, segments, clitics))) == \
        sorted(mentions + [(r.start, r.end, r.label) for r in found])
    for r in found:
        n = r.end - r.start
        assert (r.source, r.source + n, r.label) in mentions and abs(r.source - r.start) <= window
        key = words[r.source:r.source + n]
        assert words[r.start + 1:r.end] == key[1:] and words[r.start].endswith(key[0])
        same = [s for s, e, lab in mentions if lab == r.label and words[s:e] == key]
        assert min((abs(s - r.start), s) for s in same) == (abs(r.source - r.start), r.source)


def test_a_recurrence_copies_the_nearest_mention_of_the_winning_label():
    words = "أب ج أب ج ج ج أب ج ج أب".split()
    tags = ["B-LOC", "O", "B-LOC", "O", "O", "O", "O", "O", "O", "B-PERS"]
    assert find_recurrences(words, tags, 10) == [(6, 7, "LOC", 2)]  # PERS at 9 is nearer but outvoted
    assert find_recurrences(words, tags, 0) == [] and find_recurrences([], [], 5) == []


def test_recurrences_with_scores_stay_inside_their_segments():
    words = "زار الدار البيضاء ثم الدار البيضاء".split()
    tagging = Tagging(["O", "B-LOC", "I-LOC", "O", "O", "O"], [(1, 3, "LOC", 0.9)])
    assert with_recurrences(words, tagging, 10) == [(1, 3, "LOC", 0.9), (4, 6, "LOC", 0.9)]
    assert with_recurrences(words, tagging, 10, [0, 0, 0, 0, 1, 2]) == [(1, 3, "LOC", 0.9)]


def test_a_recurrence_with_a_joined_proclitic_is_tagged_too():
    words = "زار باريس ثم وباريس و لندن".split()
    tags = ["O", "B-LOC", "O", "O", "O", "O"]
    assert propagate_labels(words, tags, 10) == ["O", "B-LOC", "O", "B-LOC", "O", "O"]
    assert propagate_labels(words, tags, 10, clitics=False) == tags
    # an exact recurrence wins over a clitic reading of the same word
    words = "زار وباريس ثم وباريس باريس".split()
    assert propagate_labels(words, ["O", "B-ORG", "O", "O", "B-LOC"], 10)[3] == "B-ORG"


def test_a_long_entity_whose_first_word_is_everywhere():
    """Review finding (the speed is in the notes, not timed here): the scan once built every
    candidate length at every occurrence of a first word, ten minutes for this input."""
    name = ["و"] + [f"ك{i}" for i in range(999)]
    words = name + ["و", "س"] * 100_000 + name
    tags = ["B-ORG"] + ["I-ORG"] * 999 + ["O"] * 201_000
    assert propagate_labels(words, tags, 250) == tags  # the second copy is out of reach
    near = name + ["و", "س"] * 100 + name
    assert propagate_labels(near, tags[:len(near)], 1200)[-1000:] == ["B-ORG"] + ["I-ORG"] * 999  # starts 1,200 apart
