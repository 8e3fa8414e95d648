"""Request bodies: read within a size limit, parsed as JSON, checked; every problem a 4xx with a clear message.

A body over the limit is refused as soon as its ``Content-Length`` (or, without one, the
bytes read so far) says so, before it is held in memory whole. Strings must be valid
UTF-8 JSON; control characters inside a JSON string must be escaped (``\\u0000``), as JSON
requires, and are then annotated like any other character.
"""
from __future__ import annotations

import asyncio
import json
from typing import Any, List, Optional, Tuple

from starlette.requests import ClientDisconnect

from ..annotate.runner import text_problem
from ..core.jsonio import loads_json

#: Bytes of request body at most (Arabic is two bytes a letter in UTF-8).
DEFAULT_MAX_BYTES = 1_000_000
#: Texts in one ``{"texts": [...]}`` request at most.
DEFAULT_MAX_TEXTS = 1_000
#: Seconds a request body may go without a byte arriving.
BODY_TIMEOUT_S = 30.0

USAGE = 'send a JSON object: {"text": "..."} or {"texts": ["...", ...]}'


class RequestError(Exception):
    """A request the server refuses: ``status`` (400, 413) and a message for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def read_body(request, max_bytes: int, timeout: float = BODY_TIMEOUT_S) -> bytes:
    """The request body, or :class:`RequestError`: 413 as soon as it is known to be over ``max_bytes``,
    408 when no part of it arrives for ``timeout`` seconds (a client must not hold a connection
    open forever by sending less than its ``Content-Length``), 415 if it is compressed."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise RequestError(415, f"Content-Encoding {encoding!r} is not supported: send the JSON uncompressed")
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise RequestError(400, f"Content-Length {declared!r} is not a number of bytes")
        if int(declared) > max_bytes:
            raise RequestError(413, f"request body of {int(declared):,} bytes is over the limit of {max_bytes:,} bytes")
    chunks, size = [], 0
    stream = request.stream()
    try:
        while True:
            try:
                chunk = await asyncio.wait_for(anext(stream), timeout)
            except StopAsyncIteration:
                break
            size += len(chunk)
            if size > max_bytes:
                raise RequestError(413, f"request body is over the limit of {max_bytes:,} bytes")
            chunks.append(chunk)
    except ClientDisconnect:  # nobody to answer; a 400 keeps it out of the error log
        raise RequestError(400, "the client disconnected before sending the whole body") from None
    except TimeoutError:
        raise RequestError(408, f"no part of the request body arrived for {timeout:g} s") from None
    return b"".join(chunks)


def parse_json(body: bytes) -> Any:
    """The JSON value of a UTF-8 body (a leading byte-order mark allowed)."""
    if not body.strip():
        raise RequestError(400, f"empty request body: {USAGE}")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise RequestError(400, f"request body is not valid UTF-8 (byte {err.start}: {err.reason})") from None
    try:
        return loads_json(text)
    except json.JSONDecodeError as err:
        where = f"{err.msg.removesuffix(' at')} at line {err.lineno} column {err.colno}"
        hint = " (control characters inside a JSON string must be escaped, e.g. \\u0009)" \
            if err.msg.startswith("Invalid control character") else ""
        raise RequestError(400, f"invalid JSON: {where}{hint}") from None
    except ValueError as err:  # nested too deeply, or an integer of more digits than Python converts
        raise RequestError(400, f"invalid JSON: {err}") from None


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)


def request_texts(obj: Any, *, max_texts: int = DEFAULT_MAX_TEXTS,
                  max_length: Optional[int] = None) -> Tuple[List[str], bool]:
    """``(texts, single)`` from a parsed body: ``{"text": str}`` gives one text, ``{"texts": [str, ...]}`` many.

    Raises :class:`RequestError`: 400 for a wrong shape or type, or a text that cannot be
    annotated (a lone surrogate from a ``\\ud800`` escape); 413 for over ``max_texts`` texts.
    """
    if not isinstance(obj, dict):
        raise RequestError(400, f"expected a JSON object, got {_a(json_type(obj))}: {USAGE}")
    unknown = sorted(set(obj) - {"text", "texts"})
    if unknown:
        keys = ", ".join(map(repr, unknown[:5])) + (f" and {len(unknown) - 5:,} more" if len(unknown) > 5 else "")
        raise RequestError(400, f"unknown key{'s' if len(unknown) > 1 else ''} {keys}: {USAGE}")
    if ("text" in obj) == ("texts" in obj):
        raise RequestError(400, f"give exactly one of 'text' and 'texts': {USAGE}")
    single = "text" in obj
    if single:
        texts, names = [obj["text"]], ["'text'"]
    else:
        texts = obj["texts"]
        if not isinstance(texts, list):
            raise RequestError(400, f"'texts' is {_a(json_type(texts))}, not an array of strings")
        if len(texts) > max_texts:
            raise RequestError(413, f"{len(texts):,} texts in one request; at most {max_texts:,}")
        names = [f"texts[{i}]" for i in range(len(texts))]
    for name, text in zip(names, texts):
        if not isinstance(text, str):
            raise RequestError(400, f"{name} is {_a(json_type(text))}, not a string")
        problem = text_problem(text, max_length)
        if problem is not None:
            raise RequestError(400, f"{name}: {problem}")
    return texts, single


def _a(noun: str) -> str:
    if noun == "null":
        return noun
    return ("an " if noun[0] in "aeiou" else "a ") + noun
