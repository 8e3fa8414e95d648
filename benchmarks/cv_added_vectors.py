#!/usr/bin/env python
"""Cross-validation of ``spacy-aner add-vectors``: the same fold models, with and without every vector row.

Each recipe's fold models (``benchmarks/cross_validation.py``) get the rows of their
fold's own vector file (``benchmarks/fold_vectors.py``: no key whose count comes from
the held-out block), and both versions tag their held-out block sentence by sentence.
The networks are the same, so there is no seed noise in the difference. A third
version stores the fold model's own rows in the same bits with none added, to separate
the storage from the rows. The test split is never read.

    python benchmarks/cv_added_vectors.py --workdir cv --recipe w2 --recipe w2s14 \\
        --output benchmarks/results/cv_added_vectors.json
"""
from __future__ import annotations

import argparse
import datetime as _dt
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cross_validation import RESULTS, heldout_files, paired_differences, score, write_result  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", type=Path, required=True, help="cross_validation.py's workdir")
    ap.add_argument("--recipe", action="append", required=True, help="recipe whose fold models get the rows")
    ap.add_argument("--vectors-name", default="vectors.kv", help="the per-fold vector file in fold_k/")
    ap.add_argument("--word-vector-bits", type=int, default=8)
    ap.add_argument("--folds", type=int, default=None, help="only the first K blocks (a run cut short)")
    ap.add_argument("--output", type=Path, default=RESULTS / "cv_added_vectors.json")
    args = ap.parse_args(argv)
    if args.folds is not None and args.folds < 1:
        ap.error("--folds must be at least 1")

    from spacy_aner.training import add_vectors

    helds = heldout_files(args.workdir)[: args.folds]
    result = {"date": _dt.datetime.now().isoformat(timespec="seconds"),
              "command": shlex.join(["python", "benchmarks/cv_added_vectors.py", *(argv if argv is not None else sys.argv[1:])]),
              "word_vector_bits": args.word_vector_bits, "blocks": len(helds), "recipes": {}}
    for recipe in args.recipe:
        base_dirs = [args.workdir / recipe / f"fold_{k}" for k in range(len(helds))]
        new_dirs = [args.workdir / f"{recipe}+vectors" / f"fold_{k}" for k in range(len(helds))]
        stored_dirs = [args.workdir / f"{recipe}+{args.word_vector_bits}bit" / f"fold_{k}" for k in range(len(helds))]
        rows = []
        for k, (base, new, stored) in enumerate(zip(base_dirs, new_dirs, stored_dirs)):
            vectors = args.workdir / f"fold_{k}" / args.vectors_name
            meta = add_vectors(base, vectors, new, word_vector_bits=args.word_vector_bits,
                               command="benchmarks/cv_added_vectors.py")
            rows.append(meta["added_vectors"]["rows_added"])
            add_vectors(base, vectors, stored, max_vocab=0, word_vector_bits=args.word_vector_bits,
                        command="benchmarks/cv_added_vectors.py (storage only)")
        before, after, storage = score(base_dirs, helds), score(new_dirs, helds), score(stored_dirs, helds)
        paired = paired_differences([f["f1"] for f in before["folds"]], [f["f1"] for f in after["folds"]],
                                    before["pooled"], after["pooled"])
        storage_only = paired_differences([f["f1"] for f in before["folds"]], [f["f1"] for f in storage["folds"]],
                                          before["pooled"], storage["pooled"])
        result["recipes"][recipe] = {"rows_added": rows, "before": before, "after": after, "paired": paired,
                                     "storage_only": {"scores": storage, "paired": storage_only}}
        print(f"{recipe}: pooled {before['pooled']['micro']['f1']:.2f} -> {after['pooled']['micro']['f1']:.2f} "
              f"({paired['pooled_difference']:+.2f}); blocks {paired['block_differences']}, "
              f"ahead in {paired['blocks_ahead']} of {len(helds)}; {args.word_vector_bits}-bit storage alone "
              f"{storage_only['pooled_difference']:+.2f} (blocks {storage_only['block_differences']})", flush=True)
        for label in ("PERS", "LOC", "ORG", "MISC"):
            print(f"  {label}: {before['pooled']['per_type'][label]['f1']:.2f} -> "
                  f"{after['pooled']['per_type'][label]['f1']:.2f}")
    if len(args.recipe) == 2:  # the two recipes against each other, both with every row
        a, b = (result["recipes"][r]["after"] for r in args.recipe)
        result["between"] = {"b_minus_a": f"{args.recipe[1]} - {args.recipe[0]} (both with every row)",
                             **paired_differences([f["f1"] for f in a["folds"]], [f["f1"] for f in b["folds"]],
                                                  a["pooled"], b["pooled"])}
        print(f"{result['between']['b_minus_a']}: {result['between']['pooled_difference']:+.2f} pooled, "
              f"blocks {result['between']['block_differences']}")
    write_result(args.output, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
