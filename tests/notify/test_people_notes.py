"""Pure planning of the notes about the #17 events: a parked lead's waiting clock tells the
team's manager, a parked lead is noted in the team channel that gets its cards, a merged
touch tells the open lead's owner; nurture and re-engagement tell nobody."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import yaml

from services.notify.domain.messages import Planned
from services.notify.domain.people import PeopleLinks, plan_people
from shared.events import (
    CloudEvent,
    LeadEscalated,
    LeadMerged,
    LeadReengage,
    Person,
    make_event,
)
from shared.policy import Policy, parse_policy
from tests.conftest import ROOT
from tests.notify.people_events import (
    LINKS,
    NOW,
    assigned_event,
    example_policy,
    nurtured_event,
    parked_event,
    rep,
)

POLICY = example_policy()


def sends(planned: list[Planned]) -> set[tuple[str, str, str]]:
    return {(p.channel, p.target, p.kind) for p in planned}


def event(type_: str, data: Any) -> CloudEvent:
    return make_event(type=type_, source="/baton/test", subject=data.lead_id, data=data)


def waiting(team: str = "enterprise", *, manager: Person | None = None) -> CloudEvent:
    return event(
        "lead.escalated",
        LeadEscalated(
            lead_id=str(uuid.uuid4()), assignment_seq=0, level=1, action="notify_manager",
            owner=None, manager=manager, team_id=team, due_at=NOW, seconds_overdue=600.0,
            escalated_at=NOW + timedelta(minutes=10),
        ),
    )  # fmt: skip


def test_a_parked_leads_waiting_clock_tells_the_teams_manager() -> None:
    manager = Person(name="Katharina Vogel", email="katharina.vogel@example.com")
    planned = plan_people(waiting(manager=manager), POLICY, links=LINKS)
    # enterprise: escalation [slack, email]; the team's manager has a Slack id
    assert sends(planned) == {
        ("slack", "U07KVOGEL", "escalation"),
        ("email", "katharina.vogel@example.com", "escalation"),
    }
    mail = next(p for p in planned if p.channel == "email").body
    assert "nobody eligible" in mail["text"] and "10 min past its window" in mail["text"]
    assert mail["subject"].startswith("Lead waiting with nobody eligible in Enterprise Sales")
    assert "Enterprise Sales" in mail["html"]
    slack = next(p for p in planned if p.channel == "slack").body
    assert "nobody eligible" in json.dumps(slack["blocks"])


def test_the_waiting_note_finds_the_manager_in_the_policy_when_the_event_has_none() -> None:
    # smb: no notify of its own, level 1's channels ([email]); Marcus has no Slack id
    assert sends(plan_people(waiting("smb"), POLICY, links=LINKS)) == {
        ("email", "marcus.lee@example.com", "escalation")
    }
    assert plan_people(waiting("no-such-team"), POLICY, links=LINKS) == []


def test_a_parked_lead_is_noted_in_the_channel_that_gets_the_teams_cards() -> None:
    # enterprise posts assignments in #enterprise-leads; inbound does not (slack, email)
    [note] = plan_people(
        parked_event(POLICY, "enterprise", "Enterprise Sales"), POLICY, links=LINKS
    )
    assert (note.channel, note.target, note.kind) == ("slack", "#enterprise-leads", "parked")
    text = json.dumps(note.body["blocks"])
    assert "at capacity (2), out of office" in text and "15 min" in text
    assert plan_people(parked_event(POLICY, "inbound", "Inbound Desk"), POLICY, links=LINKS) == []
    no_slack = PeopleLinks(lead_url=LINKS.lead_url, default_from="b@x.com", slack_enabled=False)
    assert (
        plan_people(parked_event(POLICY, "enterprise", "Enterprise Sales"), POLICY, links=no_slack)
        == []
    )


def merged(owner: Person | None) -> CloudEvent:
    touch = assigned_event(POLICY, message="Can we start with 50 seats?").payload().lead
    touch = touch.model_copy(
        update={
            "engagement": touch.engagement.model_copy(update={"pages_viewed": ["/pricing?x=1"]})
        }
    )
    return event(
        "lead.merged",
        LeadMerged(
            lead_id=touch.lead_id, into_lead_id="open-lead-1", owner=owner, touch=touch,
            policy_version="x",
        ),
    )  # fmt: skip


def test_a_merged_touch_tells_the_open_leads_owner_by_their_assignment_channels() -> None:
    planned = plan_people(merged(rep(POLICY, "rep-anna")), POLICY, links=LINKS)
    # enterprise's assignment channels: slack (Anna has an id) and the team channel
    assert sends(planned) == {
        ("slack", "U07ASCHMIDT", "merged"),
        ("slack", "#enterprise-leads", "merged"),
    }
    dm = next(p for p in planned if p.target == "U07ASCHMIDT").body
    assert "Ada Lovelace" in dm["text"] and "open-lead-1" in dm["blocks"][1]["elements"][0]["url"]
    assert "50 seats" in json.dumps(dm["blocks"])
    # smb's Tom has no Slack: an e-mail, in his zone, naming what is new
    planned = plan_people(merged(rep(POLICY, "rep-tom")), POLICY, links=LINKS)
    [mail] = planned
    assert (mail.channel, mail.target, mail.kind) == ("email", "tom.hughes@example.com", "merged")
    assert mail.body["subject"] == "Your lead came back: Ada Lovelace (website-demo)"
    assert "Can we start with 50 seats?" in mail.body["text"] and "/pricing\n" in mail.body["text"]
    assert "x=1" not in mail.body["text"]
    # a touch merged into a nurtured lead has no owner to tell
    assert plan_people(merged(None), POLICY, links=LINKS) == []


def test_nurture_reengagement_and_unknown_types_tell_nobody() -> None:
    touch = assigned_event(POLICY).payload().lead
    nurtured = nurtured_event(POLICY)
    reengage = event(
        "lead.reengage",
        LeadReengage(lead_id=touch.lead_id, owner=None, reengage_at=NOW),
    )
    unknown = CloudEvent(
        id=str(uuid.uuid4()), source="/baton/router", type="lead.scored", time=NOW,
        subject="l-1", data={"lead_id": "l-1"},
    )  # fmt: skip
    for ev in (nurtured, reengage, unknown):
        assert plan_people(ev, POLICY, links=LINKS) == [], ev.type


def policy_without_team_channel() -> Policy:
    data = yaml.safe_load((ROOT / "deploy" / "policy.example.yaml").read_text())
    data["teams"][0]["notify"]["assignment"] = ["slack"]
    return parse_policy(yaml.safe_dump(data, sort_keys=False))


def test_no_parked_note_when_the_team_does_not_post_its_cards() -> None:
    policy = policy_without_team_channel()
    assert (
        plan_people(parked_event(POLICY, "enterprise", "Enterprise Sales"), policy, links=LINKS)
        == []
    )
