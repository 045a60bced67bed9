"""Intake app: the lifespan owns the DB pool, producer and outbox relay."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.intake import handlers
from services.intake.api import router
from services.intake.batcher import GroupCommitter
from services.intake.domain.errors import IntakeError
from services.intake.metrics import IntakeMetrics
from services.intake.service import IntakeService, load_secrets
from shared.http import install_error_handlers, install_metrics_middleware, ops_router, problem
from shared.kafka import ConsumerRunner
from shared.policy import load_policy
from shared.runtime import Runtime
from shared.settings import Settings

MAX_HEADER_BYTES = 32 * 1024  # all header names and values together


class _NoSniffing:
    """Pure ASGI: intake faces the internet and problem details may quote what the sender put
    in the URL, so no browser may ever sniff a response into HTML, and nothing is cached.
    uvicorn's default HTTP parser (httptools) puts no cap on header size: refuse here."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                headers.setdefault("Cache-Control", "no-store")
            await send(message)

        size = sum(len(k) + len(v) for k, v in scope["headers"])
        if size > MAX_HEADER_BYTES:
            response = problem(
                431,
                "Request header fields too large",
                f"the request headers are larger than {MAX_HEADER_BYTES} bytes",
                type_slug="headers-too-large",
                instance=scope.get("path"),
            )
            await response(scope, receive, send_wrapper)
            return
        await self.app(scope, receive, send_wrapper)


def create_app(settings: Settings) -> FastAPI:
    policy = load_policy(settings.policy_path)  # invalid policy: refuse to start, naming the field
    runtime = Runtime.build(settings, "intake")
    service = IntakeService(
        policy=policy,
        secrets=load_secrets(policy),
        topic=settings.topics.leads_received,
        max_body_bytes=settings.max_body_bytes,
    )
    # Right to erasure / retention: the router publishes contact.erased; intake erases its copy.
    # Kept out of runtime.consumers on purpose: /readyz must not take the webhook receiver out
    # of the load balancer while this background consumer joins its group or rebalances.
    erasures = ConsumerRunner(
        settings=settings,
        group_id=f"{settings.consumer_group_prefix}-intake",
        topics=[settings.topics.contacts_erased],
        handler=runtime.transactional(handlers.build()),
        metrics=runtime.metrics,
        producer=runtime.kafka,
    )

    metrics = IntakeMetrics(runtime.metrics.registry)
    committer = (
        GroupCommitter(
            sessions=runtime.sessions,
            service=service,
            max_batch=settings.intake_group_commit_max,
            window_seconds=settings.intake_group_commit_window_ms / 1000,
            on_commit=lambda n: metrics.commits.inc(),
        )
        if settings.intake_group_commit
        else None
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        if committer is not None:
            await committer.start()
        await erasures.start()
        try:
            yield
        finally:
            if committer is not None:
                await committer.stop()
            await erasures.stop()
            await runtime.stop()

    app = FastAPI(title="Baton intake", version="0.1.0", lifespan=lifespan)
    app.state.runtime = runtime
    app.state.intake = service
    app.state.intake_metrics = metrics
    app.state.committer = committer
    install_error_handlers(app, IntakeError)

    app.add_middleware(_NoSniffing)
    install_metrics_middleware(app, runtime.metrics)
    app.include_router(router)  # first: the webhook route is matched before the ops routes
    app.include_router(ops_router(runtime.checks(), runtime.metrics))
    return app
