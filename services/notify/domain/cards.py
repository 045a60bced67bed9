"""What a message to a person says: the template context of each kind of message, and its
Slack Block Kit form. Pure; people.py decides who gets which.

Everything that came from a lead (names, company, message) is escaped for Slack's mrkdwn, so
a form that says `<!channel>` pings nobody; HTML e-mail is escaped by the templates.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from services.notify.domain.localtime import format_duration, format_short
from shared.events import Contact, LeadAssigned, LeadEscalated

TOP_REASONS = 3
MESSAGE_CHARS = 500
EARLIER_SHOWN = 5


def lead_link(lead_url: str, lead_id: str) -> str:
    return lead_url.replace("{lead_id}", lead_id)


def display_name(contact: Contact) -> str:
    name = " ".join(p for p in (contact.first_name, contact.last_name) if p)
    return name or contact.email or "Unnamed contact"


def contact_context(contact: Contact, source: str) -> dict[str, Any]:
    lines = [
        ("Email", contact.email),
        ("Phone", contact.phone),
        ("Title", contact.title),
        ("Company", contact.company),
        ("Country", contact.country),
        ("Source", source),
    ]
    return {
        "display": display_name(contact),
        "title": contact.title,
        "company": contact.company,
        "lines": [(label, value) for label, value in lines if value],
    }


def clip(text: str | None, limit: int) -> str | None:
    if not text:
        return None
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def assignment_context(a: LeadAssigned, *, lead_url: str, zone: ZoneInfo | None) -> dict[str, Any]:
    """What the owner's card and e-mail show; `zone` is the reader's (the owner's) zone."""
    matched = [r for r in a.breakdown if r.matched and r.points]
    matched.sort(key=lambda r: -abs(r.points))
    return {
        "lead_id": a.lead_id,
        "lead_url": lead_link(lead_url, a.lead_id),
        "owner_name": a.owner.name,
        "team_name": a.team.name,
        "score": a.score,
        "tier": a.tier,
        "stage": a.stage,
        "reasons": [
            {"points": r.points, "reason": r.reason, "rule_id": r.rule_id}
            for r in matched[:TOP_REASONS]
        ],
        "due": format_short(a.sla.due_at, zone),
        "due_at": a.sla.due_at,
        "sla_window": format_duration(a.sla.window_seconds),
        "sla_clock": "business-hours" if a.sla.clock == "business" else "wall-clock",
        "contact": contact_context(a.lead.contact, a.lead.source),
        "account_name": a.account.name if a.account else None,
        "message": clip(a.lead.message, MESSAGE_CHARS),
        "earlier": [
            {"lead_id": lid, "url": lead_link(lead_url, lid)}
            for lid in a.earlier_leads[:EARLIER_SHOWN]
        ],
        "rule_id": a.routing.rule_id,
        "reassigned_from": a.previous_owner.name if a.previous_owner else None,
        "reassign_reason": a.reason,
        "new_owner": a.owner.name,
        "reason": a.reason,
    }


def escalation_context(
    e: LeadEscalated, *, lead_url: str, zone: ZoneInfo | None, to_manager: bool
) -> dict[str, Any]:
    return {
        "lead_id": e.lead_id,
        "lead_url": lead_link(lead_url, e.lead_id),
        "owner_name": e.owner.name if e.owner else "",
        "manager_name": e.manager.name if e.manager else "",
        "level": e.level,
        "action": e.action,
        "due": format_short(e.due_at, zone),
        "due_at": e.due_at,
        "overdue": format_duration(e.seconds_overdue),
        "to_manager": to_manager,
    }


# --- Slack -----------------------------------------------------------------------------------


def esc(text: object) -> str:
    """Slack mrkdwn escaping: only &, < and > are control characters."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mention(name: str, slack_user_id: str | None) -> str:
    return f"<@{slack_user_id}>" if slack_user_id else f"*{esc(name)}*"


def slack_time(at: datetime, fallback: str) -> str:
    """Shown in each reader's own Slack time zone; `fallback` where the client cannot."""
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} at {{time}}|{esc(fallback)}>"


def _plain(text: str, limit: int = 150) -> dict[str, Any]:
    return {"type": "plain_text", "text": text[:limit], "emoji": True}


def md(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text[:3000]}


def button(url: str) -> dict[str, Any]:
    return {
        "type": "actions",
        "elements": [{"type": "button", "text": _plain("Open lead"), "url": url}],
    }


def slack_assignment(ctx: dict[str, Any], *, owner: str, channel: str) -> dict[str, Any]:
    """The assignment card; `owner` is how the owner is named (a mention or their name).
    `text` is the notification's fallback and is mrkdwn too, so it is escaped as well."""
    c = ctx["contact"]
    who = f"*{esc(c['display'])}*"
    if c["title"]:
        who += f", {esc(c['title'])}"
    if c["company"]:
        who += f" at {esc(c['company'])}"
    due = slack_time(ctx["due_at"], ctx["due"])
    fields = [
        md(f"*Owner*\n{owner} · {esc(ctx['team_name'])}"),
        md(f"*Score*\n{ctx['score']} ({esc(ctx['tier'])}, {esc(ctx['stage'])})"),
        md(f"*First contact due*\n{due} ({ctx['sla_window']} {ctx['sla_clock']})"),
    ]
    fields += [md(f"*{label}*\n{esc(value)}") for label, value in c["lines"][:7]]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(f"New lead: {c['display']}")},
        {"type": "section", "text": md(who), "fields": fields[:10]},
    ]
    if ctx["reasons"]:
        lines = "\n".join(f"• {r['points']:+d} {esc(r['reason'])}" for r in ctx["reasons"])
        blocks.append({"type": "section", "text": md(f"*Why this score*\n{lines}")})
    if ctx["message"]:
        blocks.append({"type": "section", "text": md(f"*Message*\n>{esc(ctx['message'])}")})
    notes = []
    if ctx["reassigned_from"]:
        why = f" ({esc(ctx['reassign_reason'])})" if ctx["reassign_reason"] else ""
        notes.append(f"Reassigned from {esc(ctx['reassigned_from'])}{why}")
    if ctx["account_name"]:
        notes.append(f"Account: {esc(ctx['account_name'])}")
    if ctx["earlier"]:
        links = ", ".join(f"<{e['url']}|{e['lead_id'][:8]}>" for e in ctx["earlier"])
        notes.append(f"Earlier touches: {links}")
    if notes:
        blocks.append({"type": "context", "elements": [md(n) for n in notes]})
    blocks.append(button(ctx["lead_url"]))
    company = f" ({c['company']})" if c["company"] else ""
    text = (
        f"New lead for {ctx['owner_name']}: {c['display']}{company}, score {ctx['score']} "
        f"{ctx['tier']}, first contact due {ctx['due']}"
    )
    return {"channel": channel, "text": esc(text), "blocks": blocks}


def slack_reassigned_away(ctx: dict[str, Any], *, channel: str) -> dict[str, Any]:
    why = f" ({ctx['reason']})" if ctx["reason"] else ""
    text = (
        f"A lead you owned, {ctx['contact']['display']}, was reassigned to "
        f"{ctx['new_owner']}{why}. You no longer need to contact them."
    )
    return {
        "channel": channel,
        "text": esc(text),
        "blocks": [{"type": "section", "text": md(esc(text))}, button(ctx["lead_url"])],
    }


def slack_escalation(
    ctx: dict[str, Any], *, owner: str, manager: str, channel: str
) -> dict[str, Any]:
    due = slack_time(ctx["due_at"], ctx["due"])
    lead = f"<{ctx['lead_url']}|{ctx['lead_id'][:8]}>"
    if ctx["to_manager"]:
        line = (
            f":rotating_light: {owner} has not contacted lead {lead} yet: first contact was "
            f"due {due}, *{ctx['overdue']} ago* (escalation level {ctx['level']})."
        )
        text = (
            f"{ctx['owner_name']} has not contacted lead {ctx['lead_id']}: {ctx['overdue']} overdue"
        )
    else:
        cc = f" {manager} is told as well." if ctx["action"] == "notify_manager" else ""
        line = (
            f":alarm_clock: {owner}, lead {lead} is waiting for your first contact: it was due "
            f"{due}, *{ctx['overdue']} ago* (escalation level {ctx['level']}).{cc}"
        )
        text = f"Reminder: lead {ctx['lead_id']} is {ctx['overdue']} overdue"
    return {
        "channel": channel,
        "text": esc(text),
        "blocks": [{"type": "section", "text": md(line)}, button(ctx["lead_url"])],
    }
