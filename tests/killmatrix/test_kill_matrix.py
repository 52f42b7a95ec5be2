"""The suites pass the faithful reference and catch every fault in the catalogue.

One suite run per entry (``matrix.py``): the faithful reference under both shipped profiles
must pass with no failed test; the reference with any one fault must fail at least one
requirement. Which requirements caught each fault is written to ``reports/kill-matrix.*``.
A fault nothing catches is a gap in the suites, to be closed there, never in the fault.
"""

from __future__ import annotations

import pytest

from sts_reference.faults import FAULTS

from .conftest import ENTRY_PARAM
from .matrix import FAITHFUL, Outcome, entries

pytestmark = pytest.mark.slow

#: Exit statuses of a run that got as far as judging the target: 0 conformant, 1 a check failed.
JUDGED = (0, 1)


def _shown(outcome: Outcome) -> str:
    return f"exit {outcome.exit_status} after {outcome.seconds:.0f} s; last output:\n{outcome.output_tail}"


@pytest.mark.parametrize(ENTRY_PARAM, FAITHFUL)
def test_faithful_reference_passes_every_check(kill_matrix: dict[str, Outcome], entry_key: str) -> None:
    """The faithful reference, under the default and the pinned profile, passes with no failed test."""
    outcome = kill_matrix[entry_key]
    assert not outcome.failures, f"false failures against the faithful reference: {outcome.failures}"
    assert outcome.exit_status == 0, _shown(outcome)
    assert outcome.passed_tests > 100, f"only {outcome.passed_tests} tests passed; {_shown(outcome)}"


@pytest.mark.parametrize(ENTRY_PARAM, list(FAULTS))
def test_fault_fails_a_requirement(kill_matrix: dict[str, Outcome], entry_key: str) -> None:
    """The reference with this fault fails at least one requirement, in a run that judged the target."""
    outcome = kill_matrix[entry_key]
    assert outcome.exit_status in JUDGED, f"the run did not get to judge the target: {_shown(outcome)}"
    assert outcome.failed_requirements, f"no requirement caught the fault {entry_key!r} ({FAULTS[entry_key]})"
    unattributed = [t["nodeid"] for t in outcome.failures if not t["requirements"]]
    assert not unattributed, f"failed tests that name no requirement: {unattributed}"


def test_matrix_covers_the_whole_catalogue() -> None:
    """Every fault of the catalogue, and both faithful profiles, is an entry of the matrix."""
    keys = [e.key for e in entries()]
    assert len(keys) == len(set(keys))
    assert set(keys) == set(FAULTS) | set(FAITHFUL)
    assert len(FAULTS) >= 25
