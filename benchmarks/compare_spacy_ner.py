"""aner_lstm against spaCy's own ``ner``, trained on the same data and measured in one run.

1. Prepares the ANERCorp CAMeL Lab split (``spacy-aner prepare --dev-fraction 0.1``) unless
   ``--corpus`` names a prepared directory.
2. Trains spaCy's built-in NER with ``python -m spacy train`` on ``train.spacy`` with
   ``dev.spacy`` held out, from ``benchmarks/spacy_ner/config.cfg`` (made by
   ``python -m spacy init config --lang ar --pipeline ner --optimize efficiency``), under
   ``nice`` and a cap of ``--max-steps`` steps or ``--max-minutes`` minutes, whichever comes
   first (spaCy's early stopping still applies). ``--skip-train --spacy-model DIR`` reuses a
   trained pipeline instead.
3. Saves ``spacy_aner.load(--model)`` with ``nlp.to_disk`` so both pipelines load the same
   way, ``spacy.load(DIR)``; for an ensemble, also with ``members=1`` (its first network alone).
4. Measures each pipeline in its own fresh process, so that memory peaks do not mix: load
   time (imports included), test-split entity F1 on the gold words (seqeval default and
   strict IOB2 on the release's tags, and spaCy's Scorer), words/sec on the raw test
   sentences with each pipeline's own tokenizer (``nlp.pipe``, median of ``--repeats``
   after a warm-up pass), and peak RSS after loading and after the run.

    python -m benchmarks.compare_spacy_ner          # spaCy's training alone is capped at --max-minutes
    python -m benchmarks.compare_spacy_ner --skip-train --spacy-model /tmp/spacy_aner_compare/spacy_ner/model-best
    python -m benchmarks.compare_spacy_ner --corpus CORPUS --max-steps 30 --limit 100 --repeats 1 \\
        --work-dir /tmp/cmp --output /tmp/compare_spacy_ner.json    # a quick check

The transformer rows of the table are published figures on the same test split, not
measured here.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from benchmarks.common import (
    ANERCORP,
    ROOT,
    command_line,
    load_average,
    log,
    machine_info,
    measure,
    memory_mb,
    parser,
    pipe_runner,
    prepare_corpus,
    read_tagged,
    write_result,
)
from benchmarks.spacy_ner.deadline import CALLBACK as DEADLINE_CALLBACK

MODULE = "benchmarks.compare_spacy_ner"
SPACY_DIR = ROOT / "benchmarks" / "spacy_ner"
DEFAULT_WORK_DIR = Path(tempfile.gettempdir()) / "spacy_aner_compare"
#: The pipeline of the ensemble's first network alone (the component's ``members=1``).
ONE_MEMBER = "aner_lstm_members_1"
PUBLISHED = [{"name": "AraBERT v0.2-base", "f1": 83.7}, {"name": "CAMeLBERT-MSA", "f1": 82.4}]
PUBLISHED_SOURCE = ("fine-tuned transformers on the same ANERCorp CAMeL Lab test split, as published "
                    "(Inoue et al., 2021, 'The Interplay of Variant, Size, and Task Type in Arabic "
                    "Pre-trained Language Models'); not measured here")
LOG_ROW = re.compile(r"^\s*(\d+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$")


# --------------------------------------------------------------------------- training spaCy's ner


def parse_training_log(text: str) -> Dict[str, object]:
    """The dev evaluations in ``spacy train``'s table (epoch, step, losses, ents_f/p/r, score)."""
    evals = [{"epoch": int(e), "step": int(s), "ents_f": float(f), "ents_p": float(p), "ents_r": float(r)}
             for e, s, _, _, f, p, r, _ in (m.groups() for m in map(LOG_ROW.match, text.splitlines()) if m)]
    if not evals:
        return {"evaluations": []}
    best = max(evals, key=lambda x: x["ents_f"])
    return {"evaluations": evals, "last_evaluated_step": evals[-1]["step"], "epochs": evals[-1]["epoch"],
            "best_dev_ents_f": best["ents_f"], "best_step": best["step"]}


def strip_callback(model_dir: Path) -> None:
    """Drop the deadline hook from a trained pipeline's config, so that it loads without the hook's file."""
    from spacy.util import load_config

    cfg_path = model_dir / "config.cfg"
    if cfg_path.is_file():
        cfg = load_config(cfg_path, interpolate=False)
        if cfg["training"].get("before_update"):
            cfg["training"]["before_update"] = None
            cfg.to_disk(cfg_path)


def capped_config(config: Path, out_dir: Path, max_steps: Optional[int], max_minutes: float,
                  patience: Optional[int]):
    """A copy of ``config`` with the step, patience and time caps, written into ``out_dir``."""
    from spacy.util import load_config

    cfg = load_config(config, interpolate=False)
    if max_steps is not None:
        cfg["training"]["max_steps"] = max_steps
    if patience is not None:
        cfg["training"]["patience"] = patience
    cfg["training"]["before_update"] = {"@callbacks": DEADLINE_CALLBACK, "deadline": time.time() + 60 * max_minutes,
                                        "max_minutes": max_minutes}
    path = out_dir / "train_config.cfg"
    cfg.to_disk(path)
    return path, cfg["training"]


def run_logged(cmd: List[str], log_path: Path) -> Tuple[int, str]:
    """Run ``cmd``, its output into ``log_path``, echoing the evaluation rows and status lines."""
    log("$ " + shlex.join(cmd))
    env = dict(os.environ, ANSI_COLORS_DISABLED="1", NO_COLOR="1", PYTHONUNBUFFERED="1")
    lines: List[str] = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env) as proc, \
            log_path.open("w", encoding="utf-8") as f:
        for line in proc.stdout:
            f.write(line)
            lines.append(line)
            if LOG_ROW.match(line) or line.lstrip().startswith(("✔", "ℹ", "⚠", "✘")):
                log("  spacy train | " + line.rstrip())
        return proc.wait(), "".join(lines)


def train_spacy(args, corpus: Path, out_dir: Path) -> Dict[str, object]:
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    train_cfg, caps = capped_config(args.config, out_dir, args.max_steps, args.max_minutes, args.patience)
    cmd = (["nice", "-n", str(args.nice)] if args.nice and shutil.which("nice") else []) + [
        sys.executable, "-m", "spacy", "train", str(train_cfg), "--output", str(out_dir),
        "--paths.train", str(corpus / "train.spacy"), "--paths.dev", str(corpus / "dev.spacy"),
        "--code", str(SPACY_DIR / "deadline.py")]
    t0 = time.perf_counter()
    rc, text = run_logged(cmd, out_dir / "train.log")
    hit_deadline = "DeadlineReached" in text
    if rc != 0 and not hit_deadline:
        raise RuntimeError(f"spacy train failed (exit {rc}); see {out_dir / 'train.log'}")
    parsed = parse_training_log(text)
    m = re.search(r"reached before step (\d+)", text)
    parsed["steps_completed"] = int(m.group(1)) if m else parsed.get("last_evaluated_step")
    if hit_deadline:
        stopped_by = f"time cap ({args.max_minutes:g} min)"
    elif caps["max_steps"] and (parsed.get("last_evaluated_step") or 0) >= caps["max_steps"]:
        stopped_by = f"max_steps ({caps['max_steps']})"
    else:
        stopped_by = f"early stopping or max_steps (patience {caps['patience']}, max_steps {caps['max_steps']})"
    for sub in ("model-best", "model-last"):
        strip_callback(out_dir / sub)
    if not (out_dir / "model-best" / "config.cfg").is_file():
        raise RuntimeError(f"spacy train left no model-best; see {out_dir / 'train.log'}")
    return {"command": shlex.join(cmd), "base_config": str(args.config), "stopped_by": stopped_by,
            "cap": {"max_steps": caps["max_steps"], "max_minutes": args.max_minutes, "patience": caps["patience"],
                    "eval_frequency": caps["eval_frequency"], "nice": args.nice},
            "wall_s": round(time.perf_counter() - t0, 1), "log": str(out_dir / "train.log"),
            "model": str(out_dir / "model-best"), **parsed}


# --------------------------------------------------------------------------- measuring one pipeline


def load_timed(pipeline: str) -> Tuple[object, Dict]:
    """``spacy.load`` in this fresh process: imports, load, first call, a second (warm) load, memory."""
    t0 = time.perf_counter()
    import spacy

    timings = {"import_spacy_s": time.perf_counter() - t0, "memory_start": memory_mb()}
    t0 = time.perf_counter()
    nlp = spacy.load(pipeline)
    timings["load_s"] = time.perf_counter() - t0
    timings["memory_after_load"] = memory_mb()
    t0 = time.perf_counter()
    nlp("جاء محمد من الرباط")  # the first call traces graphs and warms caches
    timings["first_doc_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    spacy.load(pipeline)  # no imports this time, the files in the page cache
    timings["load_warm_s"] = time.perf_counter() - t0
    return nlp, {k: round(v, 3) if isinstance(v, float) else v for k, v in timings.items()}


def score(nlp, gold_docs: List, gold_tags: List[List[str]], batch_size: int) -> Dict:
    """Entity scores of the pipeline on Docs of the gold words: seqeval on the release's tags and spaCy's Scorer."""
    from spacy.scorer import get_ner_prf
    from spacy.tokens import Doc
    from spacy.training import Example

    from spacy_aner.core.tags import spans_to_bio
    from spacy_aner.training.evaluation import entity_scores

    docs = [Doc(nlp.vocab, words=[t.text for t in g], spaces=[bool(t.whitespace_) for t in g]) for g in gold_docs]
    t0 = time.perf_counter()
    pred_docs = list(nlp.pipe(docs, batch_size=batch_size))
    seconds = time.perf_counter() - t0
    pred = [spans_to_bio(((e.start, e.end, e.label_) for e in d.ents), len(d)) for d in pred_docs]
    docbin_tags = [spans_to_bio(((e.start, e.end, e.label_) for e in d.ents), len(d)) for d in gold_docs]
    prf = get_ner_prf([Example(p, g) for p, g in zip(pred_docs, gold_docs)])
    vs_docbin = entity_scores(docbin_tags, pred)["micro"]
    return {"batch_size": batch_size, "seconds": round(seconds, 3),
            "predicted_entities": sum(len(d.ents) for d in pred_docs),
            "seqeval_default": entity_scores(gold_tags, pred), "seqeval_strict": entity_scores(gold_tags, pred, True),
            "spacy_scorer": {k: 100 * prf[f"ents_{k[0]}"] for k in ("precision", "recall", "f1")},
            "scorer_agrees_with_seqeval": abs(100 * prf["ents_f"] - vs_docbin["f1"]) < 1e-6}


def worker(args) -> int:
    """Runs in a fresh process: load, score, time and report the memory of one saved pipeline."""
    from spacy.tokens import DocBin

    nlp, timings = load_timed(args.pipeline)
    corpus = Path(args.corpus)
    words, gold_tags = read_tagged(corpus / "test.conll", args.limit)
    gold_docs = list(DocBin().from_disk(corpus / "test.spacy").get_docs(nlp.vocab))[:len(words)]
    if [[t.text for t in d] for d in gold_docs] != words:
        raise RuntimeError("test.spacy and test.conll disagree on the words")
    log(f"[{args.name}] scoring on the gold words of {len(words):,} sentences ...")
    batch_sizes = sorted({*args.batch_sizes, args.score_batch_size})
    scores = {str(b): score(nlp, gold_docs, gold_tags, b) for b in batch_sizes}
    texts, n_words = [" ".join(w) for w in words], sum(map(len, words))
    throughput = {}
    for b in args.batch_sizes:
        throughput[str(b)] = measure(pipe_runner(nlp, texts, b), n_words, args.repeats)
        log(f"[{args.name}] batch size {b}: {throughput[str(b)]['words_per_sec']:,.0f} words/s")
    mem_end = memory_mb()
    result = {"name": args.name, "pipeline_dir": args.pipeline, "pipe_names": nlp.pipe_names,
              "tokenizer": f"{type(nlp.tokenizer).__module__}.{type(nlp.tokenizer).__name__}",
              **timings, "memory_end": mem_end,
              "peak_rss_after_load_mb": timings["memory_after_load"].get("peak_rss_mb"),
              "peak_rss_after_run_mb": mem_end.get("peak_rss_mb"),
              "test_sentences": len(words), "test_words": n_words, "score_batch_size": args.score_batch_size,
              "scores": scores, "throughput": throughput, "load_average_end": load_average()}
    Path(args.worker_out).write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0


def run_worker(name: str, pipeline: Path, args, corpus: Path, out: Path) -> Dict:
    cmd = [sys.executable, "-m", MODULE, "--worker", "--name", name, "--pipeline", str(pipeline),
           "--corpus", str(corpus), "--batch-sizes", ",".join(map(str, args.batch_sizes)),
           "--repeats", str(args.repeats), "--score-batch-size", str(args.score_batch_size), "--worker-out", str(out)]
    if args.limit:
        cmd += ["--limit", str(args.limit)]
    log("$ " + shlex.join(cmd))
    subprocess.run(cmd, check=True, cwd=ROOT)
    return json.loads(out.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- report


def markdown(result: Dict) -> str:
    bs = [str(b) for b in result["batch_sizes"]]
    # Per CPU second too: aner_lstm runs a batch's network calls on every core, spaCy's ner on one.
    lines = ["| pipeline | test F1 | strict F1 | P | R | " + " | ".join(f"words/s b={b}" for b in bs)
             + f" | words per CPU s b={bs[-1]} | peak RSS MB after load / run | load s |",
             "| --- |" + " ---: |" * (7 + len(bs))]
    for key, label in (("aner_lstm", "aner_lstm (measured)"), (ONE_MEMBER, "aner_lstm, `members=1` (measured)"),
                       ("spacy_ner", "spaCy `ner` (measured)")):
        if key not in result["pipelines"]:
            continue
        r = result["pipelines"][key]
        s = r["scores"][str(r["score_batch_size"])]
        d, st = s["seqeval_default"]["micro"], s["seqeval_strict"]["micro"]
        tp = " | ".join(f"{r['throughput'][b]['words_per_sec']:,.0f}" for b in bs)
        tp += f" | {r['throughput'][bs[-1]]['words_per_cpu_sec']:,.0f}"
        lines.append(f"| {label} | {d['f1']:.2f} | {st['f1']:.2f} | {d['precision']:.2f} | {d['recall']:.2f} | {tp} "
                     f"| {r['peak_rss_after_load_mb']:,.0f} / {r['peak_rss_after_run_mb']:,.0f} | {r['load_s']:.2f} |")
    for p in PUBLISHED:
        lines.append(f"| {p['name']} (published, not measured here) | {p['f1']:.1f} |" + " – |" * (6 + len(bs)))
    return "\n".join(lines)


def training_note(t: Dict) -> str:
    if not t.get("cap"):
        return f"spaCy ner: reused {t.get('model')} (not trained in this run)."
    # spaCy's log shows only evaluated steps (every eval_frequency) and, with a deadline, the step it hit.
    return (f"spaCy ner: stopped by {t['stopped_by']} at step {t.get('steps_completed')}, the last its log shows "
            f"({t.get('epochs')} epochs, {t['wall_s']:.0f} s); best dev ents_f {t.get('best_dev_ents_f')} "
            f"at step {t.get('best_step')}.")


# --------------------------------------------------------------------------- main


def build_parser():
    ap = parser(MODULE, __doc__)
    add = ap.add_argument
    add("--model", help="aner_lstm model directory (default: the model shipped in the package)")
    add("--anercorp", type=Path, default=ANERCORP, help="CAMeL Lab ANERCorp directory")
    add("--corpus", type=Path, help="a directory made by 'spacy-aner prepare --dev-fraction 0.1' (default: "
                                    "prepare --anercorp into WORK_DIR/corpus)")
    add("--work-dir", type=Path, default=DEFAULT_WORK_DIR, help="training output, saved pipelines, logs")
    add("--config", type=Path, default=SPACY_DIR / "config.cfg", help="spaCy training config")
    add("--max-steps", type=int, default=None, help="spaCy max_steps (default: the config's)")
    add("--max-minutes", type=float, default=22.0, help="wall-clock cap on spaCy training")
    add("--patience", type=int, default=None, help="spaCy early-stopping patience (default: the config's)")
    add("--nice", type=int, default=10, help="niceness of the training process (0: off)")
    add("--skip-train", action="store_true", help="reuse --spacy-model instead of training")
    add("--spacy-model", type=Path, help="a trained spaCy pipeline (with --skip-train)")
    add("--repeats", type=int, default=3, help="timed throughput passes; the median is reported")
    add("--batch-sizes", type=lambda s: [int(b) for b in s.split(",")], default=[1, 256],
        help="nlp.pipe batch sizes for throughput (comma-separated)")
    add("--score-batch-size", type=int, default=256, help="nlp.pipe batch size of the F1 figures")
    add("--limit", type=int, default=None, help="only the first N test sentences (quick checks)")
    for hidden in ("--name", "--pipeline", "--worker-out"):  # a worker: one pipeline in a fresh process
        add(hidden, help=argparse.SUPPRESS)
    add("--worker", action="store_true", help=argparse.SUPPRESS)
    return ap


def aner_pipelines(model: Optional[str], work: Path) -> Tuple[Dict[str, Path], Path]:
    """``spacy_aner.load(model)`` saved with ``nlp.to_disk``, so that it loads as the other pipeline does;
    for an ensemble also with ``members=1`` (:data:`ONE_MEMBER`), its first network alone."""
    import spacy_aner

    nlp = spacy_aner.load(model)
    model_dir = nlp.get_pipe("aner_lstm").model_path
    pipelines = {"aner_lstm": nlp}
    if nlp.get_pipe("aner_lstm").tagger.config.members > 1:
        pipelines[ONE_MEMBER] = spacy_aner.load(model, members=1)
    out = {}
    for name, pipeline in pipelines.items():
        out[name] = work / f"{name}_pipeline"
        if out[name].exists():
            shutil.rmtree(out[name])
        pipeline.to_disk(out[name])
    return out, model_dir


def main(argv: Optional[Sequence[str]] = None) -> int:
    from spacy_aner.training.evaluation import model_hash

    argv = list(sys.argv[1:] if argv is None else argv)
    ap = build_parser()
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args)
    if args.skip_train and not args.spacy_model:
        ap.error("--skip-train needs --spacy-model DIR")
    t_start, machine = time.perf_counter(), machine_info()
    work = args.work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    corpus = args.corpus.resolve() if args.corpus else prepare_corpus(args.anercorp, work / "corpus")
    missing = [n for n in ("train.spacy", "dev.spacy", "test.spacy", "test.conll") if not (corpus / n).is_file()]
    if missing:
        ap.error(f"{corpus} lacks {', '.join(missing)}: run 'spacy-aner prepare ANERCORP {corpus} --dev-fraction 0.1'")
    if args.skip_train:
        training = {"skipped": True, "model": str(args.spacy_model.resolve())}
    else:
        training = train_spacy(args, corpus, work / "spacy_ner")
    aner_dirs, model_dir = aner_pipelines(args.model, work)
    pipelines = {name: run_worker(name, path, args, corpus, work / f"measure_{name}.json")
                 for name, path in (*aner_dirs.items(), ("spacy_ner", Path(training["model"])))}
    f1 = {k: p["scores"][str(args.score_batch_size)]["seqeval_default"]["micro"]["f1"] for k, p in pipelines.items()}
    result: Dict[str, object] = {
        "what": "aner_lstm vs spaCy's built-in ner on the ANERCorp CAMeL Lab test split, measured in one run",
        "corpus": str(corpus), "test_sentences_limit": args.limit,
        "aner_lstm_model": {"dir": str(model_dir), "sha256": model_hash(model_dir)},
        "spacy_config": str(args.config), "spacy_training": training, "batch_sizes": args.batch_sizes,
        "repeats": args.repeats, "pipelines": pipelines, "f1_margin": round(f1["aner_lstm"] - f1["spacy_ner"], 2),
        "published": [dict(p, source=PUBLISHED_SOURCE, measured=False) for p in PUBLISHED],
        "total_run_s": round(time.perf_counter() - t_start, 1)}
    result["markdown"] = markdown(result)
    write_result(args.output, result, command_line(MODULE, argv), machine)
    print(f"{result['markdown']}\n\n{training_note(training)}")
    print(f"aner_lstm {'beats' if f1['aner_lstm'] > f1['spacy_ner'] else 'does NOT beat'} spaCy ner on test F1: "
          f"{f1['aner_lstm']:.2f} vs {f1['spacy_ner']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
