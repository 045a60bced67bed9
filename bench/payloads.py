"""Realistic chat-widget webhooks (Standard Webhooks signed) and lead.received events.

Payloads vary the way real traffic does: business and free-mail addresses, a shared pool of
company domains (so account matching and "known account" routing happen), phones on a third,
pricing-page visits, UTM tags, a first chat message. Every lead has a unique e-mail (and the
webhook a unique id), so nothing is deduplicated away by intake or merged by the router.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

FIRST = ["Anna", "Ben", "Chloe", "David", "Elif", "Farah", "Georg", "Hana", "Ivan", "Julia",
         "Kenji", "Lea", "Marco", "Nora", "Omar", "Paula", "Quinn", "Rosa", "Sven", "Tara"]  # fmt: skip
LAST = ["Schmidt", "Okafor", "Novak", "Garcia", "Lindqvist", "Tanaka", "Dubois", "Rossi",
        "Kowalski", "Haddad", "Murphy", "Jensen", "Silva", "Weber", "Nguyen", "Brown"]  # fmt: skip
TITLES = ["Head of Sales Operations", "VP Marketing", "CTO", "Sales Manager", "Founder & CEO",
          "RevOps Lead", "Director of Demand Generation", "Account Executive", "Engineer"]  # fmt: skip
FREEMAIL = ["gmail.com", "outlook.com", "yahoo.com", "gmx.de", "hotmail.co.uk"]
COUNTRIES = ["DE", "US", "GB", "NL", "FR", "AT", "CH", "CA", "IE", "ES", "SE", "PL"]
PAGES = ["/pricing", "/product/routing", "/product/sla", "/customers", "/blog/speed-to-lead",
         "/integrations/hubspot", "/docs/webhooks", "/security", "/about"]  # fmt: skip
MESSAGES = [
    "Hi, we are evaluating lead routing tools for a team of about 40 reps. Can we get a demo?",
    "Does this integrate with our CRM? We need round robin across three regions.",
    "What does pricing look like for 200k inbound leads a year?",
    "Just looking around for now, thanks.",
    "We keep missing our first-response SLA on inbound demo requests. Can you help with that?",
]
CAMPAIGNS = ["q4-routing", "brand", "retargeting-pricing", "webinar-sla", "partner-launch"]


def company_domains(n: int = 2000) -> list[str]:
    rng = random.Random(7)
    syll = ["ac", "me", "glo", "bex", "ini", "tech", "nova", "data", "flow", "stack", "lum", "ora"]
    out: set[str] = set()
    while len(out) < n:
        out.add("".join(rng.choice(syll) for _ in range(3)) + rng.choice([".com", ".io", ".de"]))
    return sorted(out)


DOMAINS = company_domains()


def chat_payload(rng: random.Random, i: int, tag: str) -> dict[str, Any]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    business = rng.random() < 0.7
    domain = rng.choice(DOMAINS) if business else rng.choice(FREEMAIL)
    company = domain.split(".")[0].capitalize() + (" GmbH" if domain.endswith(".de") else " Inc")
    pages = rng.sample(PAGES, rng.randint(1, 5))
    visitor: dict[str, Any] = {
        "id": f"v_{uuid.UUID(int=rng.getrandbits(128)).hex[:16]}",
        "email": f"{first}.{last}.{tag}{i}@{domain}".lower(),
        "first_name": first,
        "last_name": last,
        "title": rng.choice(TITLES),
        "company": company if business else None,
        "country": rng.choice(COUNTRIES),
        "marketing_opt_in": rng.random() < 0.6,
        "locale": "en-GB",
    }
    if rng.random() < 0.33:
        visitor["phone"] = f"+49 30 {rng.randint(20000000, 99999999)}"
    return {
        "type": "conversation.started",
        "account_id": "acct_42",
        "occurred_at": datetime.now(UTC).isoformat(),
        "visitor": visitor,
        "conversation": {
            "id": f"conv_{tag}_{i}",
            "first_message": rng.choice(MESSAGES),
            "has_message": True,
            "channel": "web",
        },
        "session": {
            "pages_viewed": pages,
            "visited_pricing": "/pricing" in pages,
            "referrer": "https://www.google.com/",
            "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15",
            "utm": {
                "source": rng.choice(["google", "linkedin", "newsletter", "partner"]),
                "medium": rng.choice(["cpc", "social", "email", "referral"]),
                "campaign": rng.choice(CAMPAIGNS),
            },
        },
    }


def sign_standard_webhooks(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256(key, id.timestamp.body)>` per the Standard Webhooks spec."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def signed_requests(
    *, n: int, host: str, source: str, secret: str, tag: str, seed: int = 1
) -> list[bytes]:
    """n complete HTTP/1.1 requests, each signed with a unique webhook-id, ready to write."""
    rng = random.Random(seed)
    ts = int(time.time())
    out: list[bytes] = []
    for i in range(n):
        body = orjson.dumps(chat_payload(rng, i, tag))
        msg_id = f"msg_{tag}_{i}"
        sig = sign_standard_webhooks(secret, msg_id, ts, body)
        head = (
            f"POST /v1/webhooks/{source} HTTP/1.1\r\nHost: {host}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"User-Agent: baton-bench\r\nwebhook-id: {msg_id}\r\n"
            f"webhook-timestamp: {ts}\r\nwebhook-signature: {sig}\r\n\r\n"
        )
        out.append(head.encode() + body)
    return out


def lead_received_events(n: int, tag: str, seed: int = 2) -> list[tuple[bytes, bytes]]:
    """n (key, value) lead.received CloudEvents as intake publishes them.

    A pool of leads is built through intake's own mapping and normalisation (so the events are
    exactly what intake would publish), then cloned with a fresh lead id and e-mail each.
    """
    from services.intake.domain.lead import build_lead_fields
    from services.intake.domain.mapping import map_payload
    from shared.events import Lead, make_event
    from shared.policy import load_policy

    from .common import ROOT

    policy = load_policy(ROOT / "deploy" / "policy.example.yaml")
    src = policy.source("chat-widget")
    assert src is not None and src.consent is not None
    rng = random.Random(seed)
    now = datetime.now(UTC)
    pool: list[dict[str, Any]] = []
    for i in range(min(n, 500)):
        raw = map_payload(chat_payload(rng, i, tag), src.fields, src.consent.field, None)
        fields = build_lead_fields(raw).to_dict()
        fields["engagement"]["chat_message"] = True
        lead_id = str(uuid.uuid4())
        lead = Lead.model_validate(
            {
                "lead_id": lead_id,
                "received_at": now,
                "source": src.name,
                "channel": "chat",
                **fields,
            }
        )
        event = make_event(
            type="lead.received", source="/baton/intake", subject=lead_id, data=lead, id=lead_id
        )
        pool.append(orjson.loads(event.to_bytes()))
    out: list[tuple[bytes, bytes]] = []
    for i in range(n):
        ev = pool[i % len(pool)]
        lead_id = str(uuid.uuid4())
        data = dict(ev["data"])
        contact = dict(data["contact"])
        if contact.get("email"):
            local, domain = contact["email"].split("@", 1)
            contact["email"] = f"{local}.{i}@{domain}"
        contact.pop("phone", None)  # phones would collide across clones and merge leads
        data.update(lead_id=lead_id, contact=contact)
        clone = {**ev, "id": lead_id, "subject": lead_id, "data": data}
        out.append((lead_id.encode(), orjson.dumps(clone)))
    return out


def lead_assigned_events(n: int, tag: str, seed: int = 3) -> list[tuple[str, bytes, bytes]]:
    """n (event id, key, value) lead.assigned CloudEvents as the router publishes them.

    The leads are lead.received data (intake's own mapping, above); each is assigned round
    robin over the example policy's reps, with their team's manager, a score breakdown and an
    SLA, so notify plans what it would for real traffic (webhooks, the owner's e-mail)."""
    from datetime import timedelta

    from shared.events import LeadAssigned, Person, RoutingReason, RuleScore, Sla, TeamRef
    from shared.events import make_event as make
    from shared.policy import load_policy

    from .common import ROOT

    policy = load_policy(ROOT / "deploy" / "policy.example.yaml")
    owners = [(team, rep) for team in policy.teams for rep in team.reps]
    now = datetime.now(UTC)
    pool: list[dict[str, Any]] = []
    for i, (_key, value) in enumerate(lead_received_events(min(n, 300), tag, seed)):
        lead = orjson.loads(value)["data"]
        team, rep = owners[i % len(owners)]
        assigned = LeadAssigned(
            lead_id=lead["lead_id"],
            assignment_seq=1,
            assigned_at=now,
            owner=Person(id=rep.id, name=rep.name, email=rep.email),
            manager=Person(name=team.manager.name, email=team.manager.email),
            team=TeamRef(id=team.id, name=team.name),
            score=70 + i % 30,
            tier="hot" if i % 3 == 0 else "warm",
            stage="sql",
            breakdown=[
                RuleScore(
                    rule_id="business-email",
                    category="fit",
                    points=20,
                    matched=True,
                    reason="business e-mail domain",
                ),
                RuleScore(
                    rule_id="pricing-page",
                    category="intent",
                    points=15,
                    matched=True,
                    reason="viewed the pricing page",
                ),
            ],
            routing=RoutingReason(rule_id="default", strategy="round_robin", reason="bench"),
            sla=Sla(tier="warm", window_seconds=86400, clock="wall", due_at=now + timedelta(1)),
            lead=lead,
            policy_version="bench",
        )
        event = make(
            type="lead.assigned", source="/baton/router", subject=lead["lead_id"], data=assigned
        )
        pool.append(orjson.loads(event.to_bytes()))
    out: list[tuple[str, bytes, bytes]] = []
    for i in range(n):
        ev = pool[i % len(pool)]
        lead_id, event_id = str(uuid.uuid4()), str(uuid.uuid4())
        data = {
            **ev["data"],
            "lead_id": lead_id,
            "lead": {**ev["data"]["lead"], "lead_id": lead_id},
        }
        clone = {**ev, "id": event_id, "subject": lead_id, "data": data}
        out.append((event_id, lead_id.encode(), orjson.dumps(clone)))
    return out
