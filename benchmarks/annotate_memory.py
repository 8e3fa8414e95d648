"""Peak memory of ``spacy-aner annotate`` on a large input: does it stay flat as the input grows?

1. Writes an input file of ``--size-mb`` MB into a temporary folder, streaming: one news
   paragraph per line from SaudiNewsNet (``--source``, read in place from its ZIP files,
   from the start again when it runs out), each line prefixed with its line number. The
   numbers keep bringing new strings after the source repeats, as dates, figures and names
   do in real corpora: spaCy interns every new string, and a run that never gave that
   memory back would grow with the input. Without SaudiNewsNet (``--source synthetic``)
   the lines are random words of a Zipf-distributed made-up lexicon.
2. Runs ``python -m spacy_aner annotate INPUT -o OUTPUT --model M --n-process N`` as a
   subprocess (under ``nice -n 10`` by default) for each ``--n-process`` value, and polls
   its whole process tree (the command, the fork server and the workers it starts) every
   ``--interval`` seconds from ``/proc``: the sum of RSS, the sum of PSS (shared pages
   counted once, split between the processes sharing them, so a forked worker's pages do
   not count twice) and the largest single RSS. It also records memory against the
   position reached in the input (from ``/proc/PID/fdinfo``) to show the curve is flat.
3. Checks the output has one line per input line and reads docs/sec from the command's
   own summary line; with several ``--n-process`` values, whether their outputs are
   byte-identical.

    python -m benchmarks.annotate_memory --size-mb 100 --n-process 1
    python -m benchmarks.annotate_memory --size-mb 50 --n-process 1 2 --model DIR
    python -m benchmarks.annotate_memory --size-mb 100 --n-process 1 2 --members 1   # the first network alone

Linux only (``/proc``).
"""
from __future__ import annotations

import json
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

from benchmarks.common import SAUDINEWSNET, command_line, log, machine_info, parser, write_result

MODULE = "benchmarks.annotate_memory"
SUMMARY = re.compile(r"([\d,]+) records \(([\d,]+) errors\), ([\d,]+) entities in ([\d.]+) s \(([\d,]+) docs/s\)")


# --------------------------------------------------------------------------- input


def saudinewsnet_paragraphs(folder: Path) -> Iterator[str]:
    """Paragraphs of every article's ``content``, file by file (one ZIP in memory at a time)."""
    zips = sorted(folder.glob("*.zip"))
    if not zips:
        raise FileNotFoundError(f"no *.zip files in {folder}")
    for path in zips:
        with zipfile.ZipFile(path) as z:
            for name in z.namelist():
                for article in json.loads(z.read(name)):
                    for para in (article.get("content") or "").split("\n"):
                        para = para.strip()
                        if para:
                            yield para


def synthetic_paragraphs(seed: int = 0) -> Iterator[str]:
    """Random words of a made-up lexicon of 200,000 Arabic-letter words, Zipf-distributed."""
    rng = random.Random(seed)
    letters = "ابتثجحخدذرزسشصضطظعغفقكلمنهويةىءأإآ"
    lexicon = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 9))) for _ in range(200_000)]
    weights = [1 / (i + 1) for i in range(len(lexicon))]
    while True:
        n = rng.randint(5, 120)
        yield " ".join(rng.choices(lexicon, weights, k=n)) + rng.choice([".", "،", "؟", ""])


def write_input(path: Path, size_mb: float, source: str) -> Dict[str, int]:
    target = int(size_mb * 1_000_000)
    lines = size = 0
    with open(path, "wb", buffering=1 << 20) as f:
        while size < target:
            paragraphs = synthetic_paragraphs() if source == "synthetic" else saudinewsnet_paragraphs(Path(source))
            for para in paragraphs:
                lines += 1
                data = f"{lines} {para}\n".encode("utf-8")
                f.write(data)
                size += len(data)
                if size >= target:
                    break
    return {"bytes": size, "lines": lines}


def count_lines(path: Path) -> int:
    n = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            n += block.count(b"\n")
    return n


# --------------------------------------------------------------------------- /proc


def children_map() -> Dict[int, List[int]]:
    out: Dict[int, List[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
            out.setdefault(ppid, []).append(int(entry.name))
    return out


def process_tree(pid: int) -> List[int]:
    children = children_map()
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, []))
    return tree


def kb_field(path: str, key: str) -> int:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def input_position(pid: int, input_path: Path) -> Optional[int]:
    """Offset the process has read its input file up to (its file descriptor's position)."""
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == str(input_path):
                    with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                        return int(f.readline().split()[1])  # "pos:\t<offset>"
            except OSError:
                continue
    except OSError:
        pass
    return None


def watch(cmd: List[str], input_path: Path, input_bytes: int, interval: float) -> Dict:
    """Run ``cmd``, sampling its process tree's memory every ``interval`` seconds until it exits."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak_rss = peak_pss = peak_single = peak_procs = 0
    timeline = []  # (seconds, fraction of input read, tree RSS, tree PSS); memory in MiB (the keys say mb)
    next_mark = 0.0
    stderr_chunks: List[bytes] = []
    reader = threading.Thread(target=lambda: stderr_chunks.append(proc.stderr.read()), daemon=True)
    reader.start()
    while proc.poll() is None:
        tree = process_tree(proc.pid)
        rss = [kb_field(f"/proc/{p}/status", "VmRSS:") for p in tree]
        pss = sum(kb_field(f"/proc/{p}/smaps_rollup", "Pss:") for p in tree)
        peak_rss, peak_pss = max(peak_rss, sum(rss)), max(peak_pss, pss)
        peak_single, peak_procs = max(peak_single, max(rss, default=0)), max(peak_procs, len(tree))
        pos = input_position(proc.pid, input_path)
        frac = pos / input_bytes if pos is not None else None
        elapsed = time.perf_counter() - start
        if frac is not None and frac >= next_mark:
            timeline.append({"seconds": round(elapsed, 1), "input_read": round(frac, 3),
                             "tree_rss_mb": round(sum(rss) / 1024), "tree_pss_mb": round(pss / 1024)})
            next_mark = frac + 0.05
        time.sleep(interval)
    seconds = time.perf_counter() - start
    reader.join()
    stderr = b"".join(stderr_chunks).decode("utf-8", "replace")
    return {"returncode": proc.returncode, "seconds": round(seconds, 1), "peak_tree_rss_mb": round(peak_rss / 1024),
            "peak_tree_pss_mb": round(peak_pss / 1024), "peak_single_rss_mb": round(peak_single / 1024),
            "max_processes": peak_procs, "timeline": timeline,
            "stderr_tail": "\n".join(line for line in stderr.splitlines()
                                     if not line.startswith(("I0000", "E0000", "WARNING: All log")))[-2000:]}


# --------------------------------------------------------------------------- main


def annotate_command(input_path: Path, out: Path, model: Optional[Path], n: int, batch_size: int,
                     nice: int, members: int = 0) -> List[str]:
    cmd = [sys.executable, "-m", "spacy_aner", "annotate", str(input_path), "-o", str(out),
           "--n-process", str(n), "--batch-size", str(batch_size)]
    cmd += ["--model", str(model)] if model else []
    cmd += ["--members", str(members)] if members else []
    return (["nice", "-n", str(nice)] if nice and shutil.which("nice") else []) + cmd


def run_one(cmd: List[str], input_path: Path, info: Dict[str, int], out: Path, interval: float) -> Dict:
    """Run one ``annotate`` command, watching its memory; its figures, checked against the input."""
    log("$ " + shlex.join(cmd))
    run = watch(cmd, input_path, info["bytes"], interval)
    if run["returncode"] != 0:
        raise RuntimeError(f"annotate failed ({run['returncode']}):\n{run['stderr_tail']}")
    m = SUMMARY.search(run["stderr_tail"])
    lines_out = count_lines(out)
    if lines_out != info["lines"]:
        raise RuntimeError(f"{lines_out} output lines for {info['lines']} input lines")
    run.update({
        "command": shlex.join(cmd), "input_mb": round(info["bytes"] / 1e6, 1), "input_lines": info["lines"],
        "output_lines": lines_out, "output_mb": round(out.stat().st_size / 1e6, 1),
        "annotate_seconds": float(m.group(4)) if m else None,
        "docs_per_second": int(m.group(5).replace(",", "")) if m else None,
        "entities": int(m.group(3).replace(",", "")) if m else None,
        "input_mb_per_second": round(info["bytes"] / 1e6 / run["seconds"], 3),
    })
    log(f"peak RSS {run['peak_tree_rss_mb']:,} MiB (tree), PSS {run['peak_tree_pss_mb']:,} MiB, largest process "
        f"{run['peak_single_rss_mb']:,} MiB; {run['docs_per_second']} docs/s; {run['seconds']:.0f} s")
    return run


def same_file(a: Path, b: Path) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(1 << 20), fb.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


def run_all(args, source: str, workdir: Path) -> Dict:
    input_path = workdir / "input.txt"
    t0 = time.perf_counter()
    info = write_input(input_path, args.size_mb, source)
    log(f"wrote {info['bytes'] / 1e6:,.1f} MB, {info['lines']:,} lines in {time.perf_counter() - t0:.0f} s ({source})")
    runs, outputs = {}, []
    for n in args.n_process:
        out = workdir / f"output_n{n}.jsonl"
        cmd = annotate_command(input_path, out, args.model, n, args.batch_size, args.nice, args.members)
        runs[f"n_process={n}"] = {"n_process": n, **run_one(cmd, input_path, info, out, args.interval)}
        outputs.append(out)
    identical = all(same_file(outputs[0], o) for o in outputs[1:]) if len(outputs) > 1 else None
    return {"input": {"source": source, **info}, "runs": runs, "identical_outputs": identical}


def print_table(result: Dict) -> None:
    print("| input | lines | processes | peak RSS (tree) | peak PSS (tree) | largest process | docs/s | MB/s | time |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in result["runs"].values():
        docs = "–" if r["docs_per_second"] is None else f"{r['docs_per_second']:,}"
        print(f"| {r['input_mb']:,.1f} MB | {r['input_lines']:,} | {r['n_process']} | {r['peak_tree_rss_mb']:,} MiB "
              f"| {r['peak_tree_pss_mb']:,} MiB | {r['peak_single_rss_mb']:,} MiB | {docs} "
              f"| {r['input_mb_per_second']:.2f} | {r['seconds']:,.0f} s |")
    if result["identical_outputs"] is not None:
        print(f"\noutputs {'byte-identical' if result['identical_outputs'] else 'DIFFER'} across --n-process values")


def model_record(model: Optional[Path]) -> Dict[str, str]:
    from spacy_aner.pipeline.component import DEFAULT_MODEL
    from spacy_aner.training.evaluation import model_hash

    path = model or DEFAULT_MODEL
    return {"dir": str(path), "sha256": model_hash(path)}


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = parser(MODULE, __doc__)
    ap.add_argument("--size-mb", type=float, default=100, help="input size in MB (10^6 bytes)")
    ap.add_argument("--n-process", type=int, nargs="+", default=[1], help="process counts to run, e.g. 1 2")
    ap.add_argument("--model", type=Path, default=None, help="model directory (default: the shipped model)")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--members", type=int, default=0, help="annotate --members N (0: the whole ensemble)")
    ap.add_argument("--source", default=str(SAUDINEWSNET), help="SaudiNewsNet folder of *.zip files, or 'synthetic'")
    ap.add_argument("--workdir", type=Path, default=None, help="where the input and outputs go (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the generated input and outputs")
    ap.add_argument("--nice", type=int, default=10, help="run the command under nice -n N (0: not)")
    ap.add_argument("--interval", type=float, default=0.5, help="seconds between memory samples")
    args = ap.parse_args(argv)
    if not Path("/proc/self/status").exists():
        ap.error("this benchmark reads /proc: Linux only")
    source = args.source
    if source != "synthetic" and not Path(source).is_dir():
        log(f"{source} not found: using synthetic text (--source synthetic)")
        source = "synthetic"
    machine = machine_info()
    machine["memory_mb"] = kb_field("/proc/meminfo", "MemTotal:") // 1024
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="annotate_memory_", dir=args.workdir))
    try:
        result = {"what": "peak memory of spacy-aner annotate on a large input", "model": model_record(args.model),
                  **run_all(args, source, workdir)}
    finally:
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    write_result(args.output, result, command_line(MODULE, argv), machine)
    print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
