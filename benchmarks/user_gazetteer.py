"""User gazetteers at inference: does a list of names the model never trained on help, and
does an unrelated list leave everything else alone?

Two lists are built, each scored against the same model without a list, on the gold words
of ``--file`` (as ``spacy-aner evaluate`` runs the pipeline):

* *held-out names*: every other distinct PERS/LOC/ORG entity string of ``--file`` that is
  not an entity in ``--train`` (half of the unseen names, chosen by a hash of the string). It
  stands for a user who knows the names of a domain (a client list) the model never saw.
  Reported: recall on the mentions of listed names, and on unseen mentions of names not
  listed (the other half: context alone), with and without the list.
* *unrelated names*: the entity strings of ``--train`` whose words never occur in
  ``--file``. Reported: F1 on ``--file`` with and without it (the issue's bar: within 0.3).

    python -m benchmarks.user_gazetteer --model DIR
"""
from __future__ import annotations

import hashlib
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from benchmarks.common import TEST_FILE, TRAIN_FILE, command_line, log, machine_info, parser, read_tagged, write_result

MODULE = "benchmarks.user_gazetteer"
LIST_LABELS = ("PERS", "LOC", "ORG")


def entities(words, tags) -> List[Tuple[int, int, int, str]]:
    """(sentence, start, end, label) of every gold entity (seqeval's default decoding)."""
    from spacy_aner.core.tags import bio_to_spans

    return [(i, a, b, label) for i, (w, t) in enumerate(zip(words, tags)) for a, b, label in bio_to_spans(t)]


def held_out(name: str) -> bool:
    return hashlib.sha256(name.encode("utf-8")).digest()[0] % 2 == 0


def build_lists(words, gold, train_words, train_gold) -> Dict[str, List[Tuple[str, str]]]:
    train_names = {(" ".join(train_words[i][a:b]), label) for i, a, b, label in entities(train_words, train_gold)}
    train_strings = {name for name, _ in train_names}
    test_names = {(" ".join(words[i][a:b]), label) for i, a, b, label in entities(words, gold)}
    unseen = sorted((n, lab) for n, lab in test_names if lab in LIST_LABELS and n not in train_strings)
    test_words = {w for sent in words for w in sent}
    unrelated = sorted((n, lab) for n, lab in train_names
                       if lab in LIST_LABELS and not any(w in test_words for w in n.split()))
    return {"held_out": [(n, lab) for n, lab in unseen if held_out(n)], "unrelated": unrelated,
            "unseen_unlisted": [(n, lab) for n, lab in unseen if not held_out(n)]}


def recall_on(words, gold, pred, names) -> Dict:
    """Recall over gold mentions whose (string, label) is in ``names``."""
    from spacy_aner.core.tags import bio_to_spans

    names = set(names)
    predicted = [set(bio_to_spans(p)) for p in pred]
    rows = [(a, b, label) in predicted[i] for i, a, b, label in entities(words, gold)
            if (" ".join(words[i][a:b]), label) in names]
    return {"gold": len(rows), "found": sum(rows), "recall": round(100.0 * sum(rows) / max(1, len(rows)), 2)}


def run(model: Optional[Path], names: List[Tuple[str, str]], words, gold, batch_size: int):
    import spacy_aner
    from spacy_aner.training.evaluation import entity_scores, predict_gold_words

    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        if names:
            path = Path(tmp) / "names.tsv"
            path.write_text("".join(f"{n}\t{lab}\n" for n, lab in names), encoding="utf-8")
            paths.append(str(path))
        nlp = spacy_aner.load(model, gazetteers=paths)
        pred = predict_gold_words(nlp, words, batch_size=batch_size, progress=False)
    return pred, round(entity_scores(gold, pred)["micro"]["f1"], 2)


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = parser(MODULE, __doc__)
    ap.add_argument("--model", type=Path, default=None, help="model directory (default: shipped)")
    ap.add_argument("--file", type=Path, default=TEST_FILE, help="WORD TAG file to score (default: the test split)")
    ap.add_argument("--train", type=Path, default=TRAIN_FILE, help="the file the model was trained on")
    ap.add_argument("--batch-size", type=int, default=256, help="nlp.pipe batch size")
    args = ap.parse_args(argv)
    machine = machine_info()
    words, gold = read_tagged(args.file)
    lists = build_lists(words, gold, *read_tagged(args.train))
    log(f"held-out list: {len(lists['held_out']):,} names; unrelated list: {len(lists['unrelated']):,} names")
    runs = {name: run(args.model, lists[name], words, gold, args.batch_size) for name in ("held_out", "unrelated")}
    runs["none"] = run(args.model, [], words, gold, args.batch_size)
    result = {"model": str(args.model or "shipped"), "file": str(args.file), "train": str(args.train),
              "list_sizes": {k: len(v) for k, v in lists.items() if k != "unseen_unlisted"},
              "f1": {name: f1 for name, (_, f1) in runs.items()},
              "recall_listed_names": {name: recall_on(words, gold, runs[name][0], lists["held_out"])
                                      for name in ("none", "held_out")},
              "recall_unseen_unlisted": {name: recall_on(words, gold, runs[name][0], lists["unseen_unlisted"])
                                         for name in ("none", "held_out")}}
    write_result(args.output, result, command_line(MODULE, argv), machine)
    print("| list | names | test F1 | recall, listed names | recall, unseen names not listed |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name in ("none", "held_out", "unrelated"):
        listed = result["recall_listed_names"].get(name, {}).get("recall", "")
        other = result["recall_unseen_unlisted"].get(name, {}).get("recall", "")
        print(f"| {name} | {result['list_sizes'].get(name, 0):,} | {result['f1'][name]:.2f} | {listed} | {other} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
