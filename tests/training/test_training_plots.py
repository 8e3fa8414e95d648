"""spacy_aner.training.plots: the PNG figures of an evaluation report (matplotlib, no display)."""
from __future__ import annotations

import pytest

from spacy_aner.training.evaluation import confusion_counts, entity_scores
from spacy_aner.training.plots import confusion_matrix, per_class_bars, training_curves

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
GOLD = [["B-PERS", "I-PERS", "O", "B-LOC", "O", "B-ORG"], ["B-MISC", "O"]]
PRED = [["B-PERS", "I-PERS", "O", "B-ORG", "B-MISC", "O"], ["B-MISC", "O"]]


@pytest.fixture
def closed_figures(monkeypatch):
    """The figures the plotting functions close, to inspect what they drew."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    closed = []
    real_close = plt.close
    monkeypatch.setattr(plt, "close", lambda fig=None: (closed.append(fig), real_close(fig)))
    return closed


def test_per_class_bars_one_panel_per_file(tmp_path, closed_figures):
    results = {"test": {"seqeval_default": entity_scores(GOLD, PRED)},
               "repaired": {"seqeval_default": entity_scores(GOLD, GOLD)}}
    per_class_bars(results, tmp_path / "bars.png")
    assert (tmp_path / "bars.png").read_bytes().startswith(PNG_MAGIC)
    (fig,) = closed_figures
    assert [ax.get_title() for ax in fig.axes] == ["test: entity-level P/R/F1 (seqeval)",
                                                   "repaired: entity-level P/R/F1 (seqeval)"]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()][-2:] == ["micro", "macro"]


def test_confusion_matrix_cells_are_the_counts(tmp_path, closed_figures):
    counts = confusion_counts(GOLD, PRED)
    confusion_matrix(counts, tmp_path / "confusion.png", "test: types")
    assert (tmp_path / "confusion.png").read_bytes().startswith(PNG_MAGIC)
    ax = closed_figures[0].axes[0]
    cells = sorted(int(t.get_text()) for t in ax.texts)
    assert sum(cells) == sum(sum(row.values()) for row in counts.values()) == 5
    assert len(cells) == 5 * 5 - 1  # every cell but none/none
    assert [t.get_text() for t in ax.get_yticklabels()][-1] == "spurious"


def test_training_curves_of_a_run_a_refit_and_an_ensemble(tmp_path, closed_figures):
    run = [{"epoch": e, "loss": 3.0 - e, "dev_f1": 50.0 + e, "dev_f1_per_type": {"PERS": 40.0 + e}} for e in (1, 2, 3)]
    refit = [{"epoch": e, "loss": 3.0 - e, "learning_rate": 3e-3 / e} for e in (1, 2)]
    training_curves({"epochs": run}, tmp_path / "single.png")
    training_curves({"members": [run, run]}, tmp_path / "ens.png", ["seed 13", "seed 14"])
    training_curves({"members": [refit, refit]}, tmp_path / "refit.png")
    for name in ("single", "ens", "refit"):
        assert (tmp_path / f"{name}.png").read_bytes().startswith(PNG_MAGIC)
    (_, f1_single), (loss_ens, f1_ens), (_, lr_refit) = (fig.axes for fig in closed_figures)
    assert [line.get_label() for line in f1_single.get_lines() if not line.get_label().startswith("_")] == \
        ["micro F1", "PERS"]
    assert any("best: epoch 3" in t.get_text() for t in f1_single.texts)
    assert [t.get_text() for t in loss_ens.get_legend().get_texts()] == ["seed 13", "seed 14"]
    assert [line.get_label() for line in f1_ens.get_lines() if not line.get_label().startswith("_")] == \
        ["seed 13", "seed 14"]
    assert [line.get_label() for line in lr_refit.get_lines()] == ["member 1", "member 2"]
    assert lr_refit.get_ylabel() == "learning rate" and lr_refit.get_yscale() == "log"
