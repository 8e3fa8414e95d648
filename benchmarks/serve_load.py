"""Load test of ``spacy-aner serve``: concurrent clients POST /ner for a fixed time on 127.0.0.1.

1. Starts ``python -m spacy_aner serve --port P`` (a free port on 127.0.0.1, the shipped
   model unless ``--model``) and waits for ``GET /health``.
2. Texts: the sentences of ``--test-file`` (default: the ANERCorp test split), words
   joined by spaces, or the lines of ``--texts FILE``; without the corpus, the lines of
   ``examples/sample.txt``. Each request is ``{"text": ...}`` with one of them, drawn at
   random (seeded).
3. ``--clients`` asyncio clients (aiohttp, one connection each, in this one process) send
   request after request: ``--warmup`` seconds not counted, then ``--seconds`` counted.
   Latency is from sending a request to its parsed reply. A reply that is not 200, a
   transport error, or an entity whose offsets do not slice its text back out of the
   request's text counts as an error.
4. The server's RSS is sampled from ``/proc`` every ``--interval`` seconds: at the start
   of the counted run, at its end, and the largest. ``/health`` gives the batching counts
   (texts per ``nlp.pipe`` call).

Client and server share the machine's cores, so requests/s is a floor for the server.
Exits 1 if any request failed.

    python -m benchmarks.serve_load --seconds 30 --clients 50
    python -m benchmarks.serve_load --seconds 5 --output /tmp/serve_load.json

Linux only (``/proc``).
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from benchmarks.common import ROOT, TEST_FILE, command_line, log, machine_info, parser, read_tagged, write_result

MODULE = "benchmarks.serve_load"


def load_texts(path: Optional[Path], test_file: Path) -> tuple:
    if path is not None:
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return lines, f"{path.name} lines"
    if test_file.is_file():
        words, _ = read_tagged(test_file)
        return [" ".join(w) for w in words], f"{test_file.name} sentences, words joined by spaces"
    log(f"{test_file} not found: using examples/sample.txt")
    lines = [line for line in (ROOT / "examples" / "sample.txt").read_text(encoding="utf-8").splitlines() if line]
    return lines, "examples/sample.txt lines"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_field(pid: int, field: str) -> Optional[int]:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RssSampler(threading.Thread):
    """The server's RSS in MB every ``interval`` seconds, until stopped."""

    def __init__(self, pid: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.samples: List[float] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            kb = proc_field(self.pid, "VmRSS:")
            if kb is not None:
                self.samples.append(round(kb / 1024, 1))
            self.done.wait(self.interval)


def start_server(args, port: int, log_path: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "spacy_aner", "serve", "--port", str(port), "--max-batch", str(args.max_batch),
           "--batch-wait-ms", str(args.batch_wait_ms)]
    if args.model is not None:
        cmd += ["--model", str(args.model)]
    with open(log_path, "wb") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


def wait_ready(url: str, proc: subprocess.Popen, log_path: Path, timeout: float = 180) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the server did not start:\n" + log_path.read_text(errors="replace")[-3000:])


def check_reply(text: str, body: dict) -> Optional[str]:
    for e in body.get("entities", []):
        if text[e["start"]:e["end"]] != e["text"]:
            return f"entity {e} does not slice out of its text"
    return None if "entities" in body else f"no 'entities' in {body}"


async def load(url: str, texts: Sequence[str], clients: int, warmup: float, seconds: float, seed: int,
               on_start) -> Dict:
    """Run the clients; ``on_start()`` is called when counting starts. Latencies (s) and errors of the counted part."""
    import aiohttp

    rng = random.Random(seed)
    latencies: List[float] = []
    errors: List[str] = []
    loop = asyncio.get_running_loop()
    start = loop.time()
    count_from, stop_at = start + warmup, start + warmup + seconds
    started = asyncio.Event()

    async def client(http) -> None:
        while True:
            now = loop.time()
            if now >= stop_at:
                return
            if now >= count_from and not started.is_set():
                started.set()
                on_start()
            text = rng.choice(texts)
            t0 = loop.time()
            try:
                async with http.post(f"{url}/ner", json={"text": text}) as reply:
                    body = await reply.read()
                problem = (f"HTTP {reply.status}: {body[:200]!r}" if reply.status != 200
                           else check_reply(text, json.loads(body)))
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as err:
                problem = f"{type(err).__name__}: {err}"
            if t0 >= count_from:
                if problem is None:
                    latencies.append(loop.time() - t0)
                else:
                    errors.append(problem)

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    return {"latencies": latencies, "errors": errors, "elapsed": loop.time() - count_from}


def percentile(values: Sequence[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 10) - 1] if len(values) > 1 else values[0]


def run(args) -> Dict:
    import httpx

    texts, source = load_texts(args.texts, args.test_file)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_dir = tempfile.TemporaryDirectory(prefix="serve_load_")
    log_path = Path(log_dir.name) / "server.log"
    proc = start_server(args, port, log_path)
    try:
        wait_ready(url, proc, log_path)
        rss_loaded = proc_field(proc.pid, "VmRSS:") / 1024
        sampler = RssSampler(proc.pid, args.interval)
        counted = {}

        def on_start() -> None:
            counted["batching"] = httpx.get(f"{url}/health").json()["batching"]
            counted["server_cpu"] = cpu_seconds(proc.pid)
            counted["client_cpu"] = time.process_time()
            sampler.start()

        log(f"{args.clients} clients, {args.warmup:g} s warm-up + {args.seconds:g} s counted, on {url}")
        out = asyncio.run(load(url, texts, args.clients, args.warmup, args.seconds, args.seed, on_start))
        sampler.done.set()
        sampler.join()
        server_cpu = cpu_seconds(proc.pid) - counted["server_cpu"]
        client_cpu = time.process_time() - counted["client_cpu"]
        batching = httpx.get(f"{url}/health").json()["batching"]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        server_log = log_path.read_text(errors="replace")
        log_dir.cleanup()
    if out["errors"]:
        log("server log (end):\n" + server_log[-3000:])
    lat = sorted(out["latencies"])
    n, elapsed = len(lat), out["elapsed"]
    batches = batching["batches"] - counted["batching"]["batches"]
    docs = batching["docs"] - counted["batching"]["docs"]
    ms = lambda x: round(1000 * x, 1)  # noqa: E731
    return {
        "what": "spacy-aner serve under concurrent POST /ner clients on 127.0.0.1",
        "settings": {"clients": args.clients, "seconds": args.seconds, "warmup_s": args.warmup,
                     "max_batch": args.max_batch, "batch_wait_ms": args.batch_wait_ms, "seed": args.seed,
                     "model": str(args.model) if args.model else "shipped", "texts": source, "n_texts": len(texts),
                     "mean_chars": round(statistics.mean(map(len, texts)), 1)},
        "requests": n, "errors": len(out["errors"]), "error_examples": out["errors"][:5],
        "requests_per_s": round(n / elapsed, 1) if elapsed > 0 else None,
        "latency_ms": {"p50": ms(percentile(lat, 50)), "p90": ms(percentile(lat, 90)),
                       "p99": ms(percentile(lat, 99)), "max": ms(lat[-1]), "mean": ms(statistics.mean(lat))}
        if lat else None,
        "server_rss_mb": {"loaded": round(rss_loaded, 1), "start": sampler.samples[0] if sampler.samples else None,
                          "end": sampler.samples[-1] if sampler.samples else None,
                          "max": max(sampler.samples) if sampler.samples else None, "samples": sampler.samples},
        "batching": {"batches": batches, "docs": docs, "mean_texts_per_batch": round(docs / batches, 1)
                     if batches else None, "largest_batch": batching["largest_batch"]},
        "cpu_s": {"server": round(server_cpu, 1), "client": round(client_cpu, 1), "wall": round(elapsed, 1)},
    }


def print_table(r: Dict) -> None:
    lat, rss, s = r["latency_ms"] or {}, r["server_rss_mb"], r["settings"]
    print(f"\n{s['clients']} clients, {s['seconds']:g} s, {s['texts']} (mean {s['mean_chars']:g} characters)\n")
    print("| requests | errors | requests/s | p50 ms | p90 ms | p99 ms | max ms | texts per nlp.pipe | "
          "server RSS start → end (max) MB | CPU s server / client |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(f"| {r['requests']:,} | {r['errors']} | {r['requests_per_s']} | {lat.get('p50')} | {lat.get('p90')} | "
          f"{lat.get('p99')} | {lat.get('max')} | {r['batching']['mean_texts_per_batch']} | "
          f"{rss['start']} → {rss['end']} ({rss['max']}) | {r['cpu_s']['server']} / {r['cpu_s']['client']} |")
    for example in r["error_examples"]:
        print(f"error: {example}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = parser(MODULE, __doc__)
    ap.add_argument("--seconds", type=float, default=30, help="counted seconds of load")
    ap.add_argument("--warmup", type=float, default=3, help="seconds of load before counting")
    ap.add_argument("--clients", type=int, default=50, help="concurrent clients, one request in flight each")
    ap.add_argument("--model", type=Path, default=None, help="model directory (default: the shipped model)")
    ap.add_argument("--test-file", type=Path, default=TEST_FILE,
                    help="WORD TAG file whose sentences are the request texts (if missing: examples/sample.txt)")
    ap.add_argument("--texts", type=Path, default=None, help="a text file, one request text per line, instead")
    ap.add_argument("--max-batch", type=int, default=64, help="the server's --max-batch")
    ap.add_argument("--batch-wait-ms", type=float, default=5.0, help="the server's --batch-wait-ms")
    ap.add_argument("--interval", type=float, default=0.5, help="seconds between RSS samples")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if not Path("/proc/self/status").exists():
        ap.error("this benchmark reads /proc: Linux only")
    if args.seconds <= 0 or args.clients < 1:
        ap.error("--seconds must be positive and --clients at least 1")
    machine = machine_info()
    result = run(args)
    write_result(args.output, result, command_line(MODULE, argv), machine)
    print_table(result)
    return 1 if result["errors"] or not result["requests"] else 0


if __name__ == "__main__":
    sys.exit(main())
