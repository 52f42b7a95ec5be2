"""The suites pass every correct implementation and catch every fault, each with one verdict.

One suite run per entry (``matrix.py``): the faithful reference under both shipped profiles,
and the reference as each correct variant (an open point resolved another way), must pass
with no failed or blocked requirement. The reference with any one fault must fail the run,
and point at the cause: at most a few failed requirements, the one that names the defect
among them, everything else it kept from running reported as blocked. Which requirements
caught each fault, and what each run cost the target, is written to ``reports/kill-matrix.*``.
A fault nothing catches is a gap in the suites, to be closed there, never in the fault.
"""

from __future__ import annotations

import statistics

import pytest

from sts_reference.faults import CLI_FAULTS, FAULTS
from sts_reference.variants import VARIANTS

from .conftest import ENTRY_PARAM
from .matrix import FAITHFUL, Outcome, entries

pytestmark = pytest.mark.slow

#: Exit statuses of a run that got as far as judging the target: 0 conformant, 1 a check failed.
JUDGED = (0, 1)
#: No single defect may fail more requirements than this (issue: one defect, one verdict)...
MAX_FAILED = 5
#: ...and half of them at most this many.
MEDIAN_FAILED = 2
#: A run against a defective target stops creating tokens early: never more than this many,
#: beside the list-scale check's (suites/test_list_scale.py: up to 1,030 live at once on a managed target).
MAX_TOKENS = 500 + 1_030

#: The requirement that names each defect: it must be among those the fault fails.
NAMED_BY: dict[str, tuple[str, ...]] = {
    "x-api-key-ignored": ("ST-AUTH-003",),
    "any-auth-scheme": ("ST-AUTH-010",),
    "x-api-token-accepted": ("ST-AUTH-010",),
    # issue 23 item 6: credentials only where documented, and what the target hands back dies with its token
    "query-api-key-accepted": ("ST-AUTH-020",),
    "basic-auth-password-accepted": ("ST-AUTH-020",),
    "json-body-token-accepted": ("ST-AUTH-020",),
    "session-outlives-delete": ("ST-AUTH-021",),
    "session-outlives-expiry": ("ST-AUTH-021",),
    # issue 23 item 4: the list at the sizes where servers page or cap
    "list-capped-at-100": ("ST-LIFE-020",),
    "list-paged-at-1000": ("ST-LIFE-020",),
    "list-sorted-truncated": ("ST-LIFE-020",),
    "token-prefix-match": ("ST-AUTH-006",),
    "token-cut-to-length": ("ST-AUTH-006",),
    "token-case-insensitive": ("ST-AUTH-006",),
    "status-public": ("ST-AUTH-012",),  # issue 17: a public status is its own (SHOULD) finding
    "server-info-public": ("ST-AUTH-011",),
    "delete-not-revoking": ("ST-AUTH-007",),
    "delete-removes-next": ("ST-LIFE-005", "ST-LIFE-006"),
    "delete-by-name": ("ST-LIFE-006",),
    "delete-answers-200": ("ST-LIFE-004",),
    "id-reused-after-delete": ("ST-LIFE-007", "ST-LIFE-003", "ST-FUZZ-003"),
    "id-race-on-concurrent-create": ("ST-LIFE-007",),
    "ids-listed-as-strings": ("ST-LIFE-002",),
    "roles-string-accepted": ("ST-LIFE-010",),
    "roles-missing-defaults-empty": ("ST-LIFE-010",),
    "malformed-json-500": ("ST-LIFE-011",),
    "expiry-seconds-as-ms": ("ST-EXP-004", "ST-EXP-006"),
    "expiry-grace-period": ("ST-EXP-006",),
    "expiry-truncated-to-seconds": ("ST-EXP-001", "ST-EXP-002"),
    "past-expiry-accepted": ("ST-EXP-004",),
    "past-expiry-stored-anyway": ("ST-EXP-004",),
    "invalid-expiry-generic-error": ("ST-EXP-004",),
    "expiry-lenient-parsing": ("ST-EXP-005",),
    "list-expiry-filter-inverted": ("ST-EXP-002", "ST-LIFE-003"),
    "management-ignores-expiry": ("ST-EXP-006",),
    "bootstrap-ttl-ignored": ("ST-BOOT-003",),
    "ttl-unit-by-first-letter": ("ST-BOOT-003",),
    "ttl-long-units-default": ("ST-BOOT-003",),
    "bootstrap-roles-ignored": ("ST-BOOT-002",),
    "servicetoken-key-ignored": ("ST-BOOT-004",),
    "roles-case-insensitive": ("ST-ROLE-005",),
    "only-first-role-counts": ("ST-ROLE-001",),
    "power-user-manages": ("ST-ROLE-006",),
    "empty-roles-unrestricted": ("ST-ROLE-006",),
    "list-leaks-secret": ("ST-ONCE-002",),
    "secret-from-name": ("ST-ONCE-004",),
    "secret-time-based": ("ST-ONCE-005",),
    "server-info-echoes-token": ("ST-ONCE-006",),
    "unauthorized-echoes-token": ("ST-ONCE-006",),
    "names-trimmed": ("ST-FUZZ-001",),
    "names-cut-at-64": ("ST-FUZZ-001",),
    "long-names-500": ("ST-FUZZ-001",),
    "non-ascii-names-mangled": ("ST-FUZZ-001",),
    "revocation-skipped-on-management": ("ST-AUTH-007",),
    "revocation-skipped-on-server-info": ("ST-AUTH-007",),
    "list-ignores-expiry": ("ST-EXP-006",),
    "expiry-skipped-for-authorization-header": ("ST-EXP-006",),
    "delete-skips-role-check": ("ST-ROLE-002",),
    "list-skips-role-check": ("ST-ROLE-002",),
    "forbidden-echoes-token": ("ST-ONCE-006",),
    "error-header-echoes-token": ("ST-ONCE-006",),
    "status-echoes-token": ("ST-ONCE-006",),
    "bootstrap-ttl-only-on-status": ("ST-BOOT-003",),
    "x-api-key-ignored-on-management": ("ST-AUTH-004",),
    "create-answers-201": ("ST-LIFE-001",),
    "ids-collide-same-second": ("ST-LIFE-007", "ST-LIFE-003"),
    "list-stops-at-20": ("ST-LIFE-003",),
    "create-500-after-storing": ("ST-LIFE-001",),
    "list-wrapped-in-object": ("ST-LIFE-002",),
    # issue 17: faithful to the real product
    "dedicated-subject-empty-refused": ("ST-LIFE-012",),
    # -- issue 17 (the real sts CLI): faults of the reference CLI, run as entries "cli:NAME" --
    "cli:cli-zero-date-no-expiry": ("ST-CLI-013",),
    # issue 19 (h19paths): paths and methods beside the documented calls, server errors, disguised secrets
    "trailing-slash-skips-auth": ("ST-PATH-001",),
    "get-token-by-id-returns-secret": ("ST-ONCE-007",),
    "method-override-skips-role-check": ("ST-PATH-001", "ST-PATH-002"),
    "options-500": ("ST-ERR-001",),
    "double-delete-500": ("ST-ERR-002",),
    "non-numeric-id-500": ("ST-ERR-002",),
    "many-roles-500": ("ST-ERR-003",),
    "nul-in-name-500": ("ST-ERR-003",),
    "create-binds-extra-id": ("ST-ERR-004",),
    "create-binds-extra-token": ("ST-ERR-004",),
    "error-echoes-secret-prefix": ("ST-ONCE-006",),
    "list-leaks-base64-secret": ("ST-ONCE-002",),
    # -- issue 19: what a token may do off the happy path (roles, use, the bootstrap token) --
    "role-substring-manages": ("ST-ROLE-007",),
    "role-comma-split": ("ST-ROLE-008", "ST-ROLE-007"),
    "sliding-expiry-on-use": ("ST-EXP-011",),
    "expiry-from-first-use": ("ST-EXP-012",),
    "tokens-die-with-their-maker": ("ST-FUZZ-003",),
    "list-shows-only-own-tokens": ("ST-FUZZ-003",),
    "far-expiry-wraps": ("ST-FUZZ-003",),
    "duplicate-names-refused-after-first": ("ST-FUZZ-005",),
    # issue 23 items 2 and 3: the end of each model sequence in full; role lists at the edges
    "deleted-maker-manages-in-authorization": ("ST-FUZZ-003",),
    "roles-capped-at-32": ("ST-FUZZ-002",),
    # (the prepared deleted token is used before its delete, for ST-AUTH-021: the foundation sees the cache)
    "use-cache-survives-delete": ("ST-AUTH-014", "ST-AUTH-007"),
    "near-miss-secret-on-token-calls": ("ST-AUTH-006",),
    "two-credentials-union": ("ST-AUTH-015",),
    "bootstrap-delete-not-revoking": ("ST-BOOT-005",),
    "ttl-days-read-as-hours": ("ST-BOOT-006",),
    # issue 23 (h23indep): an independent server's mistake the catalogue had no kin for (the second
    # create's token is listed under the first's id; the one-time-display checks are blocked by that)
    "create-idempotent-by-name": ("ST-LIFE-007", "ST-ONCE-003"),
    "bootstrap-ttl-from-first-use": ("ST-BOOT-007",),
    # -- issue 24 (h24found): one defect under a foundation, one verdict --
    "expiry-stored-times-1000": ("ST-EXP-001",),
    "expiry-one-hour-late": ("ST-EXP-001",),
    "expiry-enforced-one-hour-late": ("ST-EXP-006",),
    "list-public": ("ST-AUTH-006",),
    "delete-public": ("ST-AUTH-006",),
    # issue 23 (h23red): defects of a class no issue had named
    "json-content-type-exact": ("ST-LIFE-001",),
    "authorization-one-space-only": ("ST-AUTH-009",),
    "head-list-skips-revocation": ("ST-PATH-001",),
    "server-info-head-public": ("ST-AUTH-011",),
    "token-answers-text-plain": ("ST-LIFE-001", "ST-LIFE-002"),
    "bad-json-400-echoes-headers": ("ST-ONCE-006",),
}
#: every fault entry of the matrix: the server's faults and the CLI's ("cli:NAME")
FAULT_ENTRIES = {**FAULTS, **{f"cli:{name}": text for name, text in CLI_FAULTS.items()}}


#: faults on which a run may still leave a token it does not name, and why (a known gap of the sweep, shown
#: as an expected failure rather than passed): every other assertion of the entry still holds
SILENT_LEFTOVERS_KNOWN = {
    "delete-removes-next": (
        "known gap: a delete that removes the next token instead of the one named answers success; the "
        "sweep now checks every delete the run believed against its final list, yet about one token in "
        "forty (measured after issue 23's second round) is still not named"
    ),
}


def _shown(outcome: Outcome) -> str:
    return f"exit {outcome.exit_status} after {outcome.seconds:.0f} s; last output:\n{outcome.output_tail}"


@pytest.mark.parametrize(ENTRY_PARAM, [*FAITHFUL, *(f"variant:{name}" for name in VARIANTS)])
def test_correct_implementation_passes_every_check(kill_matrix: dict[str, Outcome], entry_key: str) -> None:
    """The faithful reference (both profiles) and each correct variant pass with no failed or blocked requirement."""
    outcome = kill_matrix[entry_key]
    assert not outcome.failed_requirements, f"false failures: {outcome.failed_requirements} ({outcome.failures})"
    assert not outcome.blocked_requirements, f"requirements blocked on a correct target: {outcome.blocked_requirements}"
    assert outcome.exit_status == 0, _shown(outcome)
    assert outcome.tests_passed > 100, f"only {outcome.tests_passed} tests passed; {_shown(outcome)}"
    assert outcome.leftovers == 0 and outcome.tokens_left == 0, (
        f"the run left tokens behind: {outcome.leftovers} reported, {outcome.tokens_left} still stored"
    )


@pytest.mark.parametrize(ENTRY_PARAM, list(FAULT_ENTRIES))
def test_fault_fails_the_requirement_that_names_it(kill_matrix: dict[str, Outcome], entry_key: str) -> None:
    """The reference with this fault fails the run, with the requirement naming the defect among a few."""
    outcome = kill_matrix[entry_key]
    assert outcome.exit_status in JUDGED, f"the run did not get to judge the target: {_shown(outcome)}"
    failed = outcome.failed_requirements
    assert failed, f"no requirement caught the fault {entry_key!r} ({FAULT_ENTRIES[entry_key]})"
    assert set(NAMED_BY[entry_key]) & set(failed), (
        f"the fault {entry_key!r} failed {failed}, but none of {list(NAMED_BY[entry_key])}, which name it"
    )
    assert len(failed) <= MAX_FAILED, f"one defect failed {len(failed)} requirements: {failed}"
    assert outcome.tokens_created <= MAX_TOKENS, f"the run created {outcome.tokens_created} tokens on the target"
    # a defective target may keep what the run could not delete (a delete that removes another
    # token, a list that hides some), but the run must say so: nothing left behind silently
    if outcome.tokens_left > outcome.leftovers and entry_key in SILENT_LEFTOVERS_KNOWN:
        pytest.xfail(f"{SILENT_LEFTOVERS_KNOWN[entry_key]} ({outcome.tokens_left} stored, {outcome.leftovers} named)")
    assert outcome.tokens_left <= outcome.leftovers, (
        f"{outcome.tokens_left} tokens of the run are still stored, but the report names {outcome.leftovers}"
    )


def test_one_defect_one_verdict(kill_matrix: dict[str, Outcome]) -> None:
    """Across the catalogue, a single defect fails at most MEDIAN_FAILED requirements in the median run."""
    counts = [len(kill_matrix[name].failed_requirements) for name in FAULTS if name in kill_matrix]
    if len(counts) < len(FAULTS):
        pytest.skip("not every fault of the catalogue ran in this session")
    assert statistics.median(counts) <= MEDIAN_FAILED, f"failed requirements per fault: {sorted(counts)}"


def test_matrix_covers_the_whole_catalogue() -> None:
    """Every fault and variant of the catalogues, and both faithful profiles, is an entry of the matrix."""
    keys = [e.key for e in entries()]
    assert len(keys) == len(set(keys))
    assert set(keys) == set(FAULT_ENTRIES) | set(FAITHFUL) | {f"variant:{name}" for name in VARIANTS}
    assert set(NAMED_BY) == set(FAULT_ENTRIES), "every fault names the requirement that should catch it"
    assert len(FAULTS) >= 25
