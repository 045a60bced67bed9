"""Notify app: lifespan owns the pool, the consumer (plans and stores messages) and the
dispatcher (sends them); the admin API reads and replays them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.notify import handlers
from services.notify.api import router
from services.notify.channels.base import Sender
from services.notify.channels.email import EmailSender
from services.notify.channels.slack import SlackSender
from services.notify.channels.webhook import WebhookSender
from services.notify.config import NotifyConfig, load_config
from services.notify.domain.backoff import Backoff
from services.notify.domain.people import PeopleLinks, template_errors
from services.notify.metrics import NotifyMetrics
from services.notify.service import NotifyService
from services.notify.ticker import Dispatcher, Group
from shared.auth import parse_tokens
from shared.http import install_error_handlers, install_metrics_middleware, ops_router
from shared.policy import PolicyError, load_policy
from shared.runtime import Runtime
from shared.settings import Settings


def people_senders(settings: Settings) -> dict[str, Sender]:
    """The Slack (Web API at `slack_base_url` with SLACK_BOT_TOKEN) and e-mail (SMTP relay)
    senders. Without a Slack bot token nothing is planned for Slack (PeopleLinks.slack_enabled
    is false and people are e-mailed instead); an unreachable SMTP relay keeps e-mails
    pending, retried and visible in the admin API, until it answers (then the backlog goes out)."""
    return {
        "slack": SlackSender(
            token=settings.slack_token.get_secret_value(),
            base_url=settings.slack_base_url,
            timeout_seconds=settings.slack_timeout_seconds,
        ),
        "email": EmailSender(
            host=settings.smtp_host,
            port=settings.smtp_port,
            starttls=settings.smtp_starttls,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value(),
            timeout_seconds=settings.smtp_timeout_seconds,
            max_connections=settings.notify_endpoint_concurrency,  # the email endpoint's slots
        ),
    }


def delivery_groups(settings: Settings, config: NotifyConfig) -> list[Group]:
    """Each enabled webhook endpoint is a group with its own slots, and so are Slack and
    e-mail: one slow receiver only ever fills its own group's slots."""
    groups = [Group(e.name, "webhook", e.timeout_seconds) for e in config.endpoints if e.enabled]
    groups += [
        Group("slack", "slack", settings.slack_timeout_seconds),
        Group("email", "email", settings.smtp_timeout_seconds),
    ]
    return groups


def create_app(settings: Settings, *, env: Mapping[str, str] | None = None) -> FastAPI:
    """`env`: where endpoint secrets are read from (default: the process environment).
    A bad config raises NotifyConfigError (a PolicyError): `baton serve` refuses to start."""
    loaded = load_config(settings.notify_config_path, env=env)
    config = loaded.config
    policy = load_policy(settings.policy_path)
    if errors := template_errors(policy):  # an acknowledgement template notify lacks
        raise PolicyError(errors)
    runtime = Runtime.build(settings, "notify")
    metrics = NotifyMetrics(runtime.metrics.registry)
    people = people_senders(settings)
    service = NotifyService(
        config=config,
        policy=policy,
        links=PeopleLinks(
            lead_url=settings.notify_lead_url,
            default_from=settings.notify_from_email,
            # no bot token: people the policy would reach on Slack are e-mailed instead
            slack_enabled=bool(settings.slack_token.get_secret_value()),
        ),
        metrics=metrics,
        backoff=Backoff(
            schedule=settings.notify_retry_schedule_seconds,
            jitter=settings.notify_retry_jitter,
            retry_after_max=settings.notify_retry_after_max_seconds,
        ),
        people=bool(people),
    )
    webhook = WebhookSender(
        config=config,
        secrets=loaded.secrets,
        max_response_bytes=settings.notify_max_response_bytes,
        max_connections=settings.notify_endpoint_concurrency,
    )
    dispatcher = Dispatcher(
        runtime=runtime,
        service=service,
        senders={"webhook": webhook, **people},
        groups=delivery_groups(settings, config),
        concurrency=settings.notify_endpoint_concurrency,
        max_sleep=settings.ticker_max_sleep_seconds,
        health_interval=settings.notify_health_refresh_seconds,
        lease_margin=settings.notify_lease_seconds,
    )
    runtime.consume(
        group_id=f"{settings.consumer_group_prefix}-notify",
        topics=[
            settings.topics.leads_assigned,
            settings.topics.leads_escalated,
            settings.topics.contacts_erased,
        ],
        fn=handlers.build(service, dispatcher.wake),
        many=handlers.build_many(service, dispatcher.wake),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        await dispatcher.start()
        try:
            yield
        finally:
            await dispatcher.stop()
            for sender in (webhook, *people.values()):
                close = getattr(sender, "aclose", None)
                if close is not None:
                    await close()
            await runtime.stop()

    app = FastAPI(title="Baton notify", version="0.1.0", lifespan=lifespan)
    app.state.runtime = runtime
    app.state.notify = service
    app.state.dispatcher = dispatcher
    app.state.tokens = parse_tokens(settings.api_tokens)
    install_error_handlers(app)
    install_metrics_middleware(app, runtime.metrics)
    app.include_router(ops_router(runtime.checks(), runtime.metrics))
    app.include_router(router)
    return app
