"""Time to tag one long document without sentence punctuation, by size: is it linear?

The documents are words drawn at random from the model's own vocabulary (so most are
known, as in real text) joined by single spaces: no punctuation, no line breaks, nothing
to cut sentences at. Sizes are in UTF-8 bytes. The tagger cuts the token sequence into
windows of ``window`` tokens overlapping by ``context`` on each side (the model's
``config.json``), so time and memory should grow linearly with the length.

After an untimed warm-up on a document of the smallest size (TensorFlow traces its graph
and oneDNN sets up its kernels on the first calls), each size keeps the best of
``--repeats`` runs of ``nlp(text)``, and times the tokenizer alone (``nlp.make_doc``).
Each document is checked: ``doc.text == text``, every word has a tag (the windows cover
the whole sequence), every entity slices back to its text. Linearity is judged within
the run: seconds per MB at the largest size over seconds per MB at the smallest (1.0 =
linear), on wall-clock and on CPU time, which other jobs on the machine disturb less.

    python -m benchmarks.long_document                       # 125 KB to 1 MB, the shipped model
    python -m benchmarks.long_document --sizes-kb 125 250 500 1000 2000 --model DIR
"""
from __future__ import annotations

import random
import resource
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from benchmarks.common import command_line, log, machine_info, parser, write_result

MODULE = "benchmarks.long_document"
#: Plain Arabic words for a model too small to lend enough of its own vocabulary.
FALLBACK_WORDS = ("محمد يعيش في الرباط باريس هي عاصمة فرنسا زار أحمد علي القاهرة أمس أعلنت الأمم المتحدة عن "
                  "خطة جديدة فاز فريق ريال مدريد بكأس العالم قال الرئيس حسني مبارك بيروت").split()


def make_document(words: List[str], n_bytes: int, seed: int) -> str:
    """Random words joined by single spaces, ``n_bytes`` of UTF-8 (to within a word)."""
    rng = random.Random(seed)
    parts, size = [], 0
    while size < n_bytes:
        w = rng.choice(words)
        parts.append(w)
        size += len(w.encode("utf-8")) + 1
    return " ".join(parts)


def vocabulary_words(tagger, n: int = 20_000) -> List[str]:
    """Words of the model's vocabulary made of Arabic letters only (no punctuation, digits)."""
    words = [w for w in tagger.vocab.words[2:] if w.isalpha() and all("\u0600" <= c <= "\u06ff" for c in w)][:n]
    return words if len(words) >= 50 else words + FALLBACK_WORDS


def check(doc, text: str, tagger) -> Dict[str, int]:
    """The document is whole, every word was tagged, entities slice back to their text."""
    from spacy_aner.core.tagger import make_windows

    assert doc.text == text, "doc.text != text"
    words = [t for t in doc if not t.is_space]
    assert all(t.ent_iob_ in ("B", "I", "O") for t in words), "a word without an entity tag"
    assert all(text[e.start_char:e.end_char] == e.text for e in doc.ents)
    windows = make_windows(len(words), tagger.config.window, tagger.config.context)
    return {"tokens": len(doc), "words": len(words), "windows": len(windows), "entities": len(doc.ents)}


def time_size(nlp, text: str, repeats: int) -> Dict[str, object]:
    """Best of ``repeats``: ``nlp(text)`` wall-clock and CPU seconds, and the tokenizer alone."""
    n_bytes = len(text.encode("utf-8"))
    tok_times, times, cpu_times = [], [], []
    for _ in range(repeats):
        start = time.perf_counter()
        nlp.make_doc(text)
        tok_times.append(time.perf_counter() - start)
        start, cpu_start = time.perf_counter(), time.process_time()
        doc = nlp(text)
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    info = check(doc, text, nlp.get_pipe("aner_lstm").tagger)
    seconds, cpu = min(times), min(cpu_times)
    return {"bytes": n_bytes, "chars": len(text), **info, "seconds": round(seconds, 3),
            "seconds_per_mb": round(seconds / (n_bytes / 1e6), 3), "cpu_seconds": round(cpu, 3),
            "cpu_seconds_per_mb": round(cpu / (n_bytes / 1e6), 3), "tokenizer_seconds": round(min(tok_times), 3),
            "words_per_second": round(info["words"] / seconds), "all_times": [round(t, 3) for t in times],
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def ratios(rows: List[Dict]) -> Dict[str, float]:
    """Per-MB cost at the largest size over that at the smallest (1.0 = linear)."""
    first, last = rows[0], rows[-1]
    tok = (last["tokenizer_seconds"] / last["bytes"]) / max(first["tokenizer_seconds"] / first["bytes"], 1e-12)
    return {"linearity_ratio": round(last["seconds_per_mb"] / first["seconds_per_mb"], 3),
            "cpu_linearity_ratio": round(last["cpu_seconds_per_mb"] / first["cpu_seconds_per_mb"], 3),
            "tokenizer_linearity_ratio": round(tok, 3)}


def print_table(result: Dict) -> None:
    print("| size | chars | words | windows | seconds | s/MB | CPU s/MB | tokenizer s | words/s | entities "
          "| peak RSS |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in result["rows"]:
        print(f"| {r['bytes'] / 1e6:.3f} MB | {r['chars']:,} | {r['words']:,} | {r['windows']:,} | {r['seconds']:.2f} "
              f"| {r['seconds_per_mb']:.2f} | {r['cpu_seconds_per_mb']:.2f} | {r['tokenizer_seconds']:.2f} "
              f"| {r['words_per_second']:,} | {r['entities']:,} | {r['peak_rss_mb']:,} MB |")
    print(f"\ns/MB at the largest size over the smallest: {result['linearity_ratio']:.2f} wall clock, "
          f"{result['cpu_linearity_ratio']:.2f} CPU (1.00 = linear; tokenizer alone "
          f"{result['tokenizer_linearity_ratio']:.2f})")


def main(argv: Optional[Sequence[str]] = None) -> int:
    import spacy_aner

    argv = list(sys.argv[1:] if argv is None else argv)
    ap = parser(MODULE, __doc__)
    ap.add_argument("--model", type=Path, default=None, help="model directory (default: the shipped model)")
    ap.add_argument("--sizes-kb", type=int, nargs="+", default=[125, 250, 500, 1000],
                    help="document sizes in KB of UTF-8 (1000 = 1 MB)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per size; the best is kept")
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args(argv)
    machine = machine_info()
    nlp = spacy_aner.load(args.model)
    nlp.max_length = 10 ** 8  # the pipeline is linear; spaCy's default cap is 1,000,000 characters
    component = nlp.get_pipe("aner_lstm")
    words = vocabulary_words(component.tagger)
    nlp(make_document(words, min(args.sizes_kb) * 1000, args.seed - 1))  # warm-up
    rows = []
    for kb in sorted(args.sizes_kb):
        rows.append({"size_kb": kb, **time_size(nlp, make_document(words, kb * 1000, args.seed + kb), args.repeats)})
        row = rows[-1]
        log(f"{kb:>6} KB: {row['words']:,} words, {row['seconds']:.2f} s ({row['seconds_per_mb']:.2f} s/MB)")
    cfg = component.tagger.config
    result = {"what": "nlp(text) on one long document of random vocabulary words without punctuation",
              "model": str(component.model_path),
              "model_config": {k: getattr(cfg, k) for k in ("window", "context", "lstm_units", "members")},
              "component": {"consistency_window": component.consistency_window,
                            "split_sentences": component.split_sentences},
              "repeats": args.repeats, "seed": args.seed, "rows": rows, **ratios(rows)}
    write_result(args.output, result, command_line(MODULE, argv), machine)
    print(f"Long document without punctuation, model {component.model_path.name} (window {cfg.window}, "
          f"context {cfg.context}), best of {args.repeats}:\n")
    print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
