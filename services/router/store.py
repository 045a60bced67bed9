"""All SQL for the router schema. Never commits: the consumer/request edge owns the transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.router import store_identity
from services.router.domain import matching
from services.router.domain.assignment import RepState
from services.router.domain.writes import Writes as Writes  # the rows `write` takes

# One lock serialises assignment decisions across every router instance, so round-robin
# pointers and rep loads are read and written by one decision at a time.
ASSIGN_LOCK = 0x62A7_0001


@dataclass(frozen=True, slots=True)
class LeadRow:
    lead_id: str
    status: str
    owner_id: str | None
    team_id: str | None
    assignment_seq: int
    lead: dict[str, Any]
    closed_at: datetime | None


async def lock_assignments(session: AsyncSession) -> None:
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ASSIGN_LOCK})


async def rep_states(session: AsyncSession) -> dict[str, RepState]:
    rows = await session.execute(
        text("SELECT rep_id, open_leads, rr_current_weight, paused_reason FROM router.rep_state")
    )
    return {
        r.rep_id: RepState(r.rep_id, r.open_leads, r.rr_current_weight, r.paused_reason)
        for r in rows
    }


async def add_open_leads(session: AsyncSession, rep_id: str, delta: int) -> None:
    await session.execute(
        text(
            "INSERT INTO router.rep_state (rep_id, open_leads) VALUES (:rep, greatest(:d, 0)) "
            "ON CONFLICT (rep_id) DO UPDATE SET "
            "open_leads = greatest(router.rep_state.open_leads + :d, 0), updated_at = now()"
        ),
        {"rep": rep_id, "d": delta},
    )


async def get_lead(session: AsyncSession, lead_id: str, *, lock: bool = False) -> LeadRow | None:
    sql = (
        "SELECT lead_id::text, status, owner_id, team_id, assignment_seq, lead, closed_at "
        "FROM router.leads WHERE lead_id = :id"
    )
    r = (
        await session.execute(text(sql + (" FOR UPDATE" if lock else "")), {"id": lead_id})
    ).first()
    return LeadRow(*r) if r else None


async def earlier_leads(
    session: AsyncSession,
    *,
    email: str | None,
    phone: str | None,
    domain: str | None,
    exclude: str | None = None,
    limit: int = 10,
) -> list[str]:
    """Ids of earlier leads from the same contact (email or phone) or account, newest first."""
    rows = await session.execute(
        text(
            "SELECT lead_id::text FROM router.leads WHERE ((:email)::text IS NOT NULL "
            "AND email = :email OR (:phone)::text IS NOT NULL AND phone = :phone "
            "OR (:domain)::text IS NOT NULL AND company_domain = :domain) "
            "AND ((:exclude)::uuid IS NULL OR lead_id <> (:exclude)::uuid) "
            "ORDER BY received_at DESC LIMIT :limit"
        ),
        {"email": email, "phone": phone, "domain": domain, "exclude": exclude, "limit": limit},
    )
    return [r[0] for r in rows]


async def account_owner(session: AsyncSession, domain: str) -> str | None:
    owner: str | None = await session.scalar(
        text("SELECT owner_id FROM router.accounts WHERE domain = :d"), {"d": domain}
    )
    return owner


async def update_owner(
    session: AsyncSession, *, lead_id: str, owner_id: str, team_id: str, seq: int
) -> None:
    await session.execute(
        text(
            "UPDATE router.leads SET owner_id = :o, team_id = :t, assignment_seq = :s, "
            "status = 'assigned', updated_at = now() WHERE lead_id = :id"
        ),
        {"o": owner_id, "t": team_id, "s": seq, "id": lead_id},
    )


_ROUTED_COLUMNS = {
    "lead": "CAST(:lead AS jsonb)", "status": ":status", "owner_id": ":owner_id",
    "team_id": ":team_id", "assignment_seq": ":assignment_seq", "score": ":score",
    "tier": ":tier", "stage": ":stage", "open_until": ":open_until", "closed_at": ":closed_at",
}  # fmt: skip


async def update_routed(session: AsyncSession, *, lead_id: str, **values: Any) -> None:
    """A stored lead routed again (a touch on a nurtured lead, a re-engagement): the given
    columns of `_ROUTED_COLUMNS` only."""
    params = {k: v for k, v in values.items() if k in _ROUTED_COLUMNS}
    if "lead" in params:
        params["lead"] = orjson.dumps(params["lead"]).decode()
    sets = ", ".join(f"{k} = {_ROUTED_COLUMNS[k]}" for k in params)
    await session.execute(
        text(f"UPDATE router.leads SET {sets}, updated_at = now() WHERE lead_id = :id"),
        {**params, "id": lead_id},
    )


async def close_lead(session: AsyncSession, *, lead_id: str, status: str, at: datetime) -> None:
    await session.execute(
        text(
            "UPDATE router.leads SET status = :status, closed_at = :at, updated_at = now() "
            "WHERE lead_id = :id"
        ),
        {"status": status, "at": at, "id": lead_id},
    )


async def decisions_for(session: AsyncSession, lead_id: str) -> list[dict[str, Any]]:
    rows = await session.execute(
        text(
            "SELECT kind, policy_version, at, trace FROM router.decisions WHERE lead_id = :l "
            "ORDER BY id"
        ),
        {"l": lead_id},
    )
    return [dict(r._mapping) for r in rows]


async def parked_leads(session: AsyncSession, *, limit: int) -> list[dict[str, Any]]:
    """Leads no rep could take, oldest first; locked so two routers never retry the same one."""
    rows = await session.execute(
        text(
            "SELECT lead FROM router.leads WHERE status = 'unassigned' ORDER BY received_at "
            "LIMIT :limit FOR UPDATE SKIP LOCKED"
        ),
        {"limit": limit},
    )
    return [r[0] for r in rows]


async def delete_parked(session: AsyncSession, lead_id: str) -> None:
    await session.execute(
        text("DELETE FROM router.leads WHERE lead_id = :id AND status = 'unassigned'"),
        {"id": lead_id},
    )


async def count_parked(session: AsyncSession) -> int:
    return int(
        await session.scalar(text("SELECT count(*) FROM router.leads WHERE status = 'unassigned'"))
        or 0
    )


# --- erasure and retention -----------------------------------------------------------------


async def assignments_for(session: AsyncSession, lead_id: str) -> list[dict[str, Any]]:
    rows = await session.execute(
        text(
            "SELECT seq, owner_id, team_id, rule_id, strategy, reason, previous_owner_id, "
            "assigned_at, due_at, policy_version FROM router.assignments "
            "WHERE lead_id = :l ORDER BY seq"
        ),
        {"l": lead_id},
    )
    return [dict(r._mapping) for r in rows]


# --- the hot path: one read and one write per decision ------------------------------------


@dataclass(frozen=True, slots=True)
class DecisionInputs:
    """Everything a `lead.received` decision reads, fetched in one statement under the lock."""

    seen: bool  # the lead is already decided (a redelivery under another event id, a race)
    open_lead: LeadRow | None
    account_owner: str | None  # learned owner of the business domain, if any
    earlier: list[tuple[str, datetime]]  # earlier leads of the contact or account, newest first
    states: dict[str, RepState]
    matched_on: str | None = None  # the identity key that found open_lead (domain.matching)


def _recent(column: str, value: str) -> str:
    """The newest leads sharing one key, straight off its (key, received_at DESC, lead_id
    DESC) index (router_0005): ten rows read however many leads the key has. The earlier
    leads are the newest ten of the three probes together; ties on time go by id, so the
    ten are the same whichever probe found them."""
    return (
        f"(SELECT l.lead_id::text AS id, l.received_at AS at FROM router.leads l "
        f"WHERE l.{column} = {value} AND l.lead_id <> i.id "
        "ORDER BY l.received_at DESC, l.lead_id DESC LIMIT :earlier)"
    )


_INPUTS = text(
    "SELECT s.seen IS NOT NULL AS seen, "
    "(SELECT owner_id FROM router.accounts WHERE domain = i.domain) AS account_owner, "
    "er.ids, er.ats, "
    "mc.cands "
    "FROM unnest(CAST(:ids AS uuid[]), CAST(:emails AS text[]), CAST(:phones AS text[]), "
    "CAST(:domains AS text[]), CAST(:ekeys AS text[])) "
    "WITH ORDINALITY AS i (id, email, phone, domain, ekey, n) "
    # a lateral probe, not EXISTS: for a few hundred ids the planner would hash the whole table
    "LEFT JOIN LATERAL (SELECT true AS seen FROM router.leads WHERE lead_id = i.id) s ON true "
    "CROSS JOIN LATERAL (SELECT coalesce(array_agg(e.id ORDER BY e.at DESC, e.id DESC), '{}') "
    "AS ids, coalesce(array_agg(e.at ORDER BY e.at DESC, e.id DESC), '{}') AS ats FROM ("
    "SELECT m.id, m.at FROM ("
    f"{_recent('email', 'i.email')} UNION {_recent('phone', 'i.phone')} "
    f"UNION {_recent('company_domain', 'i.domain')}"
    ") m ORDER BY m.at DESC, m.id DESC LIMIT :earlier) e) er "
    + store_identity.CANDIDATES
    + " ORDER BY i.n"
)
# The open lead: the identity keys' candidates (store_identity.CANDIDATES), chosen by
# domain.matching.choose; the e-mail and phone columns still find the earlier leads.
EARLIER_LIMIT = 10


@dataclass(frozen=True, slots=True)
class LeadKeys:
    """What a decision looks other rows up by: the lead's id, contact and business domain."""

    lead_id: str
    email: str | None
    phone: str | None
    domain: str | None
    name: str | None = None  # folded (domain.matching.fold_name): evidence for a shared phone

    def keys(self) -> set[tuple[str, str]]:
        """Lookup keys two leads must not share to be decided from the same read.

        The business domain is not one: what an earlier lead of the same batch changes for
        its domain (a learned account, an earlier lead) is applied in memory by the caller.
        """
        pairs = [("id", self.lead_id), ("e", self.email), ("p", self.phone)]
        pairs.append(("k", matching.email_key(self.email)))  # +tag variants: one run each
        return {(k, v) for k, v in pairs if v}


async def decision_inputs(
    session: AsyncSession, *, leads: list[LeadKeys], now: datetime
) -> list[DecisionInputs]:
    """For each lead, the open lead (by the identity keys), what `account_owner`, `earlier_leads` and the
    already-decided check return, plus every `rep_state` row: two statements for any number
    of leads (call it holding the assignment lock). The leads must not share a lookup key
    (`LeadKeys.keys`): each one's inputs are read before any of them is written."""
    states = await rep_states(session)
    rows = await session.execute(
        _INPUTS,
        {
            "ids": [k.lead_id for k in leads],
            "emails": [k.email for k in leads],
            "phones": [k.phone for k in leads],
            "domains": [k.domain for k in leads],
            "ekeys": [matching.email_key(k.email) for k in leads],
            "now": now,
            "earlier": EARLIER_LIMIT,
        },
    )
    out = []
    for k, r in zip(leads, rows, strict=True):
        found = matching.choose(
            store_identity.candidates(r[4]), email=matching.email_key(k.email), name=k.name
        )
        out.append(
            DecisionInputs(
                seen=bool(r[0]),
                open_lead=_open_row(found.candidate) if found else None,
                account_owner=r[1],
                earlier=list(zip(r[2], r[3], strict=True)),
                states=states,
                matched_on=found.matched_on if found else None,
            )
        )
    return out


def _open_row(c: matching.Candidate) -> LeadRow:
    row = c.row
    return LeadRow(
        c.lead_id, row["status"], row["owner_id"], row["team_id"], row["assignment_seq"],
        row["lead"], None,
    )  # fmt: skip


_LEAD_COLS = (
    "lead_id",
    "source",
    "received_at",
    "email",
    "phone",
    "company_domain",
    "status",
    "owner_id",
    "team_id",
    "assignment_seq",
    "merged_into",
    "score",
    "tier",
    "stage",
    "policy_version",
    "lead",
    "open_until",
)
_LEAD_TYPES = [
    "uuid",
    "text",
    "timestamptz",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "int",
    "uuid",
    "int",
    "text",
    "text",
    "text",
    "jsonb",
    "timestamptz",
]
_ASSIGN_COLS = (
    "lead_id",
    "seq",
    "owner_id",
    "team_id",
    "rule_id",
    "strategy",
    "reason",
    "previous_owner_id",
    "assigned_at",
    "due_at",
    "policy_version",
)
_ASSIGN_TYPES = [
    "uuid",
    "int",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "timestamptz",
    "timestamptz",
    "text",
]


def _unnest(prefix: str, cols: tuple[str, ...], types: list[str]) -> str:
    return ", ".join(f"CAST(:{prefix}_{c} AS {t}[])" for c, t in zip(cols, types, strict=True))


_WRITE = text(
    "WITH "
    f"l AS (INSERT INTO router.leads ({', '.join(_LEAD_COLS)}) "
    f"SELECT * FROM unnest({_unnest('l', _LEAD_COLS, _LEAD_TYPES)}) "
    "ON CONFLICT (lead_id) DO NOTHING), "
    "ac AS (INSERT INTO router.accounts (domain, owner_id, first_lead_id) "
    "SELECT * FROM unnest(CAST(:a_domain AS text[]), CAST(:a_owner AS text[]), "
    "CAST(:a_lead AS uuid[])) ON CONFLICT (domain) DO NOTHING), "
    f"asg AS (INSERT INTO router.assignments ({', '.join(_ASSIGN_COLS)}) "
    f"SELECT * FROM unnest({_unnest('s', _ASSIGN_COLS, _ASSIGN_TYPES)}) ON CONFLICT DO NOTHING), "
    "u AS (SELECT * FROM unnest(CAST(:r_rep AS text[]), CAST(:r_delta AS int[]), "
    "CAST(:r_weight AS int[])) AS u (rep, delta, weight)), "
    "rs AS (INSERT INTO router.rep_state AS s (rep_id, open_leads, rr_current_weight) "
    "SELECT rep, greatest(delta, 0), coalesce(weight, 0) FROM u "
    "ON CONFLICT (rep_id) DO UPDATE SET "
    "open_leads = greatest(s.open_leads + (SELECT u.delta FROM u WHERE u.rep = excluded.rep_id), 0), "
    "rr_current_weight = coalesce((SELECT u.weight FROM u WHERE u.rep = excluded.rep_id), "
    "s.rr_current_weight), updated_at = now()), "
    "d AS (INSERT INTO router.decisions (lead_id, kind, policy_version, at, trace) "
    "SELECT * FROM unnest(CAST(:d_lead AS uuid[]), CAST(:d_kind AS text[]), "
    "CAST(:d_version AS text[]), CAST(:d_at AS timestamptz[]), CAST(:d_trace AS jsonb[]))), "
    "o AS (INSERT INTO router.outbox (event_id, topic, key, payload) "
    "SELECT * FROM unnest(CAST(:o_id AS text[]), CAST(:o_topic AS text[]), "
    "CAST(:o_key AS text[]), CAST(:o_payload AS bytea[])) ON CONFLICT (event_id) DO NOTHING), "
    + store_identity.WRITE_KEYS
    # the lead as received is kept aside (the what-if replay decides on it again)
    + ", lu AS (UPDATE router.leads l SET received_lead = coalesce(l.received_lead, l.lead), "
    "lead = u.doc, updated_at = now() FROM "
    "unnest(CAST(:u_id AS uuid[]), CAST(:u_doc AS jsonb[])) AS u (id, doc) WHERE l.lead_id = u.id)"
    # a learned account whose owner left the policy moves, only while it names that owner
    ", am AS (UPDATE router.accounts a SET owner_id = m.owner, first_lead_id = m.lead FROM "
    "unnest(CAST(:m_domain AS text[]), CAST(:m_old AS text[]), CAST(:m_owner AS text[]), "
    "CAST(:m_lead AS uuid[])) AS m (domain, old, owner, lead) "
    "WHERE a.domain = m.domain AND a.owner_id = m.old)"
    " SELECT 1"
)


async def write(session: AsyncSession, w: Writes) -> None:
    """Leads, learned accounts, assignments, rep state, decision traces and outbox events:
    one statement (foreign keys are checked at its end, so a lead and its assignment can go
    in together)."""
    params: dict[str, Any] = {}
    for c in _LEAD_COLS:
        if c == "lead":
            params["l_lead"] = [orjson.dumps(row["lead"]).decode() for row in w.leads]
        else:
            params[f"l_{c}"] = [row[c] for row in w.leads]
    for c in _ASSIGN_COLS:
        params[f"s_{c}"] = [row[c] for row in w.assignments]
    params["a_domain"] = [a[0] for a in w.accounts]
    params["a_owner"] = [a[1] for a in w.accounts]
    params["a_lead"] = [a[2] for a in w.accounts]
    reps = sorted(set(w.open_deltas) | set(w.weights))
    params["r_rep"] = reps
    params["r_delta"] = [w.open_deltas.get(r, 0) for r in reps]
    params["r_weight"] = [w.weights.get(r) for r in reps]
    params["d_lead"] = [d[0] for d in w.decisions]
    params["d_kind"] = [d[1] for d in w.decisions]
    params["d_version"] = [d[2] for d in w.decisions]
    params["d_at"] = [d[3] for d in w.decisions]
    params["d_trace"] = [d[4] for d in w.decisions]
    params["o_id"] = [o[0] for o in w.outbox]
    params["o_topic"] = [o[1] for o in w.outbox]
    params["o_key"] = [o[2] for o in w.outbox]
    params["o_payload"] = [o[3] for o in w.outbox]
    params.update(store_identity.key_params(matching.key_rows(w.leads)))  # the contacts' keys
    params["u_id"] = list(w.lead_docs)
    params["u_doc"] = [orjson.dumps(doc).decode() for doc in w.lead_docs.values()]
    moves = {m[0]: m for m in w.account_moves}.values()  # one per domain: the last
    for i, c in enumerate(("m_domain", "m_old", "m_owner", "m_lead")):
        params[c] = [m[i] for m in moves]
    await session.execute(_WRITE, params)
