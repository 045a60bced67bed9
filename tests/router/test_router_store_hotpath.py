"""The router's hot path statements: one read (`decision_inputs`) and one write (`write`)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from services.router import store
from services.router.domain.assignment import RepState
from services.router.domain.matching import email_key
from shared.settings import Settings

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def _lead(lead_id: str, email: str, **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "lead_id": lead_id,
        "source": "web",
        "received_at": NOW - timedelta(minutes=5),
        "email": email,
        "phone": None,
        "company_domain": "acme-hot.example",
        "status": "assigned",
        "owner_id": "hot-rep-a",
        "team_id": "t",
        "assignment_seq": 1,
        "merged_into": None,
        "score": 10,
        "tier": "warm",
        "stage": "mql",
        "policy_version": "v",
        "lead": {"lead_id": lead_id},
        "open_until": NOW + timedelta(days=1),
    }
    row.update(over)
    return row


async def _rep(db: AsyncSession, rep: str) -> tuple[int, int] | None:
    r = (
        await db.execute(
            text("SELECT open_leads, rr_current_weight FROM router.rep_state WHERE rep_id = :r"),
            {"r": rep},
        )
    ).first()
    return (r[0], r[1]) if r else None


async def test_one_write_stores_every_row_and_merges_rep_state(db: AsyncSession) -> None:
    tag = uuid.uuid4().hex[:8]
    a, b, c = f"hot-a-{tag}", f"hot-b-{tag}", f"hot-c-{tag}"
    await db.execute(
        text(
            "INSERT INTO router.rep_state (rep_id, open_leads, rr_current_weight) VALUES (:a, 3, 7)"
        ),
        {"a": a},
    )
    lead_id = str(uuid.uuid4())
    w = store.Writes()
    w.leads.append(_lead(lead_id, f"{tag}@acme-hot.example", owner_id=b))
    w.accounts.append((f"{tag}.example", b, lead_id))
    w.assignments.append(
        {
            "lead_id": lead_id,
            "seq": 1,
            "owner_id": b,
            "team_id": "t",
            "rule_id": "r",
            "strategy": "round_robin",
            "reason": "why",
            "previous_owner_id": None,
            "assigned_at": NOW,
            "due_at": NOW + timedelta(hours=1),
            "policy_version": "v",
        }
    )
    w.add_open(a, -1)
    w.add_open(a, -5)  # deltas add up; the count never goes below zero
    w.add_open(b, 1)
    w.set_weights({a: -2, c: 4})
    w.decision(lead_id=lead_id, kind="assigned", policy_version="v", at=NOW, trace={"x": [1]})
    event_id = f"evt-{tag}"
    w.outbox.append((event_id, "topic-x", lead_id, b"{}"))
    await store.write(db, w)

    assert await _rep(db, a) == (0, -2)
    assert await _rep(db, b) == (1, 0)
    assert await _rep(db, c) == (0, 4)
    assert w.applied_to({}) == {
        a: RepState(a, 0, -2),
        b: RepState(b, 1, 0),
        c: RepState(c, 0, 4),
    }
    assert (await store.get_lead(db, lead_id)) is not None
    assert [r["owner_id"] for r in await store.assignments_for(db, lead_id)] == [b]
    assert await store.account_owner(db, f"{tag}.example") == b
    assert [d["trace"] for d in await store.decisions_for(db, lead_id)] == [{"x": [1]}]
    payload = await db.scalar(
        text("SELECT payload FROM router.outbox WHERE event_id = :e"), {"e": event_id}
    )
    assert payload == b"{}"


async def test_one_read_returns_what_a_decision_needs(db: AsyncSession) -> None:
    tag = uuid.uuid4().hex[:8]
    email = f"{tag}@acme-hot.example"
    domain = f"{tag}-hot.example"
    older, newer, other = (str(uuid.uuid4()) for _ in range(3))
    w = store.Writes()
    w.leads.append(_lead(older, email, company_domain=domain, received_at=NOW - timedelta(hours=2)))
    w.leads.append(_lead(newer, email, company_domain=domain, open_until=NOW - timedelta(1)))
    w.accounts.append((domain, "hot-owner", older))
    w.add_open(f"hot-s-{tag}", 2)
    await store.write(db, w)

    got, again = await store.decision_inputs(
        db,
        leads=[
            store.LeadKeys(other, email, None, domain),
            store.LeadKeys(older, None, None, None),
        ],
        now=NOW,
    )
    assert not got.seen
    assert got.account_owner == "hot-owner"
    assert [i for i, _ in got.earlier] == [newer, older]  # newest first
    assert got.open_lead is not None and got.open_lead.lead_id == older  # newer is past open
    assert got.states[f"hot-s-{tag}"].open_leads == 2

    assert again.seen and again.open_lead is None and again.account_owner is None
    assert again.earlier == []


async def test_earlier_leads_are_the_newest_ten_of_every_key_together(db: AsyncSession) -> None:
    """Leads sharing the e-mail, the phone or the domain, each once, newest first (ties on
    time by id), ten at most: the same list one sorted scan of all of them would give."""
    tag = uuid.uuid4().hex[:8]
    email, phone, domain = f"{tag}@k.example", f"+4930{int(tag, 16) % 10**7:07d}", f"{tag}.example"
    rows: list[dict[str, Any]] = []
    for i in range(40):
        at = NOW - timedelta(minutes=i // 3)  # three leads per minute: ties on time
        rows.append(
            _lead(
                str(uuid.uuid4()),
                email if i % 4 == 0 else f"{tag}.{i}@other.example",
                phone=phone if i % 5 == 0 else None,
                company_domain=domain if i % 2 == 0 else None,
                received_at=at,
                status="disqualified",
                open_until=None,
            )
        )
    w = store.Writes()
    w.leads.extend(rows)
    await store.write(db, w)
    me = str(uuid.uuid4())
    (got,) = await store.decision_inputs(
        db, leads=[store.LeadKeys(me, email, phone, domain)], now=NOW
    )
    matching = [
        r for r in rows if r["email"] == email or r["phone"] == phone or r["company_domain"]
    ]
    matching.sort(key=lambda r: (r["received_at"], r["lead_id"]), reverse=True)
    assert got.earlier == [(r["lead_id"], r["received_at"]) for r in matching[:10]]


@pytest.fixture
async def own_db(migrated: Settings) -> AsyncIterator[AsyncSession]:
    """A database of this test's own: the plan depends on the table's statistics, and the
    session database holds whatever earlier tests (in whatever order) left in router.leads.
    The look-up probes each key with its domain as a join parameter, so the planner costs
    it from the column's average rows per domain, which other tests' rows move."""
    from ops.migrate import run_all

    name = f"baton_plan_{uuid.uuid4().hex[:10]}"
    base = migrated.database_url.rsplit("/", 1)[0]
    admin = create_async_engine(migrated.database_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await asyncio.to_thread(run_all, f"{base}/{name}")
    engine = create_async_engine(f"{base}/{name}")
    try:
        async with engine.connect() as conn, AsyncSession(bind=conn) as session:
            yield session
    finally:
        await engine.dispose()
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def test_a_big_account_costs_a_decision_ten_rows_per_key(own_db: AsyncSession) -> None:
    """300 older leads under one domain and 2,700 newer ones elsewhere: the earlier-leads
    look-up reads the domain's newest ten off its index (router_0005), neither all 300 of
    them nor the newer leads of other domains."""
    db = own_db
    tag = uuid.uuid4().hex[:8]
    domain = f"{tag}-big.example"
    w = store.Writes()
    for i in range(3000):
        mine = i < 300
        w.leads.append(
            _lead(
                str(uuid.uuid4()),
                f"{tag}.{i}@{domain if mine else 'elsewhere.example'}",
                company_domain=domain if mine else f"{tag}-{i}.example",
                received_at=NOW - timedelta(days=30 if mine else 1, seconds=i),
                status="disqualified",
                open_until=None,
            )
        )
    await store.write(db, w)
    await db.execute(text("ANALYZE router.leads"))
    params: dict[str, Any] = {
        "ids": [str(uuid.uuid4())],
        "emails": [f"new.{tag}@{domain}"],
        "phones": [None],
        "domains": [domain],
        "ekeys": [email_key(f"new.{tag}@{domain}")],
        "now": NOW,
        "earlier": store.EARLIER_LIMIT,
    }
    plan: Any = (
        await db.execute(text("EXPLAIN (ANALYZE, FORMAT JSON) " + str(store._INPUTS)), params)
    ).scalar()
    (found,) = await store.decision_inputs(
        db, leads=[store.LeadKeys(params["ids"][0], params["emails"][0], None, domain)], now=NOW
    )
    assert len(found.earlier) == store.EARLIER_LIMIT
    scans = [n for n in _nodes(plan[0]["Plan"]) if n.get("Relation Name") == "leads"]
    assert scans
    assert max(n["Actual Rows"] * n["Actual Loops"] for n in scans) <= store.EARLIER_LIMIT + 1


def _nodes(node: dict[str, Any]) -> Any:
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)


async def test_outbox_payloads_are_compressed_with_lz4_where_the_server_has_it(
    db: AsyncSession,
) -> None:
    """router_0006: `lead.assigned` payloads are over the TOAST threshold; lz4 compresses
    them several times faster than the default pglz."""
    has_lz4 = await db.scalar(
        text(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        )
    )
    method = await db.scalar(
        text(
            "SELECT attcompression FROM pg_attribute "
            "WHERE attrelid = 'router.outbox'::regclass AND attname = 'payload'"
        )
    )
    assert method == (b"l" if has_lz4 else b"\x00")  # without lz4, the server's default
