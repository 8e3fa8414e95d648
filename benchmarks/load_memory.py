#!/usr/bin/env python
"""Memory and time to load model directories, each in a fresh process, taking turns.

Resident memory after TensorFlow is imported, after ``Tagger.load``, and the process's
peak (which includes the copies made while loading):

    python benchmarks/load_memory.py models/refit_w2_ens spacy_aner/models/aner-lstm --repeats 3
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cross_validation import RESULTS, write_result  # noqa: E402  (the shared JSON writer)

CHILD = r"""
import json, re, resource, sys, time
def rss():
    return int(re.search(r"VmRSS:\s+(\d+)", open("/proc/self/status").read()).group(1)) / 1024
import tensorflow  # noqa: F401  (its own memory is not the model's)
from spacy_aner.model import Tagger
before = rss()
start = time.perf_counter()
tagger = Tagger.load(sys.argv[1])
seconds = time.perf_counter() - start
print(json.dumps({"rss_before_mib": before, "rss_after_mib": rss(), "seconds": seconds,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rows": len(tagger.vocab.words)}))
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", type=Path)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--output", type=Path, default=RESULTS / "load_memory.json")
    args = ap.parse_args(argv)

    runs = {str(m): [] for m in args.models}
    for _ in range(args.repeats):
        for model in args.models:
            out = subprocess.run([sys.executable, "-c", CHILD, str(model)], capture_output=True, text=True, check=True)
            runs[str(model)].append(json.loads(out.stdout.strip().splitlines()[-1]))
    result = {"date": _dt.datetime.now().isoformat(timespec="seconds"),
              "command": shlex.join(["python", "benchmarks/load_memory.py", *(argv if argv is not None else sys.argv[1:])]),
              "models": {}}
    for model, rs in runs.items():
        med = {k: round(statistics.median(r[k] for r in rs), 2) for k in ("rss_before_mib", "rss_after_mib", "peak_mib", "seconds")}
        med["load_mib"] = round(med["rss_after_mib"] - med["rss_before_mib"], 1)
        result["models"][model] = {"rows": rs[0]["rows"], "median": med, "runs": rs}
        print(f"{model}: {rs[0]['rows']:,} rows; +{med['load_mib']:.0f} MiB resident after load, "
              f"peak {med['peak_mib']:.0f} MiB, {med['seconds']:.2f} s (median of {len(rs)})")
    write_result(args.output, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
