"""Where the network's time goes, and how close its BiLSTMs run to the machine's arithmetic limit.

One pass of ``nlp.pipe`` over the raw test sentences after a warm-up pass, starting with no
char features kept, as :mod:`benchmarks.throughput` times them, with ONNX Runtime's
profiler on for the aner_lstm network: time per operator type and the tokens the network
computed. The BiLSTMs' arithmetic rate (multiply-adds per token, from the shapes of the
LSTM weights in the graph, × rows × longest row of each call, where the LSTMs stop, / LSTM
time) is set against ONNX Runtime's own float32 matrix product on one thread, timed in
the same run (each call runs on one thread; ``threads=1`` here, so calls do not overlap):
when the two are close, only less arithmetic (fewer or smaller networks, int8 kernels)
makes the network faster, not a faster runtime.

    python -m benchmarks.network_profile                       # the shipped ensemble, batch 256
    python -m benchmarks.network_profile --members 1 --output benchmarks/results/network_profile_members_1.json
"""
from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np

from benchmarks.common import TEST_FILE, command_line, log, machine_info, parser, pipe_runner, read_tagged, write_result

MODULE = "benchmarks.network_profile"
#: The reference product: (rows, inner, columns), the shape of a first BiLSTM layer's input
#: projection over a batch of 256 sentences of 32 words (both directions' gates side by side).
GEMM_SHAPE = (8192, 384, 1024)


def lstm_macs_per_token(graph: bytes) -> int:
    """Multiply-adds per token of all the graph's LSTM nodes: directions × gates × (input + hidden),
    from the shapes of their weights (initializers, stored float16 behind a Cast)."""
    import onnx

    model = onnx.load_from_string(graph)
    shapes = {i.name: list(i.dims) for i in model.graph.initializer}
    producer = {out: node for node in model.graph.node for out in node.output}

    def shape(name: str):
        while name not in shapes:
            name = producer[name].input[0]
        return shapes[name]

    total = 0
    for node in model.graph.node:
        if node.op_type == "LSTM":
            directions, gates, inputs = shape(node.input[1])
            hidden = shape(node.input[2])[2]
            total += directions * gates * (inputs + hidden)
    return total


def session_options(profile_prefix: Optional[str] = None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if profile_prefix:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return options


def gemm_gflops(repeats: int = 5) -> float:
    """ONNX Runtime's float32 MatMul of :data:`GEMM_SHAPE`, in GFLOP/s (median of ``repeats``)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    m, k, n = GEMM_SHAPE
    rng = np.random.default_rng(0)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "gemm",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [m, k])],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [m, n])],
        [numpy_helper.from_array(rng.normal(size=(k, n)).astype(np.float32), "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    session = ort.InferenceSession(model.SerializeToString(), session_options(),
                                   providers=["CPUExecutionProvider"])
    feed = {"a": rng.normal(size=(m, k)).astype(np.float32)}
    session.run(None, feed)
    seconds = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        session.run(None, feed)
        seconds.append(time.perf_counter() - t0)
    return 2 * m * k * n / statistics.median(seconds) / 1e9


def profile_pass(nlp, texts: Sequence[str], batch_size: int, prefix: str) -> Dict[str, object]:
    """One pass with a profiling session standing in for the scorer's (an instance attribute,
    removed afterwards): seconds per operator type, network calls and padded tokens."""
    import onnxruntime as ort

    scorer = nlp.get_pipe("aner_lstm").tagger.scorer
    session = ort.InferenceSession(scorer.graph, session_options(prefix),
                                   providers=["CPUExecutionProvider"])
    counts = {"calls": 0, "padded_tokens": 0, "lstm_steps": 0, "tokens": 0}
    scores = scorer.scores

    def counted(feeds):
        lengths = feeds["lengths"]
        counts["calls"] += 1
        counts["padded_tokens"] += int(feeds["index"].size)
        # the LSTMs read the lengths and stop at the longest row of the call
        counts["lstm_steps"] += len(lengths) * int(lengths.max(initial=0))
        counts["tokens"] += int(lengths.sum())
        return scores(feeds)

    scorer.session, scorer.scores = (lambda: session), counted
    try:
        t0 = time.perf_counter()
        pipe_runner(nlp, texts, batch_size)()
        seconds = time.perf_counter() - t0
    finally:
        del scorer.session, scorer.scores
    trace = Path(session.end_profiling())
    events = json.loads(trace.read_text(encoding="utf-8"))
    trace.unlink()
    ops: Dict[str, float] = {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            ops[e["args"]["op_name"]] = ops.get(e["args"]["op_name"], 0.0) + e["dur"] / 1e6
    network = sum(e["dur"] for e in events if e.get("name") == "model_run") / 1e6
    return {"pass_s": round(seconds, 4), "network_s": round(network, 4), **counts,
            "operators_s": {k: round(v, 4) for k, v in sorted(ops.items(), key=lambda kv: -kv[1])}}


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = parser(MODULE, __doc__)
    ap.add_argument("--model", help="aner_lstm model directory (default: the model shipped in the package)")
    ap.add_argument("--members", type=int, default=0, help="the component's members option (0: all networks)")
    ap.add_argument("--batch-size", type=int, default=256, help="nlp.pipe batch size")
    ap.add_argument("--test-file", type=Path, default=TEST_FILE, help="WORD TAG file whose sentences are the texts")
    ap.add_argument("--limit", type=int, default=None, help="only the first N sentences (quick checks)")
    args = ap.parse_args(argv)
    import spacy_aner

    machine = machine_info()
    words, _ = read_tagged(args.test_file, args.limit)
    texts = [" ".join(w) for w in words]
    nlp = spacy_aner.load(args.model, members=args.members, threads=1)
    tagger = nlp.get_pipe("aner_lstm").tagger
    pipe_runner(nlp, texts, args.batch_size)()  # warm-up
    log(f"profiling one pass of {len(texts):,} sentences at batch size {args.batch_size} ...")
    run = profile_pass(nlp, texts, args.batch_size, str(Path(tempfile.gettempdir()) / "aner_onnxruntime_profile"))
    macs = lstm_macs_per_token(tagger.scorer.graph)
    lstm_s = run["operators_s"].get("LSTM", 0.0)
    lstm = 2 * macs * run["lstm_steps"] / lstm_s / 1e9 if lstm_s else None
    gemm = gemm_gflops()
    result = {
        "what": "ONNX Runtime's profile of the aner_lstm network over one nlp.pipe pass of the raw test sentences",
        "model": str(nlp.get_pipe("aner_lstm").model_path), "members": tagger.scorer.members,
        "threads": tagger.threads, "batch_size": args.batch_size, "sentences": len(texts), **run,
        "network_share_of_pass": round(run["network_s"] / run["pass_s"], 4),
        "lstm_macs_per_token": macs, "lstm_gflops": round(lstm, 1) if lstm else None,
        "reference_gemm": {"shape": GEMM_SHAPE, "gflops": round(gemm, 1)},
        "lstm_over_gemm": round(lstm / gemm, 3) if lstm else None,
    }
    write_result(args.output, result, command_line(MODULE, argv), machine)
    print(f"pass {run['pass_s']:.3f} s, network {run['network_s']:.3f} s ({run['calls']} calls, "
          f"{run['padded_tokens']:,} padded tokens)")
    for op, s in run["operators_s"].items():
        print(f"  {op:12s} {s:8.4f} s")
    print(f"LSTMs: {macs:,} multiply-adds per token, {result['lstm_gflops']} GFLOP/s; "
          f"ONNX Runtime float32 MatMul {GEMM_SHAPE}: {result['reference_gemm']['gflops']} GFLOP/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
