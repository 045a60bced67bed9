"""Account matching, written once for the router, the preview and the what-if replay."""

from __future__ import annotations

from typing import Any

import pytest

from services.router.domain.accounts import (
    AccountMatch,
    business_domain,
    match_account,
    stored_business_domain,
)
from shared.events import Lead
from shared.policy import Policy


def _lead(**contact: Any) -> Lead:
    return Lead.model_validate(
        {
            "lead_id": "00000000-0000-4000-8000-000000000001",
            "received_at": "2026-12-02T10:00:00Z",
            "source": "web",
            "channel": "form",
            "contact": contact,
        }
    )


@pytest.mark.parametrize(
    ("contact", "expected"),
    [
        (
            {"email": "a@Corp.DE", "company_domain": " Corp.DE ", "email_kind": "business"},
            "corp.de",
        ),
        ({"email": "a@gmail.com", "company_domain": "gmail.com", "email_kind": "free"}, None),
        ({"email": "a@temp.io", "company_domain": "temp.io", "email_kind": "disposable"}, None),
        ({"email": "a@corp.de", "company_domain": "corp.de"}, None),  # unclassified: no guess
        ({"company_domain": "corp.de"}, "corp.de"),  # no address at all: the domain given
        ({"email": "a@corp.de", "email_kind": "business"}, None),
    ],
)
def test_business_domain_of_a_lead_and_of_its_stored_contact(
    contact: dict[str, Any], expected: str | None
) -> None:
    lead = _lead(**contact)
    assert business_domain(lead) == expected
    assert stored_business_domain(lead.model_dump(mode="json")["contact"]) == expected


def test_the_policys_account_comes_before_a_learned_owner(policy: Policy) -> None:
    assert match_account(policy, "acme.com", "rep-ben") == AccountMatch(
        "acme.com", "Acme Corp", "rep-anna", "policy"
    )


def test_a_learned_owner_owns_the_domain_while_still_in_the_policy(policy: Policy) -> None:
    assert match_account(policy, "corp.de", "rep-ben") == AccountMatch(
        "corp.de", None, "rep-ben", "history"
    )
    assert match_account(policy, "corp.de", "rep-gone") is None  # left the policy
    assert match_account(policy, "corp.de", None) is None
    assert match_account(policy, None, "rep-ben") is None
