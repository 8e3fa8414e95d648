#!/usr/bin/env python
"""Tagger words/sec of network configurations, before training any of them.

Each variant is a ``ModelConfig`` given as JSON (untrained weights: the time does not
depend on them) over the shipped model's vocabulary; all tag the same sentences, taking
turns, so the ratios hold on a noisy machine. A variant that cannot keep the pipeline at
its speed target is not worth cross-validating.

    python benchmarks/architecture_speed.py --data cv/fold_0/heldout.conll \\
        --variant shipped='{"members": 3}' --variant chars='{"members": 3, "char_kernels": [2, 3, 4, 5]}'
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import shlex
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cross_validation import RESULTS, write_result  # noqa: E402  (the shared JSON writer)


def parse_variant(text: str):
    name, sep, config = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"a variant is NAME='{{json config}}', got {text!r}")
    try:
        return name.strip(), json.loads(config)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"{name}: not JSON ({err})") from None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="WORD TAG file whose sentences are tagged")
    ap.add_argument("--variant", type=parse_variant, action="append", required=True)
    ap.add_argument("--model", type=Path, default=None, help="whose vocabulary to use (default: the shipped model)")
    ap.add_argument("--sentences", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--output", type=Path, default=RESULTS / "architecture_speed.json")
    args = ap.parse_args(argv)
    names = [name for name, _ in args.variant]
    if len(set(names)) != len(names):
        ap.error(f"variant names must differ: {names}")

    from spacy_aner.component import DEFAULT_MODEL
    from spacy_aner.corpus import read_conll
    from spacy_aner.model import ModelConfig, Tagger, Vocabulary, build_network

    vocab_data = json.loads(((args.model or DEFAULT_MODEL) / "vocab.json").read_text(encoding="utf-8"))
    vocab = Vocabulary(vocab_data["words"], vocab_data["chars"], vocab_data["max_word_chars"], True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sents = [s.words for s in read_conll(args.data).sentences][: args.sentences]
    words = sum(map(len, sents))
    taggers = {}
    for name, overrides in args.variant:
        config = ModelConfig(**{"max_word_chars": vocab.max_word_chars, **overrides})
        taggers[name] = Tagger(config, vocab, build_network(config, len(vocab.words), len(vocab.chars)))
        taggers[name].predict(sents[:50])  # trace the tf.function once, outside the timing
    times = {name: [] for name in taggers}
    for _ in range(args.repeats):
        for name, tagger in taggers.items():
            start = time.perf_counter()
            tagger.predict(sents)
            times[name].append(time.perf_counter() - start)
    first = next(iter(times))
    result = {"date": _dt.datetime.now().isoformat(timespec="seconds"),
              "command": shlex.join(["python", "benchmarks/architecture_speed.py", *(argv if argv is not None else sys.argv[1:])]),
              "sentences": len(sents), "words": words, "variants": {}}
    for name, ts in times.items():
        med = statistics.median(ts)
        result["variants"][name] = {"config": dict(args.variant)[name], "times_s": [round(t, 3) for t in ts],
                                    "words_per_sec": round(words / med),
                                    "time_relative_to_first": round(med / statistics.median(times[first]), 3)}
        print(f"{name}: {words / med:,.0f} words/s, time x{result['variants'][name]['time_relative_to_first']:.2f} "
              f"against {first} (median of {len(ts)})")
    write_result(args.output, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
