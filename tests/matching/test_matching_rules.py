"""The identity keys of a contact and the rule that picks the open lead a touch merges into
(services/router/domain/matching.py): pure, no stack."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.router.domain.matching import (
    EMAIL,
    PHONE,
    PHONE_NAME,
    Candidate,
    choose,
    email_key,
    fold_name,
    key_rows,
    merge_facts,
    names_compatible,
)
from shared.identity import plus_form
from shared.lead_facts import normalise_phone

AT = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def test_an_address_key_ignores_the_tag_and_gmail_dots_and_case() -> None:
    assert email_key("Ana+News@Acme.com ") == email_key("ana@acme.com") == "e:ana@acme.com"
    assert email_key("a.n.a@googlemail.com") == "e:ana@gmail.com"
    assert email_key("a.n.a@acme.com") == "e:a.n.a@acme.com"  # dots count outside Gmail
    assert email_key("not an address") is None and email_key(None) is None


def test_names_fold_case_diacritics_and_order_and_allow_one_typo() -> None:
    assert fold_name("JOSÉ", "peña") == fold_name("Pena", "Jose") == "jose pena"
    assert fold_name("Søren", "Øvergaard") == "overgaard soren"
    assert names_compatible(fold_name("Julia", "Nguen"), fold_name("Julia", "Nguyen"))
    assert not names_compatible(fold_name("Julia", "Weber"), fold_name("Julia", "Nguyen"))
    assert not names_compatible(fold_name("Ana", "Silva"), fold_name("Ben", "Silva"))
    assert names_compatible(None, "ana garcia")  # an absent name contradicts nothing


def test_every_stored_touch_gives_its_keys_to_the_lead_it_ended_in() -> None:
    rows = key_rows(
        [
            {"lead_id": "L1", "email": "ana+x@acme.com", "phone": "+4915112345678",
             "merged_into": None, "received_at": AT,
             "lead": {"contact": {"first_name": "Ana", "last_name": "García"}}},
            {"lead_id": "L2", "email": None, "phone": "+4930123456", "merged_into": "L1",
             "received_at": AT, "lead": {"contact": {}}},
        ]
    )  # fmt: skip
    assert rows == [
        ("e:ana@acme.com", "L1", "L1", "e:ana@acme.com", "ana garcia", AT),
        ("p:+4915112345678", "L1", "L1", "e:ana@acme.com", "ana garcia", AT),
        ("p:+4930123456", "L2", "L1", None, None, AT),  # merge chaining: the phone is L1's now
    ]


def _c(
    via: str, lead: str, emails: set[str], names: set[str], at: float = 1.0, **kw: Any
) -> Candidate:
    return Candidate(via, lead, frozenset(emails), frozenset(names), kw.get("open", True), at)


ANA, BEN = "e:ana@acme.com", "e:ben@acme.com"


def test_the_address_key_finds_the_newest_open_lead() -> None:
    found = choose(
        [_c(EMAIL, "old", {ANA}, set(), at=1), _c(EMAIL, "new", {ANA}, set(), at=2),
         _c(EMAIL, "closed", {ANA}, set(), at=3, open=False)],
        email=ANA, name="ana garcia",
    )  # fmt: skip
    assert found is not None and (found.candidate.lead_id, found.matched_on) == ("new", EMAIL)


def test_a_touch_with_another_address_is_never_merged_by_phone() -> None:
    """Two "Ana García" at Acme with different e-mails are two people, even on one phone."""
    cands = [_c(PHONE, "ana", {ANA}, {"ana garcia"})]
    assert choose(cands, email="e:ana.garcia@acme.com", name="ana garcia") is None


def test_a_contact_known_only_by_phone_may_gain_an_address() -> None:
    found = choose([_c(PHONE, "anon", set(), set())], email=ANA, name="ana garcia")
    assert found is not None and (found.candidate.lead_id, found.matched_on) == ("anon", PHONE)


def test_a_phone_only_touch_chains_to_the_contact_that_gave_the_phone() -> None:
    found = choose(
        [_c(PHONE, "ana", {ANA}, {"ana garcia"})], email=None, name=fold_name("GARCIA", "Ana")
    )
    assert found is not None and (found.candidate.lead_id, found.matched_on) == ("ana", PHONE)


def test_a_phone_only_touch_with_another_name_is_a_colleague_on_the_line() -> None:
    assert choose([_c(PHONE, "ana", {ANA}, {"ana garcia"})], email=None, name="ben silva") is None


def test_a_shared_line_merges_only_with_a_name_that_singles_out_one_contact() -> None:
    line = [_c(PHONE, "ana", {ANA}, {"ana garcia"}), _c(PHONE, "ben", {BEN}, {"ben silva"})]
    found = choose(line, email=None, name="ben silvaa")
    assert found is not None and (found.candidate.lead_id, found.matched_on) == ("ben", PHONE_NAME)
    assert choose(line, email=None, name=None) is None  # the line alone merges nobody
    assert choose(line, email=None, name="cleo weber") is None
    twin = [*line, _c(PHONE, "ana2", {"e:ana.g@acme.com"}, {"ana garcia"})]
    assert choose(twin, email=None, name="ana garcia") is None  # two Ana Garcías: nobody


def test_a_merge_brings_new_facts_and_keeps_the_strictest_consent() -> None:
    kept = {"lead_id": "L1", "contact": {"email": "ana@acme.com", "title": None},
            "consent": {"marketing_opt_in": True, "wording": "News?"}, "engagement": {}}  # fmt: skip
    touch = {"lead_id": "L2", "contact": {"phone": "+4915112345678", "title": "CTO"},
             "consent": {"marketing_opt_in": False}, "engagement": {"demo_request": True}}  # fmt: skip
    out = merge_facts(kept, touch)
    assert out["lead_id"] == "L1" and out["contact"]["email"] == "ana@acme.com"
    assert out["contact"]["phone"] == "+4915112345678" and out["contact"]["title"] == "CTO"
    assert out["consent"]["marketing_opt_in"] is True  # a box not shown withdraws nothing
    assert out["engagement"]["demo_request"] is True
    touch["consent"] = {"marketing_opt_in": False, "wording": "News?"}
    assert merge_facts(kept, touch)["consent"]["marketing_opt_in"] is False  # withdrawn


def test_a_number_with_an_international_call_prefix_reads_as_plus() -> None:
    """The phone key: intake reads `00`/`011` prefixes whatever the lead's country says."""
    assert plus_form("001 201 555 0123") == "+1 201 555 0123"  # 00 from a US lead (011 there)
    assert plus_form("011 44 20 7946 0958") == "+44 20 7946 0958"
    assert plus_form("030 1234567") is None and plus_form("+49 30 1234567") is None
    assert normalise_phone("001 201 638 9597", "US") == "+12016389597"
    assert normalise_phone("0012016389597", None) == "+12016389597"
    assert normalise_phone("011 44 20 7946 0958", "DE") == "+442079460958"
    assert normalise_phone("0113 496 0000", "GB") == "+441134960000"  # Leeds, not a prefix
    assert normalise_phone("0113 496 0000", None) is None
