"""Personal data on the real stack: the right to erasure reaches every table, and no log line
of the three services ever carries an e-mail, phone or name that was sent."""

from __future__ import annotations

import asyncio
import random
import string
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.conftest import EventReader
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e
SCHEMAS = ("intake", "router", "followup")


def word(n: int = 9) -> str:
    return "".join(random.choices(string.ascii_lowercase, k=n))


@dataclass
class Person:
    first: str
    last: str
    email: str
    phone_local: str  # as typed on the form (German mobile, read with country DE)
    phone_e164: str
    company: str

    @classmethod
    def make(cls) -> Person:
        digits = "".join(random.choices(string.digits, k=8))
        return cls(
            first=word().capitalize(),
            last=word().capitalize(),
            email=f"{word()}.{uuid.uuid4().hex[:6]}@{word(7)}-industries.com",
            phone_local=f"0151 {digits}",
            phone_e164=f"+49151{digits}",
            company=f"{word().capitalize()} Werke",
        )

    def values(self) -> list[str]:
        """What must never show up once erased (or ever, in a log line)."""
        return [self.first, self.last, self.email, self.phone_e164, self.phone_e164[1:],
                self.phone_local, self.phone_local.replace(" ", ""), self.company]  # fmt: skip

    def form(self) -> dict[str, str]:
        return {
            "email": self.email,
            "phone": self.phone_local,
            "first_name": self.first,
            "last_name": self.last,
            "job_title": "VP Engineering",
            "company": self.company,
            "company_size": "800",
            "country": "DE",
            "industry": "Manufacturing",
            "demo_request": "yes",
            "consent": "yes",
            "message": f"Please call {self.first} {self.last} on {self.phone_local}",
            "budget": f"{self.first} has 50k",
        }


def post_form(stack: Stack, data: dict[str, str]) -> str:
    resp = httpx.post(
        stack.url("intake") + "/v1/webhooks/website-demo",
        data=data,
        headers={"Origin": "http://localhost:8001"},
        timeout=10,
    )
    assert resp.status_code == 202, resp.text
    return str(resp.json()["lead_id"])


@pytest.fixture
async def engine(stack: Stack) -> AsyncIterator[AsyncEngine]:
    eng = create_async_engine(stack.settings.database_url)
    yield eng
    await eng.dispose()


async def tables_holding(engine: AsyncEngine, values: list[str]) -> dict[str, list[str]]:
    """Every table (of the three schemas) whose rows contain one of `values`, ignoring case.

    Rows are compared as text, so jsonb documents, arrays and outbox payloads count too.
    """
    found: dict[str, list[str]] = {}
    async with engine.connect() as conn:
        tables = (
            await conn.execute(
                text(
                    "SELECT table_schema, table_name FROM information_schema.tables "
                    "WHERE table_schema = ANY(:s) AND table_type = 'BASE TABLE'"
                ),
                {"s": list(SCHEMAS)},
            )
        ).all()
        for schema, table in tables:
            cols = (
                await conn.execute(
                    text(
                        "SELECT column_name, data_type FROM information_schema.columns "
                        "WHERE table_schema = :s AND table_name = :t"
                    ),
                    {"s": schema, "t": table},
                )
            ).all()
            row_text = " || ' ' || ".join(
                f"coalesce(convert_from({c}, 'UTF8'), '')"
                if dtype == "bytea"
                else f"coalesce({c}::text, '')"
                for c, dtype in cols
            )
            for value in values:
                hit = await conn.scalar(
                    text(
                        f"SELECT EXISTS (SELECT 1 FROM {schema}.{table} "
                        f"WHERE strpos(lower({row_text}), lower(:v)) > 0)"
                    ),
                    {"v": value},
                )
                if hit:
                    found.setdefault(f"{schema}.{table}", []).append(value)
    return found


async def wait_until(check: object, *, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()  # type: ignore[operator]
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"not reached within {timeout}s")
        await asyncio.sleep(0.3)


async def test_erasure_removes_the_contact_everywhere_and_keeps_the_facts(
    stack: Stack, engine: AsyncEngine
) -> None:
    topics = stack.settings.topics
    auth = {"Authorization": f"Bearer {stack.token}"}
    person = Person.make()
    async with EventReader(stack.settings, topics.leads_assigned, topics.contacts_erased) as reader:
        lead_id = post_form(stack, person.form())
        assigned = await reader.wait_for(
            lambda e: e.type == "lead.assigned" and e.subject == lead_id
        )
        resp = stack.contacted(
            assigned, note=f"Spoke to {person.first} {person.last}, {person.email}"
        )
        assert resp.status_code == 202, resp.text
        # Before: every service holds the contact (the scan can see it).
        await wait_until(
            lambda: _holds(engine, person, {"intake.leads", "router.leads", "followup.activities"})
        )

        resp = httpx.post(
            stack.url("router") + "/v1/admin/erasure",
            headers=auth,
            json={"email": person.email.upper()},
            timeout=10,
        )
        assert resp.status_code == 202, resp.text
        body = resp.json()
        assert body["status"] == "accepted" and body["lead_ids"] == [lead_id]
        erased = await reader.wait_for(
            lambda e: e.type == "contact.erased" and e.data["erasure_id"] == body["erasure_id"]
        )

    assert erased.data["lead_ids"] == [lead_id] and erased.data["reason"] == "request"
    published = erased.model_dump_json().lower()
    assert not [v for v in person.values() if v.lower() in published]

    async def clean() -> bool:
        return not await tables_holding(engine, person.values())

    try:
        await wait_until(clean)
    except AssertionError as exc:
        still = await tables_holding(engine, person.values())
        raise AssertionError(f"still stored: {still}") from exc

    async with engine.connect() as conn:
        router_row = (
            await conn.execute(
                text(
                    "SELECT source, received_at, score, tier, owner_id, status, erased_at, "
                    "lead->'contact'->>'company_domain' AS domain FROM router.leads "
                    "WHERE lead_id = :id"
                ),
                {"id": lead_id},
            )
        ).one()
        activity = (
            await conn.execute(
                text("SELECT type, actor, note FROM followup.activities WHERE lead_id = :id"),
                {"id": lead_id},
            )
        ).one()
        intake_erased = await conn.scalar(
            text("SELECT erased_at FROM intake.leads WHERE lead_id = :id"), {"id": lead_id}
        )
    assert router_row.source == "website-demo" and router_row.received_at is not None
    assert router_row.score == assigned.data["score"] and router_row.tier == assigned.data["tier"]
    assert router_row.owner_id == assigned.data["owner"]["id"]
    assert router_row.erased_at is not None and router_row.domain
    assert activity.type == "contacted" and activity.actor and activity.note is None
    assert intake_erased is not None

    # Erasing again is harmless: nothing left to find, nothing published for nothing.
    again = httpx.post(
        stack.url("router") + "/v1/admin/erasure",
        headers=auth,
        json={"phone": person.phone_e164},
        timeout=10,
    )
    assert again.status_code == 202 and again.json()["lead_ids"] == []
    log = httpx.get(
        stack.url("router") + f"/v1/admin/erasure/{body['erasure_id']}", headers=auth, timeout=10
    ).json()
    assert log["lead_ids"] == [lead_id] and log["reason"] == "request"


async def _holds(engine: AsyncEngine, person: Person, tables: set[str]) -> bool:
    return tables <= set(await tables_holding(engine, [person.email]))


async def test_no_personal_data_in_any_log_line(stack: Stack) -> None:
    """Webhook, assignment, activity, escalation up to reassignment, erasure, all at DEBUG."""
    for service in ("intake", "router", "followup"):  # the most verbose the services get
        stack.stop(service)
        stack.env["LOG_LEVEL"] = "DEBUG"
        stack.start(service)
    topics = stack.settings.topics
    auth = {"Authorization": f"Bearer {stack.token}"}
    touched, ignored = Person.make(), Person.make()
    async with EventReader(
        stack.settings, topics.leads_assigned, topics.leads_escalated, topics.contacts_erased
    ) as reader:
        touched_id = post_form(stack, touched.form())
        ignored_id = post_form(stack, ignored.form())
        bad = httpx.post(  # an invalid submission: the 422 path logs too
            stack.url("intake") + "/v1/webhooks/website-demo",
            data={**touched.form(), "email": touched.first, "phone": touched.last},
            headers={"Origin": "http://localhost:8001"},
            timeout=10,
        )
        assert bad.status_code == 422
        assigned = await reader.wait_for(
            lambda e: e.type == "lead.assigned" and e.subject == touched_id
        )
        resp = stack.contacted(
            assigned, note=f"Left a voicemail for {touched.first} on {touched.phone_local}"
        )
        assert resp.status_code == 202, resp.text
        await reader.wait_for(
            lambda e: (
                e.type == "lead.assigned"
                and e.subject == ignored_id
                and e.data["assignment_seq"] == 2
            ),
            timeout=30,
        )
        erasures: list[str] = []
        for person in (touched, ignored):
            resp = httpx.post(
                stack.url("router") + "/v1/admin/erasure",
                headers=auth,
                json={"email": person.email},
                timeout=10,
            )
            assert resp.status_code == 202, resp.text
            erasure_id = resp.json()["erasure_id"]
            erasures.append(erasure_id)
            await reader.wait_for(
                lambda e, i=erasure_id: e.type == "contact.erased" and e.subject == i
            )
        await asyncio.sleep(1.0)  # let intake and followup log their side of the erasure

    logs = stack.log_text()
    # The scan reads what the flow logged: router's and intake's erasure lines, by id.
    for erasure_id in erasures:
        assert logs.count(erasure_id) >= 2, "the services' logs did not capture the flow"
    leaked = {v for p in (touched, ignored) for v in p.values() if v.lower() in logs.lower()}
    assert not leaked, f"personal data in the logs: {sorted(leaked)}"
