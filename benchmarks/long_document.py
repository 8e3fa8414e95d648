#!/usr/bin/env python
"""Time to tag one long document without sentence punctuation, by size: is it linear?

The documents are words drawn at random from the model's own vocabulary (so most are
known, as in real text) joined by single spaces: no punctuation, no line breaks, nothing
to cut sentences at. Sizes are in UTF-8 bytes (default 125 KB, 250 KB, 500 KB, 1 MB; Arabic
takes about 1.8 bytes per character). The tagger cuts the token sequence into windows of
``window`` tokens overlapping by ``context`` on each side (``ModelConfig`` in model.py), so
time and memory should grow linearly with the length.

For each size, after an untimed warm-up on a document of the smallest size (TensorFlow
traces its graph and oneDNN sets up its kernels on the first calls),
the best of ``--repeats`` runs of ``nlp(text)`` is timed, and the tokenizer alone
(``nlp.make_doc``) separately. Each document is checked: ``doc.text == text``, every word
has a tag from the network (the windowed prediction covers the whole sequence), and every
entity slices back to its text. Linearity is judged within the run: seconds per MB at the
largest size over seconds per MB at the smallest (1.0 = perfectly linear), on wall-clock
time and on CPU time (``time.process_time``, all threads), which other work on a busy
machine disturbs much less.

    python benchmarks/long_document.py --model /path/to/model
    nice -n 10 python benchmarks/long_document.py --sizes-kb 125 250 500 1000 2000 --repeats 3

Writes ``benchmarks/results/long_document.json`` (``--output``) and prints a Markdown table.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import random
import sys
import time
from pathlib import Path
from typing import Dict, List

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SHIPPED_MODEL = ROOT / "spacy_aner" / "models" / "aner-lstm"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_document(words: List[str], n_bytes: int, seed: int) -> str:
    """Random words joined by single spaces, ``n_bytes`` of UTF-8 (to within a word)."""
    rng = random.Random(seed)
    parts, size = [], 0
    while size < n_bytes:
        w = rng.choice(words)
        parts.append(w)
        size += len(w.encode("utf-8")) + 1
    return " ".join(parts)


def vocabulary_words(model_dir: Path, n: int = 20_000) -> List[str]:
    """Words of the model's vocabulary that are plain Arabic letters (no punctuation, digits)."""
    words = json.loads((model_dir / "vocab.json").read_text(encoding="utf-8"))["words"][2:]
    words = [w for w in words if w.isalpha() and all("\u0600" <= c <= "\u06ff" for c in w)][:n]
    if len(words) < 50:  # a tiny model: add some of our own
        words += ("محمد يعيش في الرباط باريس هي عاصمة فرنسا زار أحمد علي القاهرة أمس أعلنت الأمم المتحدة عن "
                  "خطة جديدة فاز فريق ريال مدريد بكأس العالم قال الرئيس حسني مبارك بيروت").split()
    return words


def check(nlp, doc, text: str) -> Dict[str, int]:
    """The document is whole, every word was tagged by the network, entities slice back."""
    assert doc.text == text, "doc.text != text"
    words = [t for t in doc if not t.is_space]
    assert all(t.ent_iob_ in ("B", "I", "O") for t in words), "a word without an entity tag"
    for ent in doc.ents:
        assert text[ent.start_char:ent.end_char] == ent.text
    tagger = nlp.get_pipe("aner_lstm").tagger
    from spacy_aner.model import make_windows

    windows = make_windows(len(words), tagger.config.window, tagger.config.context)
    last = max((e.end_char for e in doc.ents), default=0)
    return {"tokens": len(doc), "words": len(words), "windows": len(windows), "entities": len(doc.ents),
            "last_entity_end_char": last}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=None, help="Model directory (default: the shipped model).")
    ap.add_argument("--sizes-kb", type=int, nargs="+", default=[125, 250, 500, 1000],
                    help="Document sizes in KB of UTF-8 (1000 = 1 MB).")
    ap.add_argument("--repeats", type=int, default=3, help="Timed runs per size; the best is kept.")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--output", type=Path, default=RESULTS / "long_document.json")
    args = ap.parse_args(argv)

    import spacy_aner
    import tensorflow as tf

    model = args.model or SHIPPED_MODEL
    if not (model / "config.json").is_file():
        log(f"no model at {model}: train one or pass --model")
        return 2
    nlp = spacy_aner.load(model)
    nlp.max_length = 10 ** 8  # the pipeline is linear; spaCy's default cap is 1,000,000 characters
    words = vocabulary_words(model)
    t0 = time.perf_counter()
    # Load the network, trace its graph and let oneDNN set up its kernels for full batches.
    nlp(make_document(words, min(args.sizes_kb) * 1000, args.seed - 1))
    log(f"model {model} loaded and warmed up in {time.perf_counter() - t0:.1f} s")

    rows = []
    for kb in sorted(args.sizes_kb):
        text = make_document(words, kb * 1000, args.seed + kb)
        n_bytes = len(text.encode("utf-8"))
        tok_times, times, cpu_times = [], [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            nlp.make_doc(text)
            tok_times.append(time.perf_counter() - start)
            start, cpu_start = time.perf_counter(), time.process_time()
            doc = nlp(text)
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
        info = check(nlp, doc, text)
        seconds, cpu = min(times), min(cpu_times)
        row = {"size_kb": kb, "bytes": n_bytes, "chars": len(text), **info, "seconds": round(seconds, 3),
               "seconds_per_mb": round(seconds / (n_bytes / 1e6), 3),
               "cpu_seconds": round(cpu, 3), "cpu_seconds_per_mb": round(cpu / (n_bytes / 1e6), 3),
               "tokenizer_seconds": round(min(tok_times), 3),
               "words_per_second": round(info["words"] / seconds), "all_times": [round(t, 3) for t in times],
               "peak_rss_mb": round(peak_rss_mb())}
        rows.append(row)
        log(f"{kb:>5} KB: {row['words']:,} words, {row['windows']:,} windows, {seconds:.2f} s "
            f"({row['seconds_per_mb']:.2f} s/MB, CPU {row['cpu_seconds_per_mb']:.2f} s/MB), tokenizer {row['tokenizer_seconds']:.2f} s, "
            f"{row['entities']:,} entities")
        del doc

    ratio = rows[-1]["seconds_per_mb"] / rows[0]["seconds_per_mb"]
    cpu_ratio = rows[-1]["cpu_seconds_per_mb"] / rows[0]["cpu_seconds_per_mb"]
    tok_ratio = (rows[-1]["tokenizer_seconds"] / rows[-1]["bytes"]) / (rows[0]["tokenizer_seconds"] / rows[0]["bytes"])
    cfg = nlp.get_pipe("aner_lstm").tagger.config
    result = {
        "benchmark": "long_document",
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "command": "python " + " ".join([sys.argv[0], *(argv if argv is not None else sys.argv[1:])]),
        "model": str(model),
        "model_config": {"window": cfg.window, "context": cfg.context, "lstm_layers": cfg.lstm_layers, "lstm_units": cfg.lstm_units,
                         "output": cfg.output},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "tensorflow": tf.__version__,
                    "load_average": os.getloadavg()},
        "document": "random words of the model's vocabulary joined by single spaces (no punctuation)",
        "rows": rows,
        "linearity_ratio": round(ratio, 3),
        "cpu_linearity_ratio": round(cpu_ratio, 3),
        "tokenizer_linearity_ratio": round(tok_ratio, 3),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    print(f"Long document without punctuation, model {model.name} (window {cfg.window}, context {cfg.context}, "
          f"{cfg.lstm_units} LSTM units), best of {args.repeats}:\n")
    print("| size | chars | words | windows | seconds | s/MB | CPU s | CPU s/MB | tokenizer s | words/s | entities |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['bytes'] / 1e6:.3f} MB | {r['chars']:,} | {r['words']:,} | {r['windows']:,} | {r['seconds']:.2f} "
              f"| {r['seconds_per_mb']:.2f} | {r['cpu_seconds']:.2f} | {r['cpu_seconds_per_mb']:.2f} "
              f"| {r['tokenizer_seconds']:.2f} | {r['words_per_second']:,} | {r['entities']:,} |")
    print(f"\ns/MB at {rows[-1]['size_kb']} KB / s/MB at {rows[0]['size_kb']} KB = {ratio:.2f} wall clock, "
          f"{cpu_ratio:.2f} CPU time (1.00 = linear; tokenizer alone {tok_ratio:.2f}); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
