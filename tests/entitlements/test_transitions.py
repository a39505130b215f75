"""The transition table, exhaustively: every (current, proposed, new) triple of entitlement
and URL statuses against an expectation written out independently of the code's table."""

import itertools

import pytest

from entitlements.rules.expiry import EXPIRING_STATUSES, EXPIRING_URL_STATUSES, expires
from entitlements.rules.transitions import Outcome, Subject, decide
from entitlements.statuses import EntitlementStatus, UrlStatus

# Written as plain text on purpose: a second, independent statement of docs/confirmations.md,
# "The rules".
ENTITLEMENT_ANSWERS = """
created: created entitled licensed
cancelled: cancelled
blocked: blocked
"""
ENTITLEMENT_MOVES = """
created: entitled licensed cancelled blocked expired
entitled: licensed cancelled blocked expired
licensed: blocked expired
"""
URL_ANSWERS = """
initialized: initialized processed expired
cancelled: cancelled
blocked: blocked
"""
URL_MOVES = """
uninitialized: initialized processed cancelled blocked expired
initialized: processed cancelled blocked expired
processed: cancelled blocked expired
"""


def pairs(text: str) -> set[tuple[str, str]]:
    out = set()
    for line in text.strip().splitlines():
        left, right = line.split(":")
        out |= {(left.strip(), item) for item in right.split()}
    return out


CASES = {
    Subject.ENTITLEMENT: (
        list(EntitlementStatus.values),
        pairs(ENTITLEMENT_ANSWERS),
        pairs(ENTITLEMENT_MOVES),
    ),
    Subject.URL: (list(UrlStatus.values), pairs(URL_ANSWERS), pairs(URL_MOVES)),
}


def expected(subject, current, proposed, new) -> Outcome:
    _statuses, answer_pairs, move_pairs = CASES[subject]
    if proposed is not None and (proposed, new) not in answer_pairs:
        return Outcome.REJECTED
    if current == new:
        return Outcome.DUPLICATE
    return Outcome.APPLIED if (current, new) in move_pairs else Outcome.STALE


def all_triples():
    for subject, (statuses, _a, _m) in CASES.items():
        for current, proposed, new in itertools.product(statuses, [None, *statuses], statuses):
            yield subject, current, proposed, new


def test_every_triple_matches_the_independent_expectation():
    mismatches = []
    count = 0
    for subject, current, proposed, new in all_triples():
        count += 1
        got = decide(subject, current, proposed, new)
        want = expected(subject, current, proposed, new)
        if got.outcome is not want:
            mismatches.append((subject.value, current, proposed, new, got.outcome, want))
        assert got.reason, "every decision carries a reason"
    assert count == 2 * 6 * 7 * 6
    assert not mismatches, mismatches


@pytest.mark.parametrize(
    ("subject", "current", "proposed", "new", "outcome"),
    [
        # the seed's examples: created answered by entitled; initialized by processed
        (Subject.ENTITLEMENT, "created", "created", "entitled", Outcome.APPLIED),
        (Subject.URL, "initialized", "initialized", "processed", Outcome.APPLIED),
        # an activated licence cannot be cancelled any more, only blocked
        (Subject.ENTITLEMENT, "licensed", "cancelled", "cancelled", Outcome.STALE),
        (Subject.ENTITLEMENT, "licensed", "blocked", "blocked", Outcome.APPLIED),
        # a cancel proposal is not answered by "entitled"
        (Subject.ENTITLEMENT, "created", "cancelled", "entitled", Outcome.REJECTED),
        # the same status again changes nothing
        (Subject.ENTITLEMENT, "entitled", "created", "entitled", Outcome.DUPLICATE),
        # going back is stale, not an error
        (Subject.ENTITLEMENT, "licensed", "created", "entitled", Outcome.STALE),
        # a portal's processed proves delivery even before the hub recorded it
        (Subject.URL, "uninitialized", "initialized", "processed", Outcome.APPLIED),
        (Subject.URL, "expired", "initialized", "processed", Outcome.STALE),
    ],
)
def test_named_cases(subject, current, proposed, new, outcome):
    assert decide(subject, current, proposed, new).outcome is outcome


def test_terminal_statuses_have_no_way_out():
    for subject, (statuses, _a, _m) in CASES.items():
        for terminal in ("cancelled", "blocked", "expired"):
            for new in statuses:
                if new != terminal:
                    assert decide(subject, terminal, None, new).outcome is Outcome.STALE


def test_the_expiry_rule_is_the_transition_table():
    """What expires (entitlement and URL statuses alike) is what ``expired`` may follow;
    the job and the replay both read these sets (entitlements/rules/expiry.py)."""
    assert sorted(EXPIRING_STATUSES) == ["created", "entitled", "licensed"]
    assert sorted(EXPIRING_URL_STATUSES) == ["initialized", "processed", "uninitialized"]
    for subject, (statuses, _a, _m) in CASES.items():
        for status in statuses:
            legal = decide(subject, status, None, "expired").outcome is Outcome.APPLIED
            assert expires(subject, status) is legal
