"""HTTP pieces every service shares: problem+json errors, health, readiness, metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import DomainError
from shared.metrics import CommonMetrics, exposition

PROBLEM = "application/problem+json"
TYPE_BASE = "https://baton.dev/problems/"

Check = Callable[[], Awaitable[None]]


def unstorable_text(value: Any, path: str = "") -> str | None:
    """The path of the first string PostgreSQL cannot store (a NUL character, or a lone
    surrogate that has no UTF-8 form), or None. JSON allows both (`\\u0000`, `\\ud800`), so a
    request can carry them past validation into a query, which then fails as a 500."""
    if isinstance(value, str):
        if "\x00" in value:
            return path or "body"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path or "body"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{_printable(key)}" if path else _printable(key)
            found = unstorable_text(key, here) or unstorable_text(item, here)
            if found:
                return found
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = unstorable_text(item, f"{path}[{i}]")
            if found:
                return found
    return None


def _printable(key: Any) -> str:
    text = str(key).encode("utf-8", "backslashreplace").decode("utf-8")
    return text.replace("\x00", "\\x00")


async def read_capped_body(
    request: Request, limit: int, too_large: Callable[[str], Exception]
) -> bytes:
    """At most `limit` bytes of the request body: a declared or actual larger body is refused
    (with the caller's own error, so each service keeps its problem type and metric label)
    before more than `limit` bytes are held in memory."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(f"body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(f"body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    type_slug: str,
    instance: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + type_slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def install_error_handlers(app: FastAPI, *domain_errors: type[Exception]) -> None:
    """Map domain errors (anything carrying `status`, `title`, `type_slug`, `detail`) to problem+json."""

    async def _domain(request: Request, exc: Exception) -> Response:
        retry_after = getattr(exc, "retry_after", None)
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        return problem(
            int(getattr(exc, "status", 400)),
            str(getattr(exc, "title", "Bad request")),
            str(getattr(exc, "detail", exc)),
            type_slug=str(getattr(exc, "type_slug", "bad-request")),
            instance=request.url.path,
            errors=list(getattr(exc, "fields", []) or []),
            headers=headers,
        )

    for cls in (DomainError, *domain_errors):
        app.add_exception_handler(cls, _domain)  # type: ignore[arg-type]

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"name": ".".join(str(p) for p in e["loc"] if p != "body"), "message": e["msg"]}
            for e in exc.errors()
        ]
        return problem(
            422,
            "Invalid request",
            "the request has invalid fields: " + ", ".join(e["name"] for e in errors),
            type_slug="invalid-request",
            instance=request.url.path,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(
            exc.status_code,
            str(exc.detail),
            str(exc.detail),
            type_slug=f"http-{exc.status_code}",
            instance=request.url.path,
            headers=getattr(exc, "headers", None),
        )


class MetricsMiddleware:
    """Pure ASGI middleware: request count by route template and status, and latency by route.

    Not `BaseHTTPMiddleware` (an anyio task group and memory streams per request): it only
    watches the `http.response.start` message go by and reads the matched route afterwards.
    """

    def __init__(self, app: ASGIApp, metrics: CommonMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            template = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.http_requests.labels(template, str(status)).inc()
            self.metrics.http_seconds.labels(template).observe(time.perf_counter() - start)


def install_metrics_middleware(app: FastAPI, metrics: CommonMetrics) -> None:
    app.add_middleware(MetricsMiddleware, metrics=metrics)


def ops_router(checks: dict[str, Check], metrics: CommonMetrics) -> APIRouter:
    """/healthz (process alive), /readyz (every dependency answers), /metrics."""
    router = APIRouter(include_in_schema=False)

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        # Concurrently, each bounded: a dead dependency must not make the probe itself time out.
        names = list(checks)
        results = await asyncio.gather(
            *(asyncio.wait_for(checks[n](), timeout=2.0) for n in names), return_exceptions=True
        )
        failing = {
            n: type(r).__name__ for n, r in zip(names, results, strict=True) if r is not None
        }
        if failing:
            return problem(
                503,
                "Not ready",
                "unreachable: " + ", ".join(sorted(failing)),
                type_slug="not-ready",
                errors=[{"name": k, "message": v} for k, v in failing.items()],
            )
        return JSONResponse({"status": "ready", "checks": sorted(checks)})

    @router.get("/metrics")
    async def metrics_endpoint() -> Response:
        return Response(
            exposition(metrics.registry), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    return router


_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
}
_PROBLEM_TEXT = {
    400: "malformed request",
    401: "missing or invalid bearer token",
    403: "the token lacks the required scope",
    404: "not found",
    413: "body too large",
    415: "unsupported media type",
    422: "invalid fields (named in `errors`)",
    429: "rate limited (see Retry-After)",
    431: "request headers too large",
    503: "a dependency is unavailable (see Retry-After)",
}


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries documenting errors as application/problem+json (routers' `responses=`)."""
    return {
        code: {
            "description": _PROBLEM_TEXT.get(code, "error"),
            "content": {PROBLEM: {"schema": _PROBLEM_SCHEMA}},
        }
        for code in codes
    }
