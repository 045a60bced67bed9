"""Who hears about a lead and through which channels: the policy's people as recipients, and
the sends each one gets. Pure; shared by the people planners (people.py, notes.py).

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

from services.notify.domain.messages import Planned
from services.notify.domain.render import render_mail
from shared.events import Person
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
class Recipient:
    person: Person
    slack_user_id: str | None
    channels: tuple[str, ...]
    zone: ZoneInfo | None  # the reader's zone, for due times in e-mails


# --- who, and through which channels ---------------------------------------------------------


def rep_of(policy: Policy, person: Person) -> tuple[Team, Rep] | None:
    return policy.rep(person.id) if person.id else None


def owner_recipient(
    policy: Policy, person: Person, team: Team | None, *, level: int | None
) -> Recipient:
    """A rep as a recipient: their Slack id, zone and channels (rep -> team -> level -> email)."""
    found = rep_of(policy, person)
    rep = found[1] if found else None
    scopes = [s.notify for s in (rep, team) if s is not None]
    chosen = next(
        (c for c in (p.assignment if level is None else p.for_level(level) for p in scopes) if c),
        None,
    )
    return Recipient(
        person=person,
        slack_user_id=rep.slack_user_id if rep else None,
        channels=chosen or (level_channels(policy, level) if level else None) or DEFAULT_CHANNELS,
        zone=rep.zone if rep else None,
    )


def manager_recipient(policy: Policy, person: Person, team: Team | None, level: int) -> Recipient:
    """The manager: the team's Slack id only if this is the team's manager (a rep's own
    `manager_email` names a person the policy knows nothing else about)."""
    is_team_manager = team is not None and team.manager.email.lower() == person.email.lower()
    chosen = team.notify.for_level(level) if team is not None else None
    return Recipient(
        person=person,
        slack_user_id=team.manager.slack_user_id if team is not None and is_team_manager else None,
        channels=chosen or level_channels(policy, level) or DEFAULT_CHANNELS,
        zone=None,
    )


def level_channels(policy: Policy, level: int) -> tuple[str, ...] | None:
    found = next((e for e in policy.escalation if e.level == level), None)
    return found.channels if found else None


def routes(
    people: list[Recipient], team: Team | None, links: PeopleLinks
) -> tuple[list[tuple[Recipient, str]], str | None]:
    """Each recipient's (recipient, "slack"|"email") sends, and the team channel to post in."""
    channel = team.slack_channel if team is not None and links.slack_enabled else None
    post = channel if any("team_channel" in r.channels for r in people) else None
    sends: list[tuple[Recipient, str]] = []
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


def mail(
    r: Recipient, sender: str, subject: str, template: str, ctx: dict[str, Any], *, kind: str
) -> Planned:
    text, html = render_mail(template, ctx)
    body = {"to": r.person.email, "from": sender, "subject": subject, "text": text, "html": html}
    return Planned("email", r.person.email, kind, body)


def dedupe(planned: list[Planned]) -> list[Planned]:
    """One message per (channel, target, kind): a rep who is also the manager hears once."""
    seen: set[tuple[str, str, str]] = set()
    out = []
    for p in planned:
        key = (p.channel, p.target.lower(), p.kind)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out
