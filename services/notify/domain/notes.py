"""Short notes about the lead events that are not an assignment or an owner's escalation.
Pure, like people.py (which calls these).

- A parked lead's waiting clock lapsed (`lead.escalated` with no owner): the team's manager
  hears, by the channels the policy gives managers at that level, that the lead has waited
  past its window with nobody eligible.
- `lead.parked`: a note in the team's Slack channel, only if the team posts its assignments
  there (the people who would have seen the card see why there is none). No direct message:
  a parked lead is usually assigned within minutes when a rep frees up, and the waiting
  clock tells the manager if it is not.
- `lead.merged`: the open lead's owner hears that the contact came back with new facts, by
  the owner's assignment channels (the same choice that brought them the lead's card).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from services.notify.domain import cards
from services.notify.domain.localtime import format_duration, format_short
from services.notify.domain.messages import Planned
from services.notify.domain.recipients import (
    PeopleLinks,
    mail,
    manager_recipient,
    owner_recipient,
    rep_of,
    routes,
)
from shared.events import LeadEscalated, LeadMerged, LeadParked, Person
from shared.policy import Policy

PAGES_SHOWN = 5
CONSIDERED_SHOWN = 4


# --- a parked lead waited past its window ------------------------------------------------------


def waiting(e: LeadEscalated, policy: Policy, links: PeopleLinks) -> list[Planned]:
    if e.action == "reassign":
        return []  # nobody to take it from; the router acts on reassign alone
    team = policy.team(e.team_id)
    person = e.manager or (
        Person(name=team.manager.name, email=team.manager.email) if team is not None else None
    )
    if person is None:
        return []  # a team the policy no longer has, and no manager in the event
    manager = manager_recipient(policy, person, team, e.level)
    sends, post = routes([manager], team, links)
    ctx = {
        "lead_id": e.lead_id,
        "lead_url": cards.lead_link(links.lead_url, e.lead_id),
        "team_name": team.name if team is not None else e.team_id,
        "due": format_short(e.due_at, None),
        "due_at": e.due_at,
        "overdue": format_duration(e.seconds_overdue),
        "level": e.level,
    }
    subject = (
        f"Lead waiting with nobody eligible in {ctx['team_name']}: {ctx['overdue']} past its window"
    )
    out = []
    for r, how in sends:
        if how == "slack":
            assert r.slack_user_id is not None
            out.append(
                Planned(
                    "slack", r.slack_user_id, "escalation", _slack_waiting(ctx, r.slack_user_id)
                )
            )
        else:
            out.append(mail(r, links.default_from, subject, "waiting", ctx, kind="escalation"))
    if post:
        out.append(Planned("slack", post, "escalation", _slack_waiting(ctx, post)))
    return out


def _slack_waiting(ctx: dict[str, Any], channel: str) -> dict[str, Any]:
    due = cards.slack_time(ctx["due_at"], ctx["due"])
    lead = f"<{ctx['lead_url']}|{ctx['lead_id'][:8]}>"
    line = (
        f":hourglass: Lead {lead} in *{cards.esc(ctx['team_name'])}* has nobody eligible to take "
        f"it: it has waited *{ctx['overdue']}* past its window (due {due}). Baton assigns it "
        "as soon as a rep frees up; assign it by hand if it cannot wait."
    )
    text = f"Lead {ctx['lead_id']} has waited {ctx['overdue']} past its window with nobody eligible"
    return {
        "channel": channel,
        "text": cards.esc(text),
        "blocks": [{"type": "section", "text": cards.md(line)}, cards.button(ctx["lead_url"])],
    }


# --- lead.parked: the team channel's note ------------------------------------------------------


def parked(p: LeadParked, policy: Policy, links: PeopleLinks) -> list[Planned]:
    team = policy.team(p.team.id)
    if team is None or team.slack_channel is None or not links.slack_enabled:
        return []
    if "team_channel" not in (team.notify.assignment or ()):
        return []
    why = Counter(c.reason for c in p.considered if not c.eligible)
    reasons = ", ".join(
        f"{reason} ({n})" if n > 1 else reason for reason, n in why.most_common(CONSIDERED_SHOWN)
    )
    url = cards.lead_link(links.lead_url, p.lead_id)
    line = (
        f":parking: A {cards.esc(p.tier)} lead <{url}|{p.lead_id[:8]}> for *{cards.esc(p.team.name)}* "
        f"is parked: nobody is eligible{': ' + cards.esc(reasons) if reasons else ''}. It is "
        f"assigned as soon as a rep frees up; the manager is told if it waits more than "
        f"{format_duration(p.wait_seconds)}."
    )
    text = f"Lead {p.lead_id} parked in {p.team.name}: nobody eligible"
    body = {
        "channel": team.slack_channel,
        "text": cards.esc(text),
        "blocks": [{"type": "section", "text": cards.md(line)}, cards.button(url)],
    }
    return [Planned("slack", team.slack_channel, "parked", body)]


# --- lead.merged: the owner's note -------------------------------------------------------------


def merged(m: LeadMerged, policy: Policy, links: PeopleLinks) -> list[Planned]:
    if m.owner is None:
        return []  # a nurtured lead has no owner: marketing's, nobody to tell
    found = rep_of(policy, m.owner)
    team = found[0] if found else None
    owner = owner_recipient(policy, m.owner, team, level=None)
    sends, post = routes([owner], team, links)
    touch = m.touch
    pages = [p.split("?", 1)[0] for p in touch.engagement.pages_viewed[:PAGES_SHOWN]]
    ctx: dict[str, Any] = {
        "lead_id": m.into_lead_id,
        "lead_url": cards.lead_link(links.lead_url, m.into_lead_id),
        "contact": cards.contact_context(touch.contact, touch.source),
        "source": touch.source,
        "channel": touch.channel,
        "received": format_short(touch.received_at, owner.zone),
        "message": cards.clip(touch.message, cards.MESSAGE_CHARS),
        "pages": pages,
    }
    name = ctx["contact"]["display"]
    subject = f"Your lead came back: {name} ({touch.source})"
    out = []
    for r, how in sends:
        if how == "slack":
            assert r.slack_user_id is not None
            out.append(
                Planned(
                    "slack", r.slack_user_id, "merged", _slack_merged(ctx, r.slack_user_id, "you")
                )
            )
        else:
            out.append(mail(r, links.default_from, subject, "merged", ctx, kind="merged"))
    if post:
        who = cards.mention(m.owner.name, owner.slack_user_id)
        out.append(Planned("slack", post, "merged", _slack_merged(ctx, post, who)))
    return out


def _slack_merged(ctx: dict[str, Any], channel: str, owner: str) -> dict[str, Any]:
    c = ctx["contact"]
    company = f" ({cards.esc(c['company'])})" if c["company"] else ""
    lead = f"<{ctx['lead_url']}|{ctx['lead_id'][:8]}>"
    line = (
        f":leftwards_arrow_with_hook: *{cards.esc(c['display'])}*{company} came back: a new touch "
        f"from {cards.esc(ctx['source'])} ({ctx['channel']}) was merged into lead {lead} "
        f"({owner})."
    )
    if ctx["message"]:
        line += f"\n>{cards.esc(ctx['message'])}"
    text = f"{c['display']} came back: a new touch was merged into lead {ctx['lead_id']}"
    return {
        "channel": channel,
        "text": cards.esc(text),
        "blocks": [{"type": "section", "text": cards.md(line)}, cards.button(ctx["lead_url"])],
    }
