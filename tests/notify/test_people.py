"""Pure planning of messages to people: who hears about a lead, through which channel, what
the message says, and when the lead gets (and never gets) an acknowledgement."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.notify.domain.messages import Planned
from services.notify.domain.people import PeopleLinks, plan_people, valid_email
from services.notify.domain.render import missing_templates
from shared.events import LeadDisqualified, Person, make_event
from shared.policy import Policy, parse_policy
from tests.conftest import ROOT
from tests.notify.people_events import (
    LINKS,
    assigned_event,
    contact,
    escalated_event,
    example_policy,
    rep,
)

POLICY = example_policy()


def sends(planned: list[Planned]) -> set[tuple[str, str, str]]:
    return {(p.channel, p.target, p.kind) for p in planned}


def only(planned: list[Planned], channel: str, target: str) -> Planned:
    found = [p for p in planned if p.channel == channel and p.target == target]
    assert len(found) == 1, sends(planned)
    return found[0]


def policy_with(mutate: Any) -> Policy:
    data = yaml.safe_load((ROOT / "deploy" / "policy.example.yaml").read_text())
    mutate(data)
    return parse_policy(yaml.safe_dump(data, sort_keys=False))


def slack_text(p: Planned) -> str:
    return json.dumps(p.body["blocks"], ensure_ascii=False) + str(p.body["text"])


# --- assignment ------------------------------------------------------------------------------


def test_assignment_slack_dm_and_team_channel() -> None:
    planned = plan_people(assigned_event(POLICY, "rep-anna"), POLICY, links=LINKS)
    people = {s for s in sends(planned) if s[2] != "acknowledgement"}
    assert people == {
        ("slack", "U07ASCHMIDT", "assignment"),
        ("slack", "#enterprise-leads", "assignment"),
    }
    dm = only(planned, "slack", "U07ASCHMIDT")
    assert dm.body["channel"] == "U07ASCHMIDT" and dm.delay_seconds == 0
    post = only(planned, "slack", "#enterprise-leads")
    assert "<@U07ASCHMIDT>" in slack_text(post)  # the channel post names the owner


def test_assignment_card_contents() -> None:
    ev = assigned_event(POLICY, "rep-anna", earlier=["0b7c1d2e-1111-2222-3333-444455556666"])
    dm = only(plan_people(ev, POLICY, links=LINKS), "slack", "U07ASCHMIDT")
    text = slack_text(dm)
    for expected in (
        "Ada Lovelace",
        "VP Engineering at Acme Industries",
        "85 (hot, sql)",
        "+40 demo_request is true",
        "+25 company_size ≥ 500",
        "+15 seniority in c_level, vp, director",
        "ada.lovelace@acme-industries.com",
        "+4930901820",
        "We need 200 seats before Q1.",
        "Earlier touches",
        "0b7c1d2e",
        f"http://127.0.0.1:8002/v1/admin/leads/{ev.subject}",
        "<!date^",  # the due time, shown in each reader's own zone
        "Wed 2 Dec 14:35 CET",  # its fallback, in the owner's zone (Berlin)
    ):
        assert expected in text, expected
    assert "core-market" not in text and "country" not in text.split("Why this score")[1][:80]
    assert "pricing_page" not in text  # unmatched rules are not reasons
    assert dm.body["blocks"][-1]["elements"][0]["url"].endswith(ev.subject)


def test_owner_without_slack_id_is_covered_by_the_team_channel() -> None:
    planned = plan_people(assigned_event(POLICY, "rep-olivia"), POLICY, links=LINKS)
    people = {s for s in sends(planned) if s[2] != "acknowledgement"}
    assert people == {("slack", "#enterprise-leads", "assignment")}
    assert "*Olivia Bennett*" in slack_text(planned[0])


def test_team_default_is_email_to_the_owner() -> None:
    planned = plan_people(assigned_event(POLICY, "rep-tom"), POLICY, links=LINKS)
    mail = only(planned, "email", "tom.hughes@example.com")
    assert mail.kind == "assignment"
    body = mail.body
    assert body["to"] == "tom.hughes@example.com" and body["from"] == LINKS.default_from
    assert body["subject"].startswith("New lead: Ada Lovelace (Acme Industries), hot")
    assert "Wed 2 Dec 13:35 GMT" in body["subject"]  # Tom's zone is Europe/London
    for part in (body["text"], body["html"]):
        assert "Ada Lovelace" in part and "demo_request is true" in part
        assert f"leads/{mail.body['html'].split('leads/')[1][:36]}" in part
    assert {s[0] for s in sends(planned) if s[2] == "assignment"} == {"email"}


def test_rep_choice_wins_over_team() -> None:
    planned = plan_people(assigned_event(POLICY, "rep-sofia"), POLICY, links=LINKS)
    assert {s for s in sends(planned) if s[2] == "assignment"} == {
        ("slack", "U07SMARTINEZ", "assignment"),
        ("email", "sofia.martinez@example.com", "assignment"),
    }


def test_slack_chosen_but_no_slack_id_falls_back_to_email() -> None:
    planned = plan_people(assigned_event(POLICY, "rep-noah"), POLICY, links=LINKS)
    assert {s for s in sends(planned) if s[2] == "assignment"} == {
        ("email", "noah.brooks@example.com", "assignment")
    }
    planned = plan_people(assigned_event(POLICY, "rep-emma"), POLICY, links=LINKS)
    assert {s for s in sends(planned) if s[2] == "assignment"} == {
        ("slack", "U07EWILSON", "assignment"),
        ("email", "emma.wilson@example.com", "assignment"),
    }


def test_slack_not_configured_means_email_for_everyone() -> None:
    links = dataclasses.replace(LINKS, slack_enabled=False)
    planned = plan_people(assigned_event(POLICY, "rep-anna"), POLICY, links=links)
    assert {s for s in sends(planned) if s[2] == "assignment"} == {
        ("email", "anna.schmidt@example.com", "assignment")
    }


def test_owner_unknown_to_the_policy_is_emailed() -> None:
    ev = assigned_event(POLICY, "rep-anna")
    data = dict(ev.data)
    data["owner"] = {"id": "rep-gone", "name": "Former Rep", "email": "former@example.com"}
    data["team"] = {"id": "apac", "name": "APAC"}
    ev = ev.model_copy(update={"data": data})
    planned = plan_people(ev, POLICY, links=LINKS)
    assert {s for s in sends(planned) if s[2] == "assignment"} == {
        ("email", "former@example.com", "assignment")
    }


def test_reassignment_tells_both_owners() -> None:
    ev = assigned_event(POLICY, "rep-james", seq=2, previous="rep-tom")
    planned = plan_people(ev, POLICY, links=LINKS)
    assert sends(planned) == {
        ("slack", "U07JCARTER", "assignment"),
        ("slack", "#enterprise-leads", "assignment"),
        ("email", "tom.hughes@example.com", "reassignment"),
    }
    card = slack_text(only(planned, "slack", "U07JCARTER"))
    assert "Reassigned from Tom Hughes (sla_breach)" in card
    away = only(planned, "email", "tom.hughes@example.com").body
    assert away["subject"] == "Lead reassigned to James Carter: Ada Lovelace"
    assert "reassigned to James Carter (sla_breach)" in away["text"]
    assert "no longer need to contact" in away["html"]


def test_reassignment_previous_owner_on_slack() -> None:
    ev = assigned_event(POLICY, "rep-tom", seq=3, previous="rep-anna")
    planned = plan_people(ev, POLICY, links=LINKS)
    away = only(planned, "slack", "U07ASCHMIDT")
    assert away.kind == "reassignment" and "reassigned to Tom Hughes" in away.body["text"]
    assert ("email", "tom.hughes@example.com", "assignment") in sends(planned)


def test_lead_text_cannot_ping_or_inject() -> None:
    lead = contact(first_name="<!channel>", last_name="<script>x</script> & co")
    ev = assigned_event(POLICY, "rep-sofia", lead=lead, message="<@U999> <b>hi</b>")
    planned = plan_people(ev, POLICY, links=LINKS)
    card = only(planned, "slack", "U07SMARTINEZ").body
    assert card["blocks"][0]["type"] == "header"  # plain_text: Slack parses no mentions there
    everything = json.dumps(card["blocks"][1:]) + card["text"]
    assert "<!channel>" not in everything and "<@U999>" not in everything
    assert "&lt;!channel&gt;" in card["text"] and "&amp; co" in card["text"]
    mail = only(planned, "email", "sofia.martinez@example.com").body
    assert "<script>" not in mail["html"] and "&lt;script&gt;" in mail["html"]
    assert "&lt;b&gt;hi&lt;/b&gt;" in mail["html"]


def test_nothing_for_a_disqualified_lead() -> None:
    disq = make_event(
        type="lead.disqualified",
        source="/baton/router",
        subject="l-1",
        data=LeadDisqualified(
            lead_id="l-1", rule_id="student", reason="student", score=0, breakdown=[],
            source="website-demo", policy_version="x",
        ),
    )  # fmt: skip
    assert plan_people(disq, POLICY, links=LINKS) == []


# --- escalations -----------------------------------------------------------------------------


def test_remind_owner_goes_to_the_owner_only() -> None:
    planned = plan_people(escalated_event(POLICY, "rep-anna", level=1), POLICY, links=LINKS)
    assert sends(planned) == {
        ("slack", "U07ASCHMIDT", "escalation"),
        ("email", "anna.schmidt@example.com", "escalation"),
    }
    mail = only(planned, "email", "anna.schmidt@example.com").body
    assert "17 min ago" in mail["text"] and "Wed 2 Dec 14:30 CET" in mail["text"]
    assert mail["subject"] == "Reminder: your lead is 17 min past its first-contact time"
    assert "katharina" not in json.dumps([p.body for p in planned]).lower()


def test_notify_manager_goes_to_owner_and_manager() -> None:
    planned = plan_people(
        escalated_event(POLICY, "rep-anna", level=2, action="notify_manager"), POLICY, links=LINKS
    )
    assert sends(planned) == {
        ("slack", "U07ASCHMIDT", "escalation"),
        ("email", "anna.schmidt@example.com", "escalation"),
        ("slack", "U07KVOGEL", "escalation"),
        ("email", "katharina.vogel@example.com", "escalation"),
    }
    to_manager = only(planned, "slack", "U07KVOGEL").body["blocks"][0]["text"]["text"]
    assert "<@U07ASCHMIDT> has not contacted lead" in to_manager
    manager_mail = only(planned, "email", "katharina.vogel@example.com").body
    assert "Anna Schmidt has not contacted lead" in manager_mail["text"]
    owner_mail = only(planned, "email", "anna.schmidt@example.com").body
    assert "your manager Katharina Vogel is told as well" in owner_mail["text"]


def test_rep_specific_manager_is_emailed_without_slack() -> None:
    planned = plan_people(
        escalated_event(POLICY, "rep-olivia", level=2, action="notify_manager"),
        POLICY,
        links=LINKS,
    )
    assert ("email", "eric.lawson@example.com", "escalation") in sends(planned)
    assert not any(p.target == "U07KVOGEL" for p in planned)


def test_manager_from_policy_when_the_event_has_none() -> None:
    ev = escalated_event(POLICY, "rep-tom", level=2, action="notify_manager", with_manager=False)
    assert sends(plan_people(ev, POLICY, links=LINKS)) == {
        ("email", "tom.hughes@example.com", "escalation"),
        ("email", "marcus.lee@example.com", "escalation"),
    }


def test_escalation_level_channels_and_team_override() -> None:
    # smb says nothing: the chain's level channels ([email]) apply
    assert sends(plan_people(escalated_event(POLICY, "rep-lukas"), POLICY, links=LINKS)) == {
        ("email", "lukas.becker@example.com", "escalation")
    }
    # inbound: level 1 is [slack] -> Emma on Slack only; Noah has no Slack id -> e-mail
    assert sends(plan_people(escalated_event(POLICY, "rep-emma"), POLICY, links=LINKS)) == {
        ("slack", "U07EWILSON", "escalation")
    }
    assert sends(plan_people(escalated_event(POLICY, "rep-noah"), POLICY, links=LINKS)) == {
        ("email", "noah.brooks@example.com", "escalation")
    }


def test_rep_escalation_choice_wins_and_chain_is_the_default() -> None:
    def mutate(data: dict[str, Any]) -> None:
        data["teams"][0]["reps"][0]["notify"] = {"escalation": {1: ["email"]}}  # anna
        data["escalation"][0]["channels"] = ["slack"]
        data["teams"][1]["reps"][1].pop("notify")  # sofia: nothing of her own now

    policy = policy_with(mutate)
    assert sends(plan_people(escalated_event(policy, "rep-anna"), policy, links=LINKS)) == {
        ("email", "anna.schmidt@example.com", "escalation")
    }
    assert sends(plan_people(escalated_event(policy, "rep-sofia"), policy, links=LINKS)) == {
        ("slack", "U07SMARTINEZ", "escalation")
    }


def test_team_channel_escalation_posts_once() -> None:
    def mutate(data: dict[str, Any]) -> None:
        data["teams"][0]["notify"]["escalation"] = ["team_channel"]

    policy = policy_with(mutate)
    planned = plan_people(
        escalated_event(policy, "rep-anna", level=2, action="notify_manager"), policy, links=LINKS
    )
    assert sends(planned) == {("slack", "#enterprise-leads", "escalation")}
    text = planned[0].body["blocks"][0]["text"]["text"]
    assert "<@U07ASCHMIDT>" in text and "<@U07KVOGEL> is told as well" in text


def test_reassign_sends_nothing_itself() -> None:
    ev = escalated_event(POLICY, "rep-anna", level=3, action="reassign")
    assert plan_people(ev, POLICY, links=LINKS) == []


def test_one_message_when_the_owner_is_their_own_manager() -> None:
    anna = rep(POLICY, "rep-anna")
    ev = escalated_event(
        POLICY,
        "rep-tom",
        level=2,
        action="notify_manager",
        manager=Person(name="Tom Hughes", email="Tom.Hughes@example.com"),
    )
    assert anna.email not in json.dumps(ev.data)
    planned = plan_people(ev, POLICY, links=LINKS)
    assert [p.target.lower() for p in planned] == ["tom.hughes@example.com"]


# --- the lead's acknowledgement --------------------------------------------------------------


def ack(planned: list[Planned]) -> Planned | None:
    found = [p for p in planned if p.kind == "acknowledgement"]
    assert len(found) <= 1
    return found[0] if found else None


def test_acknowledgement_on_first_assignment() -> None:
    ev = assigned_event(POLICY, "rep-anna", lead=contact(email="Ada.Lovelace@ACME-industries.com"))
    found = ack(plan_people(ev, POLICY, links=LINKS))
    assert found is not None
    assert found.channel == "email" and found.delay_seconds == 10
    body = found.body
    assert found.target == body["to"] == "Ada.Lovelace@acme-industries.com"  # domain normalised
    assert body["from"] == "Example Sales <sales@example.com>"
    assert body["subject"] == "Thanks for your request, Ada"
    assert body["reply_to"] == "anna.schmidt@example.com"
    expect = "Wednesday 2 December at 14:35 (Berlin time, UTC+01:00)"
    for part in (body["text"], body["html"]):
        assert "Anna Schmidt" in part and "Enterprise Sales" in part and expect in part
        assert "not a newsletter" in part
    assert "score" not in body["text"].lower() and "hot" not in body["text"]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"country": "US", "phone": None}, "Wednesday 2 December at 13:35 UTC"),
        ({"country": "US", "phone": "+12125550143"}, "08:35 (New York time, UTC-05:00)"),
        ({"country": None, "phone": "+442079460958"}, "13:35 (London time, UTC+00:00)"),
        ({"country": "IN", "phone": None}, "19:05 (Kolkata time, UTC+05:30)"),
        ({"country": "FR", "phone": "+12125550143"}, "14:35 (Paris time, UTC+01:00)"),
        ({"country": None, "phone": None}, "13:35 UTC"),
    ],
)
def test_acknowledgement_in_the_leads_time_zone(fields: dict[str, Any], expected: str) -> None:
    ev = assigned_event(POLICY, "rep-anna", lead=contact(**fields))
    found = ack(plan_people(ev, POLICY, links=LINKS))
    assert found is not None and expected in found.body["text"]


def test_subject_without_first_name() -> None:
    ev = assigned_event(POLICY, "rep-anna", lead=contact(first_name=None))
    found = ack(plan_people(ev, POLICY, links=LINKS))
    assert found is not None and found.body["subject"] == "Thanks for your request"
    assert found.body["text"].startswith("Hello,")


@pytest.mark.parametrize(
    "case",
    [
        "reassignment",
        "previous_owner_only",
        "later_seq",
        "no_ack_source",
        "no_email",
        "bad_email",
        "no_tld",
        "spaces",
    ],
)
def test_no_acknowledgement(case: str) -> None:
    ev = {
        "reassignment": lambda: assigned_event(POLICY, "rep-anna", seq=2, previous="rep-tom"),
        # previous_owner alone means a reassignment, whatever the sequence number says
        "previous_owner_only": lambda: assigned_event(POLICY, "rep-anna", previous="rep-tom"),
        "later_seq": lambda: assigned_event(POLICY, "rep-anna", seq=2),
        "no_ack_source": lambda: assigned_event(POLICY, "rep-anna", source="chat-widget"),
        "no_email": lambda: assigned_event(POLICY, "rep-anna", lead=contact(email=None)),
        "bad_email": lambda: assigned_event(POLICY, "rep-anna", lead=contact(email="ada@@x.com")),
        "no_tld": lambda: assigned_event(POLICY, "rep-anna", lead=contact(email="ada@localhost")),
        "spaces": lambda: assigned_event(POLICY, "rep-anna", lead=contact(email="a b@x.com")),
    }[case]()
    planned = plan_people(ev, POLICY, links=LINKS)
    assert ack(planned) is None
    assert any(p.kind == "assignment" for p in planned)  # the owner still hears


def test_valid_email() -> None:
    assert valid_email("Ada@Example.COM") == "Ada@example.com"
    assert valid_email("ada@example") is None and valid_email("") is None


def test_acknowledgement_template_from_policy(tmp_path: Path) -> None:
    def mutate(data: dict[str, Any]) -> None:
        data["sources"][0]["acknowledge"]["template"] = "no-such-template"

    policy = policy_with(mutate)
    names = {
        f"sources[{i}].acknowledge.template": s.acknowledge.template
        for i, s in enumerate(policy.sources)
        if s.acknowledge is not None
    }
    assert missing_templates(names) == [
        "sources[0].acknowledge.template: no template 'no-such-template' "
        f"(no-such-template.txt.j2 in {ROOT / 'services' / 'notify' / 'templates'})"
    ]
    assert missing_templates({"x": "acknowledgement", "y": "assignment"}) == []


def test_messages_carry_no_personal_data_outside_bodies() -> None:
    planned = plan_people(assigned_event(POLICY, "rep-anna"), POLICY, links=LINKS)
    planned += plan_people(
        escalated_event(POLICY, "rep-anna", level=2, action="notify_manager"), POLICY, links=LINKS
    )
    for p in planned:
        assert p.key == "" and p.kind in {"assignment", "escalation", "acknowledgement"}
        if p.channel == "slack":
            assert p.target.startswith(("U", "#"))  # ids and channel names, never a person's


def test_links_format() -> None:
    links = PeopleLinks(
        lead_url="https://crm.example.com/leads/{lead_id}?src=baton", default_from="x@y.z"
    )
    ev = assigned_event(POLICY, "rep-tom")
    mail = only(plan_people(ev, POLICY, links=links), "email", "tom.hughes@example.com")
    assert f"https://crm.example.com/leads/{ev.subject}?src=baton" in mail.body["text"]


def test_template_errors_name_the_source() -> None:
    from services.notify.domain.people import template_errors

    assert template_errors(POLICY) == []

    def mutate(data: dict[str, Any]) -> None:
        data["sources"][2]["acknowledge"] = {
            "from": "a@example.com",
            "subject": "Hi",
            "template": "typo",
        }

    errors = template_errors(policy_with(mutate))
    assert len(errors) == 1 and errors[0].startswith(
        "sources[2].acknowledge.template: no template 'typo'"
    )
