"""Gazetteers: matching, features, files, user lists."""
import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_aner.core.gazetteer import (MAX_NAME_WORDS, USER_NAMES_FILE, USER_NAMES_SOURCES_FILE, Gazetteer, GazetteerError, UserNames,
                                       name_key, read_name_list)

LABELS = ["PERS", "LOC", "ORG"]


@pytest.fixture
def gazetteer():
    return Gazetteer.from_names([("القاهرة", "LOC"), ("حسني مبارك", "PERS"), ("جامعة الدول العربية", "ORG"),
                                 ("الدول", "LOC"), ("عمان", "LOC"), ("عمان", "PERS")], LABELS)


def test_names_are_keyed_like_the_vocabulary():
    assert name_key("القاهرة") == "القاهره"
    assert name_key("  حُسني   مبارك ") == "حسني مبارك"
    assert name_key("...") == ". . ."  # as the tokenizer splits it
    assert name_key("\u200f") == ""


def test_longest_match_per_label_and_bio_features(gazetteer):
    words = "وصل حسني مبارك إلى القاهرة ثم جامعة الدول العربية".split()
    assert gazetteer.matches(words) == [(1, 3, "PERS"), (4, 5, "LOC"), (6, 9, "ORG"), (7, 8, "LOC")]
    f = gazetteer.features(len(words), gazetteer.matches(words))
    assert f.shape == (9, 6) and f.dtype == np.float32
    assert f[:, 0].tolist() == [0, 1, 0, 0, 0, 0, 0, 0, 0]  # B-PERS
    assert f[:, 1].tolist() == [0, 0, 1, 0, 0, 0, 0, 0, 0]  # I-PERS
    assert f[:, 4].tolist() == [0, 0, 0, 0, 0, 0, 1, 0, 0]  # B-ORG
    assert f[:, 5].tolist() == [0, 0, 0, 0, 0, 0, 0, 1, 1]  # I-ORG
    assert f[:, 2].tolist() == [0, 0, 0, 0, 1, 0, 0, 1, 0]  # B-LOC, inside the ORG as well


def test_a_name_with_proclitics_matches_on_its_first_word(gazetteer):
    for word in ("والقاهرة", "بالقاهرة", "للقاهرة", "وللقاهرة"):
        assert gazetteer.matches([word]) == [(0, 1, "LOC")], word
    assert gazetteer.matches(["وحسني", "مبارك"]) == [(0, 2, "PERS")]
    assert gazetteer.matches(["قاهرة"]) == []  # the article is never stripped
    assert gazetteer.matches(["مبارك", "حسني"]) == []  # a prefix alone is no name


def test_a_name_with_two_labels_gives_both(gazetteer):
    assert gazetteer.matches(["عمان"]) == [(0, 1, "PERS"), (0, 1, "LOC")]


def test_a_prefix_running_off_the_end_matches_nothing(gazetteer):
    assert gazetteer.matches(["جامعة", "الدول"]) == [(1, 2, "LOC")]
    assert gazetteer.matches([]) == []


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from("حسني مبارك القاهرة جامعة الدول العربية عمان و في".split()), max_size=12))
def test_matches_of_a_label_never_overlap_and_are_names(words):
    g = Gazetteer.from_names([("القاهرة", "LOC"), ("حسني مبارك", "PERS"), ("جامعة الدول العربية", "ORG"),
                              ("الدول", "LOC"), ("الدول العربية", "LOC")], LABELS)
    found = g.matches(words)
    for label in LABELS:
        spans = sorted((a, b) for a, b, x in found if x == label)
        assert all(b1 <= a2 for (_, b1), (a2, _) in zip(spans, spans[1:]))
    for a, b, label in found:
        assert g.names[name_key(" ".join(words[a:b]))] & (1 << LABELS.index(label))


def test_too_long_or_empty_names_are_not_kept():
    g = Gazetteer(LABELS)
    assert not g.add(" ".join(["اسم"] * (MAX_NAME_WORDS + 1)), "PERS")
    assert not g.add("\u200f", "PERS")
    assert g.add(" ".join(["اسم"] * MAX_NAME_WORDS), "PERS")
    with pytest.raises(GazetteerError, match="MISC"):
        g.add("الجزيرة", "MISC")
    with pytest.raises(GazetteerError, match="distinct"):
        Gazetteer(["PERS", "PERS"])


def test_file_round_trip_and_corrupt_files(gazetteer, tmp_path):
    path = tmp_path / "g.json.gz"
    gazetteer.write(path)
    again = Gazetteer.read(path)
    assert again.labels == LABELS and again.names == gazetteer.names
    assert list(again.entries()) == list(gazetteer.entries()) and len(again) == 6
    assert again.counts() == {"PERS": 2, "LOC": 3, "ORG": 1}
    gazetteer.write(tmp_path / "h.json.gz")
    assert (tmp_path / "h.json.gz").read_bytes() == path.read_bytes()  # reproducible bytes
    bad = tmp_path / "bad.json.gz"
    for content in (b"not gzip", gzip.compress(b"{"), gzip.compress(b'{"labels": ["A"], "names": {"x": 2}}'),
                    gzip.compress(b'{"labels": ["A"], "names": {"x": "1"}}'), path.read_bytes()[:20],
                    gzip.compress(b"[" * 100_000 + b"]" * 100_000)):
        bad.write_bytes(content)
        with pytest.raises(GazetteerError, match="bad.json.gz"):
            Gazetteer.read(bad)


def test_merged_adds_names_of_known_labels_only(gazetteer):
    user = Gazetteer.from_names([("بنك الخليج الأول", "ORG")], ["ORG"])
    merged = gazetteer.merged(user)
    assert merged.matches("بنك الخليج الأول".split()) == [(0, 3, "ORG")]
    assert gazetteer.matches("بنك الخليج الأول".split()) == []  # the original is unchanged
    with pytest.raises(GazetteerError, match="MISC"):
        gazetteer.merged(Gazetteer.from_names([("العربية", "MISC")], ["MISC"]))


def test_read_name_list_formats(tmp_path):
    tsv = tmp_path / "names.tsv"
    tsv.write_bytes("\ufeffبنك الخليج\tORG\n\n# a comment\r\nسعاد الصباح\tPERS\r\n".encode("utf-8"))
    assert read_name_list(tsv) == [("بنك الخليج", "ORG"), ("سعاد الصباح", "PERS")]
    jsonl = tmp_path / "names.jsonl"
    jsonl.write_text('{"text": "بنك الخليج", "label": "ORG"}\n\n', encoding="utf-8")
    assert read_name_list(jsonl) == [("بنك الخليج", "ORG")]


@pytest.mark.parametrize("name,content,problem", [
    ("a.tsv", b"no tab here\n", r"a.tsv:1: expected name<TAB>label"),
    ("a.tsv", b"ok\tPERS\n\xff\xfe\tPERS\n", r"a.tsv:2: not UTF-8"),
    ("a.tsv", b"\tPERS\n", r"a.tsv:1: a name and a label"),
    ("a.jsonl", b'{"text": "x"}\n', r"a.jsonl:1: expected a JSON object"),
    ("a.jsonl", b'["x", "PERS"]\n', r"a.jsonl:1: expected a JSON object"),
    ("a.jsonl", b'{"text": 3, "label": "PERS"}\n', r"a.jsonl:1: a name and a label"),
    ("a.jsonl", b"[" * 100_000 + b"]" * 100_000, r"a.jsonl:1: expected a JSON object"),
    ("a.tsv", "ــــ\tPERS\n".encode(), r"a.tsv:1: a name must have 1 to 8 words, 'ــــ' has 0"),
    ("a.tsv", ("اسم " * 9 + "\tPERS\n").encode(), r"a.tsv:1: a name must have 1 to 8 words, .* has 9"),
    ("a.tsv", "محمد\tPERS\nأحمد\tPERSON\n".encode(), r"a.tsv:2: unknown label 'PERSON' \(labels: PERS, LOC"),
])
def test_read_name_list_names_the_bad_line(tmp_path, name, content, problem):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(GazetteerError, match=problem):
        read_name_list(path)
    with pytest.raises(GazetteerError, match="cannot read"):
        read_name_list(tmp_path / "missing.tsv")


class FakeTagger:
    def __init__(self, gazetteer):
        self.gazetteer = gazetteer

    def add_names(self, names):
        self.gazetteer = self.gazetteer.merged(names)
        return self


def test_user_names_from_files_saved_and_missing(tmp_path, gazetteer):
    tsv = tmp_path / "names.tsv"
    tsv.write_text("بنك الخليج\tORG\nبنك الخليج\tORG\n", encoding="utf-8")
    names = UserNames.from_files([str(tsv)])
    assert names.names == [("بنك الخليج", "ORG")]  # duplicates once
    tagger = names.added_to(FakeTagger(gazetteer))
    assert tagger.gazetteer.matches(["بنك", "الخليج"]) == [(0, 2, "ORG")]
    names.write(tmp_path)
    assert json.loads((tmp_path / USER_NAMES_FILE).read_text(encoding="utf-8")) == {"text": "بنك الخليج", "label": "ORG"}
    assert json.loads((tmp_path / USER_NAMES_SOURCES_FILE).read_text(encoding="utf-8")) == [str(tsv)]
    tsv.rename(tmp_path / "elsewhere.tsv")  # the list is gone where the saved pipeline loads
    same = UserNames.from_files([str(tsv)])
    with pytest.raises(GazetteerError, match="not found: .*names.tsv"):
        same.added_to(FakeTagger(gazetteer))
    saved = UserNames.saved(tmp_path, same)  # the same option as when saved: the saved names stand in
    assert (saved.names, saved.problems, saved.sources) == ([("بنك الخليج", "ORG")], [], [str(tsv)])
    missing = UserNames.from_files([str(tmp_path / "gone.tsv")])  # another option at load: it wins
    assert UserNames.saved(tmp_path, missing) is missing
    assert UserNames.saved(tmp_path, UserNames()).names == []
    UserNames().write(tmp_path)
    assert not (tmp_path / USER_NAMES_FILE).exists() and not (tmp_path / USER_NAMES_SOURCES_FILE).exists()
    (tmp_path / USER_NAMES_SOURCES_FILE).write_text('{"a": 1}', encoding="utf-8")
    with pytest.raises(GazetteerError, match="not a JSON list of paths"):
        UserNames.saved(tmp_path, same)
    with pytest.raises(GazetteerError, match="list of name-list files, got one path"):
        UserNames.from_files(str(tsv))
    broken = tmp_path / "broken.tsv"
    broken.write_bytes(b"\xff\n")
    late = UserNames.from_files([str(broken)])  # read now, an error when the names are used
    for use in (lambda: late.added_to(FakeTagger(gazetteer)), lambda: late.write(tmp_path)):
        with pytest.raises(GazetteerError, match="broken.tsv:1: not UTF-8"):
            use()


def test_user_names_with_a_label_the_model_does_not_read(tmp_path, gazetteer):
    path = Path(tmp_path / "misc.tsv")
    path.write_text("العربية\tMISC\n", encoding="utf-8")
    with pytest.raises(GazetteerError, match=r"reads names labelled PERS, LOC, ORG; the gazetteers \(.*misc.tsv\) "
                                             r"give MISC"):
        UserNames.from_files([path]).added_to(FakeTagger(gazetteer))
