"""The matching harness's generator (deterministic, every kind of mess, ground truth that
holds) and its pairwise precision/recall (unit: no servers)."""

from __future__ import annotations

import sys
from collections import Counter

import phonenumbers
import pytest

from shared.identity import matching_email
from tests.conftest import ROOT

if str(ROOT) not in sys.path:  # bench/ is a top-level directory, not an installed package
    sys.path.insert(0, str(ROOT))

from bench.matching.generator import Touch, generate
from bench.matching.metrics import Outcome, leads_of, pairwise, recall_by_kind

KINDS = {
    "email_case_spaces", "email_subaddress", "email_idn_punycode", "phone_only",
    "phone_national", "phone_00_prefix", "phone_international", "switchboard_phone",
    "name_diacritics", "name_swapped", "name_typo", "name_case",
}  # fmt: skip


def test_the_same_seed_gives_the_same_submissions() -> None:
    first = [(t.person, t.source, t.payload()) for t in generate(18)]
    assert first == [(t.person, t.source, t.payload()) for t in generate(18)]
    assert first != [(t.person, t.source, t.payload()) for t in generate(19)]


def test_a_few_hundred_touches_from_about_120_people_with_every_kind_of_mess() -> None:
    touches = generate()
    assert 250 <= len(touches) <= 450
    assert len({t.person for t in touches}) == 120
    seen = Counter(k for t in touches for k in t.kinds)
    assert set(seen) >= KINDS - {"email_idn_punycode"}
    assert min(seen[k] for k in ("email_subaddress", "phone_only", "switchboard_phone")) >= 10
    assert {t.source for t in touches} == {"chat-widget", "hubspot-forms"}


def test_ground_truth_holds_one_mailbox_is_one_person() -> None:
    """Two people never share a mailbox (matching key), so an e-mail match is a true pair;
    colleagues do share the switchboard number (a phone match can be a false one)."""
    owner: dict[str, int] = {}
    for t in generate():
        if "email" in t.values:
            key = matching_email(t.values["email"])
            assert owner.setdefault(key, t.person) == t.person, key
    first_touches: dict[int, Touch] = {}
    for t in generate():
        first_touches.setdefault(t.person, t)
    assert all(not t.kinds for t in first_touches.values()), "a first touch is written cleanly"
    phones = [phonenumbers.parse(t.values["phone"]) for t in first_touches.values()]
    assert all(phonenumbers.is_valid_number(p) for p in phones)


def test_pairwise_scores() -> None:
    truth = {0: 1, 1: 1, 2: 1, 3: 2, 4: 2}  # true pairs: 3 (person 1) + 1 (person 2) = 4
    predicted = {0: "a", 1: "a", 2: "b", 3: "b", 4: "c"}  # pairs (0,1) right, (2,3) wrong
    s = pairwise(truth, predicted)
    assert (s.true_pairs, s.predicted_pairs, s.correct_pairs) == (4, 2, 1)
    assert (s.precision, s.recall) == (0.5, 0.25)
    perfect = pairwise(truth, {k: str(v) for k, v in truth.items()})
    assert (perfect.precision, perfect.recall) == (1.0, 1.0)


def test_merges_are_followed_to_their_lead_and_refused_touches_stay_alone() -> None:
    outcomes = [
        Outcome(0, "L0", "lead.assigned"),
        Outcome(1, "L1", "lead.merged", "L0"),
        Outcome(2, "L2", "lead.merged", "L1"),  # a chain ends in L0
        Outcome(3, None, "refused:422"),
        Outcome(4, "L4", "lead.nurtured"),
    ]
    leads = leads_of(outcomes)
    assert leads == {0: "L0", 1: "L0", 2: "L0", 3: "refused-3", 4: "L4"}


def test_recall_by_kind_counts_repeat_touches_linked_to_their_person() -> None:
    touches = [t for t in generate() if t.person in {0, 1}]
    by_person = {t.index: t.person for t in touches}
    linked = recall_by_kind(touches, {i: f"lead-{p}" for i, p in by_person.items()})
    unlinked = recall_by_kind(touches, {i: f"lead-{i}" for i in by_person})
    repeats = len(touches) - 2
    assert sum(c[1] for c in linked.values()) >= repeats
    assert all(c[0] == c[1] for c in linked.values())
    assert all(c[0] == 0 for c in unlinked.values())


@pytest.mark.parametrize("people", [5, 40])
def test_smaller_crowds_for_quick_runs(people: int) -> None:
    assert len({t.person for t in generate(18, people)}) == people
