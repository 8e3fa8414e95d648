"""spacy_aner.serve.app: the page, POST /ner, POST /render and GET /health through Starlette's test client.

Every malformed request gets a 4xx with a JSON message; the test client re-raises any
server error, so a 500 would fail these tests.
"""
from __future__ import annotations

import asyncio
import json
import threading

import pytest
from starlette.testclient import TestClient

from spacy_aner.annotate import entity_records
from spacy_aner.serve import create_app
from spacy_aner.serve.tagging import component_name, doc_entities

TEXT = "محمد يعيش في الرباط"
MAX_BYTES = 4_000


@pytest.fixture(scope="module")
def client(scrambled_nlp):
    with TestClient(create_app(scrambled_nlp, max_bytes=MAX_BYTES, max_texts=20, model="scrambled")) as client:
        yield client


def expected(nlp, text):
    """The entities of ``text`` in this process, as the server should give them."""
    records = doc_entities(nlp(text), "aner_lstm")
    assert plain(records) == plain(entity_records(nlp(text)))  # annotate's records, plus the score
    return records


def plain(records):
    return [{k: r[k] for k in ("start", "end", "label", "text")} for r in records]


def test_health_reports_the_pipeline_limits_and_batching(client):
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["pipeline"] == ["aner_lstm"] and body["model"] == "scrambled"
    assert body["limits"]["max_bytes"] == MAX_BYTES and body["limits"]["max_texts"] == 20
    assert set(body["batching"]) == {"batches", "requests", "docs", "largest_batch"}


def test_the_page_is_arabic_right_to_left_with_a_form(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert '<html lang="ar" dir="rtl">' in page and '<textarea id="text"' in page and 'fetch("render"' in page
    assert client.head("/").status_code == 200


def test_ner_one_text(client, scrambled_nlp):
    r = client.post("/ner", json={"text": TEXT})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    entities = r.json()["entities"]
    assert entities == expected(scrambled_nlp, TEXT) and entities
    for e in entities:
        assert TEXT[e["start"]:e["end"]] == e["text"]


@pytest.mark.parametrize("texts", [
    [TEXT, "", "   ", "باريس هي عاصمة فرنسا", "hello world 😀", "محمد\u0000يعيش\u0007 في\tالرباط\r\n", "\u200fالرباط"],
    [],
])
def test_ner_many_texts_in_order(client, scrambled_nlp, texts):
    r = client.post("/ner", json={"texts": texts})
    assert r.status_code == 200
    results = r.json()["results"]
    assert [res["entities"] for res in results] == [expected(scrambled_nlp, t) for t in texts]
    for text, res in zip(texts, results):
        assert all(text[e["start"]:e["end"]] == e["text"] for e in res["entities"])


def test_a_byte_order_mark_and_escaped_control_characters_are_accepted(client, scrambled_nlp):
    body = "\ufeff" + json.dumps({"text": "محمد\u0000 يعيش\u001b في الرباط"})
    r = client.post("/ner", content=body.encode("utf-8"))
    assert r.status_code == 200
    assert r.json()["entities"] == expected(scrambled_nlp, "محمد\u0000 يعيش\u001b في الرباط")


@pytest.mark.parametrize("body, status, message", [
    (b"", 400, "empty request body"),
    (b"  \n", 400, "empty request body"),
    (b"{", 400, "invalid JSON: Expecting property name"),
    (b'{"text": "a"', 400, "invalid JSON"),
    (b"nonsense", 400, "invalid JSON"),
    (b'[{"text": "a"}]', 400, "expected a JSON object, got an array"),
    (b'"text"', 400, "expected a JSON object, got a string"),
    (b"null", 400, "expected a JSON object, got null"),
    (b'{"text": 1}', 400, "'text' is a number, not a string"),
    (b'{"text": null}', 400, "'text' is null, not a string"),
    (b'{"text": ["a"]}', 400, "'text' is an array, not a string"),
    (b'{"texts": "a"}', 400, "'texts' is a string, not an array of strings"),
    (b'{"texts": {"a": 1}}', 400, "'texts' is an object"),
    (b'{"texts": ["a", 2]}', 400, "texts[1] is a number, not a string"),
    (b'{"texts": ["a", true]}', 400, "texts[1] is a boolean"),
    (b'{"text": "a", "texts": ["b"]}', 400, "give exactly one of 'text' and 'texts'"),
    (b"{}", 400, "give exactly one of 'text' and 'texts'"),
    (b'{"txt": "a"}', 400, "unknown key 'txt'"),
    (b'{"text": "a", "lang": "ar", "x": 1}', 400, "unknown keys 'lang', 'x'"),
    (json.dumps({"text": "a", **{f"k{i}": 1 for i in range(8)}}).encode(), 400,
     "unknown keys 'k0', 'k1', 'k2', 'k3', 'k4' and 3 more: send"),
    (b'{"text": "\xd9\x85\xff"}', 400, "request body is not valid UTF-8 (byte 12: invalid start byte)"),
    (b"\xff\xfe{\x00}\x00", 400, "not valid UTF-8"),
    ('{"text": "محمد\x00يعيش"}'.encode(), 400, "Invalid control character"),
    (b'{"text": "a\nb"}', 400, "must be escaped"),
    (b'{"text": "\\ud800"}', 400, "'text': not valid Unicode: lone surrogate U+D800"),
    (b'{"texts": ["a", "\\udfff b"]}', 400, "texts[1]: not valid Unicode"),
    (b"[" * 1_900 + b"]" * 1_900, 400, "nested too deeply"),
])
def test_malformed_requests_get_400_with_a_clear_message(client, body, status, message):
    r = client.post("/ner", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert message in r.json()["error"]


def test_an_integer_too_long_for_python_is_a_bad_request():
    """Over the test server's body limit, so the parser is called alone (a real server's limit is larger)."""
    from spacy_aner.serve.payload import RequestError, parse_json

    with pytest.raises(RequestError, match="invalid JSON: Exceeds the limit") as info:
        parse_json(b'{"text": "a", "n": ' + b"9" * 5000 + b"}")
    assert info.value.status == 400


def test_over_the_size_limits_is_413(client):
    r = client.post("/ner", json={"text": "م" * MAX_BYTES})
    assert r.status_code == 413 and f"over the limit of {MAX_BYTES:,} bytes" in r.json()["error"]
    # no Content-Length (chunked): counted while it is read
    r = client.post("/ner", content=iter([b'{"text": "', b"a" * MAX_BYTES, b'"}']))
    assert r.status_code == 413 and "over the limit" in r.json()["error"]
    r = client.post("/ner", json={"texts": ["a"] * 21})
    assert r.status_code == 413 and "21 texts in one request; at most 20" in r.json()["error"]
    r = client.post("/ner", content=b"{}", headers={"content-length": "abc"})
    assert r.status_code == 400


def test_a_compressed_body_is_415(client):
    r = client.post("/ner", content=b"\x1f\x8b\x08\x00", headers={"content-type": "application/json",
                                                                 "content-encoding": "gzip"})
    assert r.status_code == 415 and "Content-Encoding 'gzip' is not supported" in r.json()["error"]


def post_through_asgi(app, messages):
    """POST /ner straight through ASGI, the client side's ``receive()`` giving ``messages`` in turn
    and then nothing ever again (a stalled client); the response's status, JSON and headers."""
    sent = []

    async def scenario():
        waiting = list(messages)

        async def receive():
            if waiting:
                return waiting.pop(0)
            await asyncio.Event().wait()

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": "/ner", "raw_path": b"/ner", "query_string": b"", "root_path": "",
                 "headers": [(b"content-type", b"application/json")], "client": ("127.0.0.1", 1),
                 "server": ("127.0.0.1", 80)}
        await app.state.batcher.start()
        try:
            await asyncio.wait_for(app(scope, receive, send), 60)
        finally:
            await app.state.batcher.stop()

    asyncio.run(scenario())
    start = next(m for m in sent if m["type"] == "http.response.start")
    reply = json.loads(b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"))
    return start["status"], reply, dict(start["headers"])


def test_a_body_that_stalls_gets_408(scrambled_nlp):
    app = create_app(scrambled_nlp, body_timeout=0.2)
    status, reply, headers = post_through_asgi(app, [{"type": "http.request", "body": b'{"text": ', "more_body": True}])
    assert status == 408 and reply == {"error": "no part of the request body arrived for 0.2 s"}
    assert headers[b"connection"] == b"close"


def test_a_request_whose_client_leaves_before_its_batch_is_never_tagged(scrambled_nlp):
    app = create_app(scrambled_nlp, batch_wait=2.0)  # the batch would start only after the client left
    batcher = app.state.batcher
    tagged = []
    run = batcher.run
    batcher.run = lambda texts: tagged.append(texts) or run(texts)
    body = json.dumps({"texts": ["باريس", "لندن"]}).encode()
    status, _, _ = post_through_asgi(app, [{"type": "http.request", "body": body, "more_body": False},
                                        {"type": "http.disconnect"}])
    assert status == 499 and tagged == []


def test_just_under_the_limit_is_served(client, scrambled_nlp):
    text = ("محمد يعيش في الرباط " * 200)[: (MAX_BYTES - 20) // 2]
    r = client.post("/ner", json={"text": text})
    assert r.status_code == 200 and r.json()["entities"] == expected(scrambled_nlp, text)


def test_wrong_paths_and_methods_get_json_errors(client):
    assert client.get("/nothing").status_code == 404 and client.get("/nothing").json() == {"error": "Not Found"}
    r = client.get("/ner")
    assert r.status_code == 405 and r.json() == {"error": "Method Not Allowed"}
    assert client.put("/render", json={"text": "a"}).status_code == 405
    for path in ("/ner/", "/health/"):  # no redirect, which a client without -L would take for an empty answer
        r = client.post(path, json={"text": "a"}, follow_redirects=False)
        assert r.status_code == 404 and r.json() == {"error": "Not Found"}


def test_render_gives_displacy_markup_with_the_text_escaped(client, scrambled_nlp):
    text = "<script>alert(1)</script> " + TEXT + " & <b>باريس</b>"
    r = client.post("/render", json={"text": text})
    assert r.status_code == 200
    body = r.json()
    assert body["entities"] == expected(scrambled_nlp, text)
    html = body["html"]
    assert "direction: rtl" in html and "<script>" not in html and "<b>" not in html
    assert "&lt;script&gt;" in html or "script" not in {e["text"] for e in body["entities"]}
    assert html.count("<mark") == len(body["entities"]) > 0
    assert "margin-right: 0.5rem" in html  # displaCy's right-to-left label template
    r = client.post("/render", json={"texts": [text]})
    assert r.status_code == 400 and "/render takes one text" in r.json()["error"]


def test_concurrent_requests_are_batched_and_each_gets_its_own_result(scrambled_nlp):
    texts = [f"{TEXT} {i} باريس هي عاصمة فرنسا" if i % 2 else f"زار أحمد علي القاهرة {i}" for i in range(16)]
    answers = [None] * len(texts)
    app = create_app(scrambled_nlp, batch_wait=0.2)
    with TestClient(app) as client:
        start = threading.Barrier(len(texts))

        def ask(i):
            start.wait()
            answers[i] = client.post("/ner", json={"text": texts[i]})

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(texts))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stats = client.get("/health").json()["batching"]
    assert [a.status_code for a in answers] == [200] * len(texts)
    assert [a.json()["entities"] for a in answers] == [expected(scrambled_nlp, t) for t in texts]
    assert stats["requests"] == stats["docs"] == len(texts)
    assert stats["batches"] < len(texts) and stats["largest_batch"] > 1, stats


def test_a_full_queue_gets_503(scrambled_nlp):
    app = create_app(scrambled_nlp)
    with TestClient(app) as client:
        app.state.batcher.max_queued = 2
        r = client.post("/ner", json={"texts": ["a", "b", "c"]})
        assert r.status_code == 503 and "server busy" in r.json()["error"] and r.headers["retry-after"] == "1"
        assert client.post("/ner", json={"texts": ["a", "b"]}).status_code == 200


def test_an_idle_server_takes_any_request_within_max_texts(scrambled_nlp):
    app = create_app(scrambled_nlp, max_texts=12_000, max_batch=8)
    with TestClient(app) as client:
        r = client.post("/ner", json={"texts": [""] * 12_000})
        assert r.status_code == 200 and len(r.json()["results"]) == 12_000
        assert client.get("/health").json()["limits"]["max_queued"] == 12_000


def test_a_request_the_server_stops_before_tagging_gets_a_json_503(scrambled_nlp):
    from spacy_aner.serve.batcher import ShuttingDown

    app = create_app(scrambled_nlp)

    async def stopped(texts):
        raise ShuttingDown("the server stopped before this request was tagged")

    with TestClient(app) as client:
        app.state.batcher.submit = stopped
        r = client.post("/ner", json={"text": TEXT})
        assert r.status_code == 503 and r.json() == {"error": "the server stopped before this request was tagged"}


def test_scores_come_from_the_components_span_group(scrambled_nlp):
    from spacy.tokens import Span, SpanGroup

    doc = scrambled_nlp(TEXT)
    assert component_name(scrambled_nlp) == "aner_lstm"
    ents = list(doc.ents)
    assert len(ents) >= 2
    group = SpanGroup(doc, name="aner_lstm", spans=ents[1:], attrs={"scores": [0.25] * (len(ents) - 1)})
    doc.spans["aner_lstm"] = group
    extra = Span(doc, ents[0].start, ents[0].end, label=ents[0].label_)
    doc.ents = [extra] + ents[1:]  # the first entity is not in the group: no score
    records = doc_entities(doc, "aner_lstm")
    assert records[0]["score"] is None and [r["score"] for r in records[1:]] == [0.25] * (len(ents) - 1)
    assert [r["start"] for r in records] == [e.start_char for e in ents]
    assert all(r["score"] is None for r in doc_entities(scrambled_nlp(TEXT), None))


def test_a_pipeline_without_the_component_has_no_spans_key(nlp_camel):
    assert component_name(nlp_camel) is None
