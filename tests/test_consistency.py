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
    # each sentence ends with ".", so split and unsplit running text really differ in what the network sees
    blocks = tiny_conll_file.read_text(encoding="utf-8").strip().split("\n\n")
    (tmp_path / "fold_0" / "heldout.conll").write_text("\n\n".join(b + "\n.\tO" for b in blocks) + "\n", encoding="utf-8")
    shutil.copytree(scrambled_model_dir, tmp_path / "r" / "fold_0")
    out = tmp_path / "result.json"
    assert bench.main(["--workdir", str(tmp_path), "--recipe", "r", "--output", str(out)]) == 0
    import json

    result = json.loads(out.read_text())["recipes"]["r"]
    assert set(result) == set(bench.SETTINGS)
    for r in result.values():
        assert r["pooled"]["micro"]["support"] == 4 * 15 and len(r["block_f1"]) == 1
    # one sentence per Doc, each ending with its only ".": splitting changes nothing
    assert result["sentences, split"]["vs_unsplit"]["pooled_difference"] == 0
    # running text, split: each sentence tagged alone, then consistency over the block
    from spacy_aner.consistency import propagate_over_sentences
    from spacy_aner.corpus import read_conll
    from spacy_aner.evaluation import entity_scores
    from spacy_aner.model import Tagger

    sents = read_conll(tmp_path / "fold_0" / "heldout.conll").sentences
    words = [s.words for s in sents]
    want = propagate_over_sentences(words, Tagger.load(scrambled_model_dir).predict(words), 250)
    f1 = entity_scores([s.tags for s in sents], want)["micro"]["f1"]
    assert result["running text, split"]["pooled"]["micro"]["f1"] == pytest.approx(f1)


def _reference_propagate(words, tags, window, segments=None, clitics=True):
    """The rule written the slow, obvious way: every length at every untagged word."""
    from collections import Counter

    from spacy_aner.consistency import PROCLITICS
    from spacy_aner.tags import LABELS

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


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["أب", "ب", "وأب", "وبأب", "1"]), st.sampled_from(TAGS),
                          st.integers(0, 2)), max_size=50),
       st.integers(0, 30), st.booleans(), st.booleans())
def test_indexed_scan_equals_the_obvious_rule(rows, window, with_segments, clitics):
    words = [w for w, _, _ in rows]
    tags = [t for _, t, _ in rows]
    segments = sorted(s for _, _, s in rows) if with_segments else None
    assert (propagate_labels(words, tags, window, segments, clitics)
            == _reference_propagate(words, tags, window, segments, clitics))


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


def test_component_overhead_benchmark_runs_every_setting(scrambled_model_dir, tiny_conll_file, tmp_path):
    """A functional check of the script (its timings mean nothing on this tiny input)."""
    import json
    from pathlib import Path

    from conftest import load_script  # tests/ is on sys.path under pytest

    bench = load_script(Path(__file__).parents[1] / "benchmarks" / "component_overhead.py", "component_overhead")
    out = tmp_path / "overhead.json"
    assert bench.main(["--test-conll", str(tiny_conll_file), "--model", str(scrambled_model_dir),
                       "--repeats", "2", "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result["settings"]) == set(bench.SETTINGS) and result["sentences"] == 32
    assert result["settings"]["0.1.0 behaviour"]["relative_time"] == 1.0
    assert all(len(r["times_s"]) == 2 and r["words_per_sec"] > 0 for r in result["settings"].values())
