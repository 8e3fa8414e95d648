"""spacy_aner.training.crossval: folds, fold files and pooled scores, on tiny hand-made sentences (no training)."""
from __future__ import annotations

import pytest

from spacy_aner.training.corpus import read_conll
from spacy_aner.training.crossval import (
    entity_strings,
    fold_bounds,
    paired_differences,
    pooled_scores,
    recall_by_seen,
    sentence_blocks,
    sum_counts,
    write_folds,
)
from spacy_aner.training.evaluation import entity_scores

#: Five sentences; the third starts with a stray I- tag, which fold files must keep as it is.
CORPUS = (
    "زار\tO\nمحمد\tB-PERS\nالرباط\tB-LOC\n\n"
    "قال\tO\nعلي\tB-PERS\n\n"
    "في\tO\nالأمم\tI-ORG\nالمتحدة\tI-ORG\n\n"
    "باريس\tB-LOC\nجميلة\tO\n\n"
    "حسني\tB-PERS\nمبارك\tI-PERS\n"
)


@pytest.fixture
def blocks():
    return sentence_blocks(CORPUS)


def test_sentence_blocks_splits_where_read_conll_does(tmp_path, blocks):
    path = tmp_path / "c.conll"
    path.write_text(CORPUS, encoding="utf-8")
    with pytest.warns(UserWarning):  # the stray I-ORG
        corpus = read_conll(path)
    assert len(blocks) == len(corpus.sentences) == 5
    assert [[line.split("\t")[0] for line in b.split("\n")] for b in blocks] == [s.words for s in corpus.sentences]


def test_sentence_blocks_tolerate_crlf_bom_and_extra_blank_lines():
    messy = "\ufeffa\tO\r\nb\tB-LOC\r\n\r\n \n\n\nc\tO\n  \n"
    assert sentence_blocks(messy) == ["a\tO\nb\tB-LOC", "c\tO"]
    assert sentence_blocks("") == []


@pytest.mark.parametrize("n,k", [(5, 2), (10, 3), (9000, 5), (7, 7)])
def test_fold_bounds_are_contiguous_near_equal_and_cover_everything(n, k):
    bounds = fold_bounds(n, k)
    assert len(bounds) == k and bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    sizes = [end - start for start, end in bounds]
    assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1


@pytest.mark.parametrize("n,k", [(5, 1), (5, 6), (0, 2)])
def test_fold_bounds_refuse_impossible_cuts(n, k):
    with pytest.raises(ValueError, match="folds"):
        fold_bounds(n, k)


def test_write_folds_hold_out_each_block_once_and_train_on_the_rest_in_order(tmp_path, blocks):
    folds = write_folds(blocks, 2, tmp_path)
    assert [(f.start, f.end) for f in folds] == [(0, 2), (2, 5)]
    held = [sentence_blocks(f.heldout.read_text(encoding="utf-8")) for f in folds]
    assert held[0] + held[1] == blocks
    for fold, h in zip(folds, held):
        train = sentence_blocks(fold.train.read_text(encoding="utf-8"))
        assert train == [b for b in blocks if b not in h]
    assert "\tI-ORG" in folds[1].heldout.read_text(encoding="utf-8").split("\n")[1]  # the stray tag, verbatim


def test_write_folds_leaves_unchanged_files_alone(tmp_path, blocks):
    first = write_folds(blocks, 2, tmp_path)
    stamps = [f.train.stat().st_mtime_ns for f in first]
    second = write_folds(blocks, 2, tmp_path)
    assert first == second
    assert [f.train.stat().st_mtime_ns for f in second] == stamps


GOLD = [  # fold 0: two sentences, fold 1: one
    [["B-PERS", "I-PERS", "O"], ["B-LOC"]],
    [["B-ORG", "O", "B-PERS", "O", "B-LOC"]],
]
PRED = [
    [["B-PERS", "I-PERS", "O"], ["O"]],  # 1 of 2 found, no false positive
    [["B-ORG", "O", "B-LOC", "O", "B-LOC"]],  # 2 of 3 found, 1 false positive
]


def test_pooled_scores_pool_entities_rather_than_average_folds():
    result = pooled_scores(GOLD, PRED)
    assert [f["f1"] for f in result["folds"]] == [pytest.approx(66.67), pytest.approx(66.67)]
    assert [f["entities"] for f in result["folds"]] == [2, 3]
    expected = entity_scores(GOLD[0] + GOLD[1], PRED[0] + PRED[1])
    assert result["pooled"]["micro"] == expected["micro"]
    assert result["pooled"]["micro"]["recall"] == pytest.approx(60.0)  # 3 of 5 gold entities
    assert result["pooled"]["micro"]["precision"] == pytest.approx(75.0)  # 3 of 4 predicted


def test_pooled_scores_need_matching_folds():
    with pytest.raises(ValueError, match="folds"):
        pooled_scores(GOLD, PRED[:1])


def test_paired_differences_are_other_minus_base_per_fold():
    base = pooled_scores(GOLD, PRED)
    better = pooled_scores(GOLD, [PRED[0], GOLD[1]])  # fold 1 now perfect
    diff = paired_differences(base, better)
    assert diff["fold_differences"] == [0.0, pytest.approx(33.33)]
    assert diff["folds_ahead"] == 1 and diff["folds_behind"] == 0
    assert diff["pooled_difference"] > 0
    assert paired_differences(base, base)["fold_differences"] == [0.0, 0.0]
    with pytest.raises(ValueError):
        paired_differences(base, pooled_scores(GOLD[:1], PRED[:1]))


def test_recall_by_seen_splits_gold_entities_by_their_words_in_training():
    train_words = [["حسني", "مبارك", "في", "القاهرة"]]
    seen = entity_strings(train_words, [["B-PERS", "I-PERS", "O", "B-LOC"]])
    assert seen == {("حسني", "مبارك"), ("القاهرة",)}
    words = [["حسني", "مبارك", "زار", "القاهرة", "ثم", "بيروت"], ["مبارك"]]
    gold = [["B-PERS", "I-PERS", "O", "B-ORG", "O", "B-LOC"], ["B-PERS"]]
    pred = [["B-PERS", "I-PERS", "O", "B-LOC", "O", "O"], ["B-PERS"]]
    result = recall_by_seen(words, gold, pred, seen)
    # القاهرة is seen (as LOC) although gold calls it ORG here: seen means its words, any type.
    assert result["seen"] == {"gold": 2, "found": 1, "recall": 50.0}
    assert result["unseen"] == {"gold": 2, "found": 1, "recall": 50.0}  # مبارك alone was never an entity
    assert result["per_type"]["LOC"]["unseen"] == {"gold": 1, "found": 0, "recall": 0.0}
    assert result["per_type"]["PERS"]["seen"]["recall"] == 100.0
    assert sum_counts([result, result])["unseen"] == {"gold": 4, "found": 2, "recall": 50.0}


def test_recall_by_seen_without_entities_is_zero_not_an_error():
    result = recall_by_seen([["a"]], [["O"]], [["B-LOC"]], set())
    assert result["seen"] == {"gold": 0, "found": 0, "recall": 0.0} and result["per_type"] == {}
