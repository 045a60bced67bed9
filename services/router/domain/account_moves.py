"""A learned account whose owner left the policy moves to the owner decided now.

Why: the router learns a business domain's owner from its first assigned lead
(`router.accounts`, insert-once). When that rep leaves the policy, `match_account` no longer
matches the account, so each new lead of the domain was routed by the rules alone while the
row kept the departed owner forever, and the account never had an owner again. Now the first
lead assigned after the departure moves the account to its new owner (in the decision's
write statement, only while the row still names the departed rep), and its `lead.assigned`
explanation says why. Pure.
"""

from __future__ import annotations

from shared.policy import Policy


def departed(policy: Policy, learned_owner: str | None) -> str | None:
    """The learned owner when the policy no longer has that rep (None otherwise)."""
    return learned_owner if learned_owner and policy.rep(learned_owner) is None else None


def moved_line(domain: str, old: str, new: str) -> str:
    """The explanation line of a move (rep ids and the business domain only)."""
    return (
        f"Account {domain}: its learned owner {old} is no longer in the policy; the owner was "
        f"decided again and the account moves to {new}"
    )
