"""The web service: a Starlette app around one loaded pipeline, run by uvicorn.

Routes:

* ``GET /``: the page (:mod:`.page`);
* ``POST /ner``: ``{"text": str}`` -> ``{"entities": [...]}``; ``{"texts": [str, ...]}`` ->
  ``{"results": [{"entities": [...]}, ...]}`` in order. Each entity is ``{"start", "end",
  "label", "text", "score"}``, offsets in characters (code points) of the text;
* ``POST /render``: ``{"text": str}`` -> ``{"html": displaCy's markup, "entities": [...]}``;
* ``GET /health``: status, version, limits and batching counts.

Every refused request that uvicorn can parse as HTTP gets a JSON ``{"error": message}``: 400
for a malformed body, 408 for a body that stalls, 413 over the limits, 415 for a compressed
body, 503 when the queue is full or the server stops before the request's batch is done,
404/405 for a wrong path or method (``/ner/`` included: no redirects). A request whose
client closes the connection before its batch runs is taken out of the queue untagged.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
from typing import Any, Dict, Optional

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from ..about import __version__
from ..pipeline.display import render_records
from .batcher import DEFAULT_MAX_DOCS, DEFAULT_MAX_QUEUED, DEFAULT_MAX_WAIT, Busy, MicroBatcher, ShuttingDown
from .page import page
from .payload import (BODY_TIMEOUT_S, DEFAULT_MAX_BYTES, DEFAULT_MAX_TEXTS, RequestError, parse_json, read_body,
                      request_texts)
from .tagging import annotate_batch, component_name, drop_queued_calls

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


def create_app(nlp, *, max_bytes: int = DEFAULT_MAX_BYTES, max_texts: int = DEFAULT_MAX_TEXTS,
               max_batch: int = DEFAULT_MAX_DOCS, batch_wait: float = DEFAULT_MAX_WAIT,
               body_timeout: float = BODY_TIMEOUT_S, model: Optional[str] = None) -> Starlette:
    """The app for a loaded pipeline ``nlp``; ``model`` is what ``/health`` reports it as.

    ``max_batch`` texts at most go through one ``nlp.pipe`` call, gathered from the
    requests that arrive within ``batch_wait`` seconds of each other (see :mod:`.batcher`).
    The queue takes at least one request of ``max_texts`` texts, so that an idle server
    never refuses a request within the limits as busy.
    """
    spans_key = component_name(nlp)
    max_queued = max(DEFAULT_MAX_QUEUED, max_texts)
    batcher = MicroBatcher(functools.partial(annotate_batch, nlp, spans_key), max_docs=max_batch,
                           max_wait=batch_wait, max_queued=max_queued)
    max_length = getattr(nlp, "max_length", None)
    limits = {"max_bytes": max_bytes, "max_texts": max_texts, "max_batch": max_batch, "batch_wait_s": batch_wait,
              "max_queued": max_queued, "body_timeout_s": body_timeout}
    html_page = page(__version__)

    async def texts_of(request: Request):
        body = await read_body(request, max_bytes, body_timeout)
        return request_texts(parse_json(body), max_texts=max_texts, max_length=max_length)

    async def results_of(request: Request, texts):
        """The texts' results; a client that closes its connection first takes its texts out of the queue."""
        tagging = asyncio.ensure_future(batcher.submit(texts))
        gone = asyncio.ensure_future(client_gone(request))
        try:
            await asyncio.wait({tagging, gone}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # the server cancels a handler only when it stops
            tagging.cancel()
            raise ShuttingDown("the server stopped before this request was tagged") from None
        finally:
            gone.cancel()
        if not tagging.done():
            tagging.cancel()
            raise ClientGone()
        return tagging.result()

    async def index(request: Request) -> HTMLResponse:
        return HTMLResponse(html_page)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "spacy_aner": __version__, "pipeline": nlp.pipe_names,
                             "model": model, "limits": limits, "batching": batcher.stats.as_dict()})

    async def ner(request: Request) -> JSONResponse:
        texts, single = await texts_of(request)
        results = await results_of(request, texts)
        if single:
            return JSONResponse({"entities": results[0]})
        return JSONResponse({"results": [{"entities": entities} for entities in results]})

    async def render(request: Request) -> JSONResponse:
        texts, single = await texts_of(request)
        if not single:
            raise RequestError(400, '/render takes one text: {"text": "..."}')
        entities = (await results_of(request, texts))[0]
        return JSONResponse({"html": render_records(texts[0], entities), "entities": entities})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()
            drop_queued_calls(nlp)

    app = Starlette(
        routes=[Route("/", index), Route("/health", health), Route("/ner", ner, methods=["POST"]),
                Route("/render", render, methods=["POST"])],
        exception_handlers={RequestError: refused, HTTPException: http_error, Busy: busy,
                            ShuttingDown: shutting_down, ClientGone: client_closed},
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False  # /ner/ is a 404 like any other wrong path, not an empty 307
    app.state.batcher = batcher
    return app


class ClientGone(Exception):
    """The client closed its connection before its request was tagged."""


async def client_gone(request: Request) -> None:
    """Returns once the client has closed its connection (the request's body is read by then)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def error(status: int, message: str, headers: Optional[Dict[str, str]] = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def refused(request: Request, exc: Any) -> JSONResponse:
    # after a stalled body the connection holds unread bytes: it cannot carry another request
    return error(exc.status, exc.message, {"Connection": "close"} if exc.status == 408 else None)


async def http_error(request: Request, exc: Any) -> JSONResponse:
    return error(exc.status_code, exc.detail, getattr(exc, "headers", None))


async def busy(request: Request, exc: Any) -> JSONResponse:
    return error(503, f"server busy: {exc}; try again shortly", {"Retry-After": "1"})


async def shutting_down(request: Request, exc: Any) -> JSONResponse:
    return error(503, str(exc))


async def client_closed(request: Request, exc: Any) -> JSONResponse:
    return error(499, "the client closed the connection before its result")  # nginx's code; nobody reads it


def run(nlp, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, access_log: bool = False,
        **settings: Any) -> None:
    """Serve ``nlp`` with uvicorn until interrupted; ``settings`` go to :func:`create_app`."""
    import uvicorn

    try:
        uvicorn.run(create_app(nlp, **settings), host=host, port=port, access_log=access_log,
                    timeout_graceful_shutdown=5)
    finally:
        drop_queued_calls(nlp)  # a forced quit (a second Ctrl+C) skips the app's own shutdown
