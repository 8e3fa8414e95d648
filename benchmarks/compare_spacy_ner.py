#!/usr/bin/env python
"""aner_lstm against spaCy's own ``ner``, trained on the same data and measured in one run.

1. Prepares the ANERCorp CAMeL Lab split (``spacy-aner prepare --dev-fraction 0.1``) unless
   ``--corpus`` names a prepared directory.
2. Trains spaCy's built-in NER with ``python -m spacy train`` on ``train.spacy`` with
   ``dev.spacy`` held out, from ``benchmarks/spacy_ner/config.cfg`` (made by
   ``python -m spacy init config --lang ar --pipeline ner``: CPU, efficiency), under
   ``nice`` and a cap of ``--max-steps`` steps / ``--max-minutes`` minutes, whichever comes
   first (spaCy's early stopping, patience 1600 steps, still applies). ``--skip-train
   --spacy-model DIR`` reuses a trained pipeline instead.
3. Saves ``spacy_aner.load(--model)`` with ``nlp.to_disk`` so both pipelines load the same
   way, ``spacy.load(DIR)``.
4. Measures each pipeline in its own fresh subprocess (so memory peaks do not mix):
   load time, test-split entity F1 on the gold words (seqeval default and strict IOB2 on
   the release's tags, and spaCy's Scorer), throughput on the raw test sentences
   (``nlp.pipe``, batch sizes 1 and 256, words/sec = gold words / seconds, median of
   ``--repeats`` after a warm-up pass), and peak RSS after loading and after the run.

Writes ``benchmarks/results/compare_spacy_ner.json`` and ``.md``.

    python benchmarks/compare_spacy_ner.py --model /path/to/aner-lstm          # full run
    python benchmarks/compare_spacy_ner.py --max-steps 200 --work-dir /tmp/cmp  # quick check
    python benchmarks/compare_spacy_ner.py --skip-train --spacy-model /tmp/cmp/spacy_ner/model-best
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
from typing import Dict, List, Optional, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import (  # noqa: E402
    DEFAULT_ANERCORP,
    RESULTS,
    ROOT,
    load_average,
    log,
    machine_info,
    measure,
    memory_mb,
    pipe_runner,
    prepare_corpus,
    read_tagged,
)

DEFAULT_CONFIG = ROOT / "benchmarks" / "spacy_ner" / "config.cfg"
DEFAULT_WORK_DIR = Path(tempfile.gettempdir()) / "spacy_aner_compare"
DEADLINE_CALLBACK = "spacy_aner_bench.deadline.v1"
PUBLISHED = [
    {"name": "AraBERT v0.2-base", "f1": 83.7},
    {"name": "CAMeLBERT-MSA", "f1": 82.4},
]
PUBLISHED_SOURCE = ("fine-tuned transformers on the same ANERCorp CAMeL Lab test split, as published "
                    "(Inoue et al., 2021, 'The Interplay of Variant, Size, and Task Type in Arabic "
                    "Pre-trained Language Models'); not measured here")


# --------------------------------------------------------------------------- training time cap
# ``spacy train --code THIS_FILE`` imports this module, which registers the callback below.
# It is the [training] before_update hook of the derived training config: when the deadline
# has passed it raises before the next update, so spaCy stops between steps (model-best,
# written at the last improving evaluation, is intact; model-last is saved on the way out).


class DeadlineReached(RuntimeError):
    pass


def _register_deadline_callback() -> None:
    from spacy.util import registry

    if DEADLINE_CALLBACK in registry.callbacks:
        return

    @registry.callbacks(DEADLINE_CALLBACK)
    def make_deadline(deadline: float, max_minutes: float):
        def before_update(nlp, args):
            if time.time() >= deadline:
                raise DeadlineReached(f"time cap of {max_minutes:g} minutes reached before step {args['step']}")

        return before_update


if __name__ != "__main__":  # imported by ``spacy train --code``; the script itself never resolves it
    _register_deadline_callback()


def generate_config(path: Path) -> None:
    """``python -m spacy init config PATH --lang ar --pipeline ner`` (CPU, efficiency)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "spacy", "init", "config", str(path), "--lang", "ar", "--pipeline", "ner",
           "--optimize", "efficiency", "--force"]
    log("$ " + shlex.join(cmd))
    subprocess.run(cmd, check=True)


_ROW = re.compile(r"^\s*(\d+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$")


def parse_training_log(text: str) -> Dict[str, object]:
    rows = [m.groups() for m in map(_ROW.match, text.splitlines()) if m]
    evals = [{"epoch": int(e), "step": int(s), "ents_f": float(f), "ents_p": float(p), "ents_r": float(r)}
             for e, s, _, _, f, p, r, _ in rows]
    if not evals:
        return {"evaluations": []}
    best = max(evals, key=lambda x: x["ents_f"])
    return {"evaluations": evals, "last_evaluated_step": evals[-1]["step"], "epochs": evals[-1]["epoch"],
            "best_dev_ents_f": best["ents_f"], "best_step": best["step"]}


def strip_callback(model_dir: Path) -> None:
    """Drop the deadline hook from a trained pipeline's config, so it loads without this file."""
    from spacy.util import load_config

    cfg_path = model_dir / "config.cfg"
    if cfg_path.is_file():
        cfg = load_config(cfg_path, interpolate=False)
        if cfg["training"].get("before_update"):
            cfg["training"]["before_update"] = None
            cfg.to_disk(cfg_path)


def train_spacy(config: Path, corpus: Path, out_dir: Path, max_steps: Optional[int], max_minutes: float,
                patience: Optional[int], nice: int) -> Dict[str, object]:
    from spacy.util import load_config

    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    cfg = load_config(config, interpolate=False)
    base = {"max_steps": cfg["training"]["max_steps"], "patience": cfg["training"]["patience"],
            "eval_frequency": cfg["training"]["eval_frequency"]}
    if max_steps is not None:
        cfg["training"]["max_steps"] = max_steps
    if patience is not None:
        cfg["training"]["patience"] = patience
    deadline = time.time() + 60 * max_minutes
    cfg["training"]["before_update"] = {"@callbacks": DEADLINE_CALLBACK, "deadline": deadline,
                                        "max_minutes": max_minutes}
    train_cfg = out_dir / "train_config.cfg"
    cfg.to_disk(train_cfg)
    cmd = (["nice", "-n", str(nice)] if nice and shutil.which("nice") else []) + [
        sys.executable, "-m", "spacy", "train", str(train_cfg), "--output", str(out_dir),
        "--paths.train", str(corpus / "train.spacy"), "--paths.dev", str(corpus / "dev.spacy"),
        "--code", str(Path(__file__).resolve())]
    log("$ " + shlex.join(cmd))
    env = dict(os.environ, ANSI_COLORS_DISABLED="1", NO_COLOR="1", PYTHONUNBUFFERED="1")
    log_path = out_dir / "train.log"
    t0 = time.perf_counter()
    lines: List[str] = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env) as proc, \
            log_path.open("w", encoding="utf-8") as f:
        assert proc.stdout is not None
        for line in proc.stdout:
            f.write(line)
            lines.append(line)
            if _ROW.match(line) or line.lstrip().startswith(("✔", "ℹ", "⚠", "✘", "E ", "---")):
                log("  spacy train | " + line.rstrip())
        rc = proc.wait()
    wall = time.perf_counter() - t0
    text = "".join(lines)
    hit_deadline = "DeadlineReached" in text
    if rc != 0 and not hit_deadline:
        raise RuntimeError(f"spacy train failed (exit {rc}); see {log_path}")
    parsed = parse_training_log(text)
    steps_cap = cfg["training"]["max_steps"]
    m = re.search(r"reached before step (\d+)", text)
    if m:
        parsed["steps_completed"] = int(m.group(1))
    elif parsed.get("last_evaluated_step") is not None:
        parsed["steps_completed"] = parsed["last_evaluated_step"]
    if hit_deadline:
        stopped_by = f"time cap ({max_minutes:g} min)"
    elif steps_cap and parsed.get("last_evaluated_step", 0) >= steps_cap:
        stopped_by = f"max_steps ({steps_cap})"
    else:
        stopped_by = f"early stopping (patience {cfg['training']['patience']} steps)"
    for sub in ("model-best", "model-last"):
        strip_callback(out_dir / sub)
    best = out_dir / "model-best"
    if not (best / "config.cfg").is_file():
        raise RuntimeError(f"spacy train left no {best}; see {log_path}")
    return {
        "command": shlex.join(cmd),
        "base_config": str(config),
        "train_config": str(train_cfg),
        "config_defaults": base,
        "cap": {"max_steps": steps_cap, "max_minutes": max_minutes, "patience": cfg["training"]["patience"],
                "eval_frequency": cfg["training"]["eval_frequency"], "nice": nice},
        "stopped_by": stopped_by,
        "wall_s": round(wall, 1),
        "log": str(log_path),
        "model": str(best),
        **parsed,
    }


# --------------------------------------------------------------------------- measuring one pipeline


def worker(args) -> int:
    """Runs in a fresh process: load, score, time, and report memory of one saved pipeline."""
    t0 = time.perf_counter()
    import spacy

    import_s = time.perf_counter() - t0
    mem_start = memory_mb()
    t0 = time.perf_counter()
    nlp = spacy.load(args.pipeline)
    load_s = time.perf_counter() - t0
    mem_load = memory_mb()
    t0 = time.perf_counter()
    nlp("جاء محمد من الرباط")  # the first call (TensorFlow traces its graph here)
    first_doc_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    spacy.load(args.pipeline)  # a second load in the same process: no imports, warm file cache
    load_warm_s = time.perf_counter() - t0
    import gc

    gc.collect()

    from spacy.scorer import get_ner_prf
    from spacy.tokens import Doc, DocBin
    from spacy.training import Example

    from spacy_aner.evaluation import entity_scores
    from spacy_aner.tags import spans_to_bio

    corpus = Path(args.corpus)
    words, gold_tags = read_tagged(corpus / "test.conll")
    gold_docs = list(DocBin().from_disk(corpus / "test.spacy").get_docs(nlp.vocab))
    if [[t.text for t in d] for d in gold_docs] != words:
        raise RuntimeError("test.spacy and test.conll disagree on the words")
    gold_docbin_tags = [spans_to_bio(((e.start, e.end, e.label_) for e in d.ents), len(d)) for d in gold_docs]

    def score(batch_size: int) -> Dict:
        docs = [Doc(nlp.vocab, words=[t.text for t in g], spaces=[bool(t.whitespace_) for t in g]) for g in gold_docs]
        t0 = time.perf_counter()
        pred_docs = list(nlp.pipe(docs, batch_size=batch_size))
        secs = time.perf_counter() - t0
        pred = [spans_to_bio(((e.start, e.end, e.label_) for e in d.ents), len(d)) for d in pred_docs]
        default = entity_scores(gold_tags, pred)
        strict = entity_scores(gold_tags, pred, strict=True)
        vs_docbin = entity_scores(gold_docbin_tags, pred)
        prf = get_ner_prf([Example(p, g) for p, g in zip(pred_docs, gold_docs)])
        scorer = {"precision": 100 * prf["ents_p"], "recall": 100 * prf["ents_r"], "f1": 100 * prf["ents_f"],
                  "per_type": {k: {"precision": 100 * v["p"], "recall": 100 * v["r"], "f1": 100 * v["f"]}
                               for k, v in sorted((prf.get("ents_per_type") or {}).items())}}
        return {
            "batch_size": batch_size,
            "seconds": round(secs, 3),
            "predicted_entities": sum(len(d.ents) for d in pred_docs),
            "seqeval_default": default,
            "seqeval_strict": strict,
            "seqeval_default_vs_docbin_gold": vs_docbin["micro"],
            "spacy_scorer": scorer,
            "scorer_agrees_with_seqeval": abs(scorer["f1"] - vs_docbin["micro"]["f1"]) < 1e-6,
        }

    log(f"[{args.name}] scoring on gold words ...")
    scores = {str(b): score(b) for b in sorted(set(args.batch_sizes) | {args.score_batch_size})}
    texts = [" ".join(w) for w in words]
    n_words = sum(map(len, words))
    throughput = {}
    for b in args.batch_sizes:
        log(f"[{args.name}] throughput, batch size {b} ...")
        throughput[str(b)] = measure(pipe_runner(nlp, texts, b), n_words, args.repeats)
        log(f"[{args.name}]   {throughput[str(b)]['words_per_sec']:,.0f} words/s")
    tokens = sum(sum(not t.is_space for t in d) for d in nlp.pipe(texts, batch_size=256))
    mem_end = memory_mb()
    result = {
        "name": args.name,
        "pipeline_dir": args.pipeline,
        "pipe_names": nlp.pipe_names,
        "tokenizer": type(nlp.tokenizer).__module__ + "." + type(nlp.tokenizer).__name__,
        "import_spacy_s": round(import_s, 3),
        "load_s": round(load_s, 3),
        "load_warm_s": round(load_warm_s, 3),
        "first_doc_s": round(first_doc_s, 3),
        "memory_mb": {"start": mem_start, "after_load": mem_load, "end": mem_end},
        "peak_rss_after_load_mb": mem_load.get("peak_rss_mb"),
        "peak_rss_after_run_mb": mem_end.get("peak_rss_mb"),
        "test_sentences": len(words),
        "test_words": n_words,
        "raw_text_tokens": tokens,
        "score_batch_size": args.score_batch_size,
        "scores": scores,
        "throughput": throughput,
        "load_average_end": load_average(),
    }
    Path(args.out).write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0


def run_worker(name: str, pipeline: Path, corpus: Path, batch_sizes: Sequence[int], repeats: int,
               score_batch_size: int, out: Path) -> Dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--name", name, "--pipeline", str(pipeline),
           "--corpus", str(corpus), "--batch-sizes", ",".join(map(str, batch_sizes)), "--repeats", str(repeats),
           "--score-batch-size", str(score_batch_size), "--worker-out", str(out)]
    log("$ " + shlex.join(cmd))
    subprocess.run(cmd, check=True)
    return json.loads(out.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- report


def fmt(x, spec=".2f") -> str:
    return "–" if x is None else format(x, spec)


def markdown(result: Dict) -> str:
    bs = [str(b) for b in result["batch_sizes"]]
    head = ("| pipeline | test F1 (seqeval default) | strict F1 | P | R | "
            + " | ".join(f"words/sec b={b}" for b in bs)
            + " | peak RSS MB (after load / after run) | load s |")
    lines = [head, "| --- | ---: | ---: | ---: | ---: | " + " | ".join("---:" for _ in bs) + " | ---: | ---: |"]
    for key, label in (("aner_lstm", "aner_lstm (measured)"), ("spacy_ner", "spaCy `ner` (measured)")):
        r = result["pipelines"][key]
        s = r["scores"][str(r["score_batch_size"])]
        d, st = s["seqeval_default"]["micro"], s["seqeval_strict"]["micro"]
        tp = " | ".join(f"{r['throughput'][b]['words_per_sec']:,.0f}" for b in bs)
        lines.append(f"| {label} | {d['f1']:.2f} | {st['f1']:.2f} | {d['precision']:.2f} | {d['recall']:.2f} | {tp} "
                     f"| {r['peak_rss_after_load_mb']:,.0f} / {r['peak_rss_after_run_mb']:,.0f} | {r['load_s']:.2f} |")
    for p in PUBLISHED:
        dash = " | ".join("–" for _ in bs)
        lines.append(f"| {p['name']} (published, not measured here) | {p['f1']:.1f} | – | – | – | {dash} | – | – |")
    return "\n".join(lines)


def notes(result: Dict) -> str:
    m = result["machine"]
    a = result["pipelines"]["aner_lstm"]
    t = result["spacy_training"]
    out = [
        f"Test split: {a['test_sentences']:,} sentences, {a['test_words']:,} words (ANERCorp, CAMeL Lab split). "
        f"F1 on the gold words with nlp.pipe batch size {a['score_batch_size']}; seqeval on the release's tags "
        "(default = conlleval, strict = IOB2); P and R are seqeval default, micro. "
        "Words/sec: gold words / seconds of nlp.pipe over the raw sentences (words joined by spaces), "
        f"median of {result['repeats']} passes after a warm-up pass. "
        "Load s: spacy.load(saved pipeline) in a fresh process (imports included; aner_lstm imports TensorFlow). "
        "Peak RSS: VmHWM of the process that loaded and ran only that pipeline.",
        "",
        f"spaCy ner: `spacy init config --lang ar --pipeline ner` (CPU, efficiency), trained on train.spacy "
        f"with dev.spacy held out; stopped by {t.get('stopped_by')} after {t.get('steps_completed', '?')} steps "
        f"({t.get('epochs', '?')} epochs, {fmt(t.get('wall_s'), '.0f')} s wall, nice {t['cap']['nice']}; caps: "
        f"{t['cap']['max_minutes']:g} min, max_steps {t['cap']['max_steps']}, patience {t['cap']['patience']}); "
        f"best dev ents_f {fmt(t.get('best_dev_ents_f'), '.2f')} at step {t.get('best_step', '?')}."
        if t.get("cap") else f"spaCy ner: reused {t.get('model')} (not trained in this run).",
        "",
        f"Machine: {m['cpu_count']} CPUs ({m.get('cpu_model')}), Python {m['python']}, spaCy {m['spacy']}, "
        f"TensorFlow {m['tensorflow']}, Keras {m['keras']}; load average (1, 5, 15 min) {m['load_average_1_5_15']} "
        f"at the start, {result.get('load_average_end')} at the end ({m['date']}).",
        "",
        f"Published rows: {PUBLISHED_SOURCE}.",
    ]
    return "\n".join(out)


def write_markdown(result: Dict, path: Path) -> None:
    path.write_text(f"# aner_lstm vs spaCy `ner` on ANERCorp (CAMeL Lab split)\n\n{markdown(result)}\n\n"
                    f"{notes(result)}\n\nCommand: `{result.get('command') or '(called from Python)'}`; "
                    f"total run time {result['total_run_s']:.0f} s.\n", encoding="utf-8")


# --------------------------------------------------------------------------- main


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="aner_lstm model directory (default: the model shipped in the package)")
    ap.add_argument("--anercorp", type=Path, default=DEFAULT_ANERCORP,
                    help="CAMeL Lab ANERCorp directory (default: ../shared/data/anercorp beside the repo)")
    ap.add_argument("--corpus", type=Path, help="a directory made by 'spacy-aner prepare --dev-fraction 0.1' "
                                                "(default: prepare --anercorp into WORK_DIR/corpus)")
    ap.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR,
                    help=f"training output, saved pipelines, logs (default: {DEFAULT_WORK_DIR})")
    ap.add_argument("--config", type=Path, default=DEFAULT_CONFIG,
                    help="spaCy training config (default: benchmarks/spacy_ner/config.cfg; generated if missing)")
    ap.add_argument("--max-steps", type=int, default=None, help="spaCy max_steps (default: the config's, 20000)")
    ap.add_argument("--max-minutes", type=float, default=22.0, help="wall-clock cap on spaCy training (default: 22)")
    ap.add_argument("--patience", type=int, default=None, help="spaCy early-stopping patience (default: the config's, 1600)")
    ap.add_argument("--nice", type=int, default=10, help="niceness of the training process (default: 10; 0 = off)")
    ap.add_argument("--skip-train", action="store_true", help="reuse --spacy-model instead of training")
    ap.add_argument("--spacy-model", type=Path, help="a trained spaCy pipeline (with --skip-train)")
    ap.add_argument("--repeats", type=int, default=3, help="timed throughput passes (median reported; >= 3)")
    ap.add_argument("--batch-sizes", default="1,256", help="nlp.pipe batch sizes for throughput")
    ap.add_argument("--score-batch-size", type=int, default=256, help="nlp.pipe batch size for the F1 figures")
    ap.add_argument("--output", type=Path, default=RESULTS / "compare_spacy_ner.json",
                    help="JSON output; the Markdown goes beside it with .md")
    # internal: one pipeline's measurements in a fresh process
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--name", help=argparse.SUPPRESS)
    ap.add_argument("--pipeline", help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", dest="out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.batch_sizes = [int(b) for b in str(args.batch_sizes).split(",")]
    if args.repeats < 3:
        ap.error("--repeats must be at least 3")
    if args.worker:
        return worker(args)
    if args.skip_train and not args.spacy_model:
        ap.error("--skip-train needs --spacy-model DIR")

    t_start = time.perf_counter()
    command = shlex.join([Path(sys.executable).name, *sys.argv]) if argv is None else None
    info = machine_info()
    work = args.work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    corpus = args.corpus.resolve() if args.corpus else prepare_corpus(args.anercorp, work / "corpus")
    for name in ("train.spacy", "dev.spacy", "test.spacy", "test.conll"):
        if not (corpus / name).is_file():
            ap.error(f"{corpus} lacks {name}; run 'spacy-aner prepare ANERCORP {corpus} --dev-fraction 0.1'")
    stats_path = corpus / "stats.json"
    corpus_stats = json.loads(stats_path.read_text(encoding="utf-8")) if stats_path.is_file() else None

    # --- spaCy's ner
    if args.skip_train:
        spacy_model = args.spacy_model.resolve()
        training: Dict[str, object] = {"skipped": True, "model": str(spacy_model)}
        meta_path = spacy_model / "meta.json"
        if meta_path.is_file():
            perf = json.loads(meta_path.read_text(encoding="utf-8")).get("performance", {})
            training["dev_performance_in_meta"] = perf
    else:
        if not args.config.is_file():
            generate_config(args.config)
        training = train_spacy(args.config, corpus, work / "spacy_ner", args.max_steps, args.max_minutes,
                               args.patience, args.nice)
        spacy_model = Path(training["model"])  # type: ignore[arg-type]
    log(f"spaCy ner pipeline: {spacy_model}")

    # --- aner_lstm, saved so that it loads with spacy.load like the other one
    import spacy_aner
    from spacy_aner.evaluation import model_hash

    nlp = spacy_aner.load(args.model)
    model_dir = nlp.get_pipe("aner_lstm").model_path
    aner_dir = work / "aner_lstm_pipeline"
    if aner_dir.exists():
        shutil.rmtree(aner_dir)
    nlp.to_disk(aner_dir)
    del nlp
    log(f"aner_lstm pipeline ({model_dir}) saved to {aner_dir}")

    # --- measure, one fresh process each
    pipelines = {}
    for name, path in (("aner_lstm", aner_dir), ("spacy_ner", spacy_model)):
        pipelines[name] = run_worker(name, path, corpus, args.batch_sizes, args.repeats, args.score_batch_size,
                                     work / f"measure_{name}.json")
    a = pipelines["aner_lstm"]["scores"][str(args.score_batch_size)]["seqeval_default"]["micro"]["f1"]
    s = pipelines["spacy_ner"]["scores"][str(args.score_batch_size)]["seqeval_default"]["micro"]["f1"]

    result: Dict[str, object] = {
        "what": "aner_lstm vs spaCy's built-in ner on the ANERCorp CAMeL Lab test split, measured in one run",
        "command": command,
        "date": info["date"],
        "machine": info,
        "corpus": {"dir": str(corpus), "stats": corpus_stats},
        "aner_lstm_model": str(model_dir),
        "aner_lstm_model_sha256": model_hash(model_dir),
        "spacy_config": str(args.config),
        "spacy_training": training,
        "batch_sizes": args.batch_sizes,
        "repeats": args.repeats,
        "pipelines": pipelines,
        "aner_lstm_beats_spacy_ner_f1": a > s,
        "f1_margin": round(a - s, 2),
        "published": [dict(p, source=PUBLISHED_SOURCE, measured=False) for p in PUBLISHED],
        "load_average_end": load_average(),
        "total_run_s": round(time.perf_counter() - t_start, 1),
    }
    table = markdown(result)
    result["markdown"] = table
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    md = args.output.with_suffix(".md")
    write_markdown(result, md)
    print(table)
    print()
    print(notes(result))
    print(f"\naner_lstm {'beats' if a > s else 'does NOT beat'} spaCy ner on test F1: {a:.2f} vs {s:.2f}")
    log(f"wrote {args.output} and {md} ({result['total_run_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
