"""Which messages to people (the owner, the manager, the lead) one consumed event causes.

Pure: the event and the routing policy in, `Planned` messages out, rendered now so a policy
reload never changes a message already planned.

Who hears what:
- lead.assigned: the owner gets the assignment card; on a reassignment the previous owner is
  told too. A first assignment from a source with `acknowledge` also plans the lead's reply.
- lead.escalated: remind_owner tells the owner; notify_manager the owner and the manager;
  reassign nothing (the lead.assigned it causes tells both owners). An ownerless one (a
  parked lead's waiting clock) tells the team's manager (notes.py).
- lead.parked: a note in the team's Slack channel if the team posts assignments there;
  lead.merged: a note to the open lead's owner that the contact came back (notes.py).
- lead.disqualified, lead.nurtured, lead.reengage and types notify does not know: nobody
  (a re-engaged lead's lead.assigned sends the card).

Channels: recipients.py.
"""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from services.notify.domain import cards, notes
from services.notify.domain.localtime import format_local, lead_zone
from services.notify.domain.messages import Planned
from services.notify.domain.recipients import (
    PeopleLinks,
    Recipient,
    dedupe,
    mail,
    manager_recipient,
    owner_recipient,
    rep_of,
    routes,
)
from services.notify.domain.render import missing_templates, render_mail, render_subject
from shared.events import CloudEvent, LeadAssigned, LeadEscalated, LeadMerged, LeadParked, Person
from shared.policy import Policy, Team

__all__ = ["PeopleLinks", "plan_people", "template_errors", "valid_email"]


def plan_people(event: CloudEvent, policy: Policy, *, links: PeopleLinks) -> list[Planned]:
    """The Slack and e-mail messages to people that `event` causes (none for other types)."""
    if event.type == "lead.assigned":
        assigned: LeadAssigned = event.payload()
        return dedupe(_assigned(assigned, policy, links) + _acknowledgement(assigned, policy))
    if event.type == "lead.escalated":
        escalated: LeadEscalated = event.payload()
        if escalated.owner is None:
            return dedupe(notes.waiting(escalated, policy, links))
        return dedupe(_escalated(escalated, policy, links))
    if event.type == "lead.parked":
        parked: LeadParked = event.payload()
        return notes.parked(parked, policy, links)
    if event.type == "lead.merged":
        merged: LeadMerged = event.payload()
        return dedupe(notes.merged(merged, policy, links))
    return []


# --- lead.assigned ---------------------------------------------------------------------------


def _assigned(a: LeadAssigned, policy: Policy, links: PeopleLinks) -> list[Planned]:
    team = policy.team(a.team.id)
    owner = owner_recipient(policy, a.owner, team, level=None)
    sends, post = routes([owner], team, links)
    out = [_assignment_msg(a, r, how, links) for r, how in sends]
    if post:
        ctx = cards.assignment_context(a, lead_url=links.lead_url, zone=None)
        body = cards.slack_assignment(
            ctx, owner=cards.mention(a.owner.name, owner.slack_user_id), channel=post
        )
        out.append(Planned("slack", post, "assignment", body))
    if a.previous_owner is not None:
        found = rep_of(policy, a.previous_owner)
        prev_team = found[0] if found else None
        prev = owner_recipient(policy, a.previous_owner, prev_team, level=None)
        prev_sends, _ = routes([prev], prev_team, links)
        out += [_reassigned_msg(a, r, how, links) for r, how in prev_sends]
    return out


def _assignment_msg(a: LeadAssigned, r: Recipient, how: str, links: PeopleLinks) -> Planned:
    ctx = cards.assignment_context(a, lead_url=links.lead_url, zone=r.zone)
    if how == "slack":
        assert r.slack_user_id is not None
        body = cards.slack_assignment(ctx, owner="you", channel=r.slack_user_id)
        return Planned("slack", r.slack_user_id, "assignment", body)
    c = ctx["contact"]
    company = f" ({c['company']})" if c["company"] else ""
    verb = "Reassigned lead" if a.previous_owner else "New lead"
    subject = f"{verb}: {c['display']}{company}, {a.tier}, first contact by {ctx['due']}"
    return mail(r, links.default_from, subject, "assignment", ctx, kind="assignment")


def _reassigned_msg(a: LeadAssigned, r: Recipient, how: str, links: PeopleLinks) -> Planned:
    ctx = cards.assignment_context(a, lead_url=links.lead_url, zone=r.zone)
    if how == "slack":
        assert r.slack_user_id is not None
        body = cards.slack_reassigned_away(ctx, channel=r.slack_user_id)
        return Planned("slack", r.slack_user_id, "reassignment", body)
    subject = f"Lead reassigned to {a.owner.name}: {ctx['contact']['display']}"
    return mail(r, links.default_from, subject, "reassignment", ctx, kind="reassignment")


# --- lead.escalated --------------------------------------------------------------------------


def _escalated(e: LeadEscalated, policy: Policy, links: PeopleLinks) -> list[Planned]:
    if e.action == "reassign" or e.owner is None:
        return []  # reassign: the lead.assigned it causes tells both owners
    team = policy.team(e.team_id)
    owner = owner_recipient(policy, e.owner, team, level=e.level)
    people = [owner]
    manager: Recipient | None = None
    if e.action == "notify_manager":
        person = e.manager or _policymanager_recipient(policy, e.owner, team)
        if person is not None:
            manager = manager_recipient(policy, person, team, e.level)
            people.append(manager)
    sends, post = routes(people, team, links)
    owner_tag = cards.mention(e.owner.name, owner.slack_user_id)
    manager_tag = cards.mention(manager.person.name, manager.slack_user_id) if manager else ""
    out = []
    for r, how in sends:
        to_manager = r is manager
        ctx = cards.escalation_context(
            e, lead_url=links.lead_url, zone=r.zone, to_manager=to_manager
        )
        if how == "slack":
            assert r.slack_user_id is not None
            you = owner_tag if to_manager else "you"
            body = cards.slack_escalation(
                ctx, owner=you, manager=manager_tag, channel=r.slack_user_id
            )
            out.append(Planned("slack", r.slack_user_id, "escalation", body))
        else:
            subject = (
                f"Overdue lead ({e.owner.name}): first contact {ctx['overdue']} late"
                if to_manager
                else f"Reminder: your lead is {ctx['overdue']} past its first-contact time"
            )
            out.append(mail(r, links.default_from, subject, "escalation", ctx, kind="escalation"))
    if post:
        ctx = cards.escalation_context(e, lead_url=links.lead_url, zone=None, to_manager=False)
        body = cards.slack_escalation(ctx, owner=owner_tag, manager=manager_tag, channel=post)
        out.append(Planned("slack", post, "escalation", body))
    return out


def _policymanager_recipient(policy: Policy, owner: Person, team: Team | None) -> Person | None:
    found = rep_of(policy, owner)
    if team is None:
        return None
    email = team.manager_email_for(found[1]) if found else team.manager.email
    name = team.manager.name if email == team.manager.email else email
    return Person(name=name, email=email)


# --- the lead's acknowledgement --------------------------------------------------------------


def valid_email(address: str | None) -> str | None:
    """The address normalised if it is a deliverable-looking e-mail (syntax only, no DNS)."""
    if not address:
        return None
    try:
        return validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def _acknowledgement(a: LeadAssigned, policy: Policy) -> list[Planned]:
    """The reply to the lead's own request, only after their first assignment (a reassignment
    or a merged touch never sends a second one; lead.disqualified and lead.merged never get
    here), only if their source opted in, only to a valid address."""
    if a.previous_owner is not None or a.assignment_seq != 1:
        return []
    source = policy.source(a.lead.source)
    ack = source.acknowledge if source is not None else None
    to = valid_email(a.lead.contact.email)
    if ack is None or to is None:
        return []
    contact = a.lead.contact
    zone = lead_zone(contact, a.sla.due_at)
    sender_name = ack.from_.split("<", 1)[0].strip().strip('"') or ack.from_
    ctx = {
        "first_name": contact.first_name,
        "company": contact.company,
        "owner_name": a.owner.name,
        "team_name": a.team.name,
        "expect_by": format_local(a.sla.due_at, zone),
        "sender_name": sender_name,
    }
    text, html = render_mail(ack.template, ctx)
    body = {
        "to": to,
        "from": ack.from_,
        "subject": render_subject(ack.subject, {k: v or "" for k, v in ctx.items()}),
        "text": text,
        "html": html,
    }
    if ack.reply_to_owner:
        body["reply_to"] = a.owner.email
    return [Planned("email", to, "acknowledgement", body, delay_seconds=float(ack.delay_seconds))]


def template_errors(policy: Policy) -> list[str]:
    """Acknowledgement templates the policy names that notify does not have (checked when
    notify starts, so a typo refuses to start instead of failing every acknowledgement)."""
    return missing_templates(
        {
            f"sources[{i}].acknowledge.template": s.acknowledge.template
            for i, s in enumerate(policy.sources)
            if s.acknowledge is not None
        }
    )
