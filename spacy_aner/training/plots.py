"""Figures for evaluation reports (matplotlib, no display needed)."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Sequence

from ..core.config import TRAINING_LOG_FILE
from ..core.jsonio import loads_json
from ..core.tags import LABELS


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def per_class_bars(results: Dict[str, Dict], path: Path | str) -> None:
    """Grouped P/R/F1 bars per entity type (and micro/macro), one panel per evaluated file."""
    plt = _pyplot()
    names = list(results)
    fig, axes = plt.subplots(1, len(names), figsize=(6.5 * len(names), 4.2), squeeze=False, sharey=True)
    groups = list(LABELS) + ["micro", "macro"]
    width = 0.27
    for ax, name in zip(axes[0], names):
        scores = results[name]["seqeval_default"]
        rows = [scores[g] if g in ("micro", "macro") else scores["per_type"].get(g, {}) for g in groups]
        for k, (metric, color) in enumerate((("precision", "#4C72B0"), ("recall", "#DD8452"), ("f1", "#55A868"))):
            xs = [i + (k - 1) * width for i in range(len(groups))]
            vals = [r.get(metric, 0.0) for r in rows]
            bars = ax.bar(xs, vals, width, label=metric.capitalize() if metric != "f1" else "F1", color=color)
            if metric == "f1":
                for b, v in zip(bars, vals):
                    ax.text(b.get_x() + b.get_width() / 2, v + 1, f"{v:.1f}", ha="center", va="bottom", fontsize=8)
        support = [scores["per_type"].get(g, {}).get("support", "") for g in LABELS]
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels([f"{g}\n(n={s})" for g, s in zip(LABELS, support)] + ["micro", "macro"])
        ax.set_ylim(0, 105)
        ax.set_title(f"{name}: entity-level P/R/F1 (seqeval)")
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("percent")
    axes[0][0].legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def confusion_matrix(counts: Dict[str, Dict[str, int]], path: Path | str, title: str) -> None:
    """Heat map of gold type × predicted type over exact spans, with missed/spurious cells."""
    import numpy as np

    plt = _pyplot()
    keys = list(counts)
    m = np.array([[counts[g][p] for p in keys] for g in keys], dtype=float)
    m[-1, -1] = np.nan  # "none/none" is not a thing
    fig, ax = plt.subplots(figsize=(6.2, 5.4))
    shown = np.where(np.isnan(m), 0, m)
    im = ax.imshow(np.log1p(shown), cmap="Blues")
    for i in range(len(keys)):
        for j in range(len(keys)):
            if not np.isnan(m[i, j]):
                ax.text(j, i, int(m[i, j]), ha="center", va="center",
                        color="white" if shown[i, j] > shown.max() / 3 else "black", fontsize=9)
    ax.set_xticks(range(len(keys)))
    ax.set_xticklabels(keys[:-1] + ["missed"])
    ax.set_yticks(range(len(keys)))
    ax.set_yticklabels(keys[:-1] + ["spurious"])
    ax.set_xlabel("predicted type (same span)")
    ax.set_ylabel("gold type")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="log(1 + count)")
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def read_training_log(model_dir: Path | str) -> Optional[Dict]:
    """A model directory's ``training.json`` (``{"epochs": [...]}``, an ensemble's
    ``{"members": [[...], ...]}``), None if it has none; ``ValueError`` naming a damaged one."""
    path = Path(model_dir) / TRAINING_LOG_FILE
    if not path.is_file():
        return None
    try:
        log = loads_json(path.read_text(encoding="utf-8"))
        runs = log["members"] if "members" in log else [log["epochs"]]
        if not all(isinstance(run, list) and all(isinstance(e, dict) and "epoch" in e and "loss" in e for e in run)
                   for run in runs):
            raise ValueError("an epoch without its number or loss")
    except (ValueError, TypeError, KeyError) as err:  # not UTF-8 or JSON, another shape
        raise ValueError(f"{path}: not a training log written by spacy-aner ({type(err).__name__}: {err}); "
                         f"remove it to go on without the learning curves") from None
    return log


def training_curves(log: Dict, path: Path | str, member_names: Optional[Sequence[str]] = None) -> None:
    """Training loss and dev entity F1 per epoch from a model's ``training.json``, best epochs marked.

    A single model's log (``{"epochs": [...]}``) also gets one dev F1 line per entity type;
    an ensemble's (``{"members": [[...], ...]}``) one loss and one dev F1 line per member.
    Refit models (no dev set) show their learning rate instead of dev F1. ``member_names``
    label an ensemble's lines (e.g. by seed) instead of "member 1", "member 2", ...
    """
    plt = _pyplot()
    runs = log["members"] if "members" in log else [log["epochs"]]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for k, history in enumerate(runs):
        if not history:
            continue
        epochs = [h["epoch"] for h in history]
        label = ("micro F1" if len(runs) == 1
                 else member_names[k] if member_names and k < len(member_names) else f"member {k + 1}")
        line = ax1.plot(epochs, [h["loss"] for h in history], marker="o", ms=3, label=label)[0]
        if "dev_f1" not in history[0]:  # a refit: no dev set, so the right panel shows the learning rate
            ax2.plot(epochs, [h.get("learning_rate", float("nan")) for h in history], marker="o", ms=3,
                     color=line.get_color(), label=label)
            ax2.set_yscale("log")
            continue
        ax2.plot(epochs, [h["dev_f1"] for h in history], marker="o", ms=3, lw=2.5 if len(runs) == 1 else 1.5,
                 color="black" if len(runs) == 1 else line.get_color(), label=label)
        best = max(history, key=lambda h: h["dev_f1"])
        ax2.axvline(best["epoch"], ls="--", color=line.get_color() if len(runs) > 1 else "grey", lw=0.8)
        if len(runs) == 1:
            ax2.annotate(f"best: epoch {best['epoch']}, F1 {best['dev_f1']:.1f}", (best["epoch"], best["dev_f1"]),
                         textcoords="offset points", xytext=(-120, 10), fontsize=9)
            for label in LABELS:
                vals = [h.get("dev_f1_per_type", {}).get(label) for h in history]
                if any(v is not None for v in vals):
                    ax2.plot(epochs, [v if v is not None else float("nan") for v in vals], lw=1, label=label)
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("training loss (per sentence)")
    ax1.set_title("training loss")
    ax1.grid(alpha=0.3)
    if len(runs) > 1:
        ax1.legend(fontsize=8)
    refit = all(h and "dev_f1" not in h[0] for h in runs if h)
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("learning rate" if refit else "dev entity F1 (seqeval)")
    ax2.set_title("refit without dev: the learning-rate steps replayed" if refit
                  else "dev F1 (early stopping keeps the best epoch)")
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def reliability_diagram(result: Dict, path: Path | str, title: str) -> None:
    """Share of predicted entities exactly right against their mean score, per score bin
    (:func:`~.calibration.reliability`), with the diagonal of perfect calibration and the
    number of entities per bin below."""
    plt = _pyplot()
    bins = [b for b in result["bins"] if b["count"]]
    fig, (ax, hist) = plt.subplots(2, 1, figsize=(5.6, 6.4), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=1, label="perfectly calibrated")
    ax.plot([b["mean_score"] for b in bins], [b["share_correct"] for b in bins], "o-", color="#4C72B0",
            label=f"aner_lstm (ECE {result['ece']:.3f})")
    for b in result["bins"]:
        if b["count"]:
            ax.bar((b["low"] + b["high"]) / 2, b["share_correct"], b["high"] - b["low"], color="#4C72B0",
                   alpha=0.15, edgecolor="#4C72B0", lw=0.5)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of predicted entities exactly right")
    ax.set_title(title)
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    mids = [(b["low"] + b["high"]) / 2 for b in result["bins"]]
    hist.bar(mids, [b["count"] for b in result["bins"]], [b["high"] - b["low"] for b in result["bins"]],
             color="#DD8452", edgecolor="white")
    hist.set_yscale("log")
    hist.set_ylabel("entities")
    hist.set_xlabel("entity score (probability under the CRF)")
    hist.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
