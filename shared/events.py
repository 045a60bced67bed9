"""CloudEvents 1.0 envelope (structured JSON mode) and the typed payload of every contract event.

Event ids are derived with uuid5 wherever a retry could recompute the event, so a recomputed
decision carries the same id and consumers drop it as a duplicate.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

BATON_NS = uuid.UUID("6f6c2a4e-8d0b-5b6e-9a4f-2a1d7b3c9e10")


def derived_id(*parts: object) -> str:
    """Deterministic event id from its causes (e.g. lead id, "assigned", seq)."""
    return str(uuid.uuid5(BATON_NS, "/".join(str(p) for p in parts)))


def utcnow() -> datetime:
    return datetime.now(UTC)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- canonical lead ----------------------------------------------------------------------------

Seniority = Literal["c_level", "vp", "director", "manager", "ic"]
EmailKind = Literal["business", "free", "disposable"]
Channel = Literal["form", "chat"]


class Contact(_Model):
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    title: str | None = None
    seniority: Seniority | None = None
    company: str | None = None
    company_domain: str | None = None
    country: str | None = None
    email_kind: EmailKind | None = None


class Consent(_Model):
    marketing_opt_in: bool = False
    at: datetime | None = None
    wording: str | None = None


class Engagement(_Model):
    demo_request: bool = False
    pricing_page: bool = False
    pages_viewed: list[str] = Field(default_factory=list)
    content_downloaded: list[str] = Field(default_factory=list)
    chat_message: bool = False


class Lead(_Model):
    """The canonical lead intake produces: only fields the source's policy maps."""

    lead_id: str
    received_at: datetime
    source: str
    channel: Channel
    contact: Contact
    consent: Consent = Field(default_factory=Consent)
    message: str | None = None
    utm: dict[str, str] = Field(default_factory=dict)
    engagement: Engagement = Field(default_factory=Engagement)
    company_size: int | None = None
    industry: str | None = None
    answers: dict[str, str] = Field(default_factory=dict)
    extra: dict[str, str] = Field(default_factory=dict)


# --- router output -----------------------------------------------------------------------------


class Person(_Model):
    id: str | None = None
    name: str
    email: str


class TeamRef(_Model):
    id: str
    name: str


class RuleScore(_Model):
    rule_id: str
    category: str
    points: int
    matched: bool
    reason: str


class Sla(_Model):
    tier: str
    window_seconds: int
    clock: Literal["business", "wall"]
    due_at: datetime


class RoutingReason(_Model):
    rule_id: str
    strategy: str
    reason: str
    fallback_used: bool = False


class AccountRef(_Model):
    domain: str
    name: str | None = None
    owner_id: str | None = None
    owner: Person | None = None


class RepConsidered(_Model):
    """A rep the router looked at for this lead, and whether (and why not) they could take it."""

    rep_id: str
    eligible: bool
    reason: str


class RuleTried(_Model):
    """A routing rule tried in order, and whether it matched (policy words only)."""

    rule_id: str
    matched: bool
    reason: str


class LeadAssigned(_Model):
    lead_id: str
    assignment_seq: int
    assigned_at: datetime
    owner: Person
    manager: Person | None = None
    team: TeamRef
    score: int
    tier: str
    stage: str
    breakdown: list[RuleScore]
    framework: dict[str, str | None] = Field(default_factory=dict)
    routing: RoutingReason
    explanation: list[str] = Field(default_factory=list)
    sla: Sla
    lead: Lead
    account: AccountRef | None = None
    earlier_leads: list[str] = Field(default_factory=list)
    previous_owner: Person | None = None
    reason: str | None = None
    policy_version: str
    rules_tried: list[RuleTried] = Field(default_factory=list)
    considered: list[RepConsidered] = Field(default_factory=list)


class LeadDisqualified(_Model):
    lead_id: str
    rule_id: str
    reason: str
    score: int
    breakdown: list[RuleScore]
    source: str
    policy_version: str


class LeadMerged(_Model):
    lead_id: str
    into_lead_id: str
    owner: Person | None
    touch: Lead
    policy_version: str
    # Which identity key found the lead: "email" (the address's matching key: no +tag, no
    # Gmail dots), "phone" (E.164), "phone+name" (a shared line and a compatible name).
    matched_on: str | None = None


class LeadNurtured(_Model):
    """The handoff threshold kept the lead with marketing: no rep, no SLA clock.

    Followup schedules a `lead.reengage` for `reengage_at`; a new touch that crosses the
    threshold before then hands the lead to sales at once (a `lead.assigned` saying so).
    """

    lead_id: str
    nurtured_at: datetime
    score: int
    tier: str
    stage: str
    breakdown: list[RuleScore]
    framework: dict[str, str | None] = Field(default_factory=dict)
    routing: RoutingReason
    reason: str
    explanation: list[str] = Field(default_factory=list)
    reengage_at: datetime
    lead: Lead
    account: AccountRef | None = None
    policy_version: str
    rules_tried: list[RuleTried] = Field(default_factory=list)


class LeadParked(_Model):
    """Nobody in the team could take the lead (each rep skipped and why).

    The router assigns it as soon as a rep frees up; followup's waiting clock tells the
    team's manager if it waits longer than the tier's window (`wait_seconds`).
    """

    lead_id: str
    parked_at: datetime
    team: TeamRef
    manager: Person | None = None
    score: int
    tier: str
    stage: str
    routing: RoutingReason
    reason: str
    considered: list[RepConsidered] = Field(default_factory=list)
    wait_seconds: int
    clock: Literal["business", "wall"]
    lead: Lead
    policy_version: str


# --- activities and followup -------------------------------------------------------------------

ActivityType = Literal[
    "contacted", "accepted", "rejected", "disqualified", "converted", "not_ready"
]


class LeadActivity(_Model):
    activity_id: str | None = None
    lead_id: str
    type: ActivityType
    at: datetime
    actor: str
    note: str | None = Field(default=None, max_length=2000)
    reengage_at: datetime | None = None
    reason: str | None = Field(default=None, max_length=200)


EscalationAction = Literal["remind_owner", "notify_manager", "reassign"]


class LeadEscalated(_Model):
    """`owner` is None (and `assignment_seq` 0) for a parked lead's waiting clock."""

    lead_id: str
    assignment_seq: int
    level: int
    action: EscalationAction
    owner: Person | None
    manager: Person | None = None
    team_id: str
    due_at: datetime
    seconds_overdue: float
    escalated_at: datetime


class LeadReengage(_Model):
    """`owner` is None for a lead nurtured by policy (nobody owned it)."""

    lead_id: str
    owner: Person | None
    reengage_at: datetime
    note: str | None = None


# --- rep availability (topic reps.status; key and subject = the rep id) ----------------------


class RepPaused(_Model):
    """A rep missed `missed_slas` SLAs in a row (the team's `pause_after_missed_slas`): no new
    leads go to them until they act on a lead (`contacted`, `accepted`) or a manager resumes
    them (`POST /v1/admin/reps/{rep_id}/resume` on the router). Their open leads stay theirs."""

    rep: Person
    team: TeamRef
    manager: Person
    reason: str
    missed_slas: int
    last_lead_id: str
    paused_at: datetime
    policy_version: str


class RepResumed(_Model):
    """A paused rep takes new leads again: `by` "activity" (they acted on a lead; `actor` is
    them) or "manager" (the admin API; `actor` is the token's name)."""

    rep: Person
    team: TeamRef
    by: Literal["activity", "manager"]
    actor: str | None = None
    paused_at: datetime
    resumed_at: datetime


class ContactErased(_Model):
    """A contact's personal data was erased from these leads (ids only, never personal data).

    `reason`: "request" (right to erasure, admin call) or "retention" (older than the policy's
    `retention.lead_days`). Consumers erase their own copies of these leads' personal data.
    """

    erasure_id: str
    lead_ids: list[str]
    erased_at: datetime
    reason: Literal["request", "retention"] | None = None


# --- personal data -----------------------------------------------------------------------------

# Contact fields that identify a person; the rest of the contact (seniority band, e-mail kind,
# company domain, country) are kept as non-personal facts for metrics, calibration and what-if.
PERSONAL_CONTACT_FIELDS = ("email", "phone", "first_name", "last_name", "title", "company")


def erase_lead_data(lead: dict[str, Any]) -> dict[str, Any]:
    """The canonical lead (JSON form) without its personal data; still a valid `Lead`.

    Erased: contact email/phone/names/title/company, the free-text message, answers and extra
    fields, the consent wording, and query strings of viewed pages (they can carry e-mails).
    Kept: ids, source, channel, times, UTM, engagement flags, company size, industry, opt-in.
    """
    out = dict(lead)
    contact = dict(out.get("contact") or {})
    for name in PERSONAL_CONTACT_FIELDS:
        contact.pop(name, None)
    out["contact"] = contact
    if isinstance(out.get("consent"), dict):
        out["consent"] = {**out["consent"], "wording": None}
    out["message"] = None
    out["answers"] = {}
    out["extra"] = {}
    engagement = out.get("engagement")
    if isinstance(engagement, dict):
        out["engagement"] = {
            **engagement,
            "pages_viewed": [_strip_query(p) for p in engagement.get("pages_viewed") or []],
            "content_downloaded": [
                _strip_query(p) for p in engagement.get("content_downloaded") or []
            ],
        }
    return out


def _strip_query(url: Any) -> Any:
    return url.split("?", 1)[0].split("#", 1)[0] if isinstance(url, str) else url


EVENT_TYPES: dict[str, type[_Model]] = {
    "lead.received": Lead,
    "lead.assigned": LeadAssigned,
    "lead.disqualified": LeadDisqualified,
    "lead.merged": LeadMerged,
    "lead.nurtured": LeadNurtured,
    "lead.parked": LeadParked,
    "lead.activity": LeadActivity,
    "lead.escalated": LeadEscalated,
    "lead.reengage": LeadReengage,
    "contact.erased": ContactErased,
    "rep.paused": RepPaused,
    "rep.resumed": RepResumed,
}


class CloudEvent(BaseModel):
    """CloudEvents 1.0 structured-mode envelope; `data` is validated against EVENT_TYPES[type]."""

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: str
    source: str
    type: str
    time: datetime
    subject: str
    datacontenttype: Literal["application/json"] = "application/json"
    data: dict[str, Any]

    def payload(self) -> Any:
        """The typed data model for this event's type (raises EventError if it does not fit)."""
        model = EVENT_TYPES.get(self.type)
        if model is None:
            raise EventError(f"unknown event type {self.type!r}")
        try:
            return model.model_validate(self.data)
        except ValidationError as exc:
            raise EventError(_summarise(exc)) from exc

    def to_bytes(self) -> bytes:
        # `data` already holds JSON values (a JSON-mode dump or parsed JSON): orjson writes it
        # directly instead of pydantic walking it again as `Any`.
        head = self.model_dump(mode="json", exclude={"data"})
        try:
            return orjson.dumps({**head, "data": self.data})
        except TypeError:  # built by hand with non-JSON values: let pydantic convert them
            return orjson.dumps(self.model_dump(mode="json"))


class EventError(ValueError):
    """An event that can never be handled (poison): bad JSON, unknown type, schema violation."""


def _summarise(exc: ValidationError) -> str:
    # Field paths and error kinds only: the offending values may be personal data.
    return "; ".join(
        ".".join(str(p) for p in err["loc"]) + ": " + err["type"] for err in exc.errors()[:10]
    )


def make_event(
    *,
    type: str,
    source: str,
    subject: str,
    data: _Model,
    id: str | None = None,
    time: datetime | None = None,
) -> CloudEvent:
    if type not in EVENT_TYPES or not isinstance(data, EVENT_TYPES[type]):
        raise TypeError(f"event type {type!r} does not take {data.__class__.__name__}")
    return CloudEvent(
        id=id or str(uuid.uuid4()),
        source=source,
        type=type,
        time=time or utcnow(),
        subject=subject,
        data=data.model_dump(mode="json"),
    )


def parse_event(raw: bytes | None) -> CloudEvent:
    """Decode a Kafka message value into an envelope; EventError for anything unusable."""
    if raw is None:
        raise EventError("empty message value")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise EventError(f"invalid JSON: {exc.msg}") from exc
    if not isinstance(obj, dict):
        raise EventError("event is not a JSON object")
    try:
        return CloudEvent.model_validate(obj)
    except ValidationError as exc:
        raise EventError("invalid CloudEvents envelope: " + _summarise(exc)) from exc


# --- CloudEvents Kafka protocol binding ------------------------------------------------------
# Structured mode: the whole envelope is the record value, marked by this content-type header
# (without it the JavaScript and Java SDKs find no CloudEvent). Binary mode: the attributes are
# `ce_*` headers and the value is the data; consumers accept both and dedupe by id either way.

CE_CONTENT_TYPE = "application/cloudevents+json; charset=UTF-8"
STRUCTURED_HEADERS: list[tuple[str, bytes]] = [("content-type", CE_CONTENT_TYPE.encode())]
_CE_PREFIX = "ce_"


def parse_record(value: bytes | None, headers: Any = ()) -> CloudEvent:
    """Decode a Kafka record in either content mode; EventError for anything unusable.

    Per the binding, a `content-type` starting with `application/cloudevents` means structured
    mode, `ce_specversion` means binary mode; a record with neither (written before Baton set
    headers) is read as structured, as the Python SDK guesses.
    """
    named = {k.lower(): bytes(v or b"") for k, v in headers or ()}
    content_type = named.get("content-type", b"").decode("utf-8", "replace").strip()
    media = content_type.split(";", 1)[0].strip().lower()
    if media.startswith("application/cloudevents-batch"):
        raise EventError("batched CloudEvents are not supported")
    if media.startswith("application/cloudevents") or _CE_PREFIX + "specversion" not in named:
        return parse_event(value)
    return _parse_binary(value, named, media)


def _parse_binary(value: bytes | None, named: dict[str, bytes], media: str) -> CloudEvent:
    if media not in ("", "application/json"):
        raise EventError(f"unsupported binary-mode datacontenttype {media!r}")
    try:
        attrs: dict[str, Any] = {
            k[len(_CE_PREFIX) :]: v.decode("utf-8")
            for k, v in named.items()
            if k.startswith(_CE_PREFIX)
        }
    except UnicodeDecodeError as exc:
        raise EventError("a ce_ header is not UTF-8") from exc
    if value is None:
        raise EventError("empty message value")
    try:
        attrs["data"] = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise EventError(f"invalid JSON data: {exc.msg}") from exc
    attrs["datacontenttype"] = "application/json"
    try:
        return CloudEvent.model_validate(attrs)
    except ValidationError as exc:
        raise EventError("invalid binary-mode CloudEvent: " + _summarise(exc)) from exc
