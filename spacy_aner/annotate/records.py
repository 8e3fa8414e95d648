"""The input and output records of corpus annotation: JSONL or plain text, line by line.

Input lines are read as bytes and decoded one by one, so a line that is not UTF-8 is
reported by number. Lines end at ``\\n`` only (a ``\\r`` right before it, CRLF, is dropped
as well); any other character, ``\\r``, ``\\x0b``, ``\\x0c``, ``\\x85`` or U+2028 inside a line
included, is part of the document. A UTF-8 byte-order mark at the very start is dropped.
An empty line is an empty document; so is a blank line in a JSONL file (text ``""``).

Output records, one per input line, in input order:

* ``{"text": TEXT, "entities": [...]}`` for plain text; for JSONL the input's own text
  key, or ``{ID_KEY: ID, "entities": ...}`` with an id key;
* each entity is ``{"start", "end", "label", "text", "score"}``, offsets in Unicode code
  points (Python ``str`` indices), so ``text[start:end] == entity["text"]``, and ``score``
  the entity's probability (:func:`~.runner.entity_records`);
* ``{"line": N, ["ID_KEY": ID,] "error": PROBLEM, "entities": []}`` for a line whose
  document could not be annotated.
"""
from __future__ import annotations

import datetime
import json
import math
import os
import queue
import stat
import sys
import threading
import time
from dataclasses import dataclass
from typing import IO, Any, Dict, Iterable, Iterator, Optional, Tuple, TypeVar, Union

from ..core.jsonio import loads_json

#: Suffixes read as JSONL (with text key ``"text"``) when no text key is given.
JSONL_SUFFIXES = (".jsonl", ".ndjson")
STDIN = "-"

_BOM = b"\xef\xbb\xbf"
#: What JSON counts as white space: a line of only these is a blank line, any other character is not JSON.
JSON_SPACE = " \t\r\n"


class InvalidInputError(ValueError):
    """An input line that cannot be read; the message is ``"INPUT:LINE: problem"``."""

    def __init__(self, source: str, line: int, problem: str) -> None:
        super().__init__(f"{source}:{line}: {problem}")
        self.source = source
        self.line = line
        self.problem = problem


@dataclass
class InputRecord:
    """One line of the input: its document's text, or why there is none."""

    line: int  # 1-based line number
    text: Optional[str]  # None when ``error`` is set
    id: Any = None  # value of the id key (JSONL with ``id_key``)
    error: Optional[str] = None



def resolve_text_key(source: Union[str, os.PathLike], text_key: Optional[str]) -> Optional[str]:
    """``text_key``, or ``"text"`` for an input named ``*.jsonl``/``*.ndjson``, else None (plain text)."""
    if text_key is None and str(source) != STDIN and str(source).lower().endswith(JSONL_SUFFIXES):
        return "text"
    return text_key


def _open_binary(source: Union[str, os.PathLike, IO[bytes]], own_stdin: bool = False):
    if hasattr(source, "read"):
        return source, False
    if str(source) == STDIN:
        if sys.stdin is None:  # started with stdin closed (<&-)
            raise ValueError("cannot read stdin: it is closed")
        if own_stdin:
            try:
                return os.fdopen(os.dup(sys.stdin.fileno()), "rb"), True
            except (OSError, ValueError):  # a stand-in without a file descriptor (tests, notebooks)
                pass
        return sys.stdin.buffer, False
    return open(source, "rb"), True


def source_name(source: Union[str, os.PathLike, IO[bytes]]) -> str:
    if hasattr(source, "read"):
        return getattr(source, "name", "<stream>")
    return "<stdin>" if str(source) == STDIN else str(source)


#: Bytes of one input line at most: more than a document of ``nlp.max_length`` characters
#: takes, even as JSON escapes. A longer line is read to its end in pieces, never whole.
MAX_LINE_BYTES = 64 * 2 ** 20


def bounded_lines(f: IO[bytes]) -> Iterator[Tuple[bytes, bool]]:
    """Each line of ``f`` with its line break, and whether it was read whole: a line of more than
    :data:`MAX_LINE_BYTES` bytes (a file without line breaks, ``/dev/zero``) is given as ``b""``."""
    while True:
        line = f.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        if len(line) <= MAX_LINE_BYTES or line.endswith(b"\n"):
            yield line, True
            continue
        while True:  # skip the rest of the line, a piece at a time
            rest = f.readline(MAX_LINE_BYTES)
            if not rest or rest.endswith(b"\n"):
                break
        yield b"", False


def read_records(source: Union[str, os.PathLike, IO[bytes]], text_key: Optional[str] = None,
                 id_key: Optional[str] = None, skip_invalid: bool = False,
                 own_stdin: bool = False) -> Iterator[InputRecord]:
    """Stream the lines of ``source`` (a path, ``"-"`` for stdin, or a binary file) as records.

    Plain text (``text_key=None``): each line is a document. JSONL (``text_key`` given):
    each line is a JSON object whose ``text_key`` holds the document (and ``id_key`` its
    id). Lines are read as bytes and decoded one by one: a line that is not UTF-8 or not
    a usable JSON object raises :class:`InvalidInputError` naming it, or with
    ``skip_invalid`` is yielded with ``error`` set (``text`` None), never left out.

    ``own_stdin`` reads stdin through a descriptor of its own, for a reader in another
    thread (:func:`with_pauses`): ``sys.stdin``'s lock, held by a read waiting on a pipe,
    would stop the interpreter's exit and the start of a forked child. What ``sys.stdin``
    has already buffered is then not read.
    """
    if id_key is not None and text_key is None:
        raise ValueError("an id key needs JSONL input (give the text key too)")
    name = source_name(source)
    f, close = _open_binary(source, own_stdin)
    try:
        for number, (raw, whole) in enumerate(bounded_lines(f), 1):
            if not whole:  # a document over nlp.max_length whatever it holds: an error record, as those are
                yield InputRecord(number, None, error=f"a line of more than {MAX_LINE_BYTES:,} bytes (not read whole)")
                continue
            if number == 1 and raw.startswith(_BOM):
                raw = raw[len(_BOM):]
            if raw.endswith(b"\n"):
                raw = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
            rec = parse_line(raw, number, text_key, id_key)
            if rec.error is not None and not skip_invalid:
                raise InvalidInputError(name, number, rec.error)
            yield rec
    finally:
        if close:
            f.close()


T = TypeVar("T")
#: Marks, among the records of :func:`with_pauses`, that the input fell silent: the
#: annotation functions end the batch they are filling there, so its records come out.
PAUSE = object()
#: How long a live input may be silent before the lines read so far are annotated.
PAUSE_AFTER_S = 0.2
#: How long a line of a live input may wait for more to fill its batch, if the input runs dry.
HOLD_S = 1.0


def is_live(source: Union[str, os.PathLike, IO[bytes]]) -> bool:
    """Whether ``source`` is read as it is written (a pipe, a terminal, a socket), not a regular file."""
    try:
        if hasattr(source, "fileno"):
            mode = os.fstat(source.fileno()).st_mode
        elif str(source) == STDIN:
            mode = os.fstat(sys.stdin.fileno()).st_mode if sys.stdin is not None else stat.S_IFREG
        else:
            mode = os.stat(source).st_mode
    except (OSError, ValueError):  # no file descriptor (BytesIO), or one already closed
        return False
    return not stat.S_ISREG(mode)


def with_pauses(items: Iterable[T], ahead: int, wait: float = PAUSE_AFTER_S, hold: float = HOLD_S) -> Iterator[Any]:
    """``items``, up to ``ahead`` of them read ahead by a thread, with :data:`PAUSE` where the
    reader should annotate what it holds: when no item has come for ``wait`` seconds, or none
    is at hand ``hold`` seconds after the first item since the last pause. From a pipe fed
    now and then, a record then comes out soon after its line, not a whole batch later.
    An exception raised by ``items`` is raised here, in its place. Closing this generator
    stops the thread at its next item (a read already waiting on the input ends first)."""
    q: "queue.Queue" = queue.Queue(ahead)
    stop = threading.Event()
    end = object()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                q.put(entry, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def read() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((end, None))
        except BaseException as err:  # handed to the reader, where it belongs
            put((end, err))
        finally:
            getattr(items, "close", lambda: None)()  # read_records closes its file

    threading.Thread(target=read, name="aner-input", daemon=True).start()
    since: Optional[float] = None  # when the first item after the last pause was given
    try:
        while True:
            timeout = 1.0 if since is None else max(0.0, min(wait, since + hold - time.monotonic()))
            try:
                item, err = q.get(timeout=timeout)  # in steps, so that Ctrl+C is seen everywhere
            except queue.Empty:
                if since is not None:
                    since = None
                    yield PAUSE
                continue
            if err is not None:
                raise err
            if item is end:
                return
            if since is None:
                since = time.monotonic()
            yield item
    finally:
        stop.set()


#: The keys output records use for themselves.
RECORD_KEYS = ("line", "error", "entities")


def check_keys(text_key: Optional[str], id_key: Optional[str]) -> None:
    """Refuse (``ValueError``) a text key or id key that the output records would write over
    one of their own keys: the id, or the text when there is no id, is written beside them."""
    role, key = ("id", id_key) if id_key is not None else ("text", text_key or "text")
    if key in RECORD_KEYS:
        raise ValueError(f"the {role} key {key!r} is one the output records use for themselves "
                         f"({', '.join(RECORD_KEYS)}); rename it in the input")


def reject_constant(name: str):
    """For ``loads_json``: NaN and Infinity are not JSON, and an id read as one could not be written back."""
    raise ValueError(f"{name} is not a JSON value")


#: Levels of lists and objects an id may have: it is written back, and Python's JSON writer
#: recurses per level, so what one thread could parse another could fail to write.
MAX_ID_DEPTH = 100


def id_problem(value: Any, id_key: str) -> Optional[str]:
    """Why a parsed JSON id cannot be written back (None if it can): nested more than
    :data:`MAX_ID_DEPTH` levels, or holding a number no double holds (``1e400``). Walked
    level by level, without recursion."""
    depth, level = 0, [value]
    while level:
        if any(isinstance(v, float) and not math.isfinite(v) for v in level):
            return f"the id ({id_key!r}) holds a number too large to write back"
        containers = [v for v in level if isinstance(v, (list, dict))]
        depth += bool(containers)
        if depth > MAX_ID_DEPTH:
            return f"the id ({id_key!r}) is nested more than {MAX_ID_DEPTH} levels deep"
        level = [x for v in containers for x in (v.values() if isinstance(v, dict) else v)]
    return None


def parse_line(raw: bytes, number: int, text_key: Optional[str], id_key: Optional[str]) -> InputRecord:
    """The record of one input line (its bytes without the line break): decoded, and parsed as JSONL
    when ``text_key`` is given; ``error`` says why a line has no document."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return InputRecord(number, None, error=f"invalid UTF-8 at byte {err.start} "
                                               f"({raw[err.start:err.start + 4]!r}: {err.reason})")
    if text_key is None:
        return InputRecord(number, line)
    if not line.strip(JSON_SPACE):
        return InputRecord(number, "")
    try:
        obj = loads_json(line, parse_constant=reject_constant)
    except ValueError as err:
        return InputRecord(number, None, error=f"invalid JSON ({err})")
    if not isinstance(obj, dict):
        return InputRecord(number, None, error=f"expected a JSON object, got {type(obj).__name__}")
    doc_id = obj.get(id_key) if id_key is not None else None
    if id_key is not None and id_key not in obj:
        return InputRecord(number, None, error=f"no {id_key!r} key (the id key)")
    problem = id_problem(doc_id, id_key) if isinstance(doc_id, (list, dict, float)) else None
    if problem is not None:
        return InputRecord(number, None, error=problem)
    if text_key not in obj:
        return InputRecord(number, None, doc_id, error=f"no {text_key!r} key (the text key)")
    text = obj[text_key]
    if not isinstance(text, str):
        return InputRecord(number, None, doc_id, error=f"{text_key!r} is a {type(text).__name__}, not a string")
    return InputRecord(number, text, doc_id)


#: Line breaks for ``str.splitlines()`` (and JavaScript before ES2019) that JSON leaves raw.
_RAW_BREAKS = (("\x85", "\\u0085"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029"))


def dumps_record(record: Dict[str, Any]) -> bytes:
    """One JSONL line, UTF-8 with ``ensure_ascii=False``.

    U+0085, U+2028 and U+2029 are written as ``\\u`` escapes (JSON escapes every other
    line break), so that even ``str.splitlines()`` sees one line per record. A string
    that is not valid Unicode (a lone surrogate in an id from JSON input) cannot be
    written as UTF-8; that record is written with ASCII escapes instead (``"\\ud800"``),
    which reads back to the same value. JSON has no NaN or infinity: such a float (an id
    from a Parquet float column) is written as the string ``"NaN"``, ``"Infinity"`` or
    ``"-Infinity"``, rather than as a line no strict JSON reader accepts.
    """
    try:
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=json_text)
    except ValueError:
        record = finite_json(record)
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=json_text)
    for raw, escaped in _RAW_BREAKS:
        if raw in line:
            line = line.replace(raw, escaped)
    try:
        return line.encode("utf-8") + b"\n"
    except UnicodeEncodeError:
        return json.dumps(record, ensure_ascii=True, separators=(",", ":"), default=json_text).encode("ascii") + b"\n"


def json_text(value: Any) -> str:
    """What JSON has no type for (an id from a Parquet column of dates, times, decimals or
    bytes), as text: ISO 8601 for dates and times, hexadecimal for bytes, else ``str``."""
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    return str(value)


def finite_json(value: Any) -> Any:
    """``value`` with each NaN or infinite float, however deep, replaced by its name as a string."""
    if isinstance(value, float) and not math.isfinite(value):
        return json.dumps(value)
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    return value


def write_jsonl(records: Iterable[Dict[str, Any]], out: Union[str, os.PathLike, IO[bytes]],
                flush_each: bool = False) -> int:
    """Write ``records`` one per line to a path, ``"-"`` (stdout) or a binary file; return the
    count. ``flush_each``: flush after every record (records that come now and then)."""
    if hasattr(out, "write"):
        return _write(records, out, flush_each)
    if str(out) == STDIN:
        if sys.stdout is None:  # started with stdout closed (>&-)
            raise ValueError("cannot write to stdout: it is closed")
        n = _write(records, sys.stdout.buffer, flush_each)
        sys.stdout.buffer.flush()
        return n
    with open(out, "wb") as f:
        return _write(records, f, flush_each)


def _write(records: Iterable[Dict[str, Any]], f: IO[bytes], flush_each: bool) -> int:
    n = 0
    for rec in records:
        f.write(dumps_record(rec))
        if flush_each:
            f.flush()
        n += 1
    return n
