"""End to end (issue 17): a lead nobody can take is parked, not silent. The team's only free
rep is out of office and the other is inactive, so the router parks the lead (lead.parked
names the team and why each rep was skipped); followup's waiting clock lapses after the tier's
window and tells the manager (an ownerless lead.escalated notify_manager), notify e-mails the
manager; once a policy reload frees the rep, the router assigns the lead (lead.assigned)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import EventReader
from tests.e2e.conftest import Stack
from tests.e2e.notify_sinks import DedupingReceiver, Mailbox, add_notify, notify_config, smtp_sink
from tests.e2e.test_flow import post_form
from tests.e2e.test_notify_flow import until
from tests.notify.conftest import new_secret

pytestmark = pytest.mark.e2e

MANAGER = "priya.patel@example.com"  # the inbound desk's manager in the example policy
# business e-mail 10 + core market 5 + senior 15 + mid-market 15 = 45: an MQL (warm tier),
# which the example's mql rule sends to the inbound desk (also the fallback team)
MQL = {
    "first_name": "Rosa",
    "job_title": "Director of Operations",
    "company_size": "120",
    "country": "NL",
    "consent": "yes",
}


def inbound_policy(path: Path, *, out_of_office: bool) -> None:
    """Rewrite the stack's policy (every rep on duty, SLA windows of 3 s on the wall clock) so
    the inbound desk has rep-emma, out of office around now when `out_of_office`, and
    rep-noah, inactive: nobody else can take an inbound lead."""
    policy: dict[str, Any] = yaml.safe_load(path.read_text())
    [team] = [t for t in policy["teams"] if t["id"] == "inbound"]
    now = datetime.now(UTC)
    for rep in team["reps"]:
        rep.pop("out_of_office", None)
        if rep["id"] == "rep-noah":
            rep["active"] = False
        elif out_of_office:
            rep["out_of_office"] = [
                {
                    "from": (now - timedelta(days=1)).isoformat(),
                    "until": (now + timedelta(days=1)).isoformat(),
                }
            ]
    path.write_text(yaml.safe_dump(policy))


def reload_router(stack: Stack) -> None:
    resp = httpx.post(
        stack.url("router") + "/v1/admin/policy/reload",
        headers={"Authorization": f"Bearer {stack.token}"},
        timeout=10,
    )
    assert resp.status_code == 200, resp.text


@pytest.fixture
async def parking(stack: Stack, tmp_path: Path) -> AsyncIterator[Mailbox]:
    """The stack on the parking policy (router reloaded), plus notify e-mailing an SMTP sink
    (no Slack: the manager's Slack channel falls back to e-mail)."""
    policy_path = Path(stack.env["POLICY_PATH"])
    inbound_policy(policy_path, out_of_office=True)
    reload_router(stack)
    with smtp_sink() as (mail, smtp_port):
        async with DedupingReceiver(secret=new_secret()) as rx:
            add_notify(
                stack,
                config=notify_config(tmp_path, "e2e-sink", rx.url()),
                secret=rx.secret or "",
                smtp_port=smtp_port,
            )
            await asyncio.to_thread(stack.start, "notify")
            yield mail


async def test_parked_lead_waits_tells_the_manager_then_is_assigned(
    stack: Stack, parking: Mailbox
) -> None:
    topics = stack.settings.topics
    async with EventReader(stack.settings, topics.leads_assigned, topics.leads_escalated) as reader:
        # a domain of its own: no account the router learned earlier sends it elsewhere
        email = f"rosa.devries@parkco-{uuid.uuid4().hex[:8]}.nl"
        resp = post_form(stack, {**MQL, "email": email})
        assert resp.status_code == 202, resp.text
        lead_id = resp.json()["lead_id"]

        parked = await reader.wait_for(lambda e: e.subject == lead_id)
        assert parked.type == "lead.parked", parked.type
        p = parked.data
        assert p["team"]["id"] == "inbound" and p["manager"]["email"] == MANAGER
        assert p["stage"] == "mql" and p["tier"] == "warm"
        assert p["wait_seconds"] == 3 and p["clock"] == "wall"
        why = {c["rep_id"]: (c["eligible"], c["reason"]) for c in p["considered"]}
        assert why["rep-noah"] == (False, "inactive"), why
        assert why["rep-emma"][0] is False and why["rep-emma"][1].startswith("out of office until")

        # followup's waiting clock: after the 3 s window, the manager (nobody owns the lead)
        waited = await reader.wait_for(
            lambda e: e.type == "lead.escalated" and e.subject == lead_id
        )
        w = waited.data
        assert w["action"] == "notify_manager" and w["level"] == 1
        assert w["owner"] is None and w["assignment_seq"] == 0
        assert w["manager"]["email"] == MANAGER and w["team_id"] == "inbound"

        # notify: the manager's e-mail says the lead waited with nobody eligible
        await until(lambda: bool(parking.to(MANAGER)), "the manager's waiting e-mail")
        [note] = parking.to(MANAGER)
        assert str(note["Subject"]).startswith("Lead waiting with nobody eligible in Inbound Desk")
        body = note.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert lead_id in body

        # the rep is back (a policy reload): the router's parked retry assigns the lead
        inbound_policy(Path(stack.env["POLICY_PATH"]), out_of_office=False)
        reload_router(stack)
        assigned = await reader.wait_for(
            lambda e: e.type == "lead.assigned" and e.subject == lead_id
        )
    a = assigned.data
    assert a["owner"]["id"] == "rep-emma" and a["team"]["id"] == "inbound"
    assert a["assignment_seq"] == 1

    # Emma calls: her SLA clock stops, so nothing of this lead fires in a later test (the
    # session's database outlives this stack; another test's followup would escalate it)
    resp = stack.contacted(assigned)
    assert resp.status_code == 202, resp.text

    def met() -> bool:
        sla = httpx.get(
            stack.url("followup") + f"/v1/leads/{lead_id}/sla",
            headers={"Authorization": f"Bearer {stack.token}"},
            timeout=10,
        )
        return sla.status_code == 200 and sla.json()["status"] == "met"

    await until(met, "the SLA met after the call")
