#!/usr/bin/env python
"""The issue's example sentences tagged by many model directories: which get them right.

Each model directory (``Tagger.load``) tags the sentences from their gold words; a row
is right when its entities are exactly the expected ones. The issue's own example
("محمد يعيش في الرباط": محمد PERS, الرباط LOC) flips with training noise, so a recipe is
judged by how many of its models (e.g. its cross-validation fold models) get it right.

    python benchmarks/issue_examples.py cv/chars+vectors/fold_* cv/ns+vectors/fold_* \\
        --output benchmarks/results/issue_examples_cv.json
"""
from __future__ import annotations

import argparse
import datetime as _dt
import shlex
import sys
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cross_validation import RESULTS, write_result  # noqa: E402  (the shared JSON writer)

#: (sentence, expected entities as (words, label)), from the issue and the README's Known errors.
EXAMPLES: Tuple[Tuple[str, Tuple[Tuple[str, str], ...]], ...] = (
    ("محمد يعيش في الرباط", (("محمد", "PERS"), ("الرباط", "LOC"))),
    ("أحمد يعيش في الرباط", (("أحمد", "PERS"), ("الرباط", "LOC"))),
    ("محمد علي يعيش في الرباط", (("محمد علي", "PERS"), ("الرباط", "LOC"))),
    ("باريس هي عاصمة فرنسا", (("باريس", "LOC"), ("فرنسا", "LOC"))),
)


def entities(words: Sequence[str], tags: Sequence[str]) -> List[Tuple[str, str]]:
    from spacy_aner.tags import bio_to_spans

    return [(" ".join(words[s:e]), label) for s, e, label in bio_to_spans(tags)]


def tag_examples(model_dir: Path) -> Dict[str, Dict]:
    from spacy_aner.model import Tagger

    sentences = [text.split() for text, _ in EXAMPLES]
    predicted = Tagger.load(model_dir).predict(sentences)
    rows = {}
    for (text, expected), words, tags in zip(EXAMPLES, sentences, predicted):
        found = entities(words, tags)
        rows[text] = {"tags": tags, "entities": found, "right": found == list(expected)}
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", type=Path, help="model directories")
    ap.add_argument("--output", type=Path, default=RESULTS / "issue_examples.json")
    args = ap.parse_args(argv)
    missing = [str(m) for m in args.models if not m.is_dir()]
    if missing:
        ap.error(f"not a directory: {', '.join(missing)}")

    models = {str(m): tag_examples(m) for m in args.models}
    groups: Dict[str, Dict[str, int]] = {}  # parent directory (a recipe) -> sentence -> models right
    for name, rows in models.items():
        group = groups.setdefault(str(Path(name).parent), {text: 0 for text, _ in EXAMPLES} | {"models": 0})
        group["models"] += 1
        for text, row in rows.items():
            group[text] += row["right"]
    result = {"date": _dt.datetime.now().isoformat(timespec="seconds"),
              "command": shlex.join(["python", "benchmarks/issue_examples.py",
                                     *(argv if argv is not None else sys.argv[1:])]),
              "expected": {text: list(expected) for text, expected in EXAMPLES},
              "right_by_directory": groups, "models": models}
    for group, counts in groups.items():
        print(f"{group}: " + "; ".join(f"{text} {counts[text]}/{counts['models']}" for text, _ in EXAMPLES))
    write_result(args.output, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
