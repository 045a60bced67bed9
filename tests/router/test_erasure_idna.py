"""Erasure finds an internationalised address in any spelling (issue #18), on the real stack:
intake stores the domain in IDNA 2008 form, and erasure now looks it up in the same form
(shared.identity), so `Anna@Straße.de` is erased (IDNA 2003 read it as `strasse.de`)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.conftest import EventReader
from tests.e2e.conftest import Stack, stack

pytestmark = pytest.mark.e2e
__all__ = ["stack"]  # the e2e stack fixture: intake, router and followup as processes


@pytest.fixture
async def engine(stack: Stack) -> AsyncIterator[AsyncEngine]:
    eng = create_async_engine(stack.settings.database_url)
    yield eng
    await eng.dispose()


def submit(stack: Stack, email: str) -> str:
    resp = httpx.post(
        stack.url("intake") + "/v1/webhooks/website-demo",
        data={"email": email, "first_name": "Test", "job_title": "Analyst", "consent": "yes"},
        headers={"Origin": "http://localhost:8001"},
        timeout=10,
    )
    assert resp.status_code == 202, resp.text
    return str(resp.json()["lead_id"])


def erase(stack: Stack, email: str) -> list[str]:
    resp = httpx.post(
        stack.url("router") + "/v1/admin/erasure",
        json={"email": email},
        headers={"Authorization": f"Bearer {stack.token}"},
        timeout=10,
    )
    assert resp.status_code == 202, resp.text
    return list(resp.json()["lead_ids"])


async def intake_email(engine: AsyncEngine, lead_id: str) -> str | None:
    async with engine.connect() as conn:
        found = await conn.scalar(
            text("SELECT lead->'contact'->>'email' FROM intake.leads WHERE lead_id = :i"),
            {"i": uuid.UUID(lead_id)},
        )
    return None if found is None else str(found)


async def test_erasure_finds_sharp_s_final_sigma_and_punycode_spellings(
    stack: Stack, engine: AsyncEngine
) -> None:
    tag = uuid.uuid4().hex[:8]
    # (as the form sent it, as the erasure request spells it, what intake stored)
    cases = [
        (f"Anna.{tag}@Straße.de", f"ANNA.{tag}@STRAßE.DE", f"anna.{tag}@xn--strae-oqa.de"),
        (f"nikos.{tag}@ελληνικός.gr", f"Nikos.{tag}@xn--qxaegecap6byf.gr", None),
        (f"Jörg.{tag}@xn--bcher-kva.de", f"jörg.{tag}@Bücher.de", f"jörg.{tag}@xn--bcher-kva.de"),
    ]
    other = submit(stack, f"anna.{tag}@strasse.de")  # another domain under IDNA 2008
    topic = stack.settings.topics.leads_assigned
    async with EventReader(stack.settings, topic) as reader:
        ids = [submit(stack, sent) for sent, _, _ in cases]
        for lead_id in [*ids, other]:
            await reader.wait_for(lambda e, i=lead_id: e.subject == i, timeout=30)
    for lead_id, (_, _, stored) in zip(ids, cases, strict=True):
        if stored is not None:
            assert await intake_email(engine, lead_id) == stored

    for lead_id, (_, spelled, _) in zip(ids, cases, strict=True):
        assert erase(stack, spelled) == [lead_id], spelled
    for lead_id in ids:  # intake follows the router's contact.erased
        for _ in range(150):
            if await intake_email(engine, lead_id) is None:
                break
            await asyncio.sleep(0.2)
        assert await intake_email(engine, lead_id) is None
    assert await intake_email(engine, other) == f"anna.{tag}@strasse.de", "erased too much"
