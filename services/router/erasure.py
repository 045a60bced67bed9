"""Right to erasure and retention in the router: a contact's leads lose their personal data.

The router holds the leads' contact data and the decision traces, so it erases its own rows
and then announces the erasure (`contact.erased`, ids only) through its outbox, in the same
transaction; intake, followup and sales tools erase their copies when they see it. All it
keeps of an erased contact is a one-way digest, to recognise that contact's leads still in
Kafka when the erasure happened (`erase_in_flight`).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.router import reconcile, store, store_erasure, store_identity
from services.router.domain.matching import email_key, phone_key
from services.router.domain.outcomes import EVENT_SOURCE
from shared.db import Outbox
from shared.errors import DomainError
from shared.events import ContactErased, Lead, erase_lead_data, make_event
from shared.identity import InvalidAddress, canonical_email
from shared.lead_facts import normalise_phone
from shared.logs import get_logger, scrub

log = get_logger(__name__)


class InvalidContact(DomainError):
    status = 422
    type_slug = "invalid-contact"
    title = "No usable contact to erase"


REJECTED_PREFIX = "rejected by owner"


def normalise_contact(email: str | None, phone: str | None) -> tuple[str | None, str | None]:
    """The contact as intake stored it: the canonical e-mail (shared.identity: IDNA 2008,
    so `Anna@Straße.de` is `anna@xn--strae-oqa.de`, never `strasse.de`), the phone in E.164
    (shared.lead_facts, as intake reads a `+<country>` number, or one written with the
    `00` / `011` international call prefix).

    Never echoes the values in errors (they are personal data).
    """
    fields: list[dict[str, str]] = []
    norm_email = norm_phone = None
    if email is not None and email.strip():
        try:
            norm_email = canonical_email(email)
        except InvalidAddress:
            fields.append({"name": "email", "message": "not an e-mail address"})
    if phone is not None and phone.strip():
        norm_phone = normalise_phone(phone, None)
        if norm_phone is None:
            fields.append(
                {"name": "phone", "message": "not a valid phone number in +<country> form"}
            )
    if fields:
        raise InvalidContact("the contact is not valid", fields=fields)
    if norm_email is None and norm_phone is None:
        raise InvalidContact(
            "give the contact's email or phone",
            fields=[{"name": "email", "message": "email or phone is required"}],
        )
    return norm_email, norm_phone


def contact_digests(email: str | None, phone: str | None) -> list[str]:
    """One-way digests (hex SHA-256) of a normalised contact: all the router keeps of an
    erased one, to recognise its leads still in flight."""
    out = []
    if email:
        out.append(hashlib.sha256(b"email:" + email.encode()).hexdigest())
    if phone:
        out.append(hashlib.sha256(b"phone:" + phone.encode()).hexdigest())
    return out


def erase_trace(trace: Any) -> Any:
    """A decision trace without anything personal: a rep's free-text rejection reason is
    dropped, and e-mail/phone shaped text is masked (traces normally hold policy words only)."""
    if isinstance(trace, dict):
        out = {k: erase_trace(v) for k, v in trace.items()}
        reason = out.get("reason")
        if isinstance(reason, str) and reason.startswith(REJECTED_PREFIX + ":"):
            out["reason"] = REJECTED_PREFIX
        return out
    if isinstance(trace, list):
        return [erase_trace(v) for v in trace]
    if isinstance(trace, str):
        return scrub(trace)
    return trace


async def erase_leads(
    session: AsyncSession,
    *,
    outbox: Outbox,
    topic: str,
    lead_ids: list[str],
    reason: str,
    erasure_id: str,
    now: datetime,
) -> None:
    """Erase these leads' personal data in the router, log the erasure and publish
    `contact.erased` (ids only) in the same transaction, so intake, followup and sales tools
    follow. Idempotent: erasing an erased lead changes nothing. Their identity keys
    (`router.contact_keys`: address, phone, name) go too."""
    await store_identity.forget_keys(session, lead_ids)
    for lead_id, doc in (await store_erasure.lead_documents(session, lead_ids)).items():
        await store_erasure.erase_lead(session, lead_id=lead_id, lead=erase_lead_data(doc), at=now)
    for decision_id, trace in await store_erasure.decision_traces(session, lead_ids):
        erased = erase_trace(trace)
        if erased != trace:
            await store_erasure.replace_trace(session, decision_id=decision_id, trace=erased)
    await store_erasure.record_erasure(
        session, erasure_id=erasure_id, reason=reason, lead_ids=lead_ids, at=now
    )
    if lead_ids:
        data = ContactErased(
            erasure_id=erasure_id,
            lead_ids=lead_ids,
            erased_at=now,
            reason="retention" if reason == "retention" else "request",
        )
        event = make_event(
            type="contact.erased",
            source=EVENT_SOURCE,
            subject=erasure_id,
            data=data,
            id=erasure_id,
            time=now,
        )
        await outbox.add(session, topic=topic, event=event)
    log.info("router.erased", erasure_id=erasure_id, reason=reason, leads=len(lead_ids))


async def erase_contact(
    session: AsyncSession,
    *,
    outbox: Outbox,
    topic: str,
    email: str | None,
    phone: str | None,
    now: datetime,
) -> tuple[str, list[str]]:
    """Right to erasure: every lead of this contact loses its personal data; returns
    (erasure id, lead ids). Taken under the assignment lock, so no decision for the same
    contact is half-way through while the leads are erased. The leads are found by the
    stored address and phone and by the identity keys (`domain.matching`): `ana+news@…`,
    `ana@…` and, at Gmail, `a.na@…` are one contact's and are erased together."""
    norm_email, norm_phone = normalise_contact(email, phone)
    await store.lock_assignments(session)
    lead_ids = await store_erasure.contact_lead_ids(session, email=norm_email, phone=norm_phone)
    keys = [k for k in (email_key(norm_email), phone_key(norm_phone)) if k]
    by_key = await store_identity.lead_ids_by_keys(session, keys)
    lead_ids += sorted(set(by_key) - set(lead_ids))
    erasure_id = str(uuid.uuid4())
    await store_erasure.remember_erased_contact(
        session, digests=contact_digests(norm_email, norm_phone), erasure_id=erasure_id, at=now
    )
    await erase_leads(
        session,
        outbox=outbox,
        topic=topic,
        lead_ids=lead_ids,
        reason="request",
        erasure_id=erasure_id,
        now=now,
    )
    return erasure_id, lead_ids


async def purge_expired(
    session: AsyncSession,
    *,
    outbox: Outbox,
    topic: str,
    before: datetime,
    now: datetime,
    limit: int = 500,
) -> list[str]:
    """Retention: erase up to `limit` leads received before `before` (one `contact.erased`
    per batch); call again until it returns nothing. Their open leads close and give their
    owners' load back, as a request erasure's do (`reconcile.close_erased`), so the load
    reconcile and the counters agree. Under the assignment lock, like a request erasure."""
    await store.lock_assignments(session)
    lead_ids = await store_erasure.expired_lead_ids(session, before=before, limit=limit)
    if lead_ids:
        await reconcile.close_erased(session, lead_ids=lead_ids, at=now)
        await erase_leads(
            session,
            outbox=outbox,
            topic=topic,
            lead_ids=lead_ids,
            reason="retention",
            erasure_id=str(uuid.uuid4()),
            now=now,
        )
    return lead_ids


async def erase_in_flight(
    session: AsyncSession, *, outbox: Outbox, topic: str, leads: list[Lead], now: datetime
) -> list[str]:
    """Leads received before their contact was erased that reach the router only after
    the erasure (their event was still in Kafka): erased on arrival, never routed, and
    announced in `contact.erased` so intake erases its copy too; returns their ids. A lead
    received after the erasure is a new submission and is routed as usual. Call it under the
    assignment lock, like the erasure, so a lead is either found by the erasure or finds it
    here."""
    digests = {ld.lead_id: contact_digests(ld.contact.email, ld.contact.phone) for ld in leads}
    known = await store_erasure.erased_contacts(session, [d for ds in digests.values() for d in ds])
    if not known:
        return []
    hits = [
        ld.lead_id
        for ld in leads
        if any(d in known and known[d] >= ld.received_at for d in digests[ld.lead_id])
    ]
    if not hits:
        return []
    lead_ids = list(dict.fromkeys(hits))
    await erase_leads(
        session,
        outbox=outbox,
        topic=topic,
        lead_ids=lead_ids,
        reason="request",
        erasure_id=str(uuid.uuid4()),
        now=now,
    )
    return lead_ids
