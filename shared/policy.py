"""The routing policy file: sources, qualification, teams, routing rules, SLA and escalation.

Loaded once at start-up (and on reload) and validated completely, because a typo in a file sales
ops edit by hand must stop the service with the exact field at fault instead of silently routing
leads wrong. Every decision records ``Policy.version_id`` (the content hash), since the free-form
``version`` label is only as reliable as whoever remembered to bump it.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime, time
from email.utils import parseaddr
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
import yaml
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from shared.business_hours import END_OF_DAY, Schedule, WorkingHours
from shared.events import ActivityType

# --- canonical field paths (shared with intake's mapping and the router's conditions) ----------
# The one list: intake builds exactly these fields, source mappings may fill only these, and
# routing conditions may test these (plus DERIVED_FIELDS).

UTM_FIELDS: tuple[str, ...] = (
    "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"
)  # fmt: skip
CANONICAL_FIELDS: frozenset[str] = frozenset(
    {
        "email", "phone", "first_name", "last_name", "title", "company", "company_domain",
        "website", "country", "message", "company_size", "industry", "demo_request",
        "pricing_page", "pages_viewed", "content_downloaded", "chat_message", "consent",
        "consent_wording", "consent_at", *UTM_FIELDS,
    }
)  # fmt: skip
# Derived by intake (seniority, email_kind) or the router (account_owner: the rep owning the
# account the lead's business domain matched, absent otherwise); conditions may test them,
# source mappings may not fill them.
DERIVED_FIELDS: frozenset[str] = frozenset(
    {"seniority", "email_kind", "source", "channel", "account_owner"}
)
_OPEN_PREFIXES = ("answers.", "extra.")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_OPEN_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def is_canonical_path(path: str, *, derived: bool = False) -> bool:
    """Whether ``path`` names a lead field a mapping may fill (or a condition may test)."""
    if path in CANONICAL_FIELDS or (derived and path in DERIVED_FIELDS):
        return True
    prefix = next((p for p in _OPEN_PREFIXES if path.startswith(p)), None)
    return prefix is not None and bool(_OPEN_NAME.match(path[len(prefix) :]))


class PolicyError(Exception):
    """The policy file is unusable; the message names every offending field path."""

    status: ClassVar[int] = 500
    type_slug: ClassVar[str] = "invalid-policy"

    def __init__(self, errors: Iterable[str]) -> None:
        self.errors: tuple[str, ...] = tuple(errors)
        super().__init__("; ".join(self.errors))


def _at(subpath: str, message: str) -> PydanticCustomError:
    """An error a model validator attributes to one of its own fields (see ``_format_loc``)."""
    return PydanticCustomError("policy_field", "{detail}", {"subpath": subpath, "detail": message})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _check_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError("use lower-case letters, digits, '-' and '_' only")
    return value


Name = Annotated[str, Field(min_length=1, max_length=64)]


# --- conditions ------------------------------------------------------------------------------

Op = Literal["eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "contains", "exists", "matches"]
Scalar = bool | int | float | str
ConditionValue = Scalar | list[Scalar] | None


class FieldCondition(_Model):
    """A leaf test on one lead field."""

    field: str
    op: Op
    value: ConditionValue

    @field_validator("field")
    @classmethod
    def _known_field(cls, v: str) -> str:
        if not is_canonical_path(v, derived=True):
            raise ValueError(f"unknown lead field '{v}'")
        return v

    @model_validator(mode="after")
    def _value_fits_op(self) -> FieldCondition:
        v, op = self.value, self.op
        if op in ("in", "not_in"):
            if not isinstance(v, list) or not v:
                raise _at("value", f"'{op}' needs a non-empty list")
        elif op == "exists":
            if not isinstance(v, bool):
                raise _at("value", "'exists' needs true or false")
        elif op in ("gt", "gte", "lt", "lte"):
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise _at("value", f"'{op}' needs a number")
        elif op in ("contains", "matches"):
            if not isinstance(v, str):
                raise _at("value", f"'{op}' needs a string")
            if op == "matches":
                try:
                    re.compile(v)
                except re.error as exc:
                    raise _at("value", f"invalid regular expression: {exc}") from None
        elif isinstance(v, list) or v is None:
            raise _at("value", f"'{op}' needs a single value")
        return self

    @property
    def pattern(self) -> re.Pattern[str]:
        """The compiled regex of a ``matches`` condition."""
        return re.compile(str(self.value))


class AllCondition(_Model):
    all: tuple[Condition, ...] = Field(min_length=1)


class AnyCondition(_Model):
    any: tuple[Condition, ...] = Field(min_length=1)


class NotCondition(_Model):
    not_: Condition = Field(alias="not")


_CONDITION_TAGS = {"all": "<all>", "any": "<any>", "not": "<not>"}
_MODEL_TAGS: dict[type[BaseModel], str] = {
    AllCondition: "<all>",
    AnyCondition: "<any>",
    NotCondition: "<not>",
}


def _condition_kind(v: Any) -> str | None:
    if isinstance(v, dict):
        return next((tag for key, tag in _CONDITION_TAGS.items() if key in v), "<leaf>")
    if isinstance(v, BaseModel):
        return _MODEL_TAGS.get(type(v), "<leaf>")
    return None


Condition = Annotated[
    Annotated[FieldCondition, Tag("<leaf>")]
    | Annotated[AllCondition, Tag("<all>")]
    | Annotated[AnyCondition, Tag("<any>")]
    | Annotated[NotCondition, Tag("<not>")],
    Discriminator(
        _condition_kind,
        custom_error_type="condition",
        custom_error_message="a condition is {field, op, value} or one of all/any/not",
    ),
]
_TAG_SEGMENTS = frozenset({"<leaf>", "<all>", "<any>", "<not>", "<every-level>", "<by-level>"})

for _m in (AllCondition, AnyCondition, NotCondition):
    _m.model_rebuild()


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


# --- qualification ---------------------------------------------------------------------------


class Framework(_Model):
    name: str = Field(min_length=1)
    questions: tuple[str, ...] = ()


class ScoreRule(_Model):
    id: Name
    category: Literal["fit", "intent"]
    points: int
    when: Condition

    _id = field_validator("id")(_check_name)


class DisqualifyRule(_Model):
    id: Name
    reason: str = Field(min_length=1)
    when: Condition

    _id = field_validator("id")(_check_name)


class Threshold(_Model):
    name: Name
    min_score: int

    _name = field_validator("name")(_check_name)


def _descending(items: tuple[Threshold, ...], what: str) -> None:
    for i in range(1, len(items)):
        if items[i].min_score >= items[i - 1].min_score:
            raise _at(f"{what}[{i}].min_score", "must be lower than the one before it")


class Qualification(_Model):
    framework: Framework
    rules: tuple[ScoreRule, ...] = Field(min_length=1)
    disqualify: tuple[DisqualifyRule, ...] = ()
    stages: tuple[Threshold, ...] = ()
    tiers: tuple[Threshold, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _thresholds(self) -> Qualification:
        _descending(self.stages, "stages")
        _descending(self.tiers, "tiers")
        if self.tiers[-1].min_score > 0:
            raise _at("tiers", "the lowest tier must have min_score 0 so every score gets a tier")
        return self

    def stage_for_score(self, score: int) -> str:
        """First stage whose threshold the score reaches, else "lead"."""
        return next((s.name for s in self.stages if score >= s.min_score), "lead")

    def tier_for_score(self, score: int) -> str:
        """First tier whose threshold the score reaches (the lowest tier catches the rest)."""
        return next((t.name for t in self.tiers if score >= t.min_score), self.tiers[-1].name)


# --- teams and reps --------------------------------------------------------------------------

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
Window = tuple[time, time]
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _parse_time(raw: Any, *, end: bool) -> time:
    if not isinstance(raw, str):
        raise ValueError('times are quoted "HH:MM" strings')
    if end and raw == "24:00":
        return END_OF_DAY
    m = _HHMM.match(raw)
    if not m:
        raise ValueError(f"'{raw}' is not a time \"HH:MM\"")
    return time(int(m.group(1)), int(m.group(2)))


def _parse_windows(raw: Any) -> tuple[Window, ...]:
    """``["09:00","17:30"]`` or a list of such pairs -> sorted, non-overlapping windows."""
    if raw is None:
        return ()
    if not isinstance(raw, list | tuple):
        raise ValueError('expected ["HH:MM", "HH:MM"] or a list of such pairs')
    pairs = [raw] if raw and not any(isinstance(x, list | tuple) for x in raw) else list(raw)
    windows: list[Window] = []
    for pair in pairs:
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise ValueError('expected ["HH:MM", "HH:MM"] or a list of such pairs')
        start, stop = _parse_time(pair[0], end=False), _parse_time(pair[1], end=True)
        if stop <= start:
            raise ValueError("end must be after start")
        windows.append((start, stop))
    windows.sort()
    for (_, prev_end), (start, _) in pairwise(windows):
        if start < prev_end:
            raise ValueError("windows overlap")
    return tuple(windows)


class WeekHours(_Model):
    """Working windows per weekday in the rep's local time; an absent day is a day off."""

    mon: tuple[Window, ...] = ()
    tue: tuple[Window, ...] = ()
    wed: tuple[Window, ...] = ()
    thu: tuple[Window, ...] = ()
    fri: tuple[Window, ...] = ()
    sat: tuple[Window, ...] = ()
    sun: tuple[Window, ...] = ()

    _windows = field_validator(*DAYS, mode="before")(_parse_windows)

    def as_mapping(self) -> dict[int, tuple[Window, ...]]:
        return {i: getattr(self, day) for i, day in enumerate(DAYS) if getattr(self, day)}


NotifyChannel = Literal["slack", "email", "team_channel"]


def _check_unique(v: tuple[str, ...]) -> tuple[str, ...]:
    for name in v:
        if v.count(name) > 1:
            raise ValueError(f"'{name}' is listed twice")
    return v


Channels = Annotated[tuple[NotifyChannel, ...], Field(min_length=1), AfterValidator(_check_unique)]
"""Where a message to a person goes: `slack` (a direct message, needs their slack_user_id),
`email`, `team_channel` (a post in the team's slack_channel naming them)."""


def _check_slack_user(v: str | None) -> str | None:
    if v is not None and not re.fullmatch(r"[UW][A-Z0-9]{2,30}", v):
        raise ValueError(f"'{v}' is not a Slack member id like U0123ABCD")
    return v


def _levels_or_list(v: Any) -> str | None:
    if isinstance(v, list | tuple):
        return "<every-level>"
    if isinstance(v, dict):
        return "<by-level>"
    return None


EscalationChannels = Annotated[
    Annotated[Channels, Tag("<every-level>")] | Annotated[dict[int, Channels], Tag("<by-level>")],
    Discriminator(
        _levels_or_list,
        custom_error_type="escalation_channels",
        custom_error_message="a list of channels for every level, or {level: [channels]}",
    ),
]


class NotifyPrefs(_Model):
    """Which channels tell people about leads. `assignment`: the owner of a new or reassigned
    lead (and, on a reassignment, the previous owner). `escalation`: the owner and, for
    notify_manager, the manager; one list for every level or one per level. Unset keys fall
    back to the wider scope (rep -> team -> the escalation level's `channels` -> e-mail)."""

    assignment: Channels | None = None
    escalation: EscalationChannels | None = None

    def for_level(self, level: int) -> tuple[str, ...] | None:
        esc = self.escalation
        return esc.get(level) if isinstance(esc, dict) else esc

    def mentions(self, channel: str) -> bool:
        lists = [self.assignment or ()]
        esc = self.escalation
        lists += list(esc.values()) if isinstance(esc, dict) else [esc or ()]
        return any(channel in chans for chans in lists)


class Person(_Model):
    name: str = Field(min_length=1)
    email: str = Field(pattern=_EMAIL)


class Manager(Person):
    slack_user_id: str | None = None

    _slack = field_validator("slack_user_id")(_check_slack_user)


class OutOfOffice(_Model):
    from_: AwareDatetime = Field(alias="from")
    until: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> OutOfOffice:
        if self.until <= self.from_:
            raise _at("until", "must be after from")
        return self


class Rep(_Model):
    id: Name
    name: str = Field(min_length=1)
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    manager_email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    timezone: str
    working_hours: WeekHours
    weight: int = Field(default=1, ge=1)
    capacity: int = Field(ge=1)
    territories: tuple[Annotated[str, Field(pattern=r"^[A-Z]{2}$")], ...] = ()
    active: bool = True
    out_of_office: tuple[OutOfOffice, ...] = ()
    slack_user_id: str | None = None
    notify: NotifyPrefs = Field(default_factory=NotifyPrefs)

    _id = field_validator("id")(_check_name)
    _slack = field_validator("slack_user_id")(_check_slack_user)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{v}'") from None
        return v

    @field_validator("working_hours")
    @classmethod
    def _some_hours(cls, v: WeekHours) -> WeekHours:
        # Business-clock SLAs and require_working_hours rules need at least some working time.
        if not v.as_mapping():
            raise ValueError("at least one working day is required")
        return v

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def hours(self) -> WorkingHours:
        return self.working_hours.as_mapping()

    def schedule(self) -> Schedule:
        """Working hours bound to the rep's zone, for SLA deadlines and working-time checks."""
        return Schedule(self.hours(), self.zone)

    def is_out_of_office(self, at: datetime) -> bool:
        return any(o.from_ <= at < o.until for o in self.out_of_office)


class Team(_Model):
    id: Name
    name: str = Field(min_length=1)
    manager: Manager
    reps: tuple[Rep, ...] = Field(min_length=1)
    slack_channel: str | None = None
    notify: NotifyPrefs = Field(default_factory=NotifyPrefs)

    _id = field_validator("id")(_check_name)

    @field_validator("slack_channel")
    @classmethod
    def _channel(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[CG][A-Z0-9]{2,30}|#[a-z0-9][a-z0-9_-]{0,79}", v):
            raise ValueError(
                f"'{v}' is not a Slack channel id like C0123ABCD or a name like #leads"
            )
        return v

    def rep(self, rep_id: str) -> Rep | None:
        return next((r for r in self.reps if r.id == rep_id), None)

    def manager_email_for(self, rep: Rep) -> str:
        return rep.manager_email or self.manager.email


# --- routing, accounts, SLA, escalation ------------------------------------------------------

Strategy = Literal["account_owner", "round_robin", "least_loaded", "fixed"]


class RoutingRule(_Model):
    id: Name
    when: Condition | None = None
    default: bool = False
    team: str
    strategy: Strategy
    owner: str | None = None
    require_working_hours: bool = False

    _id = field_validator("id")(_check_name)

    @model_validator(mode="after")
    def _shape(self) -> RoutingRule:
        if self.default and self.when is not None:
            raise _at("when", "a default rule has no condition")
        if not self.default and self.when is None:
            raise _at("when", "required unless default: true")
        if self.strategy == "fixed" and self.owner is None:
            raise _at("owner", "required when strategy is fixed")
        if self.strategy != "fixed" and self.owner is not None:
            raise _at("owner", "only allowed when strategy is fixed")
        return self


class Account(_Model):
    domain: str = Field(pattern=r"^[a-z0-9-]+(\.[a-z0-9-]+)+$")
    name: str = Field(min_length=1)
    owner: str

    @field_validator("domain", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.strip().lower() if isinstance(v, str) else v


class SlaTier(_Model):
    window_seconds: int = Field(ge=1)
    clock: Literal["business", "wall"]


class Sla(_Model):
    tiers: dict[str, SlaTier] = Field(min_length=1)


class EscalationLevel(_Model):
    level: int = Field(ge=1)
    action: Literal["remind_owner", "notify_manager", "reassign"]
    after_seconds: int = Field(ge=0)
    channels: Channels | None = None  # default for every team; a team's or rep's notify wins

    @model_validator(mode="after")
    def _message_channels(self) -> EscalationLevel:
        if self.action == "reassign" and self.channels is not None:
            raise _at("channels", _REASSIGN_SENDS_NOTHING)
        return self


_REASSIGN_SENDS_NOTHING = (
    "reassign sends no message of its own (the new assignment tells both owners)"
)


class Dedupe(_Model):
    open_lead_days: int = Field(ge=1)


class Retention(_Model):
    lead_days: int = Field(ge=1)


# --- activity sources (followup's signed activity webhooks) -----------------------------------

ACTIVITY_FIELDS = ("activity_id", "lead_id", "type", "at", "actor", "note", "reengage_at", "reason")
_SIGNED_ACTIVITY_SCHEMES = ("standard-webhooks", "hubspot-v3")


class ActivitySource(_Model):
    """A sales tool that posts activities (a logged call, an e-mail) to followup.

    ``fields`` maps each activity field to where its value sits in the tool's payload (a dot
    path, list indexes allowed); ``types`` maps the tool's values to activity types, or
    ``type`` fixes one for a tool that only sends one kind; ``actors`` maps the tool's user ids
    to rep ids (others pass through unchanged).
    """

    name: Name
    auth: AuthConfig
    fields: dict[str, str] = Field(min_length=1)
    type: ActivityType | None = None
    types: dict[str, ActivityType] = {}
    actors: dict[str, str] = {}

    _name = field_validator("name")(_check_name)

    @field_validator("fields")
    @classmethod
    def _mapping(cls, v: dict[str, str]) -> dict[str, str]:
        for target, location in v.items():
            if target not in ACTIVITY_FIELDS:
                known = ", ".join(ACTIVITY_FIELDS)
                raise ValueError(f"unknown activity field '{target}' (one of {known})")
            if not location.strip() or " " in location:
                raise ValueError(f"{target}: '{location}' is not a payload location")
        for required in ("lead_id", "actor"):
            if required not in v:
                raise ValueError(f"{required}: field required")
        return v

    @model_validator(mode="after")
    def _shape(self) -> ActivitySource:
        if self.auth.scheme not in _SIGNED_ACTIVITY_SCHEMES:
            signed = ", ".join(_SIGNED_ACTIVITY_SCHEMES)
            raise _at("auth.scheme", f"activity sources are signed: use one of {signed}")
        mapped = "type" in self.fields
        if mapped == (self.type is not None):
            raise _at("type", "give fields.type (read through types) or a fixed type, one of them")
        if self.types and not mapped:
            raise _at("types", "only used with fields.type")
        return self


# --- the policy ------------------------------------------------------------------------------


class Policy(_Model):
    """The whole routing policy; cross-references are checked so lookups never dangle."""

    version: str = Field(min_length=1)
    sources: tuple[SourceConfig, ...] = Field(min_length=1)
    qualification: Qualification
    teams: tuple[Team, ...] = Field(min_length=1)
    rules: tuple[RoutingRule, ...] = Field(min_length=1)
    fallback_team: str
    accounts: tuple[Account, ...] = ()
    sla: Sla
    escalation: tuple[EscalationLevel, ...] = Field(min_length=1)
    dedupe: Dedupe
    retention: Retention
    activity_sources: tuple[ActivitySource, ...] = ()

    _content_hash: str = PrivateAttr(default="")

    @model_validator(mode="after")
    def _cross_references(self) -> Policy:
        # PolicyError is not a ValueError, so pydantic lets it through unchanged.
        errors = _cross_check(self)
        if errors:
            raise PolicyError(errors)
        return self

    # identity

    @property
    def content_hash(self) -> str:
        """sha256 hex of the policy file's bytes (empty for a policy built in code)."""
        return self._content_hash

    @functools.cached_property
    def version_id(self) -> str:
        """The short content hash every decision records as the policy version.

        Cached (read several times per decision; a private attribute read is slow on a
        pydantic model). Safe: `parse_policy` sets the hash before anyone asks for it.
        """
        return self._content_hash[:12]

    @property
    def label(self) -> str:
        return self.version

    # lookups

    # Indexes for the per-request look-ups, built once (the policy is immutable).

    @functools.cached_property
    def _sources_by_name(self) -> dict[str, SourceConfig]:
        return {s.name: s for s in reversed(self.sources)}  # first wins, as a scan would

    @functools.cached_property
    def _teams_by_id(self) -> dict[str, Team]:
        return {t.id: t for t in reversed(self.teams)}

    @functools.cached_property
    def _reps_by_id(self) -> dict[str, tuple[Team, Rep]]:
        found: dict[str, tuple[Team, Rep]] = {}
        for team in self.teams:
            for rep in team.reps:
                found.setdefault(rep.id, (team, rep))
        return found

    @functools.cached_property
    def _accounts_by_domain(self) -> dict[str, Account]:
        return {a.domain: a for a in self.accounts}

    def source(self, name: str) -> SourceConfig | None:
        return self._sources_by_name.get(name)

    def team(self, team_id: str) -> Team | None:
        return self._teams_by_id.get(team_id)

    def rep(self, rep_id: str) -> tuple[Team, Rep] | None:
        return self._reps_by_id.get(rep_id)

    def account_for_domain(self, domain: str | None) -> Account | None:
        """The known account for a domain, also matching its subdomains (eu.acme.com)."""
        if not domain:
            return None
        labels = domain.strip().lower().rstrip(".").split(".")
        by_domain = self._accounts_by_domain
        for i in range(len(labels) - 1):
            account = by_domain.get(".".join(labels[i:]))
            if account is not None:
                return account
        return None

    def sla_for_tier(self, name: str) -> SlaTier:
        """The SLA of a tier; load guarantees every qualification tier has one (KeyError if not)."""
        return self.sla.tiers[name]

    @property
    def escalation_levels(self) -> tuple[EscalationLevel, ...]:
        return tuple(sorted(self.escalation, key=lambda e: e.level))

    @property
    def fallback(self) -> Team:
        team = self.team(self.fallback_team)
        assert team is not None  # checked at load
        return team


def _duplicates(
    items: Iterable[tuple[str, str]],
) -> list[str]:
    """``(path, value)`` pairs -> one error per repeated value, at its second occurrence."""
    seen: Counter[str] = Counter()
    errors = []
    for path, value in items:
        seen[value] += 1
        if seen[value] == 2:
            errors.append(f"{path}: duplicate id '{value}'")
    return errors


def _cross_check(p: Policy) -> list[str]:
    errors: list[str] = []
    q = p.qualification
    errors += _duplicates((f"sources[{i}].name", s.name) for i, s in enumerate(p.sources))
    errors += _duplicates((f"teams[{i}].id", t.id) for i, t in enumerate(p.teams))
    errors += _duplicates(
        (f"teams[{i}].reps[{j}].id", r.id)
        for i, t in enumerate(p.teams)
        for j, r in enumerate(t.reps)
    )
    errors += _duplicates((f"rules[{i}].id", r.id) for i, r in enumerate(p.rules))
    errors += _duplicates(
        [(f"qualification.rules[{i}].id", r.id) for i, r in enumerate(q.rules)]
        + [(f"qualification.disqualify[{i}].id", r.id) for i, r in enumerate(q.disqualify)]
    )
    errors += _duplicates(
        (f"qualification.stages[{i}].name", s.name) for i, s in enumerate(q.stages)
    )
    errors += _duplicates((f"qualification.tiers[{i}].name", t.name) for i, t in enumerate(q.tiers))
    errors += _duplicates((f"accounts[{i}].domain", a.domain) for i, a in enumerate(p.accounts))
    errors += _activity_source_errors(p)
    team_ids = {t.id for t in p.teams}
    for i, rule in enumerate(p.rules):
        team = p.team(rule.team)
        if team is None:
            errors.append(f"rules[{i}].team: unknown team '{rule.team}'")
        elif rule.owner is not None and team.rep(rule.owner) is None:
            errors.append(f"rules[{i}].owner: no rep '{rule.owner}' in team '{rule.team}'")
        if rule.default and i != len(p.rules) - 1:
            errors.append(f"rules[{i}].default: only the last rule may be the default")
    if not p.rules[-1].default:
        errors.append("rules: the last rule must have default: true")
    if p.fallback_team not in team_ids:
        errors.append(f"fallback_team: unknown team '{p.fallback_team}'")
    for i, account in enumerate(p.accounts):
        if p.rep(account.owner) is None:
            errors.append(f"accounts[{i}].owner: unknown rep '{account.owner}'")
    tier_names = [t.name for t in q.tiers]
    for name in p.sla.tiers:
        if name not in tier_names:
            errors.append(f"sla.tiers.{name}: not a tier in qualification.tiers")
    for i, name in enumerate(tier_names):
        if name not in p.sla.tiers:
            errors.append(f"qualification.tiers[{i}].name: tier '{name}' has no entry in sla.tiers")
    for i, level in enumerate(p.escalation):
        if level.level != i + 1:
            errors.append(f"escalation[{i}].level: expected {i + 1} (levels are 1..n in order)")
        elif i and level.after_seconds < p.escalation[i - 1].after_seconds:
            errors.append(f"escalation[{i}].after_seconds: must not be less than level {i}'s")
    errors += _check_notify(p)
    return errors


def _check_notify(p: Policy) -> list[str]:
    """Channel choices that could never be honoured: a team channel the team does not have,
    escalation levels that do not exist or send nothing."""
    errors: list[str] = []
    actions = {e.level: e.action for e in p.escalation}
    for i, team in enumerate(p.teams):
        scopes = [(f"teams[{i}].notify", team.notify)] + [
            (f"teams[{i}].reps[{j}].notify", r.notify) for j, r in enumerate(team.reps)
        ]
        for path, prefs in scopes:
            if team.slack_channel is None and prefs.mentions("team_channel"):
                errors.append(f"{path}: team_channel needs the team's slack_channel")
            if isinstance(prefs.escalation, dict):
                for level in prefs.escalation:
                    if level not in actions:
                        errors.append(f"{path}.escalation[{level}]: no escalation level {level}")
                    elif actions[level] == "reassign":
                        errors.append(f"{path}.escalation[{level}]: {_REASSIGN_SENDS_NOTHING}")
    return errors


def _activity_source_errors(p: Policy) -> list[str]:
    errors = _duplicates(
        (f"activity_sources[{i}].name", s.name) for i, s in enumerate(p.activity_sources)
    )
    for i, src in enumerate(p.activity_sources):
        for tool_id, rep_id in src.actors.items():
            if p.rep(rep_id) is None:
                errors.append(f"activity_sources[{i}].actors.{tool_id}: unknown rep '{rep_id}'")
    return errors


# --- loading ---------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """YAML 1.2 booleans only (so country NO stays "NO") and duplicate keys are errors."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in keys:
                mark = key_node.start_mark
                raise PolicyError([f"line {mark.line + 1}: duplicate key '{key}'"])
            keys.add(key)
        return super().construct_mapping(node, deep=deep)


_BOOL_TAG = "tag:yaml.org,2002:bool"
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)

_MESSAGES = {
    "extra_forbidden": "unknown field",
    "missing": "field required",
}


def _format_loc(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part not in _TAG_SEGMENTS:
            out += f".{part}" if out else part
    return out


def _format_error(err: Mapping[str, Any]) -> str:
    loc = list(err["loc"])
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "policy_field":
        loc.append(ctx["subpath"])
        message = str(ctx["detail"])
    elif kind == "extra_forbidden" and loc and loc[-1] == "secret":
        message = "secrets are never inline: use secret_env or secret_file"
    elif kind == "too_short":
        message = f"needs at least {ctx.get('min_length', 1)} item(s)"
    else:
        message = _MESSAGES.get(kind, str(err["msg"]).removeprefix("Value error, "))
    path = _format_loc(loc)
    # a policy_field subpath may itself hold "[i]" (e.g. "stages[1].min_score")
    path = path.replace(".[", "[")
    return f"{path}: {message}" if path else message


def _specific(errors: list[Any]) -> list[Any]:
    """Drop "too short" errors that only exist because every item of the list was invalid."""
    locs = [tuple(e["loc"]) for e in errors]

    def shadowed(loc: tuple[Any, ...]) -> bool:
        return any(len(other) > len(loc) and other[: len(loc)] == loc for other in locs)

    return [e for e in errors if not (e["type"] == "too_short" and shadowed(tuple(e["loc"])))]


def parse_policy(text: str, *, content: bytes | None = None) -> Policy:
    """Validate policy YAML; ``content`` (the file's bytes) is what gets hashed, if given."""
    raw_bytes = content if content is not None else text.encode("utf-8")
    try:
        data = yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise PolicyError([f"{where}invalid YAML: {exc.problem}"]) from None
    except yaml.YAMLError as exc:
        raise PolicyError([f"invalid YAML: {exc}"]) from None
    if not isinstance(data, dict):
        raise PolicyError(["policy: the file must be a YAML mapping"])
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError([_format_error(e) for e in _specific(exc.errors())]) from None
    policy._content_hash = hashlib.sha256(raw_bytes).hexdigest()
    return policy


def load_policy(path: str | Path) -> Policy:
    """Read and validate the policy file; any problem raises PolicyError naming the field."""
    try:
        content = Path(path).read_bytes()
    except OSError as exc:
        raise PolicyError([f"cannot read policy file {path}: {exc.strerror}"]) from None
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise PolicyError(["policy: the file is not UTF-8"]) from None
    return parse_policy(text, content=content)
