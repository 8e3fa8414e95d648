"""Scoring conventions, the evaluate command, and agreement between seqeval and spaCy's Scorer."""
import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import spacy
from hypothesis import given, settings
from hypothesis import strategies as st
from seqeval.metrics import f1_score
from spacy.tokens import Doc, DocBin
from spacy.training import Example
from typer.testing import CliRunner

import spacy_aner
from spacy_aner.cli import app
from spacy_aner.corpus import read_conll, sentence_to_doc
from spacy_aner.evaluation import (
    char_spans_of_words,
    confusion_counts,
    entity_scores,
    predict_gold_words,
    span_scores,
    spacy_scorer_scores,
)
from spacy_aner.tags import LABELS, spans_to_bio

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_default_and_strict_modes_differ_only_on_stray_i():
    gold = [["B-PERS", "I-PERS", "O", "I-LOC"]]
    pred = [["B-PERS", "I-PERS", "O", "B-LOC"]]
    default = entity_scores(gold, pred)
    strict = entity_scores(gold, pred, strict=True)
    assert default["micro"]["f1"] == pytest.approx(100.0)  # stray I-LOC opens a LOC entity
    assert strict["micro"]["support"] == 1  # strict IOB2 does not count it as gold
    assert strict["micro"]["precision"] == pytest.approx(50.0)
    assert set(default["per_type"]) == {"PERS", "LOC"}


def test_entity_scores_rejects_misaligned_input():
    with pytest.raises(ValueError):
        entity_scores([["O", "O"]], [["O"]])


def test_span_scores_counts_exact_matches_per_type():
    gold = [[(0, 4, "PERS"), (10, 16, "LOC")], [(0, 5, "ORG")]]
    pred = [[(0, 4, "PERS"), (10, 15, "LOC")], [(0, 5, "ORG"), (6, 9, "MISC")]]
    s = span_scores(gold, pred)
    assert s["micro"]["precision"] == pytest.approx(50.0)
    assert s["micro"]["recall"] == pytest.approx(200 / 3)
    assert s["per_type"]["LOC"]["f1"] == 0.0
    assert s["per_type"]["PERS"]["f1"] == pytest.approx(100.0)
    assert s["per_type"]["MISC"]["support"] == 0


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


@st.composite
def well_formed_tags(draw, length):
    i = 0
    spans = []
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
    gold = [draw(well_formed_tags(n)) for n in lengths]
    pred = [draw(well_formed_tags(n)) for n in lengths]
    return gold, pred


@settings(max_examples=200, deadline=None)
@given(gold_pred_pairs())
def test_spacy_scorer_agrees_with_seqeval_strict_on_iob2(pair):
    gold, pred = pair
    words = [[f"w{i}" for i in range(len(g))] for g in gold]
    vocab = spacy.blank("ar").vocab
    scorer = spacy_scorer_scores(vocab, gold, words, pred)["micro"]
    strict = entity_scores(gold, pred, strict=True)["micro"]
    default = entity_scores(gold, pred)["micro"]
    assert scorer["f1"] == pytest.approx(strict["f1"], abs=1e-9)
    assert scorer["precision"] == pytest.approx(strict["precision"], abs=1e-9)
    assert scorer["recall"] == pytest.approx(strict["recall"], abs=1e-9)
    assert default["f1"] == pytest.approx(strict["f1"], abs=1e-9)  # no stray I- in IOB2 input


@pytest.fixture(scope="module")
def small_conll(tmp_path_factory, anercorp_dir):
    """The first 40 sentences of the train file: a functional check, not a figure."""
    sents = read_conll(anercorp_dir / "ANERCorp_CamelLab_train.txt").sentences[:40]
    path = tmp_path_factory.mktemp("eval") / "small.conll"
    path.write_text("\n\n".join("\n".join(f"{w}\t{t}" for w, t in zip(s.words, s.tags)) for s in sents) + "\n",
                    encoding="utf-8")
    return path


@pytest.mark.slow
def test_evaluate_cli_writes_metrics_plots_and_agrees_with_seqeval(tiny_model_dir, small_conll, tmp_path):
    model = tmp_path / "model"
    import shutil

    shutil.copytree(tiny_model_dir, model)
    out = tmp_path / "eval"
    result = CliRunner().invoke(app, ["evaluate", str(small_conll), "--model", str(model), "-o", str(out),
                                      "--raw", "--doc-context", "--record"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("f1", "precision", "recall", "micro", "macro", "per_type", "mode", "sentences", "words", "model_hash"):
        assert key in metrics
    assert metrics["sentences"] == 40
    # Independent scoring of the same predictions with seqeval itself.
    nlp = spacy_aner.load(model)
    sents = read_conll(small_conll).sentences
    pred = predict_gold_words(nlp, [s.words for s in sents], progress=False)
    assert metrics["f1"] == pytest.approx(100 * f1_score([s.tags for s in sents], pred))
    assert "raw_text" in metrics["files"]["small"]
    # As running text: the sentence-level tags (no propagation), then propagation over the file.
    from spacy_aner.consistency import propagate_over_sentences

    plain = predict_gold_words(spacy_aner.load(model, consistency_window=0), [s.words for s in sents], progress=False)
    running = propagate_over_sentences([s.words for s in sents], plain, 250)
    doc_context = metrics["files"]["small"]["doc_context"]
    assert doc_context["consistency_window"] == 250
    assert doc_context["seqeval_default"]["micro"]["f1"] == pytest.approx(100 * f1_score([s.tags for s in sents], running))
    assert "micro avg" in (out / "report.txt").read_text()
    for name in ("per_class.png", "confusion_small.png", "training_curves.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000, name
    meta = json.loads((model / "meta.json").read_text())
    assert meta["test_scores"]["small"]["seqeval_default"]["f1"] == pytest.approx(metrics["f1"])
    assert "spacy-aner evaluate" in meta["test_scores"]["small"]["command"]
    assert meta["test_scores"]["small"]["doc_context"]["seqeval_default"]["f1"] == pytest.approx(
        doc_context["seqeval_default"]["micro"]["f1"])


def test_evaluate_cli_refuses_gold_files_it_cannot_score(tiny_model_dir, tmp_path):
    """No sentences, no tag column, lost lines: a clear error, never a figure on damaged gold data."""
    files = {
        "empty": (b"", "no sentences to score"),
        "untagged": ("باريس\nهي\nعاصمة\n".encode(), "malformed line(s) in the gold file"),
        "no_entities": ("باريس O\nهي O\n".encode(), "no gold entities"),
        "bad_utf8": ("باريس B-LOC\n".encode() + b"\xff O\n", "not valid UTF-8"),
        "unknown_tag": ("باريس B-CITY\n".encode(), "unknown tag 'B-CITY'"),
    }
    for name, (content, message) in files.items():
        path = tmp_path / f"{name}.conll"
        path.write_bytes(content)
        result = CliRunner().invoke(app, ["evaluate", str(path), "--model", str(tiny_model_dir), "-o", str(tmp_path / name)])
        assert result.exit_code == 1 and message in result.output, (name, result.output)
        assert not (tmp_path / name / "metrics.json").exists()
    good = tmp_path / "good.conll"
    good.write_text("باريس B-LOC\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["evaluate", str(good), str(tmp_path / "untagged.conll"), "--model", "/nowhere",
                                      "-o", str(tmp_path / "both")])
    assert result.exit_code == 1 and "malformed line(s)" in result.output  # checked before the model loads
    stray = tmp_path / "stray.conll"  # a stray I- is allowed: the released test split has 74
    stray.write_text("باريس I-LOC\nهي O\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["evaluate", str(stray), "--model", str(tiny_model_dir), "-o", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output


def test_evaluate_cli_reports_broken_model(tmp_path, small_conll):
    result = CliRunner().invoke(app, ["evaluate", str(small_conll), "--model", str(tmp_path / "nope"),
                                      "-o", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "model directory not found" in result.output


@pytest.mark.slow
def test_spacy_evaluate_cli_on_saved_pipeline(tiny_model_dir, small_conll, tmp_path):
    nlp = spacy_aner.load(tiny_model_dir)
    saved = tmp_path / "pipeline"
    nlp.to_disk(saved)
    sents = read_conll(small_conll).sentences
    db = DocBin(docs=[sentence_to_doc(nlp.vocab, s.words, s.tags) for s in sents])
    db.to_disk(tmp_path / "small.spacy")
    out = tmp_path / "scores.json"
    proc = subprocess.run([sys.executable, "-m", "spacy", "evaluate", str(saved), str(tmp_path / "small.spacy"),
                           "--output", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    scores = json.loads(out.read_text())
    assert "ents_f" in scores and 0.0 <= scores["ents_f"] <= 1.0

    # On the same words, the component's Scorer-based score equals seqeval strict IOB2.
    loaded = spacy.load(saved)
    examples = [Example(Doc(loaded.vocab, words=s.words), sentence_to_doc(loaded.vocab, s.words, s.tags))
                for s in sents]
    got = loaded.evaluate(examples)
    gold = [spans_to_bio([(e.start, e.end, e.label_) for e in eg.reference.ents], len(eg.reference))
            for eg in examples]
    pred = predict_gold_words(loaded, [s.words for s in sents], progress=False)
    strict = entity_scores(gold, pred, strict=True)["micro"]["f1"]
    assert 100 * (got["ents_f"] or 0.0) == pytest.approx(strict)


def test_training_curves_label_ensemble_members_by_name(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from spacy_aner.plots import training_curves

    shown = []
    monkeypatch.setattr(plt, "close", lambda fig=None: shown.append(fig))
    run = [{"epoch": e, "loss": 3.0 - e, "dev_f1": 50.0 + e} for e in (1, 2, 3)]
    refit = [{"epoch": e, "loss": 3.0 - e, "learning_rate": 3e-3 / e} for e in (1, 2)]
    training_curves({"members": [run, run]}, tmp_path / "a.png", ["seed 13", "seed 14"])
    training_curves({"members": [refit, refit]}, tmp_path / "b.png")
    (loss_a, f1_a), (loss_b, lr_b) = (fig.axes for fig in shown)
    assert [t.get_text() for t in loss_a.get_legend().get_texts()] == ["seed 13", "seed 14"]
    assert [line.get_label() for line in f1_a.get_lines() if not line.get_label().startswith("_")] == ["seed 13", "seed 14"]
    assert [line.get_label() for line in lr_b.get_lines()] == ["member 1", "member 2"]
    assert (tmp_path / "a.png").read_bytes().startswith(PNG_MAGIC)


def _load_benchmark(name):
    from pathlib import Path

    from conftest import load_script  # tests/ is on sys.path under pytest

    return load_script(Path(__file__).parents[1] / "benchmarks" / f"{name}.py", name)


ANY_TAGS = st.sampled_from(["O", "B-PERS", "I-PERS", "B-LOC", "I-LOC", "I-ORG", "B-MISC"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 10), min_size=1, max_size=6).flatmap(
    lambda lengths: st.tuples(*[st.tuples(st.lists(ANY_TAGS, min_size=n, max_size=n),
                                          st.lists(ANY_TAGS, min_size=n, max_size=n)) for n in lengths])))
def test_paired_bootstrap_counts_give_seqeval_default_f1(pairs):
    """Summed per-sentence counts reproduce `evaluate`'s micro F1, stray I- tags included."""
    bench = _load_benchmark("paired_bootstrap")
    gold, pred = [list(g) for g, _ in pairs], [list(p) for _, p in pairs]
    counts = bench.sentence_counts(gold, pred)
    assert counts.shape == (len(gold), 3)
    if any(t != "O" for seq in gold + pred for t in seq):
        assert bench.f1(counts) == pytest.approx(entity_scores(gold, pred)["micro"]["f1"], abs=1e-9)
    else:
        assert bench.f1(counts) == 0.0


def test_paired_bootstrap_interval_covers_the_difference():
    import numpy as np

    bench = _load_benchmark("paired_bootstrap")
    a = np.array([[1, 1, 1], [0, 1, 1], [2, 2, 2], [0, 0, 1]])
    same = bench.paired_bootstrap(a, a, samples=50)
    assert same["difference_b_minus_a"] == 0.0 and same["ci95"] == [0.0, 0.0] and same["share_b_not_worse"] == 1.0
    better = a.copy()
    better[1] = [1, 1, 1]  # B finds one more entity, with no new false positive
    result = bench.paired_bootstrap(a, better, samples=200, seed=3)
    assert result["difference_b_minus_a"] > 0
    assert result["ci95"][0] >= 0 <= result["ci95"][1] and result["share_b_not_worse"] == 1.0
    with pytest.raises(ValueError, match="same sentences"):
        bench.paired_bootstrap(a, a[:2])


def test_paired_bootstrap_script_on_a_model_against_itself(tiny_model_dir, tiny_conll_file, tmp_path):
    bench = _load_benchmark("paired_bootstrap")
    out = tmp_path / "boot.json"
    assert bench.main([str(tiny_model_dir), str(tiny_model_dir), "--data", str(tiny_conll_file),
                       "--samples", "20", "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    nlp = spacy_aner.load(tiny_model_dir)
    corpus = read_conll(tiny_conll_file).sentences
    expected = entity_scores([s.tags for s in corpus], predict_gold_words(nlp, [s.words for s in corpus], progress=False))
    assert result["f1_a"] == result["f1_b"] == pytest.approx(expected["micro"]["f1"], abs=1e-9)
    assert result["ci95"] == [0.0, 0.0] and result["model_a"]["sha256"] == result["model_b"]["sha256"]
    assert result["command"].startswith("python benchmarks/paired_bootstrap.py ")
    with pytest.raises(SystemExit):
        bench.main([str(tiny_model_dir), str(tiny_model_dir), "--data", str(tiny_conll_file), "--samples", "0"])


def test_unseen_entities_split_by_training_surface():
    bench = _load_benchmark("unseen_entities")
    train_words = [["زار", "محمد", "علي", "القاهرة"]]
    seen = bench.surfaces(train_words, bench.entities([["O", "B-PERS", "I-PERS", "B-LOC"]]))
    assert seen == {("محمد", "علي"), ("القاهرة",)}
    words = [["محمد", "علي", "في", "القاهرة"], ["سمير", "في", "دمشق"]]
    gold = [["B-PERS", "I-PERS", "O", "B-LOC"], ["B-PERS", "O", "B-LOC"]]
    pred = [["B-PERS", "I-PERS", "O", "B-ORG"], ["B-PERS", "B-LOC", "O"]]
    scores = bench.split_scores(words, gold, pred, seen)
    # seen gold: محمد علي (found), القاهرة (wrong type); unseen gold: سمير (found), دمشق (missed)
    assert scores["seen"]["recall"] == pytest.approx(50.0) and scores["seen"]["precision"] == pytest.approx(50.0)
    assert scores["unseen"]["recall"] == pytest.approx(50.0)
    assert scores["unseen"]["precision"] == pytest.approx(50.0)  # سمير right, في wrong
    assert scores["all"]["f1"] == pytest.approx(entity_scores(gold, pred)["micro"]["f1"])
    share = bench.unseen_share(words, gold, seen)
    assert (share["entities"], share["unseen"], share["unseen_percent"]) == (4, 2, 50.0)
    assert share["per_type"]["PERS"] == {"entities": 2, "unseen": 1, "unseen_percent": 50.0}
    assert share["per_type"]["LOC"] == {"entities": 2, "unseen": 1, "unseen_percent": 50.0}


def test_unseen_entities_script_counts_without_tagging(tiny_model_dir, tiny_conll_file, tmp_path):
    bench = _load_benchmark("unseen_entities")
    out = tmp_path / "unseen.json"
    assert bench.main([str(tiny_model_dir), "--train", str(tiny_conll_file), "--data", str(tiny_conll_file),
                       "--count", str(tiny_conll_file), "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["data"]["unseen"] == 0 and result["counted"][str(tiny_conll_file)]["unseen"] == 0
    scores = result["models"][str(tiny_model_dir)]
    assert scores["unseen"]["gold"] == 0 and scores["seen"]["gold"] == scores["all"]["gold"] > 0


def _cross_validation():
    from conftest import load_script  # tests/ is on sys.path under pytest

    return load_script(Path(__file__).parents[1] / "benchmarks" / "cross_validation.py", "cross_validation")


def test_cross_validation_folds_are_contiguous_and_cover_every_sentence(tmp_path):
    cv = _cross_validation()
    for n, k in ((10, 2), (11, 3), (3973, 5), (5, 5)):
        bounds = cv.fold_bounds(n, k)
        assert bounds[0][0] == 0 and bounds[-1][1] == n and len(bounds) == k
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
        assert max(e - s for s, e in bounds) - min(e - s for s, e in bounds) <= 1
    for n, k in ((5, 1), (3, 4)):
        with pytest.raises(ValueError):
            cv.fold_bounds(n, k)
    blocks = [f"كلمة{i}\tO\nو\tB-LOC" for i in range(7)]
    (tmp_path / "all.conll").write_text("\n\n".join(blocks) + "\n\n\n", encoding="utf-8")
    assert cv.read_blocks(tmp_path / "all.conll") == blocks
    folds = cv.write_folds(blocks, 3, tmp_path / "w")
    helds = [cv.read_blocks(h) for _, h in folds]
    assert sum(helds, []) == blocks  # the held-out blocks, in order, are the file
    for (train, _), held in zip(folds, helds):
        assert sorted(cv.read_blocks(train) + held) == sorted(blocks)
        assert [b for b in blocks if b not in held] == cv.read_blocks(train)  # order kept


@pytest.mark.slow
def test_cross_validation_script_trains_scores_and_resumes(tiny_conll_file, tmp_path, capsys):
    cv = _cross_validation()
    small = "--lstm-units 4 --lstm-layers 1 --char-filters 4 --epochs 1"
    out = tmp_path / "cv.json"
    args = [str(tiny_conll_file), "--folds", "2", "--jobs", "2", "--workdir", str(tmp_path / "w"),
            "--recipe", f"a={small}", "--recipe", f"b={small} --seed 5", "--output", str(out)]
    assert cv.main(args) == 0
    assert "4 training run(s) to do" in capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["fold_sentences"] == [len(cv.read_blocks(tiny_conll_file)) // 2] * 2
    for name in ("a", "b"):
        rec = result["recipes"][name]
        assert len(rec["folds"]) == 2 and 0 <= rec["pooled"]["micro"]["f1"] <= 100
        meta = json.loads((tmp_path / "w" / name / "fold_1" / "meta.json").read_text())
        assert meta["dev"]["file"].endswith("heldout.conll")  # early-stopped on the block it is scored on
    assert json.loads((tmp_path / "w" / "b" / "fold_0" / "meta.json").read_text())["hyperparameters"]["seed"] == 5
    paired = result["paired"]
    assert paired["fold_differences"] == [round(b["f1"] - a["f1"], 2) for a, b in
                                          zip(result["recipes"]["a"]["folds"], result["recipes"]["b"]["folds"])]
    assert cv.main(args) == 0  # finished runs are reused
    assert "0 training run(s) to do" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cv.main(args[:-4] + ["--recipe", "a=--epochs 1", "--recipe", "a=--epochs 2"])
    # --blocks: only the first block's runs, the cut unchanged; {fold} in a recipe is the block number
    first = [str(tiny_conll_file), "--folds", "2", "--blocks", "1", "--workdir", str(tmp_path / "w"),
             "--recipe", f"c={small} --seed 7{{fold}}", "--output", str(out)]
    assert cv.main(first) == 0
    assert "1 training run(s) to do" in capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["blocks_run"] == 1 and len(result["recipes"]["c"]["folds"]) == 1
    assert not (tmp_path / "w" / "c" / "fold_1").exists()
    assert json.loads((tmp_path / "w" / "c" / "fold_0" / "meta.json").read_text())["hyperparameters"]["seed"] == 70
    capsys.readouterr()
    with pytest.raises(SystemExit):
        cv.main(first[:4] + ["3"] + first[5:])  # --blocks 3 of 2 folds
    assert "--blocks must be between 1 and --folds (2)" in capsys.readouterr().err


def test_fold_vectors_keep_training_keys_and_keys_frequent_without_the_train_text():
    """A held-out word keeps its vector only if the news corpus alone made it frequent enough."""
    from conftest import load_script
    from gensim.models import KeyedVectors

    fv = load_script(Path(__file__).parents[1] / "benchmarks" / "fold_vectors.py", "fold_vectors")
    kv = KeyedVectors(2)
    counts = {"في": 50, "محمد": 9, "الرباط": 4, "يعيش": 3, "نادرة": 2}
    kv.add_vectors(list(counts), np.zeros((len(counts), 2), dtype="float32"))
    for key, n in counts.items():
        kv.set_vecattr(key, "count", n)
    outside = Counter({"محمد": 7, "الرباط": 1, "يعيش": 3, "نادرة": 2})  # their counts in the train file
    # محمد: 9 - 7 = 2 < 3, dropped unless a fold trains on it; الرباط: 4 - 1 = 3 kept;
    # يعيش: 3 - 3 = 0 but in this fold's training text; نادرة: 0, not a training key, dropped.
    assert fv.fold_keys(kv, {"يعيش"}, outside, 3) == ["في", "الرباط", "يعيش"]
    assert fv.fold_keys(kv, {"محمد", "نادرة"}, outside, 3) == ["في", "محمد", "الرباط", "نادرة"]
    assert fv.fold_keys(kv, set(), Counter(), 3) == ["في", "محمد", "الرباط", "يعيش"]


def test_issue_examples_script_counts_models_right_per_directory(tiny_model_dir, tmp_path):
    from conftest import load_script

    ie = load_script(Path(__file__).parents[1] / "benchmarks" / "issue_examples.py", "issue_examples")
    out = tmp_path / "ex.json"
    assert ie.main([str(tiny_model_dir), "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    rows = result["models"][str(tiny_model_dir)]
    assert list(rows) == [text for text, _ in ie.EXAMPLES]
    counts = result["right_by_directory"][str(tiny_model_dir.parent)]
    assert counts["models"] == 1
    for text, expected in ie.EXAMPLES:
        row = rows[text]
        assert len(row["tags"]) == len(text.split())
        assert row["right"] == (row["entities"] == [list(e) for e in expected])
        assert counts[text] == int(row["right"])
    assert ie.entities(["محمد", "علي", "في", "الرباط"], ["B-PERS", "I-PERS", "O", "B-LOC"]) == \
        [("محمد علي", "PERS"), ("الرباط", "LOC")]
    with pytest.raises(SystemExit):
        ie.main([str(tmp_path / "missing"), "--output", str(out)])


def test_crf_decision_splits_the_path_margin_into_unary_and_crf_parts(tiny_model_dir, tmp_path):
    from itertools import product

    from conftest import load_script
    from spacy_aner.model import Tagger

    cd = load_script(Path(__file__).parents[1] / "benchmarks" / "crf_decision.py", "crf_decision")
    tagger = Tagger.load(tiny_model_dir)
    words = ["زار", "محمد", "القاهرة"]
    unary = tagger._scores([words], 3)[0][:3]
    trans, start, end = tagger._crf_params()
    # path_score is the CRF's: the Viterbi path scores highest of all paths
    k = len(tagger.config.tags)
    best = max(product(range(k), repeat=3), key=lambda p: cd.path_score(unary, p, trans, start, end))
    assert [tagger.config.tags[t] for t in best] == tagger.predict([words])[0]
    d = cd.decision(tagger, words, 1, "B-PERS", "O")
    a, b = list(best), list(best)
    a[1], b[1] = tagger.config.tags.index("B-PERS"), tagger.config.tags.index("O")
    assert d["unary"] == pytest.approx(unary[1, a[1]] - unary[1, b[1]], abs=1e-3)
    assert d["margin"] == pytest.approx(cd.path_score(unary, a, trans, start, end)
                                        - cd.path_score(unary, b, trans, start, end), abs=1e-3)
    assert d["unary"] + d["crf"] == pytest.approx(d["margin"], abs=2e-3)
    assert d["viterbi"] == tagger.config.tags[best[1]]
    assert cd.decision(tagger, words, 1, "O", "O") == {"viterbi": d["viterbi"], "unary": 0.0, "crf": 0.0, "margin": 0.0}
    with pytest.raises(SystemExit):
        cd.main([str(tiny_model_dir), "--sentence", "زار محمد", "--word", "القاهرة"])
    out = tmp_path / "margins.json"
    assert cd.main([str(tiny_model_dir), "--sentence", " ".join(words), "--word", "محمد", "--tags", "B-PERS", "O",
                    "--output", str(out)]) == 0
    record = json.loads(out.read_text(encoding="utf-8"))
    assert record["models"] == {str(tiny_model_dir): d} and record["word"] == "محمد"


def test_cv_transition_scale_decodes_with_scaled_crf_scores_and_restores_them(tiny_model_dir):
    from conftest import load_script
    from spacy_aner.model import Tagger

    ts = load_script(Path(__file__).parents[1] / "benchmarks" / "cv_transition_scale.py", "cv_transition_scale")
    tagger = Tagger.load(tiny_model_dir)
    words = [["زار", "محمد", "القاهرة", "أمس"], ["محمد", "علي"]]
    plain = tagger.predict(words)
    preds = ts.scaled_predictions(tagger, words, [1.0, 0.0])
    assert preds[1.0] == plain
    tags = tagger.config.tags
    for w, p in zip(words, preds[0.0]):  # no CRF scores: each word's best unary score
        assert p == [tags[k] for k in tagger._scores([w], len(w))[0][: len(w)].argmax(-1)]
    assert tagger.predict(words) == plain and "_crf_params" not in vars(tagger)  # the trained scores are back


def test_cv_transition_scale_scores_each_scale_against_the_trained_one(tiny_model_dir, tiny_conll_file, tmp_path):
    from conftest import load_script

    ts = load_script(Path(__file__).parents[1] / "benchmarks" / "cv_transition_scale.py", "cv_transition_scale")
    work = tmp_path / "cv"
    for k in range(2):  # two held-out blocks; recipe b has a model for the first only (a --blocks run)
        (work / f"fold_{k}").mkdir(parents=True)
        shutil.copy(tiny_conll_file, work / f"fold_{k}" / "heldout.conll")
        shutil.copytree(tiny_model_dir, work / "a" / f"fold_{k}")
    shutil.copytree(tiny_model_dir, work / "b" / "fold_0")
    out = tmp_path / "ts.json"
    assert ts.main(["--workdir", str(work), "--recipe", "a", "--recipe", "b", "--scales", "0", "1",
                    "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["blocks"] == {"a": [0, 1], "b": [0]}
    a, both = result["recipes"]["a"], result["all"]
    assert list(a) == ["1", "0"] and "vs_1" not in a["1"]
    assert a["1"]["block_f1"][0] == a["1"]["block_f1"][1] == result["recipes"]["b"]["1"]["block_f1"][0]
    assert both["0"]["vs_1"]["pooled_difference"] == \
        round(both["0"]["pooled"]["micro"]["f1"] - both["1"]["pooled"]["micro"]["f1"], 2)
    assert len(both["1"]["block_f1"]) == 3
    with pytest.raises(SystemExit):
        ts.main(["--workdir", str(work), "--recipe", "missing", "--output", str(out)])


@pytest.mark.slow
def test_cv_added_vectors_pairs_recipes_with_every_row(tiny_conll_file, tiny_vectors_kv, tmp_path, capsys):
    """cv_added_vectors.py: same fold networks with and without the rows, and two recipes against each other."""
    from conftest import load_script
    from gensim.models import KeyedVectors

    bench = Path(__file__).parents[1] / "benchmarks"
    cv = _cross_validation()
    added = load_script(bench / "cv_added_vectors.py", "cv_added_vectors")
    small = f"--lstm-units 4 --lstm-layers 1 --char-filters 4 --epochs 1 --vectors {tiny_vectors_kv}"
    work = tmp_path / "w"
    assert cv.main([str(tiny_conll_file), "--folds", "2", "--jobs", "2", "--workdir", str(work),
                    "--recipe", f"a={small}", "--recipe", f"b={small} --seed 5",
                    "--output", str(tmp_path / "cv.json")]) == 0
    kv = KeyedVectors.load(str(tiny_vectors_kv))
    for k in range(2):  # every fold gets the whole tiny file as its vector file
        kv.save(str(work / f"fold_{k}" / "vectors.kv"))
    out = tmp_path / "added.json"
    assert added.main(["--workdir", str(work), "--recipe", "a", "--recipe", "b", "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["blocks"] == 2
    for name in ("a", "b"):
        rec = result["recipes"][name]
        assert len(rec["rows_added"]) == 2 and all(n >= 0 for n in rec["rows_added"])
        assert rec["paired"]["block_differences"] == [round(y["f1"] - x["f1"], 2) for x, y in
                                                      zip(rec["before"]["folds"], rec["after"]["folds"])]
        assert (work / f"{name}+vectors" / "fold_1" / "model.weights.h5").is_file()
    a, b = (result["recipes"][n]["after"] for n in ("a", "b"))
    between = result["between"]
    assert between["block_differences"] == [round(y["f1"] - x["f1"], 2) for x, y in zip(a["folds"], b["folds"])]
    assert between["pooled_difference"] == round(b["pooled"]["micro"]["f1"] - a["pooled"]["micro"]["f1"], 2)
    assert "b - a (both with every row)" in capsys.readouterr().out
