"""A real ``spacy-aner serve`` process on 127.0.0.1 (shipped model): the API over HTTP, and the page in
headless Chromium (Debian's package, driven by Playwright), with a screenshot checked for displaCy's marks.
"""
from __future__ import annotations

import http.client
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from spacy_aner.pipeline.display import ENTITY_COLORS

pytestmark = pytest.mark.slow

TEXT = "محمد يعيش في الرباط"
MAX_BYTES = 20_000
#: Where to keep the screenshot, to look at (the test's temporary folder otherwise).
SCREENSHOT = os.environ.get("ANER_SCREENSHOT")
#: Flags for Chromium as root on a machine without network (docs/serving.md).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(log, *options: str):
    """``spacy-aner serve`` with ``options`` on a free port, logging to ``log``; the process and its
    base URL once ``/health`` answers."""
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "spacy_aner", "serve", "--port", str(port), *options],
                                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the server did not start:\n" + log.read_text(errors="replace")[-3000:])
        time.sleep(0.2)
    return proc, url


@pytest.fixture(scope="module")
def server(shipped_model_dir, tmp_path_factory):
    """``spacy-aner serve`` in its own process; its base URL. Stopped (SIGTERM) after the module."""
    log = tmp_path_factory.mktemp("serve") / "server.log"
    proc, url = start_server(log, "--max-bytes", str(MAX_BYTES), "--batch-wait-ms", "20")
    yield url
    proc.terminate()
    try:
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = log.read_text(errors="replace")
    # uvicorn shuts down cleanly, then re-raises the signal it caught
    assert code in (0, -signal.SIGTERM) and "Application shutdown complete" in output, output[-3000:]
    assert "Traceback" not in output


def test_the_api_over_http(server):
    r = httpx.post(f"{server}/ner", json={"text": TEXT})
    assert r.status_code == 200
    assert [(e["text"], e["label"]) for e in r.json()["entities"]] == [("محمد", "PERS"), ("الرباط", "LOC")]
    assert all("score" in e for e in r.json()["entities"])
    r = httpx.post(f"{server}/ner", content=b'{"text": "\xff"}')
    assert r.status_code == 400 and "not valid UTF-8" in r.json()["error"]
    r = httpx.post(f"{server}/ner", content=b'{"text": "a\x01"}')
    assert r.status_code == 400 and "control character" in r.json()["error"]


def test_an_oversized_body_is_refused_before_it_is_read(server):
    """A 50 MB body gets its 413 from the Content-Length alone; a chunked one once the limit is passed."""
    conn = http.client.HTTPConnection("127.0.0.1", int(server.rsplit(":", 1)[1]), timeout=30)
    try:
        conn.putrequest("POST", "/ner")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", "50000000")
        conn.endheaders(b"[" * 1000)  # the first kilobyte only: the answer must not wait for the rest
        reply = conn.getresponse()
        assert reply.status == 413 and b"over the limit of 20,000 bytes" in reply.read()
    finally:
        conn.close()

    def chunks():
        yield b'{"text": "'
        for _ in range(1000):
            yield "م".encode() * 500

    r = httpx.post(f"{server}/ner", content=chunks(), timeout=60)
    assert r.status_code == 413


def test_a_client_that_hangs_up_mid_body_leaves_the_server_well(server):
    """Half a body, then the connection closes: no traceback in the log (checked when the server stops)."""
    port = int(server.rsplit(":", 1)[1])
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(b"POST /ner HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b'{"text": "')
    time.sleep(0.5)
    assert httpx.post(f"{server}/ner", json={"text": TEXT}).status_code == 200


def test_requests_whose_clients_hang_up_are_not_tagged(shipped_model_dir, tmp_path):
    """Requests whose clients close the connection while they wait for their batch leave the
    queue untagged (a batch waits 2 s for company here, so every hang-up comes first)."""
    proc, url = start_server(tmp_path / "server.log", "--batch-wait-ms", "2000")
    try:
        port = int(url.rsplit(":", 1)[1])
        body = json.dumps({"texts": [TEXT] * 3}, ensure_ascii=False).encode()
        for _ in range(5):
            with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                sock.sendall(b"POST /ner HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        assert httpx.post(f"{url}/ner", json={"text": TEXT}, timeout=60).status_code == 200
        assert httpx.get(f"{url}/health").json()["batching"]["docs"] == 1
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert "Traceback" not in (tmp_path / "server.log").read_text(errors="replace")


def test_concurrent_clients_share_batches(server):
    before = httpx.get(f"{server}/health").json()["batching"]
    n = 24
    answers = [None] * n
    barrier = threading.Barrier(n)

    def ask(i):
        barrier.wait()
        answers[i] = httpx.post(f"{server}/ner", json={"texts": [TEXT, f"باريس هي عاصمة فرنسا {i}"]}, timeout=120)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = httpx.get(f"{server}/health").json()["batching"]
    assert all(a.status_code == 200 for a in answers)
    for a in answers:
        first, second = a.json()["results"]
        assert [e["label"] for e in first["entities"]] == ["PERS", "LOC"]
        assert [e["text"] for e in second["entities"]] == ["باريس", "فرنسا"]
    batches = after["batches"] - before["batches"]
    assert after["requests"] - before["requests"] == n and batches < n and after["largest_batch"] > 2, after


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT"])
def test_stopping_during_a_long_batch_answers_503_and_exits_promptly(shipped_model_dir, tmp_path, how):
    """SIGTERM or Ctrl+C while a long request (400,000 words) is being tagged: its client and
    the one waiting behind it get a JSON 503 after uvicorn's 5 s of grace, and the process exits
    without finishing the batch (its network calls on the other threads are dropped)."""
    proc, url = start_server(tmp_path / "server.log", "--max-bytes", "2000000")
    answers = {}

    def ask(name, text):
        answers[name] = httpx.post(f"{url}/ner", json={"text": text}, timeout=120)

    clients = [threading.Thread(target=ask, args=("long", "ب " * 400_000)), threading.Thread(target=ask, args=("short", TEXT))]
    try:
        clients[0].start()
        time.sleep(2.0)  # the long text is being tagged
        clients[1].start()
        time.sleep(0.5)
        stopped = time.monotonic()
        proc.send_signal(getattr(signal, how))
        code = proc.wait(timeout=60)
        seconds = time.monotonic() - stopped
        for t in clients:
            t.join(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = (tmp_path / "server.log").read_text(errors="replace")
    assert code in (0, -getattr(signal, how)) and seconds < 12, (seconds, output[-3000:])
    for name in ("long", "short"):
        assert answers[name].status_code == 503, (name, answers[name].text)
        assert "the server stopped" in answers[name].json()["error"]
    assert "Traceback" not in output, output[-3000:]


def colour_pixels(png: bytes, hex_colour: str) -> int:
    import numpy as np
    from PIL import Image

    target = [int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)]
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    return int((pixels == target).all(axis=-1).sum())


def test_the_page_in_headless_chromium(server, tmp_path):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium; .ci/run installs it)")
    from playwright.sync_api import sync_playwright

    text = "قال الرئيس حسني مبارك في بيروت إن محمد يعيش في الرباط"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 700})
            page.goto(server + "/")
            assert page.locator("html").get_attribute("dir") == "rtl"
            page.fill("#text", text)
            page.click("#submit")
            page.wait_for_selector("#result mark", timeout=60_000)
            shot = page.screenshot(path=str(SCREENSHOT or tmp_path / "page.png"), full_page=True)
            marks = page.locator("#result mark")
            found = [" ".join(marks.nth(i).inner_text().split()) for i in range(marks.count())]
            boxes = {f.rsplit(" ", 1)[0]: marks.nth(i).bounding_box() for i, f in enumerate(found)}
            rows = page.locator("#entities tbody tr").count()
            direction = page.eval_on_selector("#result .entities", "e => getComputedStyle(e).direction")

            page.fill("#text", "م" * MAX_BYTES)  # over the limit: the page shows the server's message
            page.click("#submit")
            page.wait_for_function("document.getElementById('error').textContent.length > 0", timeout=30_000)
            error = page.inner_text("#error")
            stale = page.locator("#result mark").count(), page.locator("#entities").is_visible()
        finally:
            browser.close()
    expected = httpx.post(f"{server}/ner", json={"text": text}).json()["entities"]
    assert found == [f"{e['text']} {e['label']}" for e in expected] and len(found) >= 3
    assert {"حسني مبارك PERS", "بيروت LOC", "الرباط LOC"} <= set(found)
    assert rows == len(expected) and direction == "rtl"
    assert boxes["بيروت"]["x"] > boxes["الرباط"]["x"]  # right to left: the earlier name is further right
    assert colour_pixels(shot, ENTITY_COLORS["PERS"]) > 500 and colour_pixels(shot, ENTITY_COLORS["LOC"]) > 500
    assert "over the limit" in error and stale == (0, False)  # the earlier text's entities are gone
