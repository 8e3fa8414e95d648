"""spacy_aner.training.evaluation: seqeval (default and strict), spaCy's Scorer, and scoring a pipeline on a file."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest
import spacy
from aner_support import LABELS
from hypothesis import given, settings
from hypothesis import strategies as st
from seqeval.metrics import f1_score

from spacy_aner.core.tags import spans_to_bio
from spacy_aner.pipeline.consistency import propagate_over_sentences
from spacy_aner.training.corpus import read_conll
from spacy_aner.training.evaluation import (
    char_spans_of_words,
    confusion_counts,
    entity_scores,
    evaluate_file,
    gold_words_doc,
    model_hash,
    predict_doc_context,
    predict_gold_words,
    predict_raw,
    read_gold,
    spacy_scorer_scores,
    span_scores,
    strip_private,
    summary_line,
)


def test_default_and_strict_modes_differ_only_on_stray_i():
    gold = [["B-PERS", "I-PERS", "O", "I-LOC"]]
    pred = [["B-PERS", "I-PERS", "O", "B-LOC"]]
    default = entity_scores(gold, pred)
    strict = entity_scores(gold, pred, strict=True)
    assert default["mode"] == "default (conlleval)" and strict["mode"] == "strict IOB2"
    assert default["micro"]["f1"] == pytest.approx(100.0)  # stray I-LOC opens a LOC entity
    assert strict["micro"]["support"] == 1  # strict IOB2 does not count it as gold
    assert strict["micro"]["precision"] == pytest.approx(50.0)
    assert set(default["per_type"]) == {"PERS", "LOC"}


def test_entity_scores_hand_count():
    gold = [["B-PERS", "I-PERS", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PERS", "I-PERS", "O", "B-ORG"], ["B-ORG", "B-MISC"]]
    s = entity_scores(gold, pred)
    assert s["micro"]["precision"] == pytest.approx(50.0) and s["micro"]["recall"] == pytest.approx(200 / 3)
    assert s["micro"]["support"] == 3 and s["per_type"]["LOC"]["f1"] == 0.0
    assert s["macro"]["f1"] == pytest.approx((100 + 0 + 200 / 3 + 0) / 4)


def test_entity_scores_rejects_misaligned_input():
    with pytest.raises(ValueError, match="differ in length"):
        entity_scores([["O", "O"]], [["O"]])
    with pytest.raises(ValueError, match="differ in length"):
        entity_scores([["O"]], [["O"], ["O"]])


def test_span_scores_counts_exact_matches_per_type():
    gold = [[(0, 4, "PERS"), (10, 16, "LOC")], [(0, 5, "ORG")]]
    pred = [[(0, 4, "PERS"), (10, 15, "LOC")], [(0, 5, "ORG"), (6, 9, "MISC")]]
    s = span_scores(gold, pred)
    assert s["micro"]["precision"] == pytest.approx(50.0)
    assert s["micro"]["recall"] == pytest.approx(200 / 3)
    assert s["per_type"]["LOC"]["f1"] == 0.0
    assert s["per_type"]["PERS"]["f1"] == pytest.approx(100.0)
    assert s["per_type"]["MISC"]["support"] == 0 and s["macro"]["support"] == 3


def test_confusion_counts_missed_spurious_and_type_errors():
    gold = [["B-PERS", "I-PERS", "O", "B-LOC", "O", "B-ORG"]]
    pred = [["B-PERS", "I-PERS", "O", "B-ORG", "B-MISC", "O"]]
    c = confusion_counts(gold, pred)
    assert c["PERS"]["PERS"] == 1
    assert c["LOC"]["ORG"] == 1  # same span, wrong type
    assert c["ORG"]["none"] == 1  # missed
    assert c["none"]["MISC"] == 1  # spurious
    assert sum(sum(row.values()) for row in c.values()) == 4


def test_char_spans_of_words():
    words = ["محمد", "يعيش", "في", "الرباط"]
    text = " ".join(words)
    spans = char_spans_of_words(words, ["B-PERS", "O", "O", "B-LOC"])
    assert [text[s:e] for s, e, _ in spans] == ["محمد", "الرباط"]
    assert [lab for *_, lab in spans] == ["PERS", "LOC"]


@st.composite
def well_formed_tags(draw, length):
    i, spans = 0, []
    while i < length:
        if draw(st.booleans()):
            n = draw(st.integers(1, min(3, length - i)))
            spans.append((i, i + n, draw(st.sampled_from(LABELS))))
            i += n
        else:
            i += 1
    return spans_to_bio(spans, length)


@st.composite
def gold_pred_pairs(draw):
    lengths = draw(st.lists(st.integers(1, 12), min_size=1, max_size=6))
    return [draw(well_formed_tags(n)) for n in lengths], [draw(well_formed_tags(n)) for n in lengths]


# seqeval's macro average over zero classes (no entity in gold nor prediction) warns in NumPy.
@pytest.mark.filterwarnings("ignore:Mean of empty slice:RuntimeWarning",
                            "ignore:invalid value encountered in scalar divide:RuntimeWarning")
@settings(max_examples=60, deadline=None)
@given(gold_pred_pairs())
def test_spacy_scorer_agrees_with_seqeval_strict_on_iob2(pair):
    gold, pred = pair
    words = [[f"w{i}" for i in range(len(g))] for g in gold]
    scorer = spacy_scorer_scores(spacy.blank("ar").vocab, gold, words, pred)["micro"]
    strict = entity_scores(gold, pred, strict=True)["micro"]
    default = entity_scores(gold, pred)["micro"]
    for key in ("f1", "precision", "recall"):
        assert scorer[key] == pytest.approx(strict[key], abs=1e-9)
    assert default["f1"] == pytest.approx(strict["f1"], abs=1e-9)  # no stray I- in IOB2 input


GOLD_PROBLEMS = {
    "empty": (b"", "no sentences to score"),
    "untagged": ("باريس\nهي\nعاصمة\n".encode(), "3 malformed line(s) in the gold file"),
    "no_entities": ("باريس O\nهي O\n".encode(), "no gold entities"),
    "bad_utf8": ("باريس B-LOC\n".encode() + b"\xff O\n", "not valid UTF-8"),
    "unknown_tag": ("باريس B-CITY\n".encode(), "unknown tag 'B-CITY'"),
}


@pytest.mark.parametrize("name", sorted(GOLD_PROBLEMS))
def test_read_gold_refuses_files_it_cannot_score(name, tmp_path):
    content, message = GOLD_PROBLEMS[name]
    path = tmp_path / f"{name}.conll"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=re.escape(message)):
        read_gold(path)


def test_read_gold_allows_a_stray_i_quietly(tmp_path, recwarn):
    path = tmp_path / "stray.conll"  # the released test split has 74
    path.write_text("باريس I-LOC\nهي O\n", encoding="utf-8")
    corpus = read_gold(path)
    assert corpus.sentences[0].tags == ["I-LOC", "O"] and len(corpus.problems) == 1
    assert not recwarn.list


def test_gold_words_doc():
    vocab = spacy.blank("ar").vocab
    doc = gold_words_doc(vocab, ["محمد", "في"])
    assert [t.text for t in doc] == ["محمد", "في"] and doc.text == "محمد في "
    assert len(gold_words_doc(vocab, [])) == 0


@pytest.fixture(scope="module")
def tiny_result(scrambled_nlp, tiny_dev_file):
    return evaluate_file(scrambled_nlp, tiny_dev_file, raw=True, progress=False, doc_context=True)


def test_evaluate_file_scores_what_the_pipeline_predicts(scrambled_nlp, tiny_dev_file, tiny_result):
    sents = read_conll(tiny_dev_file).sentences
    gold, words = [s.tags for s in sents], [s.words for s in sents]
    pred = predict_gold_words(scrambled_nlp, words, progress=False)
    assert tiny_result["_gold"] == gold and tiny_result["_pred"] == pred
    assert (tiny_result["sentences"], tiny_result["words"]) == (8, sum(map(len, words)))
    assert tiny_result["seqeval_default"]["micro"]["f1"] == pytest.approx(100 * f1_score(gold, pred))
    assert tiny_result["seqeval_strict"] == entity_scores(gold, pred, strict=True)
    assert tiny_result["spacy_scorer"]["micro"]["f1"] == pytest.approx(tiny_result["seqeval_strict"]["micro"]["f1"])
    assert tiny_result["confusion"] == confusion_counts(gold, pred)
    assert "micro avg" in tiny_result["report"] and "micro avg" in tiny_result["report_strict"]
    assert any(t != "O" for p in pred for t in p)


def test_raw_text_scores_match_entities_by_character_offsets(scrambled_nlp, tiny_dev_file, tiny_result):
    sents = read_conll(tiny_dev_file).sentences
    words = [s.words for s in sents]
    pred = predict_raw(scrambled_nlp, words, progress=False)
    gold = [char_spans_of_words(s.words, s.tags) for s in sents]
    assert tiny_result["raw_text"] == span_scores(gold, pred)
    # CAMeL tokens of these sentences are the gold words: both views agree
    assert tiny_result["raw_text"]["micro"]["f1"] == pytest.approx(tiny_result["seqeval_default"]["micro"]["f1"])


def test_doc_context_lets_consistency_reach_across_sentences(scrambled_model_dir, tiny_dev_file, tiny_result):
    import spacy_aner

    sents = read_conll(tiny_dev_file).sentences
    words = [s.words for s in sents]
    plain = predict_gold_words(spacy_aner.load(scrambled_model_dir, consistency_window=0), words, progress=False)
    running = propagate_over_sentences(words, plain, 250)
    doc_context = tiny_result["doc_context"]
    assert doc_context["consistency_window"] == 250
    assert doc_context["seqeval_default"] == entity_scores([s.tags for s in sents], running)


def test_predict_doc_context_first_result_is_what_docs_get(scrambled_nlp, tiny_dev_file):
    words = [s.words for s in read_conll(tiny_dev_file).sentences]
    per_sentence, running = predict_doc_context(scrambled_nlp, words, batch_size=3, progress=False)
    assert per_sentence == predict_gold_words(scrambled_nlp, words, progress=False)
    assert [len(t) for t in running] == [len(w) for w in words]


def test_summary_line_and_strip_private(tiny_result):
    line = summary_line("dev", tiny_result)
    f1 = tiny_result["seqeval_default"]["micro"]["f1"]
    assert line.startswith("dev: 8 sentences, ") and f"F1 {f1:.2f}" in line
    assert "raw-text F1" in line and "as running text F1" in line
    public = strip_private(tiny_result)
    assert "_gold" not in public and "_pred" not in public and "seqeval_default" in public


def test_model_hash_names_the_weights(tiny_model_dir, scrambled_model_dir, model_copy):
    assert len(model_hash(tiny_model_dir)) == 64 and model_hash(tiny_model_dir) == model_hash(tiny_model_dir)
    assert model_hash(tiny_model_dir) != model_hash(scrambled_model_dir)
    copy = model_copy(tiny_model_dir)
    (copy / "meta.json").write_text("{}")  # meta is not part of the model
    assert model_hash(copy) == model_hash(tiny_model_dir)


@pytest.mark.slow
def test_spacy_evaluate_on_a_saved_pipeline_equals_seqeval_strict(scrambled_model_dir, tiny_dev_file, tmp_path):
    """``python -m spacy evaluate`` on the saved pipeline, and ``nlp.evaluate``: the component's Scorer."""
    import json

    from spacy.tokens import Doc, DocBin
    from spacy.training import Example

    import spacy_aner
    from spacy_aner.training.corpus import sentence_to_doc

    nlp = spacy_aner.load(scrambled_model_dir)
    saved = tmp_path / "pipeline"
    nlp.to_disk(saved)
    sents = read_conll(tiny_dev_file).sentences
    DocBin(docs=[sentence_to_doc(nlp.vocab, s.words, s.tags) for s in sents]).to_disk(tmp_path / "dev.spacy")
    out = tmp_path / "scores.json"
    proc = subprocess.run([sys.executable, "-m", "spacy", "evaluate", str(saved), str(tmp_path / "dev.spacy"),
                           "--output", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    scores = json.loads(out.read_text())
    loaded = spacy.load(saved)
    examples = [Example(Doc(loaded.vocab, words=s.words), sentence_to_doc(loaded.vocab, s.words, s.tags))
                for s in sents]
    got = loaded.evaluate(examples)
    pred = predict_gold_words(loaded, [s.words for s in sents], progress=False)
    strict = entity_scores([s.tags for s in sents], pred, strict=True)["micro"]["f1"]
    assert 100 * got["ents_f"] == pytest.approx(strict) and strict > 0
    assert scores["ents_f"] == pytest.approx(got["ents_f"])
