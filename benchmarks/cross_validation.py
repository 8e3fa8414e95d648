#!/usr/bin/env python
"""K-fold cross-validation over the train file: compare training recipes on all of it.

One held-out tenth (dev, 969 entities) did not predict test for the window-2 choice
(README, *Accuracy on the test split*). This scores recipes on every sentence of the
train file instead: it is cut into ``--folds`` contiguous blocks (contiguous, as the
corpus's own train/test split is, so an article's names do not sit on both sides), and
for each block and each recipe one tagger is trained on the other blocks and
early-stopped on that block, which it is then scored on. The test split is never read.

A recipe is a name and the extra ``spacy-aner train`` options, e.g.
``--recipe w5="--vectors vectors/news_train.kv"``. Every recipe uses the same folds and
``--seed``, so the folds pair them. ``{fold}`` in a recipe's options becomes the fold's
number, for files made per fold (``benchmarks/fold_vectors.py``). Runs whose model
directory already holds a ``meta.json`` from the same fold file are reused, so an
interrupted run resumes.

    python benchmarks/cross_validation.py corpus_full/train.conll --folds 5 --jobs 3 \\
        --recipe w5="--vectors vectors/news_train.kv" --recipe w2="--vectors vectors/news_train_w2.kv" \\
        --workdir cv --output benchmarks/results/cross_validation.json

Reports per recipe the pooled entity-level scores over all folds (seqeval default mode,
as ``spacy-aner evaluate``) and each fold's F1, then, for two recipes, the per-fold
differences and in how many folds the second is ahead.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shlex
import subprocess
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from spacy_aner.corpus import sha256_file  # noqa: E402  (no TensorFlow import)

RESULTS = Path(__file__).parent / "results"


def read_blocks(path: Path) -> List[str]:
    """The file's sentences as their raw text, blank-line separated (nothing re-encoded)."""
    text = path.read_text(encoding="utf-8")
    return [b.strip("\n") for b in text.replace("\r\n", "\n").split("\n\n") if b.strip()]


def fold_bounds(n: int, folds: int) -> List[Tuple[int, int]]:
    """Contiguous [start, end) sentence ranges of near-equal size covering 0..n."""
    if not 2 <= folds <= n:
        raise ValueError(f"need 2 <= folds <= sentences ({n}), got {folds}")
    return [(n * k // folds, n * (k + 1) // folds) for k in range(folds)]


def write_folds(blocks: Sequence[str], folds: int, workdir: Path) -> List[Tuple[Path, Path]]:
    """``fold_k/train.conll`` (the other blocks, in order) and ``fold_k/heldout.conll``."""
    paths = []
    for k, (start, end) in enumerate(fold_bounds(len(blocks), folds)):
        folder = workdir / f"fold_{k}"
        folder.mkdir(parents=True, exist_ok=True)
        train, held = folder / "train.conll", folder / "heldout.conll"
        for path, part in ((train, list(blocks[:start]) + list(blocks[end:])), (held, blocks[start:end])):
            content = "\n\n".join(part) + "\n"
            if not path.is_file() or path.read_text(encoding="utf-8") != content:
                path.write_text(content, encoding="utf-8")
        paths.append((train, held))
    return paths


def _done(model_dir: Path, train: Path) -> bool:
    """A finished run on this very fold file (an interrupted or stale one is redone)."""
    try:
        meta = json.loads((model_dir / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return meta.get("train_sha256") == sha256_file(train)


def train_command(train: Path, held: Path, out: Path, options: Sequence[str], seed: int) -> List[str]:
    return [sys.executable, "-m", "spacy_aner", "train", str(train), "--dev", str(held), "-o", str(out),
            "--seed", str(seed), *options]


def run_all(jobs: List[Tuple[List[str], Path]], workers: int) -> None:
    def one(job):
        cmd, log = job
        with log.open("w", encoding="utf-8") as fh:
            code = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT).returncode
        if code:
            raise RuntimeError(f"exit {code}: {shlex.join(cmd)} (log: {log})")

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(one, jobs):
            pass


def read_heldout(path: Path) -> list:
    """A held-out block's sentences (its stray I- tags were reported when the folds were trained)."""
    from spacy_aner.corpus import CorpusWarning, read_conll

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CorpusWarning)
        return read_conll(path).sentences


def heldout_files(workdir: Path) -> List[Path]:
    """The held-out blocks a run wrote into ``workdir`` (``fold_k/heldout.conll``), in fold order."""
    files: List[Path] = []
    while (workdir / f"fold_{len(files)}" / "heldout.conll").is_file():
        files.append(workdir / f"fold_{len(files)}" / "heldout.conll")
    if not files:
        raise SystemExit(f"no fold_k/heldout.conll under {workdir}: run benchmarks/cross_validation.py first")
    return files


def paired_differences(base_blocks: Sequence[float], blocks: Sequence[float], base_pooled: Dict,
                       pooled: Dict) -> Dict:
    """Per-block F1 differences (rounded to 2 places) and the pooled one: ``blocks`` minus ``base``."""
    diffs = [round(y - x, 2) for x, y in zip(base_blocks, blocks)]
    return {"block_differences": diffs, "blocks_ahead": sum(d > 0 for d in diffs),
            "pooled_difference": round(pooled["micro"]["f1"] - base_pooled["micro"]["f1"], 2)}


def write_result(path: Path, result: Dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"-> {path}")


def score(model_dirs: Sequence[Path], helds: Sequence[Path]) -> Dict:
    """Each fold's scores and the pooled scores of all folds' held-out sentences."""
    from spacy_aner.evaluation import entity_scores
    from spacy_aner.model import Tagger

    gold_all, pred_all, per_fold = [], [], []
    for model_dir, held in zip(model_dirs, helds):
        sents = read_heldout(held)
        gold = [s.tags for s in sents]
        pred = Tagger.load(model_dir).predict([s.words for s in sents])
        fold = entity_scores(gold, pred)
        per_fold.append({"sentences": len(sents), "f1": round(fold["micro"]["f1"], 2),
                         "precision": round(fold["micro"]["precision"], 2), "recall": round(fold["micro"]["recall"], 2)})
        gold_all += gold
        pred_all += pred
    pooled = entity_scores(gold_all, pred_all)
    return {"folds": per_fold, "pooled": pooled}


def parse_recipe(text: str) -> Tuple[str, List[str]]:
    name, sep, options = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"a recipe is NAME=\"train options\", got {text!r}")
    return name.strip(), shlex.split(options)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("train_file", type=Path, help="the whole train file (e.g. corpus_full/train.conll)")
    ap.add_argument("--recipe", type=parse_recipe, action="append", required=True,
                    help='NAME="extra spacy-aner train options"; give one or more')
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--blocks", type=int, default=None,
                    help="train and score only the first K of the --folds blocks (the cut stays the same)")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--jobs", type=int, default=3, help="trainings run side by side")
    ap.add_argument("--workdir", type=Path, required=True, help="fold files, models and logs go here")
    ap.add_argument("--output", type=Path, default=RESULTS / "cross_validation.json")
    args = ap.parse_args(argv)

    names = [name for name, _ in args.recipe]
    if len(set(names)) != len(names):
        ap.error(f"recipe names must differ: {names}")
    if not args.train_file.is_file():
        ap.error(f"file not found: {args.train_file}")
    blocks = read_blocks(args.train_file)
    try:
        folds = write_folds(blocks, args.folds, args.workdir)
    except ValueError as err:
        ap.error(str(err))
    if args.blocks is not None:
        if not 1 <= args.blocks <= args.folds:
            ap.error(f"--blocks must be between 1 and --folds ({args.folds})")
        folds = folds[: args.blocks]

    jobs, dirs = [], {name: [] for name in names}
    for k, (train, held) in enumerate(folds):  # fold by fold, so the first results come early
        for name, options in args.recipe:
            out = args.workdir / name / f"fold_{k}"
            dirs[name].append(out)
            if not _done(out, train):
                out.parent.mkdir(parents=True, exist_ok=True)
                fold_options = [o.replace("{fold}", str(k)) for o in options]
                jobs.append((train_command(train, held, out, fold_options, args.seed), out.parent / f"fold_{k}.log"))
    start = time.perf_counter()
    print(f"{len(jobs)} training run(s) to do, {args.jobs} at a time", flush=True)
    run_all(jobs, args.jobs)
    minutes = (time.perf_counter() - start) / 60

    helds = [held for _, held in folds]
    result = {
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "command": shlex.join(["python", "benchmarks/cross_validation.py", *(argv if argv is not None else sys.argv[1:])]),
        "train_file": str(args.train_file), "train_sha256": sha256_file(args.train_file),
        "folds": args.folds, "blocks_run": len(folds), "seed": args.seed,
        "fold_sentences": [end - start for start, end in fold_bounds(len(blocks), args.folds)],
        "training_minutes_this_run": round(minutes, 1),
        "recipes": {},
    }
    for name, options in args.recipe:
        scores = score(dirs[name], helds)
        result["recipes"][name] = {"train_options": options, **scores}
        micro = scores["pooled"]["micro"]
        print(f"{name}: pooled F1 {micro['f1']:.2f} (P {micro['precision']:.2f} R {micro['recall']:.2f}); "
              f"folds {[f['f1'] for f in scores['folds']]}")
    if len(names) == 2:
        a, b = (result["recipes"][n] for n in names)
        diffs = [round(fb["f1"] - fa["f1"], 2) for fa, fb in zip(a["folds"], b["folds"])]
        result["paired"] = {"b_minus_a": f"{names[1]} - {names[0]}", "fold_differences": diffs,
                            "mean": round(sum(diffs) / len(diffs), 2), "b_ahead": sum(d > 0 for d in diffs),
                            "pooled_difference": round(b["pooled"]["micro"]["f1"] - a["pooled"]["micro"]["f1"], 2)}
        print(f"{names[1]} - {names[0]}: per fold {diffs}, mean {result['paired']['mean']:+.2f}, "
              f"pooled {result['paired']['pooled_difference']:+.2f}, ahead in {result['paired']['b_ahead']} of {len(diffs)}")
    write_result(args.output, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
