"""The ASGI app: ``POST /validate`` and ``/mutate`` (AdmissionReview in and out), ``/healthz``,
``/readyz`` (ready only once the policies are loaded) and ``/metrics`` (Prometheus).

A thin front end: it reads a bounded body, hands the parsed request to :class:`Webhook` and
returns its answer. Policies are loaded in a worker thread after start-up, so the server answers
``/healthz`` at once and ``/readyz`` turns 200 only when it can decide.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio.to_thread
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from assay.admission.metrics import Metrics
from assay.admission.review import MAX_REVIEW_SIZE, parse_review
from assay.admission.webhook import Webhook
from assay.errors import AssayError, InputError

__all__ = ["create_app"]

log = logging.getLogger(__name__)


class _State:
    webhook: Webhook | None = None
    error: str = ""


async def _body(request: Request) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_REVIEW_SIZE:
            raise InputError(f"AdmissionReview body over {MAX_REVIEW_SIZE} bytes; refusing it")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(load: Callable[[Metrics], Webhook], *, metrics: Metrics | None = None) -> Starlette:
    """An app whose webhook ``load(metrics)`` builds (policies, engine) in a thread at start-up."""
    state = _State()
    m = metrics or Metrics()

    async def load_policies() -> None:
        try:
            state.webhook = await anyio.to_thread.run_sync(lambda: load(m))
            m.ready.set(1)
        except AssayError as e:
            state.error = str(e)
            log.error("policies not loaded, staying unready: %s", e)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.get_running_loop().create_task(load_policies())  # serve /healthz meanwhile
        yield
        if not task.done():
            task.cancel()

    def handler(path: str) -> Callable[[Request], Awaitable[Response]]:
        async def review(request: Request) -> Response:
            if state.webhook is None:
                return PlainTextResponse("not ready: policies not loaded\n", status_code=503)
            try:
                req = parse_review(await _body(request))
            except InputError as e:
                return PlainTextResponse(f"{e}\n", status_code=400)
            answer = await state.webhook.review("mutate" if path == "mutate" else "validate", req)
            return JSONResponse(answer)

        return review

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(request: Request) -> Response:
        if state.webhook is None:
            why = state.error or "loading policies"
            return PlainTextResponse(f"not ready: {why}\n", status_code=503)
        return PlainTextResponse("ready\n")

    async def metrics_endpoint(request: Request) -> Response:
        return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)

    routes = [
        Route("/validate", handler("validate"), methods=["POST"]),
        Route("/mutate", handler("mutate"), methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
