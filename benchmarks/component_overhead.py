#!/usr/bin/env python
"""What ``split_sentences`` and ``consistency_window`` cost in speed, against 0.1.0's behaviour.

One process, one loaded pipeline, the raw ANERCorp test sentences through
``nlp.pipe(batch_size=256)``; the four settings take turns in every repeat (in alternating
order), so machine noise falls on all of them alike. Words/sec is the gold word count
over the median pass time.

    python benchmarks/component_overhead.py --test-conll corpus_full/test.conll
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cross_validation import RESULTS, write_result  # noqa: E402  (the shared JSON writer)

SETTINGS = {"0.1.0 behaviour": (False, 0), "split_sentences only": (True, 0),
            "consistency_window only": (False, 250), "0.2.0 defaults": (True, 250)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--test-conll", type=Path, required=True, help="the test split as WORD TAG lines")
    ap.add_argument("--model", help="aner_lstm model directory (default: the shipped model)")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--output", type=Path, default=RESULTS / "component_overhead.json")
    args = ap.parse_args(argv)

    import spacy_aner
    from spacy_aner.corpus import CorpusWarning, read_conll

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CorpusWarning)
        sentences = read_conll(args.test_conll).sentences
    texts = [" ".join(s.words) for s in sentences]
    words = sum(len(s.words) for s in sentences)
    nlp = spacy_aner.load(args.model)
    component = nlp.get_pipe("aner_lstm")
    list(nlp.pipe(texts, batch_size=256))  # warm-up: TensorFlow traces its graph
    times = {name: [] for name in SETTINGS}
    for rep in range(args.repeats):
        order = list(SETTINGS.items())
        for name, (split, window) in (order if rep % 2 else order[::-1]):
            component.split_sentences, component.consistency_window = split, window
            start = time.perf_counter()
            list(nlp.pipe(texts, batch_size=256))
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["0.1.0 behaviour"])
    result = {"words": words, "sentences": len(texts), "repeats": args.repeats, "settings": {}}
    for name, ts in times.items():
        median = statistics.median(ts)
        result["settings"][name] = {"split_sentences": SETTINGS[name][0], "consistency_window": SETTINGS[name][1],
                                    "words_per_sec": round(words / median), "relative_time": round(median / base, 3),
                                    "times_s": [round(t, 4) for t in ts]}
        print(f"{name}: {words / median:,.0f} words/s, time x{median / base:.3f}")
    write_result(args.output, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
