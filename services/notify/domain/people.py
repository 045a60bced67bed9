"""Which messages to people (the owner, the manager, the lead) one consumed event causes.

Pure: the event and the routing policy in, `Planned` messages out, rendered now so a policy
reload never changes a message already planned.

Who hears what:
- lead.assigned: the owner gets the assignment card; on a reassignment the previous owner is
  told too. A first assignment from a source with `acknowledge` also plans the lead's reply.
- lead.escalated: remind_owner tells the owner; notify_manager the owner and the manager;
  reassign nothing (the lead.assigned it causes tells both owners).

Which channels: the rep's `notify`, else the team's, else (escalations) the level's
`channels`, else e-mail. `slack` is a direct message and needs the person's slack_user_id;
`team_channel` posts once in the team's slack_channel naming them. Whoever none of the chosen
channels reaches (no Slack id, Slack not configured) is e-mailed: a person the policy names
always hears.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from email_validator import EmailNotValidError, validate_email

from services.notify.domain import cards
from services.notify.domain.localtime import format_local, lead_zone
from services.notify.domain.messages import Planned
from services.notify.domain.render import missing_templates, render_mail, render_subject
from shared.events import CloudEvent, LeadAssigned, LeadEscalated, Person
from shared.policy import Policy, Rep, Team

DEFAULT_CHANNELS = ("email",)


@dataclass(frozen=True)
class PeopleLinks:
    """What people messages need from notify's settings.

    `lead_url` is a format string with `{lead_id}` (a link to the lead in the admin API or the
    CRM); `default_from` is the sender address of e-mails to reps and managers;
    `slack_enabled` is false when no Slack token is configured (everyone gets e-mail)."""

    lead_url: str
    default_from: str
    slack_enabled: bool = True


@dataclass(frozen=True)
class _Recipient:
    person: Person
    slack_user_id: str | None
    channels: tuple[str, ...]
    zone: ZoneInfo | None  # the reader's zone, for due times in e-mails


def plan_people(event: CloudEvent, policy: Policy, *, links: PeopleLinks) -> list[Planned]:
    """The Slack and e-mail messages to people that `event` causes (none for other types)."""
    if event.type == "lead.assigned":
        assigned: LeadAssigned = event.payload()
        return _dedupe(_assigned(assigned, policy, links) + _acknowledgement(assigned, policy))
    if event.type == "lead.escalated":
        escalated: LeadEscalated = event.payload()
        return _dedupe(_escalated(escalated, policy, links))
    return []


# --- who, and through which channels ---------------------------------------------------------


def _rep(policy: Policy, person: Person) -> tuple[Team, Rep] | None:
    return policy.rep(person.id) if person.id else None


def _owner(policy: Policy, person: Person, team: Team | None, *, level: int | None) -> _Recipient:
    """A rep as a recipient: their Slack id, zone and channels (rep -> team -> level -> email)."""
    found = _rep(policy, person)
    rep = found[1] if found else None
    scopes = [s.notify for s in (rep, team) if s is not None]
    chosen = next(
        (c for c in (p.assignment if level is None else p.for_level(level) for p in scopes) if c),
        None,
    )
    return _Recipient(
        person=person,
        slack_user_id=rep.slack_user_id if rep else None,
        channels=chosen or (_level_channels(policy, level) if level else None) or DEFAULT_CHANNELS,
        zone=rep.zone if rep else None,
    )


def _manager(policy: Policy, person: Person, team: Team | None, level: int) -> _Recipient:
    """The manager: the team's Slack id only if this is the team's manager (a rep's own
    `manager_email` names a person the policy knows nothing else about)."""
    is_team_manager = team is not None and team.manager.email.lower() == person.email.lower()
    chosen = team.notify.for_level(level) if team is not None else None
    return _Recipient(
        person=person,
        slack_user_id=team.manager.slack_user_id if team is not None and is_team_manager else None,
        channels=chosen or _level_channels(policy, level) or DEFAULT_CHANNELS,
        zone=None,
    )


def _level_channels(policy: Policy, level: int) -> tuple[str, ...] | None:
    found = next((e for e in policy.escalation if e.level == level), None)
    return found.channels if found else None


def _routes(
    people: list[_Recipient], team: Team | None, links: PeopleLinks
) -> tuple[list[tuple[_Recipient, str]], str | None]:
    """Each recipient's (recipient, "slack"|"email") sends, and the team channel to post in."""
    channel = team.slack_channel if team is not None and links.slack_enabled else None
    post = channel if any("team_channel" in r.channels for r in people) else None
    sends: list[tuple[_Recipient, str]] = []
    for r in people:
        mine = []
        if "slack" in r.channels and links.slack_enabled and r.slack_user_id:
            mine.append((r, "slack"))
        if "email" in r.channels:
            mine.append((r, "email"))
        if not mine and not (post and "team_channel" in r.channels):
            mine.append((r, "email"))  # nobody named goes unheard
        sends += mine
    return sends, post


# --- lead.assigned ---------------------------------------------------------------------------


def _assigned(a: LeadAssigned, policy: Policy, links: PeopleLinks) -> list[Planned]:
    team = policy.team(a.team.id)
    owner = _owner(policy, a.owner, team, level=None)
    sends, post = _routes([owner], team, links)
    out = [_assignment_msg(a, r, how, links) for r, how in sends]
    if post:
        ctx = cards.assignment_context(a, lead_url=links.lead_url, zone=None)
        body = cards.slack_assignment(
            ctx, owner=cards.mention(a.owner.name, owner.slack_user_id), channel=post
        )
        out.append(Planned("slack", post, "assignment", body))
    if a.previous_owner is not None:
        found = _rep(policy, a.previous_owner)
        prev_team = found[0] if found else None
        prev = _owner(policy, a.previous_owner, prev_team, level=None)
        prev_sends, _ = _routes([prev], prev_team, links)
        out += [_reassigned_msg(a, r, how, links) for r, how in prev_sends]
    return out


def _assignment_msg(a: LeadAssigned, r: _Recipient, how: str, links: PeopleLinks) -> Planned:
    ctx = cards.assignment_context(a, lead_url=links.lead_url, zone=r.zone)
    if how == "slack":
        assert r.slack_user_id is not None
        body = cards.slack_assignment(ctx, owner="you", channel=r.slack_user_id)
        return Planned("slack", r.slack_user_id, "assignment", body)
    c = ctx["contact"]
    company = f" ({c['company']})" if c["company"] else ""
    verb = "Reassigned lead" if a.previous_owner else "New lead"
    subject = f"{verb}: {c['display']}{company}, {a.tier}, first contact by {ctx['due']}"
    return _mail(r, links.default_from, subject, "assignment", ctx, kind="assignment")


def _reassigned_msg(a: LeadAssigned, r: _Recipient, how: str, links: PeopleLinks) -> Planned:
    ctx = cards.assignment_context(a, lead_url=links.lead_url, zone=r.zone)
    if how == "slack":
        assert r.slack_user_id is not None
        body = cards.slack_reassigned_away(ctx, channel=r.slack_user_id)
        return Planned("slack", r.slack_user_id, "reassignment", body)
    subject = f"Lead reassigned to {a.owner.name}: {ctx['contact']['display']}"
    return _mail(r, links.default_from, subject, "reassignment", ctx, kind="reassignment")


def _mail(
    r: _Recipient, sender: str, subject: str, template: str, ctx: dict[str, Any], *, kind: str
) -> Planned:
    text, html = render_mail(template, ctx)
    body = {"to": r.person.email, "from": sender, "subject": subject, "text": text, "html": html}
    return Planned("email", r.person.email, kind, body)


# --- lead.escalated --------------------------------------------------------------------------


def _escalated(e: LeadEscalated, policy: Policy, links: PeopleLinks) -> list[Planned]:
    if e.action == "reassign" or e.owner is None:
        return []  # an ownerless (parked lead's) escalation has its own message, not this one
    team = policy.team(e.team_id)
    owner = _owner(policy, e.owner, team, level=e.level)
    people = [owner]
    manager: _Recipient | None = None
    if e.action == "notify_manager":
        person = e.manager or _policy_manager(policy, e.owner, team)
        if person is not None:
            manager = _manager(policy, person, team, e.level)
            people.append(manager)
    sends, post = _routes(people, team, links)
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
            out.append(_mail(r, links.default_from, subject, "escalation", ctx, kind="escalation"))
    if post:
        ctx = cards.escalation_context(e, lead_url=links.lead_url, zone=None, to_manager=False)
        body = cards.slack_escalation(ctx, owner=owner_tag, manager=manager_tag, channel=post)
        out.append(Planned("slack", post, "escalation", body))
    return out


def _policy_manager(policy: Policy, owner: Person, team: Team | None) -> Person | None:
    found = _rep(policy, owner)
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


def _dedupe(planned: list[Planned]) -> list[Planned]:
    """One message per (channel, target, kind): a rep who is also the manager hears once."""
    seen: set[tuple[str, str, str]] = set()
    out = []
    for p in planned:
        key = (p.channel, p.target.lower(), p.kind)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


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
