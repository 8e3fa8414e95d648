"""Whole-pipeline throughput of ``spacy_aner.load()`` (CAMeL tokenizer + aner_lstm), in words/sec.

The input is the raw text of the ANERCorp test split: each sentence's gold words joined
by single spaces, one Doc per sentence, run through ``nlp.pipe(texts, batch_size=B)``.
words/sec = gold words / wall-clock seconds of one full pass, the median of ``--repeats``
timed passes after an untimed warm-up pass (the first makes the network's session and fills the
caches); words per CPU second are recorded too, since other jobs on a shared machine
disturb them much less. In the same run and on the same texts it times two tokenizers
alone: the CAMeL Tools tokenizer (``spacy_aner.load(ner=False)``; pipeline / tokenizer
says how much of the time is the model) and ``spacy.blank("ar")``'s rules.

    python -m benchmarks.throughput --repeats 5
    python -m benchmarks.throughput --model NEW --baseline-model OLD   # two models in turns, pass by pass
    python -m benchmarks.throughput --members 1 --baseline-threads 1   # a thread per core against one
    python -m benchmarks.throughput --profile                          # + time per stage at the largest batch, one thread
    python -m benchmarks.throughput --limit 100 --output /tmp/throughput.json   # a quick check

With ``--baseline-model`` the two pipelines take turns pass by pass, so load on a shared
machine falls on both alike and their ratio (``model_over_baseline``) holds.
"""
from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from benchmarks.common import (
    TEST_FILE,
    command_line,
    fmt_int,
    log,
    machine_info,
    measure,
    measure_turns,
    parser,
    pipe_runner,
    read_tagged,
    time_pass,
    write_result,
)

MODULE = "benchmarks.throughput"


# --------------------------------------------------------------------------- per-stage profile


@contextmanager
def stage_timers(nlp):
    """Time the stages of the aner_lstm pipeline by wrapping them on the loaded objects
    (instance attributes only, removed afterwards: nothing in the package changes)."""
    comp = nlp.get_pipe("aner_lstm")
    tagger = comp.tagger
    totals: Dict[str, float] = {}

    def timed(name, f):
        totals.setdefault(name, 0.0)

        def wrapper(*a, **k):
            t0 = time.perf_counter()
            try:
                return f(*a, **k)
            finally:
                totals[name] += time.perf_counter() - t0
        return wrapper

    tokenizer, scorer = nlp.tokenizer, tagger.scorer

    class TimedTokenizer:
        __call__ = staticmethod(timed("tokenizer (CAMeL)", tokenizer))

        def pipe(self, texts, batch_size=1000):
            return map(self, texts)

    nlp.tokenizer = TimedTokenizer()
    tagger.rows = timed("featurise (distinct keys, word vectors)", tagger.rows)
    tagger.name_features = timed("gazetteer matches", tagger.name_features)
    scorer.scores = timed("network call (unary scores)", scorer.scores)
    tagger.decode = timed("decode (Viterbi)", tagger.decode)
    tagger.entity_probabilities = timed("entity probabilities (forward-backward)", tagger.entity_probabilities)
    comp.set_annotations = timed("set_annotations (consistency, Spans, doc.ents)", comp.set_annotations)
    try:
        yield totals
    finally:
        nlp.tokenizer = tokenizer
        del tagger.rows, tagger.name_features, scorer.scores, tagger.decode, tagger.entity_probabilities
        del comp.set_annotations


def profile_stages(nlp, texts: Sequence[str], n_words: int, batch_size: int, repeats: int) -> Dict[str, object]:
    """Seconds and share of each stage in the median of ``repeats`` instrumented passes."""
    run = pipe_runner(nlp, texts, batch_size)
    run()  # warm-up
    passes = []
    for _ in range(repeats):
        with stage_timers(nlp) as totals:
            total = time_pass(run)[0]
        passes.append((total, dict(totals)))
    total, totals = sorted(passes, key=lambda p: p[0])[len(passes) // 2]
    totals["other (spaCy pipe, sentence split, batching, Python)"] = total - sum(totals.values())
    return {"batch_size": batch_size, "total_s": round(total, 4),
            "words_per_sec_instrumented": round(n_words / total, 1),
            "stages": {k: {"seconds": round(v, 4), "share_pct": round(100 * v / total, 1)} for k, v in totals.items()}}


# --------------------------------------------------------------------------- measuring


def load_pipelines(model: Optional[str], baseline: Optional[str], members: int = 0, threads: int = 0,
                   baseline_threads: Optional[int] = None) -> Dict[str, object]:
    """The pipelines to time, their networks loaded now rather than inside the first timed pass.
    A baseline is loaded when named or when ``baseline_threads`` is given (then ``model`` again)."""
    import spacy

    import spacy_aner

    t0 = time.perf_counter()
    pipes = {"model": spacy_aner.load(model, members=members, threads=threads)}
    pipes["model"].get_pipe("aner_lstm").tagger
    load_s = time.perf_counter() - t0
    if baseline or baseline_threads is not None:
        pipes["baseline"] = spacy_aner.load(baseline or model, members=members,
                                            threads=threads if baseline_threads is None else baseline_threads)
        pipes["baseline"].get_pipe("aner_lstm").tagger
    pipes["camel_tokenizer"] = spacy_aner.load(ner=False)
    pipes["blank_ar_tokenizer"] = spacy.blank("ar")
    return {"pipes": pipes, "load_s": round(load_s, 3)}


def time_batch_size(pipes: Dict, texts: List[str], n_words: int, b: int, repeats: int) -> Dict[str, object]:
    models = {name: pipe_runner(pipes[name], texts, b) for name in ("model", "baseline") if name in pipes}
    if len(models) > 1:
        run = measure_turns(models, n_words, repeats)
    else:
        run = {"model": measure(models["model"], n_words, repeats)}
    for name in ("camel_tokenizer", "blank_ar_tokenizer"):
        run[name] = measure(pipe_runner(pipes[name], texts, b), n_words, repeats)
    words_per_sec = {name: r["words_per_sec"] for name, r in run.items()}
    run["model_over_tokenizer"] = round(words_per_sec["model"] / words_per_sec["camel_tokenizer"], 4)
    if "baseline" in run:
        run["model_over_baseline"] = round(words_per_sec["model"] / words_per_sec["baseline"], 4)
    log(f"batch size {b}: " + ", ".join(f"{name} {fmt_int(v)} words/s" for name, v in words_per_sec.items()))
    return run


def count_tokens(nlp, texts: Sequence[str]) -> int:
    return sum(sum(not t.is_space for t in doc) for doc in nlp.pipe(texts))


def model_record(nlp) -> Dict[str, str]:
    from spacy_aner.training.evaluation import model_hash

    path = nlp.get_pipe("aner_lstm").model_path
    return {"dir": str(path), "sha256": model_hash(path)}


def markdown_table(result: Dict) -> str:
    baseline = "baseline" in result["models"]
    head = "| batch size | aner_lstm (words/s) | aner_lstm (words/CPU-s) |"
    head += " baseline (words/s) | model / baseline |" if baseline else ""
    head += " CAMeL tokenizer (words/s) | pipeline / tokenizer | spacy.blank(\"ar\") (words/s) |"
    rows = [head, "|" + " ---: |" * (head.count("|") - 1)]
    for b in result["batch_sizes"]:
        r = result["runs"][str(b)]
        row = f"| {b} | {fmt_int(r['model']['words_per_sec'])} | {fmt_int(r['model']['words_per_cpu_sec'])} |"
        if baseline:
            row += f" {fmt_int(r['baseline']['words_per_sec'])} | {r['model_over_baseline']:.3f} |"
        row += (f" {fmt_int(r['camel_tokenizer']['words_per_sec'])} | {r['model_over_tokenizer']:.3f} |"
                f" {fmt_int(r['blank_ar_tokenizer']['words_per_sec'])} |")
        rows.append(row)
    return "\n".join(rows)


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = parser(MODULE, __doc__)
    ap.add_argument("--model", help="aner_lstm model directory (default: the model shipped in the package)")
    ap.add_argument("--baseline-model", help="a second model directory, timed in turns with --model")
    ap.add_argument("--members", type=int, default=0, help="the component's members, for both models")
    ap.add_argument("--threads", type=int, default=0, help="the component's threads (0: one per core)")
    ap.add_argument("--baseline-threads", type=int, default=None,
                    help="the baseline's threads (default --threads); alone, times --model against itself")
    ap.add_argument("--test-file", type=Path, default=TEST_FILE, help="WORD TAG file whose sentences are the texts")
    ap.add_argument("--limit", type=int, default=None, help="only the first N sentences (quick checks)")
    ap.add_argument("--repeats", type=int, default=3, help="timed passes per measurement; the median is reported")
    ap.add_argument("--batch-sizes", default="1,32,256", help="comma-separated nlp.pipe batch sizes")
    ap.add_argument("--profile", action="store_true", help="add the time per stage at the largest batch size, on one thread")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error("--repeats must be at least 1")
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    machine = machine_info()
    t_start = time.perf_counter()
    words, _ = read_tagged(args.test_file, args.limit)
    texts, n_words = [" ".join(w) for w in words], sum(map(len, words))
    log(f"{len(texts):,} sentences, {n_words:,} gold words from {args.test_file}")
    loaded = load_pipelines(args.model, args.baseline_model, args.members, args.threads, args.baseline_threads)
    pipes = loaded["pipes"]
    runs = {str(b): time_batch_size(pipes, texts, n_words, b, args.repeats) for b in batch_sizes}
    result: Dict[str, object] = {
        "what": "whole-pipeline throughput: nlp.pipe over raw test sentences (gold words joined by single spaces)",
        "words_per_sec": "gold words / wall-clock seconds of one full pass; median of the repeats after a warm-up pass",
        "test_file": str(args.test_file), "sentences": len(texts), "gold_words": n_words,
        "tokens_camel": count_tokens(pipes["camel_tokenizer"], texts),
        "tokens_blank_ar": count_tokens(pipes["blank_ar_tokenizer"], texts),
        "entities_predicted": pipe_runner(pipes["model"], texts, max(batch_sizes))(),
        "models": {name: model_record(pipes[name]) for name in ("model", "baseline") if name in pipes},
        "members": args.members, "threads": {name: pipes[name].get_pipe("aner_lstm").threads
                                             for name in ("model", "baseline") if name in pipes},
        "model_load_s": loaded["load_s"],
        "component_batch_size": pipes["model"].get_pipe("aner_lstm").batch_size,
        "repeats": args.repeats, "batch_sizes": batch_sizes, "runs": runs,
    }
    if args.profile:  # on one thread: calls side by side would overlap, and the stages not add up to the pass
        import spacy_aner

        one_thread = spacy_aner.load(args.model, members=args.members, threads=1)
        result["profile"] = profile_stages(one_thread, texts, n_words, max(batch_sizes), args.repeats)
    result["total_run_s"] = round(time.perf_counter() - t_start, 1)
    result["markdown"] = markdown_table(result)
    write_result(args.output, result, command_line(MODULE, argv), machine)
    print(f"Throughput on {len(texts):,} test sentences ({n_words:,} words), median of {args.repeats}; "
          f"{machine['cpu_count']} CPUs, load average {machine['load_average_1_5_15']}\n\n{result['markdown']}")
    if args.profile:
        print("\n| stage | seconds | share |\n| --- | ---: | ---: |")
        for name, s in result["profile"]["stages"].items():
            print(f"| {name} | {s['seconds']:.3f} | {s['share_pct']:.1f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
