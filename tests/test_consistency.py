"""Document-level label consistency (spacy_aner.consistency)."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_aner.consistency import propagate_labels, propagate_over_sentences
from spacy_aner.tags import TAGS, bio_to_spans


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


def test_doc_context_benchmark_scores_windows_against_sentence_level():
    from pathlib import Path

    from conftest import load_script  # tests/ is on sys.path under pytest

    bench = load_script(Path(__file__).parents[1] / "benchmarks" / "doc_context.py", "doc_context")
    # two blocks; the tagger found the name in the first sentence and missed it in the second
    block = {"words": [["قال", "كريم"], ["كريم", "سافر"]],
             "gold": [["O", "B-PERS"], ["B-PERS", "O"]],
             "pred": [["O", "B-PERS"], ["O", "O"]]}
    out = bench.score_windows([block, block], [0, 1, 5])
    assert out["0"]["pooled"]["micro"]["f1"] == pytest.approx(200 / 3)
    assert out["1"]["pooled"]["micro"]["f1"] == 100.0  # "كريم" one word away
    assert out["5"]["vs_window_0"] == {"block_differences": [33.33, 33.33], "blocks_ahead": 2,
                                       "pooled_difference": 33.33}
    assert out["within_sentence"]["pooled"]["micro"]["f1"] == pytest.approx(200 / 3)


def test_running_text_benchmark_scores_each_setting(scrambled_model_dir, tiny_conll_file, tmp_path):
    import shutil
    from pathlib import Path

    from conftest import load_script  # tests/ is on sys.path under pytest

    bench = load_script(Path(__file__).parents[1] / "benchmarks" / "running_text.py", "running_text")
    (tmp_path / "fold_0").mkdir()
    shutil.copyfile(tiny_conll_file, tmp_path / "fold_0" / "heldout.conll")
    shutil.copytree(scrambled_model_dir, tmp_path / "r" / "fold_0")
    out = tmp_path / "result.json"
    assert bench.main(["--workdir", str(tmp_path), "--recipe", "r", "--output", str(out)]) == 0
    import json

    result = json.loads(out.read_text())["recipes"]["r"]
    assert set(result) == set(bench.SETTINGS)
    # the tiny sentences have no sentence-final mark: one Doc per sentence is the same split or not
    assert result["sentences, split"]["vs_unsplit"]["pooled_difference"] == 0
    for r in result.values():
        assert r["pooled"]["micro"]["support"] == 4 * 15 and len(r["block_f1"]) == 1
