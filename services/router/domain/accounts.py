"""Account matching, written once: which business domain a lead matches accounts on, and the
account (and owner) that domain has.

The live router, the route preview and the what-if replay all decide with these functions,
so a replay of stored leads matches accounts exactly as the router did. Pure: the owner the
router learned from a domain's first assigned lead is read by the caller and passed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.events import Lead
from shared.policy import Policy

# Addresses at these providers say nothing about the company: their domain never matches.
NO_ACCOUNT_EMAIL_KINDS = frozenset({"free", "disposable"})


@dataclass(frozen=True, slots=True)
class AccountMatch:
    """The account a business domain matched: from the policy, or learned from a first lead."""

    domain: str
    name: str | None
    owner_id: str
    source: str  # "policy" | "history"


def domain_of(company_domain: Any, email_kind: Any, email: Any) -> str | None:
    """The company domain to match accounts on; free-mail and disposable domains never match,
    nor does the domain of an address intake could not classify (do not guess)."""
    if not company_domain or email_kind in NO_ACCOUNT_EMAIL_KINDS:
        return None
    if email_kind is None and email:
        return None
    return str(company_domain).strip().lower() or None


def business_domain(lead: Lead) -> str | None:
    """`domain_of` a lead's contact."""
    contact = lead.contact
    return domain_of(contact.company_domain, contact.email_kind, contact.email)


def stored_business_domain(contact: Mapping[str, Any]) -> str | None:
    """`domain_of` a stored lead's contact dict, without validating the model again (the
    what-if replay reads 100,000s of stored leads)."""
    return domain_of(contact.get("company_domain"), contact.get("email_kind"), contact.get("email"))


def match_account(
    policy: Policy, domain: str | None, learned_owner: str | None
) -> AccountMatch | None:
    """The policy's account for the domain first, else the owner learned from the domain's
    first assigned lead, as long as that rep is still in the policy (a learned owner who left
    no longer owns the account)."""
    if not domain:
        return None
    known = policy.account_for_domain(domain)
    if known is not None:
        return AccountMatch(known.domain, known.name, known.owner, "policy")
    if learned_owner is None or policy.rep(learned_owner) is None:
        return None
    return AccountMatch(domain, None, learned_owner, "history")
