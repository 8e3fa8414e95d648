"""K-fold cross-validation over the train file: training recipes compared on all of it, never on test.

The file is cut into ``--folds`` contiguous blocks of whole sentences
(:mod:`spacy_aner.training.crossval`). For each block and each recipe one tagger is trained
(``spacy_aner.training.trainer.train``) on the other blocks, early-stopped on that block
and scored on it: gold words, the tagger alone. Reported per recipe: each fold's F1, the
pooled entity scores over all held-out sentences (seqeval default mode, as ``spacy-aner
evaluate``), and recall on held-out entities seen / unseen in the fold's training part;
then every other recipe against the first, fold by fold (``paired``). Every recipe uses the
same folds, so the folds pair them.

A recipe is ``--recipe "NAME=CONFIG.cfg [--section.key VALUE ...]"`` (repeatable): a name,
a recipe file and overrides written as ``spacy-aner train`` takes them; ``{fold}`` in an
override becomes the fold's number, for files made per fold. Overrides given after all
options apply to every recipe (a recipe's own win). Each fold sets ``paths.train`` and
``paths.dev`` itself; everything else, ``paths.vectors`` and ``training.seed`` included,
comes from the recipe. A fold model whose ``meta.json`` records the same resolved recipe
is reused, so an interrupted run resumes.

    python -m benchmarks.cross_validation corpus_full/train.conll --folds 5 --jobs 2 --workdir cv \\
        --recipe base=configs/aner_lstm.cfg --recipe "seed14=configs/aner_lstm.cfg --training.seed 14"
    python -m benchmarks.cross_validation TRAIN --folds 2 --workdir /tmp/cv --output /tmp/cv.json \\
        --recipe base=configs/aner_lstm.cfg --paths.vectors null --paths.gazetteer null --training.epochs 1 \\
        --model.lstm_units 8

``corpus_full/`` is ``spacy-aner prepare ../shared/data/anercorp corpus_full --dev-fraction 0``; the
recipe's name lists are ``spacy-aner gazetteer build --shared ../shared/data/gazetteers -o
gazetteer/builtin.json.gz`` (``--paths.gazetteer null``: none).
"""
from __future__ import annotations

import json
import multiprocessing
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from benchmarks.common import command_line, log, machine_info, parser, read_tagged, write_result

MODULE = "benchmarks.cross_validation"


def parse_recipe(text: str) -> Tuple[str, str, List[str]]:
    """``"NAME=CONFIG.cfg --a.b 1"`` -> ``("NAME", "CONFIG.cfg", ["--a.b", "1"])``."""
    name, sep, rest = text.partition("=")
    parts = shlex.split(rest)
    if not sep or not name.strip() or not parts:
        raise ValueError(f'a recipe is "NAME=CONFIG.cfg [--section.key VALUE ...]", got {text!r}')
    return name.strip(), parts[0], parts[1:]


def fold_recipe(config: str, overrides: Dict, own: Sequence[str], fold):
    """The recipe of one fold: the file, the common overrides, the recipe's own, then the fold's paths."""
    from spacy_aner.training.recipe import load_recipe, parse_overrides

    own = parse_overrides([o.replace("{fold}", str(fold.index)) for o in own])
    return load_recipe(config, {**overrides, **own, "paths.train": str(fold.train), "paths.dev": str(fold.heldout)})


def is_done(model_dir: Path, recipe) -> bool:
    """A finished run of this very recipe on this very fold file (an interrupted or stale one is redone)."""
    from spacy_aner.training.corpus import sha256_file
    from spacy_aner.training.recipe import Recipe

    try:
        meta = json.loads((model_dir / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    try:  # through Recipe, so that a setting added since with its default still matches
        recorded = Recipe.from_dict(meta.get("config") or {}).to_dict()
    except (TypeError, ValueError):
        return False
    same_recipe = json.loads(json.dumps(recorded)) == json.loads(json.dumps(recipe.to_dict()))
    return same_recipe and meta.get("train_sha256") == sha256_file(recipe.paths.train)


def train_one(recipe_dict: Dict, output: str, command: str) -> Dict:
    """One training, in a worker process of its own (a fresh TensorFlow each time)."""
    import warnings

    from spacy_aner.training.corpus import CorpusWarning
    from spacy_aner.training.recipe import Recipe
    from spacy_aner.training.trainer import train

    with warnings.catch_warnings():
        # Every fold file repeats the source's stray I- tags, read as seqeval reads them.
        warnings.simplefilter("ignore", CorpusWarning)
        meta = train(Recipe.from_dict(recipe_dict), output, verbose=0, command=command)
    return {"output": output, "best_epoch": meta["best_epoch"], "minutes": meta["training_minutes"],
            "dev_f1": round(meta["dev_scores"]["micro"]["f1"], 2)}


def run_trainings(jobs: List[Tuple[Dict, str, str]], workers: int) -> None:
    context = multiprocessing.get_context("spawn")  # TensorFlow does not survive a fork
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, max_tasks_per_child=1) as pool:
        for done in pool.map(train_one, *zip(*jobs)) if jobs else ():
            log(f"trained {done['output']}: best epoch {done['best_epoch']}, held-out F1 {done['dev_f1']:.2f}, "
                f"{done['minutes']} min")


def score_recipe(model_dirs: Sequence[Path], folds) -> Dict:
    """Fold and pooled scores of one recipe's fold models, and pooled recall on seen / unseen entities."""
    from spacy_aner.core.tagger import Tagger
    from spacy_aner.training.crossval import entity_strings, pooled_scores, recall_by_seen, sum_counts

    golds, preds, recalls = [], [], []
    for model_dir, fold in zip(model_dirs, folds):
        words, gold = read_tagged(fold.heldout)
        pred = Tagger.load(model_dir).predict(words)
        golds.append(gold)
        preds.append(pred)
        recalls.append(recall_by_seen(words, gold, pred, entity_strings(*read_tagged(fold.train))))
    return {**pooled_scores(golds, preds), "pooled_recall": sum_counts(recalls),
            "fold_unseen_recall": [r["unseen"]["recall"] for r in recalls]}


def plan(args, recipes, folds, overrides: Dict, command: str):
    """Each recipe's fold model directories, and the trainings still to do (fold by fold, so results come early)."""
    dirs: Dict[str, List[Path]] = {name: [] for name, _, _ in recipes}
    resolved: Dict[str, Dict] = {}
    jobs = []
    for fold in folds:
        for name, config, own in recipes:
            recipe = fold_recipe(config, overrides, own, fold)
            out = args.workdir / name / f"fold_{fold.index}"
            dirs[name].append(out)
            resolved.setdefault(name, recipe.to_dict())
            if not is_done(out, recipe):
                jobs.append((recipe.to_dict(), str(out), f"{command}  # recipe {name}, fold {fold.index}"))
    return dirs, resolved, jobs


def report(result: Dict) -> None:
    for name, r in result["recipes"].items():
        micro, rec = r["pooled"]["micro"], r["pooled_recall"]
        log(f"{name}: pooled F1 {micro['f1']:.2f} (P {micro['precision']:.2f} R {micro['recall']:.2f}); "
            f"folds {[f['f1'] for f in r['folds']]}; recall seen {rec['seen']['recall']:.2f} "
            f"unseen {rec['unseen']['recall']:.2f}")
    for name, p in result["paired"].items():
        log(f"{name} - {result['base']}: per fold {p['fold_differences']}, mean {p['mean']:+.2f}, "
            f"pooled {p['pooled_difference']:+.2f}, ahead in {p['folds_ahead']} of {len(p['fold_differences'])}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    from spacy_aner.training.corpus import sha256_file
    from spacy_aner.training.crossval import paired_differences, sentence_blocks, write_folds
    from spacy_aner.training.recipe import parse_overrides

    argv = list(sys.argv[1:] if argv is None else argv)
    ap = parser(MODULE, __doc__)
    ap.add_argument("train_file", type=Path, help="the whole train file (e.g. corpus_full/train.conll)")
    ap.add_argument("--recipe", action="append", required=True, help='"NAME=CONFIG.cfg [--section.key VALUE ...]"')
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--blocks", type=int, default=None, help="train and score only the first K folds (same cut)")
    ap.add_argument("--jobs", type=int, default=1, help="trainings run side by side, one process each")
    ap.add_argument("--workdir", type=Path, required=True, help="fold files and models go here")
    args, extra = ap.parse_known_args(argv)
    try:
        recipes = [parse_recipe(r) for r in args.recipe]
        overrides = parse_overrides(extra)
        folds = write_folds(sentence_blocks(args.train_file.read_text(encoding="utf-8")), args.folds, args.workdir)
    except (OSError, ValueError) as err:
        ap.error(str(err))
    if len({name for name, _, _ in recipes}) != len(recipes):
        ap.error("recipe names must differ")
    folds = folds[: args.blocks]
    machine, start, command = machine_info(), time.perf_counter(), command_line(MODULE, argv)
    dirs, resolved, jobs = plan(args, recipes, folds, overrides, command)
    log(f"{len(jobs)} training run(s) to do, {args.jobs} at a time")
    run_trainings(jobs, args.jobs)
    scores = {name: score_recipe(dirs[name], folds) for name in dirs}
    base = recipes[0][0]
    result = {"what": "k-fold cross-validation over the train file; held-out blocks scored, test never read",
              "train_file": str(args.train_file), "train_sha256": sha256_file(args.train_file),
              "folds": args.folds, "blocks_run": len(folds), "fold_sentences": [f.end - f.start for f in folds],
              "training_minutes_this_run": round((time.perf_counter() - start) / 60, 1), "base": base,
              "recipes": {name: {"recipe": text, "resolved_fold_0": resolved[name],
                                 "models": [str(d) for d in dirs[name]], **scores[name]}
                          for (name, _, _), text in zip(recipes, args.recipe)},
              "paired": {name: paired_differences(scores[base], scores[name]) for name in dirs if name != base}}
    write_result(args.output, result, command, machine)
    report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
