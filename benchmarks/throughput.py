#!/usr/bin/env python
"""Whole-pipeline throughput of ``spacy_aner.load()`` (CAMeL tokenizer + aner_lstm), in words/sec.

The input is the raw text of the ANERCorp test split: each sentence's gold words joined
by single spaces, one Doc per sentence, run through ``nlp.pipe(texts, batch_size=B)``.
Words/sec is the *gold* word count (25,008) divided by the wall-clock time of one full
pass; the figure reported is the median of ``--repeats`` timed passes, after an untimed
warm-up pass (TensorFlow traces its graph on the first call).

Two tokenizer-only baselines are measured in the same run, on the same texts and with
the same batch sizes: the CAMeL Tools tokenizer alone (``spacy_aner.load(ner=False)``),
which gives the pipeline/tokenizer ratio, and ``spacy.blank("ar")``'s rule-based tokenizer.

    python benchmarks/throughput.py --model /path/to/model        # prepares the corpus itself
    python benchmarks/throughput.py --test-conll corpus/test.conll --repeats 5 --profile

Writes ``benchmarks/results/throughput.json`` (``--output``) and prints a Markdown table.
``--profile`` adds a per-stage time breakdown of the aner_lstm pass at the largest batch
size (tokenizer, featurisation, network call, Viterbi, span creation) and a cProfile
listing (``benchmarks/results/throughput_profile.txt``).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DEFAULT_ANERCORP = ROOT.parent / "shared" / "data" / "anercorp"
TARGET_WORDS_PER_SEC = 10_000


# --------------------------------------------------------------------------- shared helpers
# (compare_spacy_ner.py imports these)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def prepare_corpus(anercorp: Path, out_dir: Path, dev_fraction: float = 0.1) -> Path:
    """``spacy-aner prepare ANERCORP OUT --dev-fraction 0.1``; returns ``out_dir``."""
    import warnings

    from spacy_aner.corpus import CorpusWarning, prepare

    log(f"preparing {anercorp} -> {out_dir} (dev fraction {dev_fraction})")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CorpusWarning)  # the release's 113 stray I- tags
        stats = prepare(anercorp, out_dir, dev_fraction=dev_fraction)
    (Path(out_dir) / "stats.json").write_text(json.dumps(stats, indent=2), encoding="utf-8")
    return Path(out_dir)


def read_sentences(test_conll: Path) -> List[List[str]]:
    import warnings

    from spacy_aner.corpus import CorpusWarning, read_conll

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CorpusWarning)
        return [s.words for s in read_conll(test_conll).sentences]


def read_tagged(test_conll: Path):
    """(words, tags) per sentence, tags exactly as in the file."""
    import warnings

    from spacy_aner.corpus import CorpusWarning, read_conll

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CorpusWarning)
        sents = read_conll(test_conll).sentences
    return [s.words for s in sents], [s.tags for s in sents]


def memory_mb() -> Dict[str, float]:
    """Current (VmRSS) and peak (VmHWM) resident set size of this process, in MB."""
    out = {}
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":", 1)
                    out["rss_mb" if key == "VmRSS" else "peak_rss_mb"] = round(int(value.split()[0]) / 1024, 1)
    except OSError:  # not Linux: ru_maxrss only
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out["peak_rss_mb"] = round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)
    return out


def load_average() -> Optional[List[float]]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine_info() -> Dict[str, object]:
    import importlib.metadata as md

    def version(dist: str) -> Optional[str]:
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            return None

    cpu_model = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu_model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    except OSError:
        pass
    tf_version = version("tensorflow") or version("tensorflow-cpu") or version("tensorflow_cpu")
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpu_model": cpu_model,
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average_1_5_15": load_average(),
        "python": platform.python_version(),
        "spacy": version("spacy"),
        "thinc": version("thinc"),
        "tensorflow": tf_version,
        "keras": version("keras"),
        "camel_tools": version("camel-tools") or version("camel_tools"),
        "spacy_aner": version("spacy-aner"),
        "numpy": version("numpy"),
    }


def time_pass(run: Callable[[], int]) -> float:
    return time_pass_cpu(run)[0]


def time_pass_cpu(run: Callable[[], int]):
    """Wall-clock and process CPU seconds (all threads) of one call of ``run``."""
    gc.collect()
    c0, t0 = time.process_time(), time.perf_counter()
    run()
    return time.perf_counter() - t0, time.process_time() - c0


def pipe_runner(nlp, texts: Sequence, batch_size: int) -> Callable[[], int]:
    """A callable that runs ``nlp.pipe`` over all texts and returns the number of entities found."""

    def run() -> int:
        n = 0
        for doc in nlp.pipe(texts, batch_size=batch_size):
            n += len(doc.ents)
        return n

    return run


def measure(run: Callable[[], int], n_words: int, repeats: int, warmup: bool = True) -> Dict[str, object]:
    """Median words/sec over ``repeats`` timed passes, after one untimed warm-up pass."""
    warm = time_pass(run) if warmup else None
    return summarise([time_pass_cpu(run) for _ in range(repeats)], n_words, warm)


def measure_turns(runs: Dict[str, Callable[[], int]], n_words: int, repeats: int) -> Dict[str, Dict[str, object]]:
    """Like :func:`measure` for several runners taking turns pass by pass, so a shared
    machine's load falls on all of them alike and their ratio holds."""
    warm = {name: time_pass(run) for name, run in runs.items()}
    passes: Dict[str, list] = {name: [] for name in runs}
    order = list(runs)
    for r in range(repeats):
        for name in (order if r % 2 == 0 else order[::-1]):  # neither always goes first
            passes[name].append(time_pass_cpu(runs[name]))
    return {name: summarise(passes[name], n_words, warm[name]) for name in runs}


def summarise(both, n_words: int, warm: Optional[float]) -> Dict[str, object]:
    times = [w for w, _ in both]
    cpu = [c for _, c in both]
    med = statistics.median(times)
    return {
        "words_per_sec": round(n_words / med, 1),
        "words_per_cpu_sec": round(n_words / statistics.median(cpu), 1),
        "cpu_s": [round(c, 4) for c in cpu],
        "median_s": round(med, 4),
        "min_s": round(min(times), 4),
        "max_s": round(max(times), 4),
        "times_s": [round(t, 4) for t in times],
        "warmup_s": round(warm, 4) if warm is not None else None,
        "words_per_sec_best": round(n_words / min(times), 1),
    }


def fmt_int(x: Optional[float]) -> str:
    return "–" if x is None else f"{x:,.0f}"


# --------------------------------------------------------------------------- profiling


FEATURISE = "featurise (Vocabulary.distinct_rows, Tagger._batch_inputs)"


@contextmanager
def stage_timers(nlp):
    """Wrap the stages of the aner_lstm pipeline with timers (instance attributes only)."""
    comp = nlp.get_pipe("aner_lstm")
    tagger = comp.tagger
    fn = tagger._scores_fn()
    totals = {"tokenizer": 0.0, FEATURISE: 0.0, "char features (TF, once per predict)": 0.0, "network call (TF)": 0.0,
              "decode (Viterbi, NumPy)": 0.0, "set_annotations (Span + doc.ents)": 0.0,
              "words list in predict()": 0.0}
    counts = {k: 0 for k in totals}

    def timed(name, f):
        def wrapper(*a, **k):
            t0 = time.perf_counter()
            try:
                return f(*a, **k)
            finally:
                totals[name] += time.perf_counter() - t0
                counts[name] += 1
        return wrapper

    saved = {"tokenizer": nlp.tokenizer, "rows": tagger.vocab.distinct_rows, "batch": tagger._batch_inputs,
             "features": tagger._row_features, "decode": tagger.decode,
             "fn": tagger._predict_fn, "set": comp.set_annotations, "predict": comp.predict}
    tok = nlp.tokenizer

    class TimedTokenizer:
        def __call__(self, text):
            return timed("tokenizer", tok)(text)

        def pipe(self, texts, batch_size=1000):
            for t in texts:
                yield self(t)

    orig_tagger_predict = tagger.predict

    def predict(docs):
        t0 = time.perf_counter()
        words = [[t.text for t in doc if not t.is_space] for doc in docs]
        totals["words list in predict()"] += time.perf_counter() - t0
        counts["words list in predict()"] += 1
        return orig_tagger_predict(words, batch_size=comp.batch_size)

    nlp.tokenizer = TimedTokenizer()
    tagger.vocab.distinct_rows = timed(FEATURISE, saved["rows"])
    tagger._batch_inputs = timed(FEATURISE, saved["batch"])
    tagger._row_features = timed("char features (TF, once per predict)", saved["features"])
    tagger.decode = timed("decode (Viterbi, NumPy)", saved["decode"])
    tagger._predict_fn = timed("network call (TF)", fn)
    comp.set_annotations = timed("set_annotations (Span + doc.ents)", saved["set"])
    comp.predict = predict
    try:
        yield totals, counts
    finally:
        nlp.tokenizer = saved["tokenizer"]
        del tagger.vocab.distinct_rows, tagger._batch_inputs, tagger._row_features
        del tagger.decode, comp.set_annotations, comp.predict
        tagger._predict_fn = saved["fn"]


def profile_pipeline(nlp, texts: Sequence[str], n_words: int, batch_size: int, repeats: int,
                     profile_path: Optional[Path]) -> Dict[str, object]:
    import cProfile
    import io
    import pstats

    run = pipe_runner(nlp, texts, batch_size)
    run()  # warm
    breakdown = []
    for _ in range(repeats):
        with stage_timers(nlp) as (totals, counts):
            total = time_pass(run)
        breakdown.append((total, dict(totals), dict(counts)))
    breakdown.sort(key=lambda x: x[0])
    total, totals, counts = breakdown[len(breakdown) // 2]
    # The tagger's predict() time = featurise + network + decode + batching glue.
    stages = {k: {"seconds": round(v, 4), "share_pct": round(100 * v / total, 1), "calls": counts[k]}
              for k, v in totals.items()}
    accounted = sum(totals.values())
    stages["other (spaCy pipe glue, sorting, windows, Python)"] = {
        "seconds": round(total - accounted, 4), "share_pct": round(100 * (total - accounted) / total, 1), "calls": None}
    result = {"batch_size": batch_size, "total_s": round(total, 4),
              "words_per_sec_instrumented": round(n_words / total, 1), "stages": stages}
    if profile_path is not None:
        pr = cProfile.Profile()
        pr.enable()
        run()
        pr.disable()
        buf = io.StringIO()
        stats = pstats.Stats(pr, stream=buf).sort_stats("cumulative")
        stats.print_stats(45)
        buf.write("\n\n---- by internal time ----\n")
        stats.sort_stats("tottime").print_stats(30)
        profile_path.write_text(buf.getvalue(), encoding="utf-8")
        result["cprofile"] = str(profile_path)
    return result


# --------------------------------------------------------------------------- main


def markdown_table(result: Dict) -> str:
    rows = ["| batch size | aner_lstm pipeline (words/s) | pipeline (words/CPU-s) | CAMeL tokenizer only (words/s) "
            "| pipeline / tokenizer | spacy.blank(\"ar\") tokenizer (words/s) |",
            "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    for b in result["batch_sizes"]:
        r = result["runs"][str(b)]
        p, t, s = r["pipeline"], r["camel_tokenizer"], r["blank_ar_tokenizer"]
        ratio = p["words_per_sec"] / t["words_per_sec"]
        rows.append(f"| {b} | {fmt_int(p['words_per_sec'])} | {fmt_int(p['words_per_cpu_sec'])} "
                    f"| {fmt_int(t['words_per_sec'])} | {ratio:.2f} "
                    f"| {fmt_int(s['words_per_sec'])} |")
    return "\n".join(rows)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="aner_lstm model directory (default: the model shipped in the package)")
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--test-conll", type=Path, help="a prepared test.conll (default: prepare --anercorp into a temp dir)")
    src.add_argument("--anercorp", type=Path, default=DEFAULT_ANERCORP,
                     help="CAMeL Lab ANERCorp directory (default: ../shared/data/anercorp beside the repo)")
    ap.add_argument("--repeats", type=int, default=3, help="timed passes per measurement; median reported (>= 3)")
    ap.add_argument("--batch-sizes", default="1,32,256", help="comma-separated nlp.pipe batch sizes")
    ap.add_argument("--output", type=Path, default=RESULTS / "throughput.json")
    ap.add_argument("--baseline-model", help="a second aner_lstm model directory timed in turns with --model "
                                             "at each batch size (ratio in 'pipeline_over_baseline')")
    ap.add_argument("--profile", action="store_true",
                    help="add a per-stage breakdown and cProfile listing at the largest batch size")
    args = ap.parse_args(argv)
    if args.repeats < 3:
        ap.error("--repeats must be at least 3")
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]

    t_start = time.perf_counter()
    info = machine_info()
    with tempfile.TemporaryDirectory(prefix="aner_throughput_") as tmp:
        if args.test_conll:
            test_conll = args.test_conll
        else:
            test_conll = prepare_corpus(args.anercorp, Path(tmp)) / "test.conll"
        sentences = read_sentences(test_conll)
    texts = [" ".join(words) for words in sentences]
    n_words = sum(len(w) for w in sentences)
    log(f"{len(texts):,} sentences, {n_words:,} gold words from {test_conll}")

    import spacy

    import spacy_aner
    from spacy_aner.evaluation import model_hash

    t0 = time.perf_counter()
    nlp = spacy_aner.load(args.model)
    comp = nlp.get_pipe("aner_lstm")
    comp.tagger  # load the network now, not inside the first timed pass
    load_s = time.perf_counter() - t0
    model_dir = comp.model_path
    baseline = None
    if args.baseline_model:
        baseline = spacy_aner.load(args.baseline_model)
        baseline.get_pipe("aner_lstm").tagger
    tok_only = spacy_aner.load(ner=False)
    blank = spacy.blank("ar")

    # Sanity: token counts of both tokenizers on the raw text against the gold words.
    camel_tokens = sum(sum(not t.is_space for t in d) for d in tok_only.pipe(texts))
    blank_tokens = sum(sum(not t.is_space for t in d) for d in blank.pipe(texts))

    runs: Dict[str, Dict] = {}
    for b in batch_sizes:
        log(f"batch size {b}: aner_lstm pipeline ...")
        if baseline is None:
            pipeline = measure(pipe_runner(nlp, texts, b), n_words, args.repeats)
        else:
            both = measure_turns({"model": pipe_runner(nlp, texts, b), "baseline": pipe_runner(baseline, texts, b)},
                                 n_words, args.repeats)
            pipeline = both["model"]
            extra = {"baseline_pipeline": both["baseline"],
                     "pipeline_over_baseline": round(pipeline["words_per_sec"] / both["baseline"]["words_per_sec"], 4)}
            log(f"  baseline {both['baseline']['words_per_sec']:,.0f} words/s")
        log(f"  {pipeline['words_per_sec']:,.0f} words/s; tokenizers ...")
        camel = measure(pipe_runner(tok_only, texts, b), n_words, args.repeats)
        blank_r = measure(pipe_runner(blank, texts, b), n_words, args.repeats)
        runs[str(b)] = {
            "pipeline": pipeline,
            "camel_tokenizer": camel,
            "blank_ar_tokenizer": blank_r,
            "pipeline_over_tokenizer": round(pipeline["words_per_sec"] / camel["words_per_sec"], 4),
        }
        if baseline is not None:
            runs[str(b)].update(extra)
        log(f"  CAMeL tokenizer {camel['words_per_sec']:,.0f} words/s, blank ar {blank_r['words_per_sec']:,.0f} words/s")
    n_ents = pipe_runner(nlp, texts, max(batch_sizes))()

    largest = str(max(batch_sizes))
    best = runs[largest]["pipeline"]["words_per_sec"]
    result: Dict[str, object] = {
        "what": "whole-pipeline throughput, nlp.pipe on raw test sentences (gold words joined by single spaces)",
        "words_per_sec_definition": "gold word count / wall-clock seconds of one full pass; median of repeats after a warm-up pass",
        "test_conll": str(test_conll),
        "sentences": len(texts),
        "gold_words": n_words,
        "tokens_camel": camel_tokens,
        "tokens_blank_ar": blank_tokens,
        "entities_predicted": n_ents,
        "model": str(model_dir),
        "model_sha256": model_hash(model_dir),
        "model_load_s": round(load_s, 3),
        "baseline_model": str(baseline.get_pipe("aner_lstm").model_path) if baseline is not None else None,
        "baseline_model_sha256": model_hash(baseline.get_pipe("aner_lstm").model_path) if baseline is not None else None,
        "repeats": args.repeats,
        "batch_sizes": batch_sizes,
        "component_batch_size": comp.batch_size,
        "runs": runs,
        "target_words_per_sec": TARGET_WORDS_PER_SEC,
        "meets_target_at_largest_batch": best >= TARGET_WORDS_PER_SEC,
        "machine": info,
    }
    if args.profile:
        log(f"profiling at batch size {largest} ...")
        prof_path = args.output.with_name(args.output.stem + "_profile.txt")
        result["profile"] = profile_pipeline(nlp, texts, n_words, int(largest), args.repeats, prof_path)
    result["machine"]["load_average_end"] = load_average()
    result["total_run_s"] = round(time.perf_counter() - t_start, 1)
    table = markdown_table(result)
    result["markdown"] = table
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    print(f"Throughput on the ANERCorp test split ({len(texts):,} sentences, {n_words:,} words), "
          f"median of {args.repeats}; {info['cpu_count']} CPUs, load average {info['load_average_1_5_15']}\n")
    print(table)
    if "profile" in result:
        p = result["profile"]
        print(f"\nStage breakdown at batch size {p['batch_size']} ({p['total_s']:.2f} s per pass):\n")
        print("| stage | seconds | share |\n| --- | ---: | ---: |")
        for name, s in p["stages"].items():
            print(f"| {name} | {s['seconds']:.3f} | {s['share_pct']:.1f}% |")
    if baseline is not None:
        for b in batch_sizes:
            r = runs[str(b)]
            print(f"batch size {b}: baseline {r['baseline_pipeline']['words_per_sec']:,.0f} words/s, "
                  f"model/baseline {r['pipeline_over_baseline']:.3f}")
    print(f"\ntarget {TARGET_WORDS_PER_SEC:,} words/s at batch size {largest}: "
          f"{'met' if result['meets_target_at_largest_batch'] else 'NOT met'} ({best:,.0f})")
    log(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
