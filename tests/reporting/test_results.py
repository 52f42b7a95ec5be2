"""The rules from test reports to requirement statuses and the run's verdict and exit status."""

from __future__ import annotations

import pytest

from sts_conformance.core.requirements import Requirement
from sts_conformance.reporting.results import (
    KIND_HARNESS,
    KIND_TARGET,
    KIND_UNREACHABLE,
    KIND_XPASS,
    HarnessProblem,
    PhaseRecord,
    RunOutcome,
    evaluate,
    skip_settings,
)

CATALOGUE = {
    "ST-A-001": Requirement("ST-A-001", "MUST", "must one", "seed", "A"),
    "ST-A-002": Requirement("ST-A-002", "MUST", "must two", "seed", "A"),
    "ST-A-003": Requirement("ST-A-003", "SHOULD", "should three", "seed", "A"),
}


def phases(nodeid: str, rid: str | None, *outcomes: tuple[str, str], **extra) -> list[PhaseRecord]:
    """Records for one test: ``outcomes`` are (when, pytest outcome) pairs; extras go on the last."""
    reqs = [rid] if rid else []
    recs = [PhaseRecord(nodeid=nodeid, when=w, outcome=o, requirements=list(reqs)) for w, o in outcomes]
    for key, value in extra.items():
        setattr(recs[-1], key, value)
    return recs


def passing(nodeid: str, rid: str | None) -> list[PhaseRecord]:
    return phases(nodeid, rid, ("setup", "passed"), ("call", "passed"), ("teardown", "passed"))


def failing_call(nodeid: str, rid: str | None, kind: str = KIND_TARGET, **extra) -> list[PhaseRecord]:
    recs = phases(nodeid, rid, ("setup", "passed"), ("call", "failed"), kind=kind, message="expected 200, got 500")
    for key, value in extra.items():
        setattr(recs[-1], key, value)
    return [*recs, *phases(nodeid, rid, ("teardown", "passed"))]


def all_pass_except(*records: PhaseRecord, skip: tuple[str, ...] = ()) -> list[PhaseRecord]:
    """Passing tests for every catalogue requirement not in ``skip``, plus ``records``."""
    base = [r for rid in CATALOGUE if rid not in skip for r in passing(f"t::{rid}", rid)]
    return [*base, *records]


def run(records: list[PhaseRecord], **outcome) -> dict:
    return evaluate(records, CATALOGUE, RunOutcome(**outcome))


def status_of(doc: dict, rid: str) -> str:
    return next(r["status"] for r in doc["requirements"] if r["id"] == rid)


def test_every_requirement_passing_is_exit_0():
    """All tests pass: verdict pass, exit 0, complete."""
    doc = run(all_pass_except())
    assert doc["verdict"]["result"] == "pass"
    assert doc["verdict"]["exit_status"] == 0
    assert doc["verdict"]["complete"] is True


def test_must_failure_is_exit_1():
    """A failed MUST requirement fails the run."""
    doc = run(all_pass_except(*failing_call("t::bad", "ST-A-002")))
    assert status_of(doc, "ST-A-002") == "failed"
    assert doc["verdict"]["result"] == "fail"
    assert doc["verdict"]["exit_status"] == 1
    assert "ST-A-002" in doc["verdict"]["reasons"][0]


@pytest.mark.parametrize(("strict", "exit_status"), [(False, 0), (True, 1)], ids=["default", "strict"])
def test_should_failure_is_a_warning_unless_strict(strict, exit_status):
    """A failed SHOULD requirement is a warning; under --strict it fails the run."""
    doc = run(all_pass_except(*failing_call("t::should", "ST-A-003")), strict=strict)
    assert status_of(doc, "ST-A-003") == "failed"
    assert doc["verdict"]["exit_status"] == exit_status
    where = doc["verdict"]["reasons"] if strict else doc["verdict"]["warnings"]
    assert any("ST-A-003" in text for text in where)


def test_skipped_and_not_applicable_are_not_failures():
    """Skipped and not-applicable requirements leave the verdict at pass, with the setting named."""
    skipped = phases("t::skip", "ST-A-001", ("setup", "skipped"), ("teardown", "passed"))
    skipped[0].skip_reason = "needs a managed target: profile setting 'launch' is not set"
    na = phases("t::na", "ST-A-002", ("setup", "passed"), ("call", "skipped"), ("teardown", "passed"))
    na[1].skip_reason = "not applicable: expect.duplicate_names is 'refused'"
    doc = run(all_pass_except(*skipped, *na, skip=("ST-A-001", "ST-A-002")))
    one = next(r for r in doc["requirements"] if r["id"] == "ST-A-001")
    two = next(r for r in doc["requirements"] if r["id"] == "ST-A-002")
    assert (one["status"], one["settings"]) == ("skipped", ["launch"])
    assert (two["status"], two["settings"]) == ("not-applicable", ["expect.duplicate_names"])
    assert doc["verdict"]["exit_status"] == 0


def test_requirement_without_tests_is_not_run_and_not_a_failure():
    """A requirement with no check in the run is 'not run'; the run is partial but passes."""
    doc = run(all_pass_except(skip=("ST-A-002",)))
    assert status_of(doc, "ST-A-002") == "not-run"
    assert doc["verdict"]["exit_status"] == 0
    assert doc["verdict"]["complete"] is False
    assert any("not run" in w for w in doc["verdict"]["warnings"])


@pytest.mark.parametrize("kind", [KIND_HARNESS, KIND_UNREACHABLE, None], ids=["harness", "unreachable", "no-kind"])
def test_setup_error_is_error_exit_3_not_a_failure(kind):
    """A harness failure in setup (or a vanished target) is an error, never a failed requirement."""
    recs = all_pass_except(
        *phases("t::err", "ST-A-001", ("setup", "failed"), ("teardown", "passed")), skip=("ST-A-001",)
    )
    recs[-2].kind = kind
    doc = run(recs)
    assert status_of(doc, "ST-A-001") == "error"
    assert doc["counts"]["requirements"]["MUST"]["failed"] == 0
    assert (doc["verdict"]["result"], doc["verdict"]["exit_status"]) == ("error", 3)


def test_assertion_in_setup_is_a_failure():
    """A fixture that asserts about the target (e.g. a create answering 500) fails the requirement."""
    recs = all_pass_except(
        *phases("t::fx", "ST-A-001", ("setup", "failed"), ("teardown", "passed")), skip=("ST-A-001",)
    )
    recs[-2].kind = KIND_TARGET
    doc = run(recs)
    assert status_of(doc, "ST-A-001") == "failed"
    assert doc["verdict"]["exit_status"] == 1


def test_unreachable_during_call_is_error():
    """A connection refused in the middle of a check says nothing about the requirement."""
    doc = run(all_pass_except(*failing_call("t::gone", "ST-A-001", kind=KIND_UNREACHABLE), skip=("ST-A-001",)))
    assert status_of(doc, "ST-A-001") == "error"
    assert doc["verdict"]["exit_status"] == 3


def test_failure_beats_error_in_verdict():
    """A MUST failure is definitive even when other requirements could not be judged."""
    doc = run(
        all_pass_except(
            *failing_call("t::bad", "ST-A-001"),
            *failing_call("t::gone", "ST-A-002", kind=KIND_UNREACHABLE),
            skip=("ST-A-001", "ST-A-002"),
        )
    )
    assert doc["verdict"]["exit_status"] == 1
    assert any("could not be judged" in r for r in doc["verdict"]["reasons"])


def test_teardown_harness_error_keeps_check_result_but_errors_run():
    """A teardown that breaks does not turn a passed check into a failure, but the run is an error."""
    recs = all_pass_except(
        *phases("t::td", "ST-A-001", ("setup", "passed"), ("call", "passed"), ("teardown", "failed")),
        skip=("ST-A-001",),
    )
    recs[-1].kind = KIND_HARNESS
    doc = run(recs)
    assert status_of(doc, "ST-A-001") == "passed"
    assert [e["where"] for e in doc["harness_errors"]] == ["t::td (teardown)"]
    assert doc["verdict"]["exit_status"] == 3


def test_collection_error_is_exit_3():
    """A collection error is the harness's: exit 3, no requirement failed."""
    doc = run(all_pass_except(), collection_errors=[HarnessProblem("suites/test_x.py", "SyntaxError")])
    assert (doc["verdict"]["result"], doc["verdict"]["exit_status"]) == ("error", 3)


def test_known_deviation_xfail_is_expected_failure_and_passes():
    """A known deviation that still deviates is reported as such and does not fail the run."""
    recs = all_pass_except(
        *phases("t::dev", "ST-A-001", ("setup", "passed"), ("call", "skipped"), ("teardown", "passed")),
        skip=("ST-A-001",),
    )
    recs[-2].wasxfail = "the vendor build ignores X-API-Key"
    doc = run(recs)
    req = next(r for r in doc["requirements"] if r["id"] == "ST-A-001")
    assert (req["status"], req["reason"]) == ("expected-failure", "the vendor build ignores X-API-Key")
    assert doc["verdict"]["exit_status"] == 0


def _xfailed(nodeid: str, rid: str, reason: str) -> list[PhaseRecord]:
    recs = phases(nodeid, rid, ("setup", "passed"), ("call", "skipped"), ("teardown", "passed"))
    recs[1].wasxfail = reason
    return recs


def _xpassed(nodeid: str, rid: str, reason: str) -> list[PhaseRecord]:
    """A check of a requirement declared a deviation as a whole that passed (pytest's non-strict xpass)."""
    recs = passing(nodeid, rid)
    recs[1].wasxfail = reason
    return recs


def test_requirement_deviation_with_one_failing_case_of_three_passes():
    """A requirement declared a known deviation as a whole deviates when one of its cases fails; the
    cases that pass are no unexpected pass (the real CLI's ST-CLI-013: zero-date fails, two pass)."""
    recs = all_pass_except(
        *_xpassed("t::dev[epoch-start]", "ST-A-001", "zero date"),
        *_xfailed("t::dev[zero-date]", "ST-A-001", "zero date"),
        *_xpassed("t::dev[far-future]", "ST-A-001", "zero date"),
        skip=("ST-A-001",),
    )
    doc = run(recs)
    req = next(r for r in doc["requirements"] if r["id"] == "ST-A-001")
    assert (req["status"], req["reason"]) == ("expected-failure", "zero date")
    assert [t["outcome"] for t in req["tests"]] == ["passed", "expected-failure", "passed"]
    assert (doc["verdict"]["result"], doc["verdict"]["exit_status"]) == ("pass", 0)


def test_requirement_deviation_with_no_failing_case_is_stale():
    """...and is stale (the run fails) only when none of its checks fails."""
    recs = all_pass_except(
        *_xpassed("t::dev[a]", "ST-A-001", "zero date"),
        *_xpassed("t::dev[b]", "ST-A-001", "zero date"),
        skip=("ST-A-001",),
    )
    doc = run(recs)
    req = next(r for r in doc["requirements"] if r["id"] == "ST-A-001")
    assert (req["status"], req["reason"]) == ("unexpectedly-passing", "zero date")
    assert doc["verdict"]["exit_status"] == 1
    assert any("passed unexpectedly" in r and "ST-A-001" in r for r in doc["verdict"]["reasons"])


def test_check_deviation_message_prefix_is_removed():
    """A stale entry naming one check (a strict xpass) reports the entry's own reason."""
    message = "[XPASS(strict)] known deviation ST-A-001 (check zero-date): old"
    doc = run(all_pass_except(*failing_call("t::x[zero-date]", "ST-A-001", kind=KIND_XPASS, message=message)))
    req = next(r for r in doc["requirements"] if r["id"] == "ST-A-001")
    assert req["status"] == "unexpectedly-passing"
    assert req["tests"][-1]["deviation"] == "old"


@pytest.mark.parametrize("rid", ["ST-A-001", "ST-A-003"], ids=["MUST", "SHOULD"])
def test_known_deviation_passing_fails_the_run(rid):
    """A stale known deviation (the check passes) fails the run, whatever the level."""
    doc = run(
        all_pass_except(
            *failing_call("t::stale", rid, kind=KIND_XPASS, message=f"[XPASS(strict)] known deviation {rid}: old"),
            skip=(rid,),
        )
    )
    req = next(r for r in doc["requirements"] if r["id"] == rid)
    assert req["status"] == "unexpectedly-passing"
    assert req["tests"][0]["deviation"] == "old"
    assert doc["verdict"]["exit_status"] == 1
    assert any("passed unexpectedly" in r for r in doc["verdict"]["reasons"])


def test_interrupted_run_is_exit_2():
    """An interrupted run keeps pytest's exit status 2 and says the results are incomplete."""
    doc = run(all_pass_except(), interrupted=True)
    assert (doc["verdict"]["result"], doc["verdict"]["exit_status"]) == ("error", 2)
    assert doc["verdict"]["complete"] is False


def test_no_tests_is_exit_5():
    """Nothing ran: pytest's own 'no tests collected' status, and no pass."""
    doc = run([])
    assert (doc["verdict"]["result"], doc["verdict"]["exit_status"]) == ("error", 5)


def test_failure_wins_over_passes_within_a_requirement():
    """One failing case of a parametrised check fails its requirement."""
    doc = run(all_pass_except(*failing_call("t::case2", "ST-A-001")))
    req = next(r for r in doc["requirements"] if r["id"] == "ST-A-001")
    assert req["status"] == "failed"
    assert sorted(t["outcome"] for t in req["tests"]) == ["failed", "passed"]
    assert req["reason"] == "expected 200, got 500"


def test_check_without_requirement_failing_is_harness_error():
    """A failing test that traces to no requirement is reported, and makes the run an error."""
    doc = run(all_pass_except(*failing_call("t::stray", None)))
    assert [t["nodeid"] for t in doc["unattributed_tests"]] == ["t::stray"]
    assert doc["verdict"]["exit_status"] == 3


def test_observations_taken_once_from_the_last_phase():
    """Each phase repeats the test's properties; an observation is counted once."""
    obs = [{"key": "duplicate_names", "value": "allowed"}]
    recs = passing("t::obs", "ST-A-003")
    recs[1].observations = list(obs)
    recs[2].observations = list(obs)
    doc = run(all_pass_except(*recs, skip=("ST-A-003",)))
    assert doc["open_behaviours"] == {
        "duplicate_names": {
            "values": ["allowed"],
            "tests": [{"nodeid": "t::obs", "value": "allowed", "requirements": ["ST-A-003"]}],
        }
    }


@pytest.mark.parametrize(
    ("reason", "settings"),
    [
        ("needs a managed target: profile setting 'launch' is not set", ["launch"]),
        ("left open: profile setting 'expect.scheme_case' is not pinned", ["expect.scheme_case"]),
        ("not applicable: expect.duplicate_names is refused", ["expect.duplicate_names"]),
        ("no CLI: setting `cli.command` is empty", ["cli.command"]),
        ("the target is slow", []),
    ],
    ids=["quoted", "quoted-dotted", "dotted", "backticks", "none"],
)
def test_skip_reason_names_the_setting(reason, settings):
    """The setting that caused a skip is read from its reason."""
    assert skip_settings(reason) == settings


def _inconclusive(nodeid: str, rid: str, reason: str) -> list[PhaseRecord]:
    recs = phases(nodeid, rid, ("setup", "passed"), ("call", "skipped"), ("teardown", "passed"))
    recs[1].skip_reason = reason
    return recs


@pytest.mark.parametrize(
    "reason",
    [
        "inconclusive: the call came after the expiry",
        "sts_conformance.core.preconditions.Inconclusive: inconclusive: the call came after the expiry",
    ],
    ids=["plain", "qualified"],
)
def test_inconclusive_check_is_its_own_outcome(reason):
    """A check that could not conclude is inconclusive (not skipped), and so is its requirement."""
    recs = all_pass_except(*_inconclusive("t::late", "ST-A-001", reason))
    doc = run(recs)
    req = next(r for r in doc["requirements"] if r["id"] == "ST-A-001")
    assert req["status"] == "inconclusive"
    assert req["reason"] == "the call came after the expiry"
    assert [t["outcome"] for t in req["tests"]] == ["passed", "inconclusive"]
    assert doc["counts"]["tests"]["inconclusive"] == 1 and doc["counts"]["tests"]["skipped"] == 0


def test_inconclusive_must_passes_only_with_a_warning_and_never_silently():
    doc = run(all_pass_except(*_inconclusive("t::late", "ST-A-001", "inconclusive: late")))
    v = doc["verdict"]
    assert (v["result"], v["exit_status"], v["inconclusive"]) == ("pass", 0, ["ST-A-001"])
    assert not any(r == "every MUST requirement that ran passed" for r in v["reasons"])
    assert any("ST-A-001" in r and "inconclusive" in r for r in v["reasons"])
    assert any("ST-A-001" in w and "--strict" in w for w in v["warnings"])


@pytest.mark.parametrize("outcome", [{"strict": True}, {"fail_inconclusive": True}], ids=["strict", "profile-setting"])
@pytest.mark.parametrize("rid", ["ST-A-001", "ST-A-003"], ids=["MUST", "SHOULD"])
def test_inconclusive_fails_the_run_under_strict_or_the_profile_setting(outcome, rid):
    doc = run(all_pass_except(*_inconclusive("t::late", rid, "inconclusive: late")), **outcome)
    v = doc["verdict"]
    assert (v["result"], v["exit_status"]) == ("fail", 1)
    assert any(rid in r and "inconclusive" in r for r in v["reasons"])


def test_a_failure_beats_an_inconclusive_case():
    recs = all_pass_except(
        *_inconclusive("t::late", "ST-A-001", "inconclusive: late"), *failing_call("t::bad", "ST-A-001")
    )
    assert status_of(run(recs), "ST-A-001") == "failed"


def test_a_plain_skip_mentioning_inconclusive_later_is_still_a_skip():
    recs = all_pass_except(
        *_inconclusive("t::s", "ST-A-003", "needs launch: else inconclusive: maybe"), skip=("ST-A-003",)
    )
    assert status_of(run(recs), "ST-A-003") == "skipped"
