"""No endpoint is left open by accident: walk every service's route table.

Every route except the probes, the metrics scrape, the OpenAPI docs and the signed webhook
endpoint needs a bearer token with a scope: 401 without one (or with a wrong one), 403 with a
token lacking the scope, and the right scope gets past authentication. Only SHA-256 digests
of the tokens are configured.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Route

from ops.services import SERVICES
from shared.auth import SCOPES, required_scope
from shared.settings import Settings

pytestmark = pytest.mark.integration

PUBLIC_PATHS = {
    "/healthz",
    "/readyz",
    "/metrics",
    "/docs",
    "/docs/oauth2-redirect",
    "/openapi.json",
    "/redoc",
}
# Signed per source (lead webhooks to intake, activity webhooks from CRMs to followup), not
# bearer tokens: each refuses a request whose signature does not verify.
PUBLIC_ROUTES = {("POST", "/v1/webhooks/{source}"), ("POST", "/v1/activity-webhooks/{source}")}


@dataclass
class Tokens:
    """One plaintext token per scope set; the app only ever sees their SHA-256 digests."""

    read: str
    write: str
    admin: str
    read_write: str

    def spec(self) -> str:
        pairs = {
            "reader": ("read", self.read),
            "writer": ("write", self.write),
            "root": ("admin", self.admin),
            "rw": ("read+write", self.read_write),
        }
        return ",".join(
            f"{name}:{scopes}:{hashlib.sha256(tok.encode()).hexdigest()}"
            for name, (scopes, tok) in pairs.items()
        )


@pytest.fixture(scope="module")
def tokens() -> Tokens:
    return Tokens(*(secrets.token_urlsafe(24) for _ in range(4)))


@pytest.fixture
async def apps(
    kafka_settings: Settings,
    tokens: Tokens,
    env_secrets: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[dict[str, tuple[FastAPI, httpx.AsyncClient]]]:
    import importlib

    for name, value in env_secrets.items():
        monkeypatch.setenv(name, value)
    settings = kafka_settings.model_copy(update={"api_tokens": tokens.spec()})
    out: dict[str, tuple[FastAPI, httpx.AsyncClient]] = {}
    async with AsyncExitStack() as stack:
        for service in SERVICES:
            app = importlib.import_module(f"services.{service}.app").create_app(settings)
            await stack.enter_async_context(app.router.lifespan_context(app))
            client = await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
            )
            out[service] = (app, client)
        yield out


def _walk(
    items: list[Any], prefix: str = "", inherited: frozenset[str] = frozenset()
) -> Iterator[tuple[str, str, str | None]]:
    for route in items:
        original = getattr(route, "original_router", None)
        if original is not None:  # FastAPI >= 0.16x keeps included routers as lazy branches
            context = route.include_context
            scopes = {required_scope(d.dependency) for d in context.dependencies} - {None}
            yield from _walk(
                list(original.routes),
                prefix + context.prefix,
                inherited | frozenset(s for s in scopes if s),
            )
            continue
        assert isinstance(route, Route), f"unexpected route type {type(route).__name__}"
        found = set(inherited)
        if isinstance(route, APIRoute):
            found |= {s for d in route.dependant.dependencies if (s := required_scope(d.call))}
        assert len(found) <= 1, f"{route.path}: several scope checks {found}"
        scope = next(iter(found), None)
        for method in sorted(route.methods or {"GET"}):
            if method != "HEAD":
                yield method, prefix + route.path, scope


def routes(app: FastAPI) -> list[tuple[str, str, str | None]]:
    """(method, path, required scope) for every route the app serves, included routers too."""
    found = list(_walk(list(app.routes)))
    # Cross-check with what FastAPI itself documents, so the walk cannot silently miss routes.
    documented = {
        (method.upper(), path) for path, ops in app.openapi()["paths"].items() for method in ops
    }
    assert documented <= {(m, p) for m, p, _ in found}, "the route walk missed documented routes"
    return found


def concrete(path: str) -> str:
    """A request path for a route template: ids are uuids, anything else a plain word."""
    return re.sub(r"\{[^}]+\}", lambda m: str(uuid.uuid4()) if "id" in m[0] else "x", path)


def test_scopes_are_the_documented_three() -> None:
    assert SCOPES == ("read", "write", "admin")


async def test_every_route_is_public_by_intent_or_needs_a_scoped_token(
    apps: dict[str, tuple[FastAPI, httpx.AsyncClient]], tokens: Tokens
) -> None:
    protected = 0
    for service, (app, client) in apps.items():
        for method, path, scope in routes(app):
            where = f"{service} {method} {path}"
            if path in PUBLIC_PATHS or (method, path) in PUBLIC_ROUTES:
                assert scope is None, f"{where} is meant to be public"
                continue
            assert scope in SCOPES, f"{where} has no bearer-token check: open by accident"
            protected += 1
            url = concrete(path)

            async def call(
                headers: dict[str, str],
                c: httpx.AsyncClient = client,
                m: str = method,
                u: str = url,
            ) -> httpx.Response:
                return await c.request(m, u, headers=headers, json={})

            for headers in (
                {},
                {"Authorization": "Bearer"},
                {"Authorization": "Bearer " + secrets.token_urlsafe(24)},
                {"Authorization": f"Basic {tokens.admin}"},  # right secret, wrong scheme
                {"Authorization": "Bearer " + hashlib.sha256(tokens.admin.encode()).hexdigest()},
            ):
                resp = await call(headers)
                assert resp.status_code == 401, f"{where} with {headers}: {resp.status_code}"
                assert resp.headers["content-type"].startswith("application/problem+json")
                assert tokens.admin not in resp.text

            lacking = {"read": [tokens.write], "write": [tokens.read], "admin": [tokens.read_write]}
            for token in lacking[scope]:
                resp = await call({"Authorization": f"Bearer {token}"})
                assert resp.status_code == 403, f"{where} without {scope}: {resp.status_code}"
                assert resp.json()["type"].endswith("/forbidden")

            allowed = {
                "read": [tokens.read, tokens.read_write, tokens.admin],
                "write": [tokens.write, tokens.read_write, tokens.admin],
                "admin": [tokens.admin],
            }
            for token in allowed[scope]:
                resp = await call({"Authorization": f"bearer  {token} "})
                assert resp.status_code not in (401, 403), f"{where}: {resp.text}"
                assert resp.status_code < 500, f"{where}: {resp.status_code} {resp.text}"
    # The walk must have seen the known protected endpoints (a test that cannot fail is a defect).
    assert protected >= 12  # including notify's five admin routes


async def test_public_routes_are_exactly_the_intended_ones(
    apps: dict[str, tuple[FastAPI, httpx.AsyncClient]],
) -> None:
    for service, (app, client) in apps.items():
        public = {(m, p) for m, p, scope in routes(app) if scope is None}
        allowed = {(m, p) for m, p in public if p in PUBLIC_PATHS} | PUBLIC_ROUTES
        assert public <= allowed, f"{service}: unexpected public routes {public - allowed}"
        assert (await client.get("/healthz")).status_code == 200


async def test_erasure_needs_admin_not_just_write(
    apps: dict[str, tuple[FastAPI, httpx.AsyncClient]], tokens: Tokens
) -> None:
    _, client = apps["router"]
    body = {"email": f"nobody-{uuid.uuid4().hex[:8]}@example.org"}
    for token, status in ((tokens.read_write, 403), (tokens.write, 403), (tokens.admin, 202)):
        resp = await client.post(
            "/v1/admin/erasure", json=body, headers={"Authorization": f"Bearer {token}"}
        )
        assert resp.status_code == status, resp.text
