"""Words/s of ``spacy-aner annotate`` against ``annotate --spark`` on a standalone cluster of 1 and 2 workers.

1. For each ``--sizes-mb`` value, writes an input of SaudiNewsNet paragraphs, one per line
   (as ``benchmarks.annotate_memory`` does; ``--source synthetic`` without SaudiNewsNet).
2. Runs, each as a subprocess on the same inputs in the same run:
   - ``plain``: ``python -m spacy_aner annotate INPUT -o OUT.jsonl`` (one process);
   - ``spark, N worker(s)``: ``... annotate INPUT -o DIR --spark URL`` against a standalone
     master with N workers on 127.0.0.1 (``spacy_aner.annotate.spark_cluster``), each worker
     one core and ``--worker-memory``, so one executor with one Python worker each.
   Times are the command's wall clock: Spark's start, its counting pass and the model loads
   of every Python worker included, as a user waits for them.
3. Samples memory every ``--interval`` s from ``/proc``: the plain command's peak RSS, and
   for each Spark worker the peak RSS of its process tree (the worker JVM, the executor JVM
   it starts, the Python daemon and worker) with the Python part on its own; the driver too.
4. Checks that every Spark output (its part files joined) is byte-identical to the plain one.

From the two sizes, each mode's fixed cost and marginal speed: seconds = fixed + words / speed.

    python -m benchmarks.spark_annotate                       # 1 and 4 MB
    python -m benchmarks.spark_annotate --sizes-mb 0.2 0.5    # a quick check

Linux only (``/proc``); needs the ``spark`` extra and Java.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from benchmarks.annotate_memory import kb_field, model_record, process_tree, write_input
from benchmarks.common import SAUDINEWSNET, command_line, log, machine_info, parser, write_result

MODULE = "benchmarks.spark_annotate"


def count_words(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(len(line.split()) for line in f)


def rss_kb(pid: int) -> int:
    return kb_field(f"/proc/{pid}/status", "VmRSS:")


def is_python(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().startswith("python")
    except OSError:
        return False


class Sampler(threading.Thread):
    """Peak RSS of process trees (the command's, and each Spark worker's) until :meth:`stop`."""

    def __init__(self, roots: Dict[str, int], interval: float) -> None:
        super().__init__(daemon=True)
        self.roots, self.interval = roots, interval
        self.peaks: Dict[str, Dict[str, int]] = {name: {"tree": 0, "python": 0, "processes": 0} for name in roots}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            for name, root in self.roots.items():
                tree = process_tree(root)
                rss = {pid: rss_kb(pid) for pid in tree}
                peak = self.peaks[name]
                peak["tree"] = max(peak["tree"], sum(rss.values()))
                peak["python"] = max(peak["python"], sum(v for pid, v in rss.items() if pid != root and is_python(pid)))
                peak["processes"] = max(peak["processes"], len(tree))
            self.done.wait(self.interval)

    def stop(self) -> Dict[str, Dict[str, int]]:
        self.done.set()
        self.join()
        return {name: {k: round(v / 1024) if k != "processes" else v for k, v in p.items()}
                for name, p in self.peaks.items()}


def run_command(cmd: List[str], workers: Dict[str, int], interval: float, env: Dict[str, str]) -> Dict:
    """Run ``cmd``, sampling its tree and the workers' trees; its wall time and peaks."""
    log("$ " + " ".join(cmd))
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    sampler = Sampler({"command": proc.pid, **workers}, interval)
    sampler.start()
    stderr = proc.communicate()[1].decode("utf-8", "replace")
    seconds = time.perf_counter() - start
    peaks = sampler.stop()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{stderr[-3000:]}")
    return {"seconds": round(seconds, 1), "peaks_mb": peaks, "stderr_tail": stderr[-400:]}


def joined(out: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(out.glob("part-*")))


def run_mode(mode: str, inputs: List[Dict], workdir: Path, args, cluster=None) -> List[Dict]:
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
    rows = []
    for inp in inputs:
        out = workdir / f"{mode}_{inp['size_mb']}"
        cmd = [sys.executable, "-m", "spacy_aner", "annotate", str(inp["path"]), "-q"]
        if cluster is None:
            cmd += ["-o", f"{out}.jsonl"]
            workers = {}
        else:
            cmd += ["-o", str(out), "--spark", cluster.url]
            workers = {f"worker{k + 1}": pid for k, pid in enumerate(cluster.pids()[1:])}
        run = run_command(cmd, workers, args.interval, env)
        if cluster is None:
            inp["plain_output"] = Path(f"{out}.jsonl").read_bytes()
            identical = None
        else:
            identical = joined(out) == inp["plain_output"]
            if not identical:
                raise RuntimeError(f"{mode} output differs from plain annotate's on {inp['path']}")
        row = {"mode": mode, "size_mb": inp["size_mb"], "lines": inp["lines"], "words": inp["words"],
               "seconds": run["seconds"], "words_per_sec": round(inp["words"] / run["seconds"], 1),
               "identical_to_plain": identical, "peaks_mb": run["peaks_mb"]}
        log(f"{mode}, {inp['size_mb']} MB: {run['seconds']:.1f} s, {row['words_per_sec']:,.0f} words/s, "
            f"peaks {run['peaks_mb']}")
        rows.append(row)
    return rows


def fit(rows: List[Dict]) -> Dict[str, Optional[float]]:
    """seconds = fixed + words / marginal words/s, through the smallest and largest input."""
    a, b = min(rows, key=lambda r: r["words"]), max(rows, key=lambda r: r["words"])
    if b["words"] == a["words"] or b["seconds"] <= a["seconds"]:
        return {"fixed_seconds": None, "marginal_words_per_sec": None}
    speed = (b["words"] - a["words"]) / (b["seconds"] - a["seconds"])
    return {"fixed_seconds": round(a["seconds"] - a["words"] / speed, 1), "marginal_words_per_sec": round(speed, 1)}


def print_table(result: Dict) -> None:
    print("| mode | input | words | time | words/s | fixed cost | marginal words/s | peak RSS per worker (Python) | driver / command peak RSS |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for mode, rows in result["modes"].items():
        f = result["fits"][mode]
        for r in rows:
            workers = [v for k, v in r["peaks_mb"].items() if k.startswith("worker")]
            per_worker = ", ".join(f"{w['tree']:,} MB ({w['python']:,})" for w in workers) or "–"
            fixed = "–" if f["fixed_seconds"] is None else f"{f['fixed_seconds']:.0f} s"
            marginal = "–" if f["marginal_words_per_sec"] is None else f"{f['marginal_words_per_sec']:,.0f}"
            print(f"| {mode} | {r['size_mb']} MB | {r['words']:,} | {r['seconds']:.0f} s | {r['words_per_sec']:,.0f} "
                  f"| {fixed} | {marginal} | {per_worker} | {r['peaks_mb']['command']['tree']:,} MB |")


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = parser(MODULE, __doc__)
    ap.add_argument("--sizes-mb", type=float, nargs=2, default=[1.0, 4.0], help="the two input sizes, MB (10^6 bytes)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="cluster sizes to run")
    ap.add_argument("--worker-memory", default="1g", help="memory each worker offers its executor")
    ap.add_argument("--source", default=str(SAUDINEWSNET), help="SaudiNewsNet folder of *.zip files, or 'synthetic'")
    ap.add_argument("--interval", type=float, default=0.5, help="seconds between memory samples")
    args = ap.parse_args(argv)
    from spacy_aner.annotate.spark_cluster import LocalCluster

    source = args.source if args.source == "synthetic" or Path(args.source).is_dir() else "synthetic"
    machine = machine_info()
    machine["pyspark"] = __import__("pyspark").__version__
    workdir = Path(tempfile.mkdtemp(prefix="spark_annotate_"))
    try:
        inputs = []
        for size in sorted(args.sizes_mb):
            path = workdir / f"input_{size}.txt"
            info = write_input(path, size, source)
            inputs.append({"path": path, "size_mb": size, "bytes": info["bytes"], "lines": info["lines"],
                           "words": count_words(path)})
            log(f"input {size} MB: {info['lines']:,} lines, {inputs[-1]['words']:,} words ({source})")
        modes = {"plain": run_mode("plain", inputs, workdir, args)}
        for n in args.workers:
            with LocalCluster(workers=n, cores=1, memory=args.worker_memory) as cluster:
                name = f"spark, {n} worker{'s' if n > 1 else ''}"
                modes[name] = run_mode(name, inputs, workdir, args, cluster)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result = {"what": "words/s of plain annotate and annotate --spark on a local standalone cluster",
              "model": model_record(None), "source": source, "worker_memory": args.worker_memory,
              "inputs": [{k: v for k, v in i.items() if k not in ("path", "plain_output")} for i in inputs],
              "modes": modes, "fits": {mode: fit(rows) for mode, rows in modes.items()}}
    write_result(args.output, result, command_line(MODULE, argv), machine)
    print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
