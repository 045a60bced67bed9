"""One lead's timeline in plain words, from what the router and followup stored (pure).

Every line comes from ids, policy words and times: the audit rows never hold the contact's
email, phone or name; the one free text (an activity note) is scrubbed of email- and
phone-shaped strings.
Reps are named by id and, when the policy knows them, by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ops.explain.queries import LeadAudit
from shared.logs import scrub
from shared.policy import Policy


@dataclass(frozen=True, slots=True)
class Entry:
    at: datetime | None
    text: str
    details: tuple[str, ...] = ()


def _t(at: datetime | None) -> str:
    if at is None:
        return "-"
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if abs(seconds) < 120:
        return f"{seconds} s"
    if abs(seconds) < 7200:
        return f"{seconds / 60:.0f} min"
    if abs(seconds) < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


class _Names:
    def __init__(self, policy: Policy | None) -> None:
        self.policy = policy

    def rep(self, rep_id: str | None) -> str:
        if not rep_id:
            return "nobody"
        found = self.policy.rep(rep_id) if self.policy else None
        return f"{found[1].name} ({rep_id})" if found else rep_id


def _decision_entry(
    d: dict[str, Any], assignments: dict[int, dict[str, Any]], n: _Names, lead: dict[str, Any]
) -> Entry:
    # older traces lack score/tier: the lead row has the first decision's
    trace: dict[str, Any] = {"score": lead.get("score"), "tier": lead.get("tier")}
    trace.update({k: v for k, v in (d["trace"] or {}).items() if v is not None})
    kind = d["kind"]
    lines = tuple(str(x) for x in trace.get("explanation", []))
    version = f" [policy {d['policy_version']}]"
    nurture = _nurture_text(kind, trace, assignments, n)
    if nurture is not None:
        return Entry(d["at"], nurture + version, lines)
    if kind in ("assigned", "reassigned"):
        seq = int(trace.get("seq") or 1)
        a = assignments.get(seq, {})
        owner = n.rep(trace.get("owner_id") or a.get("owner_id"))
        team = trace.get("team_id") or a.get("team_id")
        rule = trace.get("rule_id") or a.get("rule_id")
        strategy = trace.get("strategy") or a.get("strategy")
        why = a.get("reason") or ""
        due = a.get("due_at") or trace.get("due_at")
        due_text = _t(due) if isinstance(due, datetime) else str(due or "-")
        score = f"score {trace.get('score')}, tier {trace.get('tier')}"
        if kind == "assigned":
            text = (
                f"Assigned to {owner} in team {team} by rule {rule} ({strategy}); {score}. "
                f"Why: {why}. First contact due {due_text}."
            )
        else:
            previous = n.rep(trace.get("previous_owner_id") or a.get("previous_owner_id"))
            text = (
                f"Reassigned (assignment {seq}) from {previous} to {owner} in team {team}: "
                f"{trace.get('reason') or 'no reason recorded'}. Why this rep: {why}. "
                f"New first-contact deadline {due_text}."
            )
        return Entry(d["at"], text + version, lines)
    if kind == "merged":
        owner = n.rep(trace.get("owner_id"))
        text = f"Merged into open lead {trace.get('into_lead_id')} (owner {owner})."
        return Entry(d["at"], text + version, lines)
    if kind == "disqualified":
        text = (
            f"Disqualified by rule {trace.get('rule_id')} ({trace.get('reason')}); "
            f"score {trace.get('score')}, tier {trace.get('tier')}. Not handed to sales."
        )
        return Entry(d["at"], text + version, lines)
    if kind == "unassigned":
        text = (
            f"Left unassigned: rule {trace.get('rule_id')} found no eligible rep "
            f"({trace.get('reason')}); score {trace.get('score')}, tier {trace.get('tier')}."
        )
        return Entry(d["at"], text + version, lines)
    if kind == "reassign_failed":
        text = (
            f"Reassignment away from {n.rep(trace.get('owner_id'))} failed "
            f"({trace.get('reason')}): no other eligible rep; the lead stays with its owner."
        )
        return Entry(d["at"], text + version, lines)
    return Entry(d["at"], f"Decision {kind}{version}.", lines)


def _nurture_text(
    kind: str, trace: dict[str, Any], assignments: dict[int, dict[str, Any]], n: _Names
) -> str | None:
    """The nurture track's decisions (`services.router.domain.handoff`), or None for others."""
    score = f"score {trace.get('score')}, tier {trace.get('tier')}"
    score += f", stage {trace['stage']}" if trace.get("stage") else ""
    if kind == "nurtured":
        touch = trace.get("touch_lead_id")
        why = f"a new touch ({touch}) re-scored it: " if touch else ""
        return (
            f"Nurtured by rule {trace.get('rule_id')}: {why}{score}, below the handoff to sales; "
            f"no owner, no SLA. Re-engage on {trace.get('reengage_at')}."
        )
    if kind in ("handoff", "reengaged"):
        seq = int(trace.get("seq") or 1)
        a = assignments.get(seq, {})
        owner = n.rep(trace.get("owner_id") or a.get("owner_id"))
        due = a.get("due_at") or trace.get("due_at")
        due_text = _t(due) if isinstance(due, datetime) else str(due or "-")
        what = (
            f"Handed to sales ({trace.get('reason')})"
            if kind == "handoff"
            else "Re-engaged: routed afresh"
        )
        return (
            f"{what}: assigned to {owner} in team {trace.get('team_id') or a.get('team_id')} "
            f"by rule {trace.get('rule_id')} ({trace.get('strategy')}); {score}. "
            f"First contact due {due_text}."
        )
    if kind == "reengage_failed":
        return f"Re-engagement found nobody to take the lead ({trace.get('reason')})."
    if kind == "reengage_disqualified":
        return (
            f"Re-engagement: disqualified by rule {trace.get('rule_id')} "
            f"({trace.get('reason')}) under the current policy; {score}. Closed."
        )
    return None


def _activity_entry(act: dict[str, Any], n: _Names) -> Entry:
    words = {
        "contacted": "contacted the lead",
        "accepted": "accepted the lead",
        "rejected": "rejected the lead",
        "disqualified": "disqualified the lead",
        "converted": "converted the lead",
        "not_ready": "marked the lead not ready",
    }
    text = f"{n.rep(act['actor'])} {words.get(act['type'], act['type'])}"
    if act.get("reengage_at"):
        text += f", re-engage on {_t(act['reengage_at'])}"
    if act.get("other_owner"):
        text += " (not the owner at the time)"
    if act.get("note"):
        text += f'. Note: "{scrub(str(act["note"]))}"'
    return Entry(act["at"], text + ".")


def timeline(audit: LeadAudit, policy: Policy | None = None) -> list[Entry]:
    """Entries in time order (stable for equal times: stored order)."""
    n = _Names(policy)
    lead = audit.lead
    entries: list[tuple[datetime, int, Entry]] = []
    far = datetime.max.replace(tzinfo=UTC)

    def add(at: datetime | None, order: int, entry: Entry) -> None:
        entries.append((at or far, order, entry))

    add(
        lead["received_at"],
        0,
        Entry(
            lead["received_at"],
            f"Received from source {lead['source']} ({lead.get('channel') or 'unknown channel'}).",
        ),
    )
    assignments = {int(a["seq"]): a for a in audit.assignments}
    for d in audit.decisions:
        add(d["at"], 1, _decision_entry(d, assignments, n, lead))
    for touch in audit.merged_touches:
        add(
            touch["received_at"],
            2,
            Entry(
                touch["received_at"],
                f"The same contact came back through {touch['source']}: touch "
                f"{touch['lead_id']} was merged into this lead.",
            ),
        )
    clock = audit.clock
    if clock is not None:
        window = _duration(clock["window_seconds"])
        text = (
            f"SLA clock for assignment {clock['assignment_seq']} ({n.rep(clock['owner_id'])}, "
            f"team {clock['team_id']}): tier {clock['tier']}, {window} to first contact, "
            f"due {_t(clock['due_at'])}; now {clock['status']}."
        )
        add(clock["started_at"], 3, Entry(clock["started_at"], text))
        if clock.get("contacted_at") is not None:
            late = (clock["contacted_at"] - clock["due_at"]).total_seconds()
            took = (clock["contacted_at"] - clock["started_at"]).total_seconds()
            verdict = "within the SLA" if late <= 0 else f"{_duration(late)} after the deadline"
            add(
                clock["contacted_at"],
                4,
                Entry(
                    clock["contacted_at"],
                    f"First contact {_duration(took)} after assignment, {verdict}.",
                ),
            )
    for e in audit.escalations:
        add(
            e["fired_at"],
            5,
            Entry(
                e["fired_at"],
                f"Escalation level {e['level']} ({e['action'].replace('_', ' ')}) on assignment "
                f"{e['assignment_seq']}, team {e['team_id']}: deadline {_t(e['due_at'])} "
                f"missed by {_duration(e['seconds_late'])}.",
            ),
        )
    for act in audit.activities:
        add(act["at"], 6, _activity_entry(act, n))
    if lead.get("closed_at") is not None:
        add(
            lead["closed_at"],
            7,
            Entry(lead["closed_at"], f"Closed for routing as {lead['status']}."),
        )
    entries.sort(key=lambda e: (e[0], e[1]))
    return [e for _, _, e in entries]


def render(audit: LeadAudit, policy: Policy | None = None) -> str:
    lead = audit.lead
    owner = _Names(policy).rep(lead.get("owner_id"))
    head = (
        f"Lead {lead['lead_id']}: {lead['status']}, owner {owner}, team {lead.get('team_id') or '-'}"
        f", score {lead.get('score')}, tier {lead.get('tier') or '-'}, stage "
        f"{lead.get('stage') or '-'}, decided by policy {lead['policy_version']}"
    )
    out = [head, ""]
    for entry in timeline(audit, policy):
        out.append(f"{_t(entry.at)}  {entry.text}")
        out += [f"{'':23}  | {line}" for line in entry.details]
    return "\n".join(out) + "\n"
