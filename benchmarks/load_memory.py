"""Memory and time to load model directories, each load in a fresh process, the directories taking turns.

Each child process imports the tagger core (``spacy_aner.core.tagger``), reads its resident
memory, times ``Tagger.load(DIR)`` (which imports the inference runtime it needs, so that
import counts), and reports resident memory after the load, the process's peak (which
includes the copies made while loading), and whether TensorFlow got imported. Medians over
``--repeats`` rounds; taking turns spreads other jobs' load over all directories alike.
``--preimport MODULE`` imports a module before the first reading, so that its memory and
time are left out of the load's (``--preimport tensorflow``: the model's own share).

    python -m benchmarks.load_memory                                  # the shipped model
    python -m benchmarks.load_memory NEW_MODEL spacy_aner/models/aner-lstm --repeats 5
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from benchmarks.common import ROOT, command_line, log, machine_info, parser, write_result

MODULE = "benchmarks.load_memory"
FIGURES = ("rss_before_mib", "rss_after_mib", "peak_mib", "seconds")

CHILD = r"""
import json, re, resource, sys, time
def rss():
    return int(re.search(r"VmRSS:\s+(\d+)", open("/proc/self/status").read()).group(1)) / 1024
from spacy_aner.core.tagger import Tagger
for name in sys.argv[2:]:
    __import__(name)
before = rss()
start = time.perf_counter()
tagger = Tagger.load(sys.argv[1])
seconds = time.perf_counter() - start
print(json.dumps({"rss_before_mib": before, "rss_after_mib": rss(), "seconds": seconds,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rows": len(tagger.vocab.words), "members": tagger.config.members,
                  "tensorflow_imported": "tensorflow" in sys.modules}))
"""


def load_once(model: Path, preimport: Sequence[str]) -> Dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(model), *preimport], capture_output=True, text=True,
                         cwd=ROOT)
    if out.returncode:
        raise RuntimeError(f"loading {model} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def summary(runs: List[Dict]) -> Dict:
    med = {k: round(statistics.median(r[k] for r in runs), 2) for k in FIGURES}
    med["load_mib"] = round(med["rss_after_mib"] - med["rss_before_mib"], 1)
    first = runs[0]
    return {"rows": first["rows"], "members": first["members"], "tensorflow_imported": first["tensorflow_imported"],
            "median": med, "runs": runs}


def main(argv: Optional[Sequence[str]] = None) -> int:
    from spacy_aner.pipeline.component import DEFAULT_MODEL

    argv = list(sys.argv[1:] if argv is None else argv)
    ap = parser(MODULE, __doc__)
    ap.add_argument("models", nargs="*", type=Path, help="model directories (default: the shipped model)")
    ap.add_argument("--repeats", type=int, default=3, help="fresh-process loads per directory; medians reported")
    ap.add_argument("--preimport", action="append", default=[], metavar="MODULE",
                    help="import MODULE before measuring (repeatable), e.g. tensorflow")
    args = ap.parse_args(argv)
    models = args.models or [DEFAULT_MODEL]
    machine = machine_info()
    runs: Dict[str, List[Dict]] = {str(m): [] for m in models}
    for r in range(args.repeats):
        for model in models:
            runs[str(model)].append(load_once(model, args.preimport))
        log(f"round {r + 1} of {args.repeats} done")
    result = {"what": "Tagger.load of each model directory in a fresh process; memory in MiB",
              "preimported": args.preimport, "repeats": args.repeats,
              "models": {m: summary(rs) for m, rs in runs.items()}}
    write_result(args.output, result, command_line(MODULE, argv), machine)
    print("| model | rows | RSS before load | added by the load | peak RSS | load s | TensorFlow imported |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for model, s in result["models"].items():
        med = s["median"]
        print(f"| {model} | {s['rows']:,} | {med['rss_before_mib']:.0f} MiB | +{med['load_mib']:.0f} MiB "
              f"| {med['peak_mib']:.0f} MiB | {med['seconds']:.2f} | {'yes' if s['tensorflow_imported'] else 'no'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
