"""Settings from the environment (pydantic-settings).

Built once in each process's entry point and handed down explicitly: nothing reads the
environment at import time, so tests can run several differently configured apps in one process.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Topics(BaseSettings):
    """Topic names from the contract; each is overridable (TOPIC_LEADS_RECEIVED=...)."""

    model_config = SettingsConfigDict(env_prefix="TOPIC_", extra="ignore", frozen=True)

    leads_received: str = "leads.received"
    leads_assigned: str = "leads.assigned"
    leads_activity: str = "leads.activity"
    leads_escalated: str = "leads.escalated"
    contacts_erased: str = "contacts.erased"
    leads_dlq: str = "leads.dlq"
    reps_status: str = "reps.status"  # rep.paused / rep.resumed (key = rep id)

    def all(self) -> list[str]:
        return [
            self.leads_received,
            self.leads_assigned,
            self.leads_activity,
            self.leads_escalated,
            self.contacts_erased,
            self.leads_dlq,
            self.reps_status,
        ]


class Settings(BaseSettings):
    """Process configuration. Defaults match the local stack started by deploy/local."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    database_url: str = "postgresql+asyncpg://baton@127.0.0.1:55432/baton"
    policy_path: Path = Path("deploy/policy.example.yaml")
    topics: Topics = Field(default_factory=Topics)
    topic_partitions: int = Field(default=6, ge=1)
    topic_replication_factor: int = Field(default=1, ge=1)
    # How long Kafka keeps events that carry contact details (every topic but contacts.erased):
    # erasure cannot rewrite a topic, so this is when an erased contact leaves the log. Set on
    # topics Baton creates; state it in the privacy notice (docs/privacy.md).
    topic_retention_hours: int = Field(default=7 * 24, ge=1)

    host: str = "127.0.0.1"
    intake_port: int = 8001
    router_port: int = 8002
    followup_port: int = 8003
    notify_port: int = 8004

    consumer_group_prefix: str = "baton"
    log_level: str = "INFO"
    db_pool_size: int = Field(default=10, ge=1)
    kafka_request_timeout_seconds: float = Field(default=10.0, gt=0)
    consumer_max_retries: int = Field(default=3, ge=0)
    # Kafka outages: reconnect backoff cap, and how long a consumer may hold lag without
    # fetching anything before it is rebuilt (aiokafka can stall after a full cluster restart).
    kafka_backoff_max_seconds: float = Field(default=5.0, gt=0)
    consumer_stall_seconds: float = Field(default=30.0, gt=0)
    consumer_batch_size: int = Field(default=200, ge=1)
    # Offsets are committed after the database commit, at most this often while busy (and at
    # once when caught up, on rebalance and on stop); 0 = after every fetched batch.
    consumer_commit_interval_seconds: float = Field(default=0.25, ge=0)
    relay_batch_size: int = Field(default=500, ge=1)
    relay_poll_interval_seconds: float = Field(default=1.0, gt=0)
    ticker_max_sleep_seconds: float = Field(default=1.0, gt=0)
    # Followup: how long an activity for a never-assigned lead waits before it is dead-lettered,
    # and how often the open-clocks gauge and the 7-day completion ratio are recomputed.
    followup_unknown_lead_grace_seconds: float = Field(default=3600.0, gt=0)
    followup_health_refresh_seconds: float = Field(default=30.0, gt=0)
    # Notify's people channels (services/notify/channels/{slack,email}.py). Slack Web API base
    # URL and bot token (env SLACK_BOT_TOKEN; empty: nobody is sent Slack messages, people get
    # e-mail instead); SMTP relay (STARTTLS and login optional); the sender of e-mails to reps
    # and managers. deploy/local/demo-env.sh points them at the local sinks.
    slack_base_url: str = "https://slack.com/api/"
    slack_token: SecretStr = Field(
        default=SecretStr(""), validation_alias=AliasChoices("SLACK_BOT_TOKEN", "slack_token")
    )
    slack_timeout_seconds: float = Field(default=10.0, gt=0)
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_starttls: bool = False
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_timeout_seconds: float = Field(default=10.0, gt=0)
    notify_from_email: str = "Baton <baton@example.com>"
    max_body_bytes: int = Field(default=65536, ge=1024)
    # Intake group commit: concurrent webhooks share one transaction (flushed when `max` are
    # queued or `window_ms` after the first); false = one transaction per request.
    intake_group_commit: bool = True
    intake_group_commit_max: int = Field(default=64, ge=1)
    intake_group_commit_window_ms: float = Field(default=2.0, ge=0)
    # Notify: webhook endpoints (their own validated file), the retry schedule in seconds after
    # each failed attempt (jitter +/- notify_retry_jitter of each step; dead-lettered after the
    # last), concurrent sends per endpoint (a dead endpoint exhausts only its own slots), the
    # cap on a response body read, the longest Retry-After honoured, and how often the backlog
    # gauges are recomputed.
    notify_config_path: Path = Path("deploy/notify.example.yaml")
    notify_retry_schedule_seconds: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
    notify_retry_jitter: float = Field(default=0.2, ge=0, lt=1)
    notify_endpoint_concurrency: int = Field(default=16, ge=1)
    notify_max_response_bytes: int = Field(default=65536, ge=1024)
    notify_retry_after_max_seconds: float = Field(default=36000.0, gt=0)
    notify_health_refresh_seconds: float = Field(default=15.0, gt=0)
    # how long past an attempt's timeout its message stays leased (a crash mid-send: resent
    # after this)
    notify_lease_seconds: float = Field(default=30.0, gt=0)
    notify_lead_url: str = "http://127.0.0.1:8002/v1/admin/leads/{lead_id}"
    # Bearer tokens for admin/activity endpoints: "name:scope+scope:sha256hex" entries,
    # comma separated. Only hashes are configured; see shared.auth.
    api_tokens: str = ""

    @property
    def asyncpg_dsn(self) -> str:
        """The same database as a plain libpq URL, for asyncpg's LISTEN connection."""
        return self.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
