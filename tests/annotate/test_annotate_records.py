"""spacy_aner.annotate.records: input lines to records, output records to JSONL."""
from __future__ import annotations

import io
import json
import os
import sys
import threading
import time

import pytest

from spacy_aner.annotate.records import (
    PAUSE,
    STDIN,
    InputRecord,
    InvalidInputError,
    dumps_record,
    id_problem,
    is_live,
    read_records,
    resolve_text_key,
    with_pauses,
    write_jsonl,
)


def test_plain_text_keeps_every_line_as_is():
    data = "\ufeffأول\n\nثانٍ\r\n\u2028 مع\r داخل\x0b\x0c\x85\n   \nأخير بلا سطر جديد".encode("utf-8")
    recs = list(read_records(io.BytesIO(data)))
    assert [r.text for r in recs] == ["أول", "", "ثانٍ", "\u2028 مع\r داخل\x0b\x0c\x85", "   ", "أخير بلا سطر جديد"]
    assert [r.line for r in recs] == [1, 2, 3, 4, 5, 6]
    assert all(r.error is None and r.id is None for r in recs)
    assert list(read_records(io.BytesIO(b""))) == []
    assert [r.text for r in read_records(io.BytesIO(b"\n"))] == [""]
    # a byte-order mark only counts at the very start of the input
    assert [r.text for r in read_records(io.BytesIO("a\n\ufeffb".encode()))] == ["a", "\ufeffb"]


def test_invalid_utf8_names_the_line(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_bytes("سطر\nجيد\n".encode() + b"\xd8\xa3\xff\xfe\n" + "بعده\n".encode() + b"\xed\xa0\x80\n")
    with pytest.raises(InvalidInputError, match=r"corpus\.txt:3: invalid UTF-8 at byte 2") as info:
        list(read_records(path))
    assert (info.value.source, info.value.line) == (str(path), 3) and isinstance(info.value, ValueError)
    recs = list(read_records(path, skip_invalid=True))
    assert [r.line for r in recs] == [1, 2, 3, 4, 5]
    assert [r.text for r in recs] == ["سطر", "جيد", None, "بعده", None]
    assert "invalid UTF-8" in recs[2].error and "invalid UTF-8" in recs[4].error  # an encoded surrogate too


def test_jsonl_records_and_their_problems():
    lines = [
        json.dumps({"id": "a", "text": "محمد"}, ensure_ascii=False),
        "",
        json.dumps({"id": 2, "text": "\ud800 x"}),  # a lone surrogate: valid JSON, not text
        "not json",
        "[1, 2]",
        json.dumps({"id": 5}),
        json.dumps({"id": 6, "text": None}),
        json.dumps({"text": "no id"}),
    ]
    data = "\n".join(lines).encode("utf-8")
    with pytest.raises(InvalidInputError, match=r"<stream>:4: invalid JSON"):
        list(read_records(io.BytesIO(data), "text", "id"))
    recs = list(read_records(io.BytesIO(data), "text", "id", skip_invalid=True))
    assert len(recs) == len(lines)
    assert (recs[0].text, recs[0].id, recs[0].error) == ("محمد", "a", None)
    assert (recs[1].text, recs[1].error) == ("", None)
    assert (recs[2].text, recs[2].id, recs[2].error) == ("\ud800 x", 2, None)  # an annotation error, later
    assert "invalid JSON" in recs[3].error
    assert "expected a JSON object, got list" in recs[4].error
    assert "no 'text' key" in recs[5].error and recs[5].id == 5
    assert "'text' is a NoneType" in recs[6].error and recs[6].id == 6
    assert "no 'id' key" in recs[7].error
    with pytest.raises(ValueError, match="id key needs JSONL"):
        list(read_records(io.BytesIO(b"x"), None, "id"))


def test_json_that_python_refuses_otherwise_gives_error_records():
    """Deep nesting (RecursionError), a huge integer (ValueError) and NaN, which JSON does not
    have and which could not be written back as an id: each an error record for its line."""
    lines = [b"[" * 100_000 + b"]" * 100_000, b'{"text": "x", "id": ' + b"9" * 5000 + b"}",
             b'{"text": "x", "id": NaN}', b'{"text": "x", "id": -Infinity}', b'{"text": "ok", "id": 1}']
    recs = list(read_records(io.BytesIO(b"\n".join(lines)), "text", "id", skip_invalid=True))
    assert [r.line for r in recs] == [1, 2, 3, 4, 5]
    assert recs[0].error == "invalid JSON (nested too deeply)"
    assert "invalid JSON" in recs[1].error and "digits" in recs[1].error
    assert recs[2].error == "invalid JSON (NaN is not a JSON value)"
    assert recs[3].error == "invalid JSON (-Infinity is not a JSON value)"
    assert (recs[4].text, recs[4].id, recs[4].error) == ("ok", 1, None)
    with pytest.raises(InvalidInputError, match=r"<stream>:1: invalid JSON \(nested too deeply\)"):
        list(read_records(io.BytesIO(b"\n".join(lines)), "text", "id"))


def test_an_id_nested_deeper_than_the_writer_may_recurse_is_an_error_record():
    """Read in a thread (a live input), JSON nested about 980 deep parsed, then failed to be
    written back from the deeper stack of the main thread: a traceback, and the rest lost."""
    def line(depth):
        return b'{"text": "x", "id": ' + b"[" * depth + b"]" * depth + b"}"

    recs = list(read_records(io.BytesIO(b"\n".join([line(100), line(101), line(980)])), "text", "id",
                             skip_invalid=True))
    assert recs[0].error is None and json.loads(dumps_record({"id": recs[0].id}))["id"] == recs[0].id
    assert recs[1].error == "the id ('id') is nested more than 100 levels deep"
    for huge in (b"-1e400", b'{"a": [1, 1e400]}'):  # they were written back as "-Infinity", ["Infinity"]
        rec = next(read_records(io.BytesIO(b'{"text": "x", "id": ' + huge + b"}"), "text", "id", skip_invalid=True))
        assert rec.error == "the id ('id') holds a number too large to write back"
    assert recs[2].error in (recs[1].error, "invalid JSON (nested too deeply)")  # as deep as the stack allows
    assert id_problem([[[[1.5, {"a": "b"}]]]], "id") is None


def test_a_line_too_long_to_hold_is_skipped_in_pieces_as_an_error_record(monkeypatch):
    """A file without line breaks (or /dev/zero) was read whole into memory."""
    from spacy_aner.annotate import records

    monkeypatch.setattr(records, "MAX_LINE_BYTES", 10)
    data = b"short\n" + b"x" * 25 + b"\n" + b"y" * 10 + b"\n" + b"z" * 11
    for skip_invalid in (False, True):
        recs = list(read_records(io.BufferedReader(io.BytesIO(data), buffer_size=4), skip_invalid=skip_invalid))
        assert [(r.line, r.text) for r in recs] == [(1, "short"), (2, None), (3, "y" * 10), (4, None)]
        assert recs[1].error == recs[3].error == "a line of more than 10 bytes (not read whole)"


def test_stdin_is_read_as_bytes(monkeypatch):
    stdin = io.TextIOWrapper(io.BytesIO("محمد\n".encode() + b"\xff\n"), encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", stdin)
    recs = list(read_records(STDIN, skip_invalid=True))
    assert [r.text for r in recs] == ["محمد", None] and "<stdin>" not in recs[1].error
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"\xff"), encoding="utf-8"))
    with pytest.raises(InvalidInputError, match="^<stdin>:1: "):
        list(read_records(STDIN))


def test_closed_stdin_and_stdout_are_errors_not_tracebacks(monkeypatch):
    """A process started with ``<&-`` or ``>&-`` (cron, daemons) has ``sys.stdin`` or ``sys.stdout`` None."""
    monkeypatch.setattr(sys, "stdin", None)
    with pytest.raises(ValueError, match="cannot read stdin: it is closed"):
        list(read_records(STDIN))
    monkeypatch.setattr(sys, "stdout", None)
    with pytest.raises(ValueError, match="cannot write to stdout: it is closed"):
        write_jsonl([{"a": 1}], STDIN)


def test_only_json_white_space_makes_a_blank_jsonl_line():
    lines = [b" \t", "\u00a0".encode(), b"\x1c", b'{"text": "x"}']
    recs = list(read_records(io.BytesIO(b"\n".join(lines)), "text", skip_invalid=True))
    assert (recs[0].text, recs[0].error) == ("", None)
    assert recs[1].text is None and "invalid JSON" in recs[1].error
    assert recs[2].text is None and "invalid JSON" in recs[2].error
    assert recs[3].text == "x"


def test_resolve_text_key():
    assert resolve_text_key("a.jsonl", None) == "text"
    assert resolve_text_key("a.NDJSON", None) == "text"
    assert resolve_text_key("a.txt", None) is None
    assert resolve_text_key("a.txt", "body") == "body"
    assert resolve_text_key("a.jsonl", "body") == "body"
    assert resolve_text_key(STDIN, None) is None


def test_dumps_record_is_one_utf8_line_and_survives_lone_surrogates():
    assert dumps_record({"text": "محمد 😀", "entities": []}) == '{"text":"محمد 😀","entities":[]}\n'.encode()
    breaks = "a\nb\rc\x0bd\x0ce\x1cf\x1dg\x1eh\x85i\u2028j\u2029k"
    line = dumps_record({"text": breaks})
    assert len(line.decode("utf-8").splitlines()) == 1 and json.loads(line) == {"text": breaks}
    line = dumps_record({"id": "\ud800", "entities": []})
    assert line.isascii() and json.loads(line) == {"id": "\ud800", "entities": []}


def test_dumps_record_writes_nan_and_infinity_as_strings_not_invalid_json():
    def strict(line):
        return json.loads(line, parse_constant=lambda name: pytest.fail(f"{name} written as a bare constant"))

    nan, inf = float("nan"), float("inf")
    assert strict(dumps_record({"id": nan, "entities": []})) == {"id": "NaN", "entities": []}
    assert strict(dumps_record({"id": [inf, {"k": -inf}, 1.5], "entities": []})) == {
        "id": ["Infinity", {"k": "-Infinity"}, 1.5], "entities": []}
    assert strict(dumps_record({"id": 2.5, "entities": []})) == {"id": 2.5, "entities": []}


def test_dumps_record_writes_what_json_has_no_type_for_as_text():
    """Ids from Parquet columns of dates, times, decimals and bytes."""
    import datetime
    import decimal

    ids = [datetime.datetime(2024, 5, 1, 8, 30, tzinfo=datetime.timezone.utc), datetime.date(2024, 5, 1),
           datetime.time(8, 30), decimal.Decimal("1.10"), b"\x00\xff"]
    assert [json.loads(dumps_record({"id": i, "entities": []}))["id"] for i in ids] == [
        "2024-05-01T08:30:00+00:00", "2024-05-01", "08:30:00", "1.10", "00ff"]


def test_write_jsonl_to_a_stream_a_path_and_stdout(tmp_path, capsysbinary):
    out = io.BytesIO()
    assert write_jsonl([{"a": 1}, {"b": "ب"}], out) == 2
    assert out.getvalue().decode("utf-8").splitlines() == ['{"a":1}', '{"b":"ب"}']
    assert write_jsonl(iter([{"c": 3}]), tmp_path / "out.jsonl") == 1
    assert (tmp_path / "out.jsonl").read_bytes() == b'{"c":3}\n'
    assert write_jsonl([{"d": 4}], STDIN) == 1
    assert capsysbinary.readouterr().out == b'{"d":4}\n'


def test_input_record_defaults():
    rec = InputRecord(3, "نص")
    assert (rec.line, rec.text, rec.id, rec.error) == (3, "نص", None, None)


def test_with_pauses_marks_a_silence_and_raises_an_error_in_its_place():
    def lines():
        yield 1
        yield 2
        time.sleep(1.0)  # the writer of a pipe falls silent
        yield 3
        raise InvalidInputError("<stdin>", 4, "not valid UTF-8")

    got = []
    with pytest.raises(InvalidInputError, match="<stdin>:4: not valid UTF-8"):
        for item in with_pauses(lines(), ahead=8, wait=0.3, hold=60):
            got.append(item)
    assert [x for x in got if x is not PAUSE] == [1, 2, 3]
    assert got[got.index(2) + 1:] == [PAUSE, 3]  # one pause for the silence, not one per wait
    assert list(with_pauses(iter(range(2000)), ahead=16, wait=30)) == list(range(2000))


def test_with_pauses_holds_an_item_at_most_about_hold_seconds_in_a_steady_trickle():
    def trickle():
        for i in range(40):
            time.sleep(0.05)  # never silent for `wait`
            yield i

    got = list(with_pauses(trickle(), ahead=8, wait=10, hold=0.5))
    assert [x for x in got if x is not PAUSE] == list(range(40))
    assert PAUSE in got[:-1]


def test_closing_with_pauses_stops_its_thread_and_closes_the_input():
    closed = []

    def endless():
        try:
            yield from range(10**9)
        finally:
            closed.append(True)

    items = with_pauses(endless(), ahead=4)
    assert next(items) == 0
    items.close()
    deadline = time.monotonic() + 10
    while any(t.name == "aner-input" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(t.name == "aner-input" for t in threading.enumerate()) and closed == [True]


def test_is_live(tmp_path):
    (tmp_path / "in.txt").write_text("x")
    os.mkfifo(tmp_path / "fifo")
    assert not is_live(tmp_path / "in.txt") and is_live(tmp_path / "fifo")
    assert not is_live(io.BytesIO(b"x"))
    read, write = os.pipe()
    with os.fdopen(read, "rb") as r, os.fdopen(write, "wb") as w:
        assert is_live(r) and is_live(w)
    with open(tmp_path / "in.txt", "rb") as f:
        assert not is_live(f)
