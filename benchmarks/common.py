"""What the benchmark scripts share: where data and results live, the machine record, timing, the result file."""
from __future__ import annotations

import argparse
import datetime as _dt
import gc
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

# Before anything imports TensorFlow: its C++ start-up chatter would bury the scripts' output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
#: The data lives beside the repository, never in it.
ANERCORP = ROOT.parent / "shared" / "data" / "anercorp"
TRAIN_FILE = ANERCORP / "ANERCorp_CamelLab_train.txt"
TEST_FILE = ANERCORP / "ANERCorp_CamelLab_test.txt"
SAUDINEWSNET = ROOT.parent / "shared" / "data" / "arabic-text" / "SaudiNewsNet"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- command line and result file


def result_path(module: str) -> Path:
    """``benchmarks/results/<script>.json`` for a module name such as ``benchmarks.throughput``."""
    return RESULTS / f"{module.rsplit('.', 1)[-1]}.json"


def parser(module: str, doc: str) -> argparse.ArgumentParser:
    """An argument parser whose help is the script's docstring, with ``--output`` defaulting to its one results file."""
    ap = argparse.ArgumentParser(prog=f"python -m {module}", description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--output", type=Path, default=result_path(module),
                    help=f"results file, replaced by each run (default: {result_path(module).relative_to(ROOT)})")
    return ap


def command_line(module: str, argv: Sequence[str]) -> str:
    return shlex.join(["python", "-m", module, *argv])


def write_result(path: Path, result: Dict, command: str, machine: Optional[Dict] = None) -> None:
    """Write the one JSON result of a run: the command that made it, the machine, then the figures.

    ``machine`` is :func:`machine_info` taken when the run started, so the record has the
    load average at both ends of the run.
    """
    machine = dict(machine or machine_info())
    machine["load_average_end"] = load_average()
    record = {"command": command, "date": machine["date"], "machine": machine, **result}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    log(f"-> {path}")


# --------------------------------------------------------------------------- machine


def load_average() -> Optional[List[float]]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def memory_mb() -> Dict[str, float]:
    """Current (VmRSS) and peak (VmHWM) resident set size of this process, in MB."""
    out = {}
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":", 1)
                    out["rss_mb" if key == "VmRSS" else "peak_rss_mb"] = round(int(value.split()[0]) / 1024, 1)
    except OSError:  # not Linux: the peak only
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out["peak_rss_mb"] = round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)
    return out


def package_version(dist: str) -> Optional[str]:
    import importlib.metadata as md

    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def git_commit() -> Optional[str]:
    """The repository's commit, with ``+changes`` when the working tree differs from it."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("+changes" if dirty else "")


def machine_info() -> Dict[str, object]:
    cpu_model = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu_model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    except OSError:
        pass
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpu_model": cpu_model,
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average_1_5_15": load_average(),
        "python": platform.python_version(),
        "spacy": package_version("spacy"),
        "tensorflow": package_version("tensorflow") or package_version("tensorflow-cpu"),
        "keras": package_version("keras"),
        "numpy": package_version("numpy"),
        "onnxruntime": package_version("onnxruntime"),
        "spacy_aner": package_version("spacy-aner"),
        "git_commit": git_commit(),
    }


# --------------------------------------------------------------------------- corpus


def read_tagged(path: Path, limit: Optional[int] = None) -> Tuple[List[List[str]], List[List[str]]]:
    """(words, tags) per sentence of a ``WORD TAG`` file, the first ``limit`` sentences if given."""
    from spacy_aner.training.corpus import CorpusWarning, read_conll

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CorpusWarning)  # the release's stray I- tags, decoded as seqeval does
        sents = read_conll(path).sentences[:limit]
    return [s.words for s in sents], [s.tags for s in sents]


def prepare_corpus(anercorp: Path, out_dir: Path, dev_fraction: float = 0.1) -> Path:
    """``spacy-aner prepare ANERCORP OUT --dev-fraction F``; returns ``out_dir``."""
    from spacy_aner.training.corpus import CorpusWarning, prepare

    log(f"preparing {anercorp} -> {out_dir} (dev fraction {dev_fraction})")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CorpusWarning)
        stats = prepare(anercorp, out_dir, dev_fraction=dev_fraction)
    (Path(out_dir) / "stats.json").write_text(json.dumps(stats, indent=2), encoding="utf-8")
    return Path(out_dir)


# --------------------------------------------------------------------------- timing


def time_pass(run: Callable[[], int]) -> Tuple[float, float]:
    """Wall-clock and process CPU seconds (all threads) of one call of ``run``."""
    gc.collect()
    c0, t0 = time.process_time(), time.perf_counter()
    run()
    return time.perf_counter() - t0, time.process_time() - c0


def forget_char_features(nlp) -> None:
    """Empty the char features an aner_lstm component keeps from earlier calls, so that a
    timed pass over texts already seen reads none computed in an earlier pass."""
    if "aner_lstm" in nlp.pipe_names:
        nlp.get_pipe("aner_lstm").tagger.scorer.cache.clear()


def pipe_runner(nlp, texts: Sequence, batch_size: int) -> Callable[[], int]:
    """A callable that runs ``nlp.pipe`` over all texts and returns the number of entities
    found, each time without char features kept from the last (:func:`forget_char_features`;
    the tokenizers' caches stay warm, spaCy's as ours)."""

    def run() -> int:
        forget_char_features(nlp)
        return sum(len(doc.ents) for doc in nlp.pipe(texts, batch_size=batch_size))

    return run


def measure(run: Callable[[], int], n_words: int, repeats: int) -> Dict[str, object]:
    """Words/sec of ``repeats`` timed passes after one untimed warm-up pass (graphs are traced on the first)."""
    warm = time_pass(run)[0]
    return summarise([time_pass(run) for _ in range(repeats)], n_words, warm)


def measure_turns(runs: Dict[str, Callable[[], int]], n_words: int, repeats: int) -> Dict[str, Dict[str, object]]:
    """:func:`measure` for several runners taking turns pass by pass, so that load from other
    jobs on a shared machine falls on all of them alike and their ratio holds."""
    warm = {name: time_pass(run)[0] for name, run in runs.items()}
    passes: Dict[str, list] = {name: [] for name in runs}
    order = list(runs)
    for r in range(repeats):
        for name in (order if r % 2 == 0 else order[::-1]):  # neither always goes first
            passes[name].append(time_pass(runs[name]))
    return {name: summarise(passes[name], n_words, warm[name]) for name in runs}


def summarise(passes: Sequence[Tuple[float, float]], n_words: int, warm: Optional[float]) -> Dict[str, object]:
    """Words per second of the median pass, per CPU second, and every pass's time."""
    times = [w for w, _ in passes]
    cpu = [c for _, c in passes]
    med = statistics.median(times)
    return {
        "words_per_sec": round(n_words / med, 1),
        "words_per_cpu_sec": round(n_words / statistics.median(cpu), 1),
        "words_per_sec_best": round(n_words / min(times), 1),
        "median_s": round(med, 4),
        "times_s": [round(t, 4) for t in times],
        "cpu_s": [round(c, 4) for c in cpu],
        "warmup_s": round(warm, 4) if warm is not None else None,
    }


def fmt_int(x: Optional[float]) -> str:
    return "–" if x is None else f"{x:,.0f}"
