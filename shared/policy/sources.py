"""Sources: how each webhook sender authenticates, is rate limited and acknowledged."""

from __future__ import annotations

import re
from email.utils import parseaddr
from typing import Literal

import jinja2
from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from shared.policy.base import Name, _at, _check_name, _Model, is_canonical_path

# --- sources ---------------------------------------------------------------------------------

_ORIGIN = re.compile(r"^https?://[^/\s]+$")


class AuthConfig(_Model):
    """How a source proves its webhooks; secrets are referenced, never written inline."""

    scheme: Literal["none", "standard-webhooks", "typeform", "hubspot-v3"]
    secret_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    secret_file: str | None = Field(default=None, min_length=1)
    allowed_origins: tuple[str, ...] = ()
    honeypot_field: str | None = Field(default=None, min_length=1)

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for origin in v:
            if not _ORIGIN.match(origin):
                raise ValueError(f"'{origin}' is not an origin like https://www.example.com")
        return v

    @model_validator(mode="after")
    def _scheme_needs(self) -> AuthConfig:
        has_secret = self.secret_env is not None or self.secret_file is not None
        if self.scheme == "none":
            if has_secret:
                raise _at("scheme", "scheme none takes no secret_env/secret_file")
            if not self.allowed_origins:
                raise _at("allowed_origins", "required (non-empty) when scheme is none")
            if self.honeypot_field is None:
                raise _at("honeypot_field", "required when scheme is none")
        elif not has_secret:
            raise _at("secret_env", f"scheme {self.scheme} needs secret_env or secret_file")
        elif self.secret_env is not None and self.secret_file is not None:
            raise _at("secret_file", "give either secret_env or secret_file, not both")
        return self


class RateLimit(_Model):
    requests: int = Field(ge=1)
    per_seconds: int = Field(ge=1)


class ConsentConfig(_Model):
    field: str = Field(min_length=1)
    wording: str = Field(min_length=1)


_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
_EMAIL_RE = re.compile(_EMAIL)


class Acknowledge(_Model):
    """The e-mail a lead from this source gets once assigned (opt-in per source): a reply to
    their own request naming their owner and when to expect contact. `subject` may use
    ``{{ first_name }}``, ``{{ owner_name }}`` and ``{{ company }}``; `template` names the
    body templates notify renders (services/notify/templates/<template>.{txt,html}.j2)."""

    from_: str = Field(alias="from", min_length=3, max_length=200)
    subject: str = Field(min_length=1, max_length=200)
    template: Name = "acknowledgement"
    delay_seconds: int = Field(default=0, ge=0, le=86400)
    reply_to_owner: bool = True

    _template = field_validator("template")(_check_name)

    @field_validator("from_")
    @classmethod
    def _sender(cls, v: str) -> str:
        _, address = parseaddr(v)
        if "\n" in v or "\r" in v or not _EMAIL_RE.match(address):
            raise ValueError(
                f"'{v}' is not an address like sales@example.com or Example <sales@example.com>"
            )
        return v

    @field_validator("subject")
    @classmethod
    def _subject(cls, v: str) -> str:
        if "\n" in v or "\r" in v:
            raise ValueError("one line only")
        try:
            jinja2.Environment().parse(v)
        except jinja2.TemplateSyntaxError as exc:
            raise ValueError(f"invalid template: {exc.message}") from None
        return v


class SourceConfig(_Model):
    name: Name
    kind: Literal["form", "chat"]
    auth: AuthConfig
    rate_limit: RateLimit | None = None
    fields: dict[str, str] = Field(min_length=1)
    consent: ConsentConfig | None = None
    cost_per_lead: float | None = Field(default=None, ge=0)
    acknowledge: Acknowledge | None = None

    _name = field_validator("name")(_check_name)

    @field_validator("fields")
    @classmethod
    def _mapping(cls, v: dict[str, str]) -> dict[str, str]:
        for target, location in v.items():
            if not is_canonical_path(target):
                raise ValueError(f"unknown lead field '{target}'")
            if not location.strip() or location in ("ref:", "hs:") or " " in location:
                raise ValueError(f"{target}: '{location}' is not a payload location")
        return v

    @model_validator(mode="after")
    def _open_needs_limit(self) -> SourceConfig:
        if self.auth.scheme == "none" and self.rate_limit is None:
            raise _at("rate_limit", "required when auth.scheme is none")
        return self
