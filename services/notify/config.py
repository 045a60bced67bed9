"""Webhook endpoints as data: notify's own validated file (NOTIFY_CONFIG_PATH).

Loaded once at start; any problem refuses the start with the field named, the way the
policy loader names its fields (`endpoints[1].url: https required outside the local stack`).
Secrets are referenced by env var or file name, resolved here, and kept only in memory: they
never reach a log line, an error message or a message row.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.policy import PolicyError, _Loader
from shared.webhook_secrets import read_secrets

# What an endpoint may subscribe to: the events notify consumes.
EVENT_TYPES = (
    "lead.assigned",
    "lead.disqualified",
    "lead.merged",
    "lead.nurtured",
    "lead.parked",
    "lead.escalated",
    "lead.reengage",
    "contact.erased",
)
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_ENV = r"^[A-Za-z_][A-Za-z0-9_]*$"
RESERVED_NAMES = ("slack", "email")  # the people channels' names in metrics and admin


class NotifyConfigError(PolicyError):
    """The notify config file is unusable; the message names every offending field.

    A PolicyError, so `baton serve` reports it (and refuses to start) the way it reports a
    bad routing policy; `what` is the name it prints."""

    what = "notify config"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(_Model):
    """One place holding `whsec_...` secrets (whitespace separated, oldest first)."""

    env: str | None = Field(default=None, pattern=_ENV)
    file: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of env or file")
        return self


class Endpoint(_Model):
    name: str
    url: str
    events: tuple[str, ...] = Field(min_length=1)
    teams: tuple[str, ...] = ()  # empty: every team
    secrets: tuple[SecretRef, ...] = Field(min_length=1)
    enabled: bool = True
    timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    allow_private: bool = False  # loopback/private/link-local targets (the local stack)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("use lower-case letters, digits, '-' and '_' only")
        if v in RESERVED_NAMES:
            raise ValueError(f"{v!r} is reserved for the people channel")
        return v

    @field_validator("events")
    @classmethod
    def _events(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for i, t in enumerate(v):
            if t not in EVENT_TYPES:
                raise _FieldError(
                    f"[{i}]", f"unknown event type {t!r} (one of {', '.join(EVENT_TYPES)})"
                )
        return v

    @model_validator(mode="after")
    def _url(self) -> Endpoint:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _FieldError("url", "an absolute http(s) URL is required")
        if parts.username or parts.password:
            raise _FieldError("url", "no credentials in the URL (sign with secrets instead)")
        if parts.scheme != "https" and not self.allow_private:
            raise _FieldError(
                "url", "https required outside the local stack (allow_private: true allows http)"
            )
        return self


class NotifyConfig(_Model):
    endpoints: tuple[Endpoint, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> NotifyConfig:
        seen: set[str] = set()
        for i, ep in enumerate(self.endpoints):
            if ep.name in seen:
                raise _FieldError(f"endpoints[{i}].name", f"duplicate endpoint name {ep.name!r}")
            seen.add(ep.name)
        return self

    def endpoint(self, name: str) -> Endpoint | None:
        return next((e for e in self.endpoints if e.name == name), None)


class _FieldError(ValueError):
    """Raised by a model validator about one of its own fields (path relative to the model)."""

    def __init__(self, subpath: str, message: str) -> None:
        super().__init__(message)
        self.subpath = subpath


@dataclass(frozen=True)
class Loaded:
    """The validated config and every endpoint's secrets (newest last), never logged."""

    config: NotifyConfig
    secrets: Mapping[str, tuple[str, ...]]

    def __repr__(self) -> str:  # a stray log of this object shows no secret
        return f"Loaded(endpoints={[e.name for e in self.config.endpoints]})"


def _format(err: Mapping[str, Any]) -> str:
    path = ""
    for part in err["loc"]:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    exc = (err.get("ctx") or {}).get("error")
    message = str(err["msg"]).removeprefix("Value error, ")
    if isinstance(exc, _FieldError):
        path = f"{path}.{exc.subpath}" if path else exc.subpath
        message = str(exc)
    elif err["type"] == "extra_forbidden":
        message = "unknown field"
        if path.endswith(("secret", ".secrets[0].value")):
            message = "secrets are never inline: use secrets: [{env: NAME}] or [{file: PATH}]"
    elif err["type"] == "missing":
        message = "field required"
    return f"{path.replace('.[', '[')}: {message}" if path else message


def parse_config(text: str) -> NotifyConfig:
    try:
        # the policy's loader: YAML 1.2 booleans (an endpoint named "off" stays "off") and
        # duplicate keys are errors
        data = yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader
    except PolicyError as exc:
        raise NotifyConfigError(exc.errors) from None
    except yaml.YAMLError as exc:
        raise NotifyConfigError([f"invalid YAML: {exc}"]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise NotifyConfigError(["notify config: the file must be a YAML mapping"])
    try:
        return NotifyConfig.model_validate(data)
    except ValidationError as exc:
        raise NotifyConfigError([_format(e) for e in exc.errors()]) from None


def resolve_secrets(
    config: NotifyConfig, env: Mapping[str, str] | None = None
) -> dict[str, tuple[str, ...]]:
    """Every endpoint's secrets, in order (oldest first, newest last), read by the one loader
    of signed senders' secrets (shared.webhook_secrets). A missing or malformed one stops the
    start; errors name the field and the variable or file, never a secret."""
    env = os.environ if env is None else env
    out: dict[str, tuple[str, ...]] = {}
    errors: list[str] = []
    for i, ep in enumerate(config.endpoints):
        found: list[str] = []
        for j, ref in enumerate(ep.secrets):
            values, problems = read_secrets(
                f"endpoints[{i}].secrets[{j}]",
                env_name=ref.env,
                file=ref.file,
                env=env,
                owner=f"endpoint {ep.name!r}",
                standard_webhooks=True,
                require_prefix=True,
                fields=("env", "file"),
            )
            errors += problems
            found += values
        out[ep.name] = tuple(found)
    if errors:
        raise NotifyConfigError(errors)
    return out


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Loaded:
    """Read, validate and resolve the secrets of the notify config file (NOTIFY_CONFIG_PATH)."""
    try:
        content = Path(path).read_bytes()
    except OSError as exc:
        raise NotifyConfigError([f"cannot read notify config {path}: {exc.strerror}"]) from None
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise NotifyConfigError(["notify config: the file is not UTF-8"]) from None
    config = parse_config(text)
    return Loaded(config=config, secrets=resolve_secrets(config, env))
