"""Who a touch is: the identity keys of a contact and the rule that finds their open lead.

Why: the stored address is exact (`Ana+news@acme.com` is not `ana@acme.com`), a phone-only
touch has no address at all, and a company's switchboard number is given by several people.
So every touch adds its keys to the contact it ended in (`router.contact_keys`, written with
the decision): the matching key of its e-mail (`shared.identity.matching_email`: no `+tag`,
no Gmail dots) and its E.164 phone. A later touch finds the contact through any key an
earlier touch gave (merge chaining) and merges into the contact's newest open lead.

The rule (`choose`), in order:
1. The e-mail key names a contact with an open lead: merged, ``matched_on="email"``.
2. A touch with an e-mail address is never merged by phone when the phone was given with
   another address: two "Ana García" at Acme with different e-mails are two people. (A
   phone known with no address at all may gain one: the same person, now writing it.)
3. Otherwise the phone's contacts with an open lead. A phone seen with several
   e-mail keys is shared (a switchboard): it merges only into the one contact whose name is
   compatible with the touch's (``matched_on="phone+name"``), never on the phone alone. A
   phone of one contact merges unless the names say it is someone else
   (``matched_on="phone"``). Names are supporting evidence only, never a key on their own.

Pure: no I/O. The keys and names are personal data: erased with the leads they came from.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.identity import InvalidAddress, matching_email

EMAIL, PHONE, PHONE_NAME = "email", "phone", "phone+name"
_FOLD = str.maketrans(
    {"ø": "o", "ł": "l", "đ": "d", "æ": "ae", "œ": "oe", "ß": "ss", "\u0131": "i"}
)


def email_key(email: str | None) -> str | None:
    """The stored key of an e-mail address (`e:` + its matching form), None without one."""
    if not email:
        return None
    try:
        return "e:" + matching_email(email)
    except InvalidAddress:
        return None


def phone_key(phone: str | None) -> str | None:
    """The stored key of an E.164 phone (`p:` + the number)."""
    return "p:" + phone if phone else None


def fold_name(first: str | None, last: str | None) -> str | None:
    """A name as compared: case, diacritics and word order folded (`GARCIA ana` is
    `ana garcia`); None without one."""
    text = f"{first or ''} {last or ''}".casefold().translate(_FOLD)
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    words = sorted("".join(c if c.isalnum() else " " for c in text).split())
    return " ".join(words) or None


def _within_one_edit(a: str, b: str) -> bool:
    """One letter dropped, added or changed at most (a typo)."""
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    if len(a) == len(b):
        return a[i + 1 :] == b[i + 1 :]
    return a[i:] == b[i + 1 :]


def names_compatible(a: str | None, b: str | None) -> bool:
    """Folded names (`fold_name`) that may be one person's: equal or one typo apart. An
    absent name contradicts nothing."""
    if not a or not b:
        return True
    return a == b or (min(len(a), len(b)) >= 5 and _within_one_edit(a, b))


def key_rows(
    leads: Iterable[Mapping[str, Any]],
) -> list[tuple[str, str, str, str | None, str | None, datetime]]:
    """The `router.contact_keys` rows stored leads give: (key, lead, the lead it ended in,
    its e-mail key, its folded name, received at) per e-mail key and phone."""
    out = []
    for row in leads:
        doc = row.get("lead") or {}
        contact = doc.get("contact") or {}
        ekey = email_key(row.get("email"))
        name = fold_name(contact.get("first_name"), contact.get("last_name"))
        target = str(row.get("merged_into") or row["lead_id"])
        for key in (ekey, phone_key(row.get("phone"))):
            if key:
                out.append((key, str(row["lead_id"]), target, ekey, name, row["received_at"]))
    return out


@dataclass(frozen=True, slots=True)
class Candidate:
    """A lead some key of the touch points at, as `decision_inputs` reads it."""

    via: str  # EMAIL | PHONE: which key of the touch found it
    lead_id: str
    emails: frozenset[str]  # the e-mail keys given with this key for this lead
    names: frozenset[str]  # the folded names given with it
    open: bool  # merges may go into it (open status, inside the dedupe window)
    at: float  # the lead's arrival (epoch seconds): the newest open one wins
    row: Mapping[str, Any] = field(default_factory=dict)  # the lead's row when open


@dataclass(frozen=True, slots=True)
class Match:
    candidate: Candidate
    matched_on: str


def _newest(found: Iterable[Candidate]) -> Candidate | None:
    return max(found, key=lambda c: (c.at, c.lead_id), default=None)


def choose(candidates: Sequence[Candidate], *, email: str | None, name: str | None) -> Match | None:
    """The open lead the touch (its e-mail key and folded name) merges into (module doc)."""
    by_email = _newest(c for c in candidates if c.via == EMAIL and c.open)
    if by_email is not None:
        return Match(by_email, EMAIL)
    phoned = [c for c in candidates if c.via == PHONE]
    people = {e for c in phoned for e in c.emails}
    if email is not None and people - {email}:
        return None  # rule 2: the phone of someone known by another address
    fitting = [c for c in phoned if any(names_compatible(name, n) for n in c.names or {None})]
    if len(people) > 1:  # a shared number: the name must single out one contact
        if not name:
            return None
        named = {e for c in fitting if c.names for e in c.emails}
        best = _newest(c for c in fitting if c.open and c.names)
        return Match(best, PHONE_NAME) if best is not None and len(named) == 1 else None
    best = _newest(c for c in fitting if c.open)
    return Match(best, PHONE) if best is not None else None


def merge_facts(kept: Mapping[str, Any], touch: Mapping[str, Any]) -> dict[str, Any]:
    """An open lead's document (JSON form) once a touch is merged into it: the touch's new
    facts join it as on a nurtured lead (`handoff.merge_touch`: a new phone or title wins,
    engagement adds up), and consent is the strictest of the two: a touch that showed the
    consent wording and came back without the opt-in withdraws it (an unticked box on a form
    that asked nothing withdraws nothing)."""
    from services.router.domain.handoff import merge_touch  # handoff builds on outcomes

    out = merge_touch(dict(kept), dict(touch))
    said = touch.get("consent") or {}
    if said.get("wording") and not said.get("marketing_opt_in"):
        out["consent"] = {"marketing_opt_in": False, "at": None, "wording": said["wording"]}
    return out
