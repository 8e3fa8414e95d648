"""A throwaway Spark standalone cluster on this machine: a master and workers on 127.0.0.1.

For trying ``annotate --spark`` against a real cluster (separate executor JVMs and Python
workers, as on a cluster of machines) without one; the tests and the Spark benchmark use it.
It runs pyspark's own ``bin/spark-class``, so it needs only pyspark and a Java runtime.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Dict, List, Optional

HOST = "127.0.0.1"
#: Most seconds to wait for the master to listen and for every worker to register.
START_TIMEOUT = 180


def free_ports(n: int) -> List[int]:
    """``n`` distinct ports free now: held open together, so the system cannot give one twice
    (ports taken one at a time can repeat before the JVMs bind them)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind((HOST, 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


class LocalCluster:
    """``with LocalCluster(workers=2) as cluster:`` a standalone master (``cluster.url``) and workers.

    Each worker offers ``cores`` cores and ``memory`` (a Spark size such as ``"1g"``) and
    starts its executors with ``python`` as their Python. Every process started is stopped
    on leaving the block, or by :meth:`stop`; logs go to ``log_dir`` (default: a temporary
    folder, removed at the stop).
    """

    def __init__(self, workers: int = 2, *, cores: int = 1, memory: str = "1g", python: str = sys.executable,
                 log_dir: Optional[Path] = None) -> None:
        self.workers, self.cores, self.memory, self.python = workers, cores, memory, python
        self.own_dir = log_dir is None
        self.dir = Path(tempfile.mkdtemp(prefix="spark_cluster_")) if log_dir is None else Path(log_dir)
        self.procs: List[subprocess.Popen] = []
        self.port, self.ui_port, *self.worker_ports = free_ports(2 + 2 * workers)  # each worker: port, web UI

    @property
    def url(self) -> str:
        return f"spark://{HOST}:{self.port}"

    def env(self) -> Dict[str, str]:
        """The environment of every process, with this one's PYTHONPATH made absolute (they run elsewhere)."""
        path = os.pathsep.join(os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)
        return {**os.environ, "PYTHONPATH": path, "SPARK_HOME": str(spark_home()), "SPARK_LOCAL_IP": HOST, "PYSPARK_PYTHON": self.python,
                "SPARK_LOG_DIR": str(self.dir), "SPARK_WORKER_DIR": str(self.dir / "work")}

    def _spawn(self, name: str, args: List[str]) -> subprocess.Popen:
        log = (self.dir / f"{name}.log").open("wb")
        proc = subprocess.Popen([str(spark_home() / "bin" / "spark-class"), *args], env=self.env(), stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self.procs.append(proc)
        return proc

    def start(self) -> "LocalCluster":
        (self.dir / "work").mkdir(parents=True, exist_ok=True)
        try:
            self._spawn("master", ["org.apache.spark.deploy.master.Master", "--host", HOST, "--port", str(self.port),
                                   "--webui-port", str(self.ui_port)])
            for k in range(self.workers):
                self._spawn(f"worker{k + 1}", ["org.apache.spark.deploy.worker.Worker", self.url, "--host", HOST,
                                               "--port", str(self.worker_ports[2 * k]),
                                               "--webui-port", str(self.worker_ports[2 * k + 1]),
                                               "--cores", str(self.cores), "--memory", self.memory,
                                               "--work-dir", str(self.dir / "work")])
            self._wait_for_workers()
        except BaseException:
            self.stop()
            raise
        return self

    def status(self) -> dict:
        """The master's JSON status page (``aliveworkers``, ``workers``, ``activeapps`` ...)."""
        with urllib.request.urlopen(f"http://{HOST}:{self.ui_port}/json/", timeout=5) as r:
            return json.loads(r.read().decode("utf-8"))

    def _wait_for_workers(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            dead = [p for p in self.procs if p.poll() is not None]
            if dead:
                raise RuntimeError(f"a Spark process stopped at start (exit {dead[0].returncode}):\n{self.logs()}")
            try:
                if self.status().get("aliveworkers", 0) >= self.workers:
                    return
            except (OSError, ValueError):
                pass  # not listening yet, or not the JSON page yet
            time.sleep(0.5)
        raise RuntimeError(f"the Spark cluster did not start in {START_TIMEOUT} s:\n{self.logs()}")

    def logs(self, tail: int = 3000) -> str:
        return "\n".join(f"== {p.name}\n{p.read_text(errors='replace')[-tail:]}" for p in sorted(self.dir.glob("*.log")))

    def pids(self) -> List[int]:
        return [p.pid for p in self.procs]

    def stop(self) -> None:
        """Stop the workers (and the executors they started), then the master; remove a temporary log folder."""
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)  # its own session: the JVM and whatever it started
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs = []
        if self.own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "LocalCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
