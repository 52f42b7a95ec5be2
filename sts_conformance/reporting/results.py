"""From pytest's per-phase reports to one verdict per requirement, and the run's verdict.

Everything here works on plain data (:class:`PhaseRecord` is JSON-ready), so the same
code builds the report inside a run and from a recorded run in the project's own tests.
The rules (what counts as a failure, an error, a pass) are documented for readers of the
reports in ``docs/report-format.md``; keep the two in step.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from sts_conformance.core.preconditions import blocked_by
from sts_conformance.core.redact import REDACTOR
from sts_conformance.core.requirements import Requirement

# -- the vocabulary ------------------------------------------------------------------------

PASSED = "passed"
FAILED = "failed"
BLOCKED = "blocked"
INCONCLUSIVE = "inconclusive"
ERROR = "error"
SKIPPED = "skipped"
NOT_APPLICABLE = "not-applicable"
EXPECTED_FAILURE = "expected-failure"
UNEXPECTEDLY_PASSING = "unexpectedly-passing"
NOT_RUN = "not-run"

#: every status a requirement can have, in the order reports show them
STATUSES = (
    PASSED,
    FAILED,
    BLOCKED,
    INCONCLUSIVE,
    ERROR,
    SKIPPED,
    NOT_APPLICABLE,
    EXPECTED_FAILURE,
    UNEXPECTEDLY_PASSING,
    NOT_RUN,
)
#: every outcome a single test can have (a test is never "not run": then it has no record)
TEST_OUTCOMES = STATUSES[:-1]

#: when a requirement's tests disagree, the first status in this list that any test has wins
_PRECEDENCE = (
    FAILED,
    UNEXPECTEDLY_PASSING,
    ERROR,
    BLOCKED,
    INCONCLUSIVE,
    EXPECTED_FAILURE,
    PASSED,
    SKIPPED,
    NOT_APPLICABLE,
)

# the run's verdict and its exit status (see docs/report-format.md, "Verdict and exit status")
RESULT_PASS = "pass"
RESULT_FAIL = "fail"
RESULT_ERROR = "error"
EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_INTERRUPTED = 2
EXIT_ERROR = 3
EXIT_USAGE = 4
EXIT_NO_TESTS = 5

# why a phase failed, decided where the exception is still at hand (see hooks.py)
KIND_TARGET = "target"  # an assertion about the target (AssertionError, pytest.fail)
KIND_HARNESS = "harness"  # any other exception in fixture setup or teardown
KIND_UNREACHABLE = "unreachable"  # the target could not be connected to
KIND_XPASS = "xpass-strict"  # a known deviation that did not fail

#: a skip whose reason starts like this is "not applicable" rather than "skipped"
NOT_APPLICABLE_PREFIX = "not applicable:"
#: a skip whose reason starts ``inconclusive:`` (after an exception's qualified name, when the skip was
#: raised as a class of its own) is a check that ran and could not conclude: "inconclusive"
_INCONCLUSIVE = re.compile(r"^(?:[A-Za-z_][\w.]*:\s*)?inconclusive:\s*", re.IGNORECASE)

_SKIP_PREFIX = re.compile(r"^Skipped:\s*")
_SETTING_QUOTED = re.compile(r"\bsetting\s+['\"`]([A-Za-z_][\w.]*)['\"`]")
_SETTING_DOTTED = re.compile(r"\b((?:expect|bootstrap|roles|cli)\.[a-z_]+)\b")
_MESSAGE_LIMIT = 2000
_DETAILS_LIMIT = 8000


def mask_data(value: Any) -> Any:
    """Mask every string inside plain JSON-like data (keys included)."""
    if isinstance(value, str):
        return REDACTOR.mask(value)
    if isinstance(value, Mapping):
        return {mask_data(k) if isinstance(k, str) else k: mask_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_data(v) for v in value]
    return value


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, keeping its head and its tail."""
    if len(text) <= limit:
        return text
    head = limit * 2 // 3
    tail = limit - head
    return f"{text[:head]}\n… ({len(text) - limit} characters left out) …\n{text[-tail:]}"


def inconclusive_reason(reason: str | None) -> str | None:
    """What a skip reason says could not be concluded, when it is an inconclusive check's; else None."""
    if not reason:
        return None
    text = reason.removeprefix("Skipped:").strip()
    match = _INCONCLUSIVE.match(text)
    if match is None:
        return None
    return text[match.end() :].strip() or "no reason given"


def skip_settings(reason: str) -> list[str]:
    """The profile settings a skip reason names (``setting 'launch'``, ``expect.duplicate_names``)."""
    found = _SETTING_QUOTED.findall(reason) + _SETTING_DOTTED.findall(reason)
    return list(dict.fromkeys(found))


# -- one phase of one test -------------------------------------------------------------------


@dataclass
class PhaseRecord:
    """What the report needs from one pytest ``TestReport`` (setup, call or teardown)."""

    nodeid: str
    when: str
    outcome: str  # pytest's: passed, failed, skipped
    duration: float = 0.0
    requirements: list[str] = field(default_factory=list)
    observations: list[dict[str, Any]] = field(default_factory=list)
    exchanges: list[dict[str, Any]] = field(default_factory=list)
    kind: str | None = None  # for failed phases: KIND_*
    message: str | None = None
    details: str | None = None
    skip_reason: str | None = None
    wasxfail: str | None = None
    worker: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PhaseRecord:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass
class HarnessProblem:
    """Something that went wrong in the suite or its environment, not in the target."""

    where: str
    message: str
    details: str = ""


def _test_outcome(phases: dict[str, PhaseRecord]) -> tuple[str, PhaseRecord | None, list[HarnessProblem]]:
    """One test's outcome from its phases: (outcome, the phase that decided it, harness errors)."""
    setup, call, teardown = phases.get("setup"), phases.get("call"), phases.get("teardown")
    errors: list[HarnessProblem] = []
    outcome, decisive = PASSED, call or setup
    first = setup or call
    if first is not None and first.outcome == "failed":
        outcome, decisive = _failed_outcome(first), first
    elif first is not None and first.outcome == "skipped":
        outcome, decisive = _skipped_outcome(first), first
    elif call is not None:
        decisive = call
        if call.outcome == "failed":
            outcome = _failed_outcome(call)
        elif call.outcome == "skipped":
            outcome = _skipped_outcome(call)
    if teardown is not None and teardown.outcome == "failed":
        if teardown.kind == KIND_TARGET and outcome == PASSED:
            outcome, decisive = FAILED, teardown
        elif teardown.kind != KIND_TARGET:
            # the check itself is judged by its call; the teardown problem is the harness's
            where = f"{teardown.nodeid} (teardown)"
            errors.append(HarnessProblem(where, teardown.message or "", teardown.details or ""))
    return outcome, decisive, errors


def _failed_outcome(phase: PhaseRecord) -> str:
    if phase.kind == KIND_XPASS:
        return UNEXPECTEDLY_PASSING
    if phase.kind == KIND_TARGET:
        return FAILED
    # harness, unreachable, or no kind at all: a report that pytest or xdist made up without
    # running our hook (a crashed worker) -- none of them says anything about the target
    return ERROR


def _skipped_outcome(phase: PhaseRecord) -> str:
    if phase.wasxfail is not None:
        return EXPECTED_FAILURE
    reason = phase.skip_reason or ""
    if blocked_by(reason) is not None:
        return BLOCKED
    if inconclusive_reason(reason) is not None:
        return INCONCLUSIVE
    return NOT_APPLICABLE if reason.lower().startswith(NOT_APPLICABLE_PREFIX) else SKIPPED


def _test_entry(nodeid: str, phases: dict[str, PhaseRecord], outcome: str, decisive: PhaseRecord | None) -> dict:
    entry: dict[str, Any] = {
        "nodeid": nodeid,
        "outcome": outcome,
        "duration_s": round(sum(p.duration for p in phases.values()), 4),
    }
    workers = {p.worker for p in phases.values() if p.worker}
    if workers:
        entry["worker"] = sorted(workers)[0]
    if decisive is not None:
        if outcome in (SKIPPED, NOT_APPLICABLE) and decisive.skip_reason:
            entry["reason"] = decisive.skip_reason
            entry["settings"] = skip_settings(decisive.skip_reason)
        if outcome == INCONCLUSIVE and decisive.skip_reason:
            entry["reason"] = inconclusive_reason(decisive.skip_reason)
        if outcome == BLOCKED and decisive.skip_reason:
            blocker = blocked_by(decisive.skip_reason)
            assert blocker is not None
            entry["blocked_by"], entry["reason"] = blocker[0], decisive.skip_reason
        if outcome in (EXPECTED_FAILURE, UNEXPECTEDLY_PASSING):
            entry["deviation"] = decisive.wasxfail or _xpass_reason(decisive.message)
        elif outcome == PASSED and decisive.wasxfail is not None:
            # a passing check of a requirement declared a known deviation as a whole (a non-strict
            # xfail): no failure by itself; its requirement decides whether the entry is stale
            entry["deviation"] = decisive.wasxfail
        if outcome in (FAILED, ERROR, EXPECTED_FAILURE, UNEXPECTEDLY_PASSING) and decisive.message:
            entry["message"] = decisive.message
            if decisive.details:
                entry["details"] = decisive.details
            entry["phase"] = decisive.when
        if outcome in (FAILED, ERROR, EXPECTED_FAILURE) and decisive.exchanges:
            entry["exchanges"] = decisive.exchanges
    # each phase's report carries the test's properties as they were when it was made, so
    # the last phase has every observation (and the earlier ones a prefix of them)
    last = phases.get("teardown") or phases.get("call") or phases.get("setup")
    observations = last.observations if last is not None else []
    if observations:
        entry["observations"] = observations
    return entry


def _xpass_reason(message: str | None) -> str:
    text = (message or "").removeprefix("[XPASS(strict)]").strip()
    return re.sub(r"^known deviation (?:ST-[A-Z]+-\d{3})? ?(?:\(check .*?\))?:\s+", "", text)


# -- the whole run ----------------------------------------------------------------------------


@dataclass
class RunOutcome:
    """The run-level facts the verdict needs beyond the tests' own results."""

    strict: bool = False
    interrupted: bool = False
    #: an inconclusive requirement fails the run (``--strict``, or the profile's ``fail_on_inconclusive``)
    fail_inconclusive: bool = False
    collection_errors: list[HarnessProblem] = field(default_factory=list)


def group_phases(records: Iterable[PhaseRecord]) -> dict[str, dict[str, PhaseRecord]]:
    """Records by test (in the order first seen), then by phase."""
    tests: dict[str, dict[str, PhaseRecord]] = {}
    for rec in records:
        tests.setdefault(rec.nodeid, {})[rec.when] = rec
    return tests


def evaluate(records: Iterable[PhaseRecord], catalogue: Mapping[str, Requirement], run: RunOutcome) -> dict[str, Any]:
    """The report's ``requirements``, ``unattributed_tests``, ``harness_errors``, ``counts``,
    ``open_behaviours`` and ``verdict`` sections."""
    per_req: dict[str, list[dict[str, Any]]] = {rid: [] for rid in catalogue}
    unattributed: list[dict[str, Any]] = []
    harness_errors = list(run.collection_errors)
    test_counts = dict.fromkeys(TEST_OUTCOMES, 0)
    behaviours: dict[str, dict[str, Any]] = {}

    for nodeid, phases in group_phases(records).items():
        outcome, decisive, errors = _test_outcome(phases)
        harness_errors.extend(errors)
        test_counts[outcome] += 1
        entry = _test_entry(nodeid, phases, outcome, decisive)
        reqs = list(dict.fromkeys(r for p in phases.values() for r in p.requirements))
        for obs in entry.get("observations", []):
            key = str(obs.get("key"))
            b = behaviours.setdefault(key, {"values": [], "tests": []})
            if obs.get("value") not in b["values"]:
                b["values"].append(obs.get("value"))
            b["tests"].append({"nodeid": nodeid, "value": obs.get("value"), "requirements": reqs})
        known = [r for r in reqs if r in per_req]
        if not known:
            unattributed.append(entry)
            if outcome in (FAILED, ERROR, UNEXPECTEDLY_PASSING):
                message = f"a check without a known requirement {outcome}: {entry.get('message', '')}"
                harness_errors.append(HarnessProblem(nodeid, message))
        for rid in known:
            per_req[rid].append(entry)

    requirements = [_requirement_entry(catalogue[rid], tests) for rid, tests in per_req.items()]
    causes = root_causes(requirements)
    levels = sorted({r.level for r in catalogue.values()} | {"MUST", "SHOULD"})
    counts: dict[str, dict[str, int]] = {level: dict.fromkeys(STATUSES, 0) for level in levels}
    for req in requirements:
        counts[req["level"]][req["status"]] += 1
    verdict = decide(requirements, harness_errors, run, tests_ran=sum(test_counts.values()), causes=causes)
    return {
        "verdict": verdict,
        "counts": {"requirements": counts, "tests": test_counts},
        "root_causes": causes,
        "requirements": requirements,
        "unattributed_tests": unattributed,
        "harness_errors": [asdict(e) for e in harness_errors],
        "open_behaviours": behaviours,
    }


def _requirement_entry(req: Requirement, tests: list[dict[str, Any]]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": req.id,
        "level": req.level,
        "title": req.title,
        "source": req.source,
        "area": req.area,
    }
    if not tests:
        entry["status"] = NOT_RUN
        entry["tests"] = []
        return entry
    outcomes = {t["outcome"] for t in tests}
    status = next(s for s in _PRECEDENCE if s in outcomes)
    if status == PASSED and any(t["outcome"] == PASSED and "deviation" in t for t in tests):
        # declared a known deviation as a whole, and none of its checks failed: the entry is stale
        status = UNEXPECTEDLY_PASSING
    entry["status"] = status
    deciding = [t for t in tests if t["outcome"] == status]
    if status in (SKIPPED, NOT_APPLICABLE):
        skipped = [t for t in tests if t["outcome"] in (SKIPPED, NOT_APPLICABLE)]
        entry["reason"] = "; ".join(dict.fromkeys(t.get("reason", "") for t in skipped if t.get("reason")))
        entry["settings"] = list(dict.fromkeys(s for t in skipped for s in t.get("settings", [])))
    elif status == INCONCLUSIVE:
        entry["reason"] = "; ".join(dict.fromkeys(t["reason"] for t in deciding if t.get("reason")))
    elif status in (EXPECTED_FAILURE, UNEXPECTEDLY_PASSING):
        entry["reason"] = next((t["deviation"] for t in deciding + tests if t.get("deviation")), "")
    elif status in (FAILED, ERROR):
        entry["reason"] = next((t["message"] for t in deciding if t.get("message")), "")
    elif status == BLOCKED:
        entry["blocked_by"] = list(dict.fromkeys(t["blocked_by"] for t in deciding if t.get("blocked_by")))
        entry["reason"] = next((t["reason"] for t in deciding if t.get("reason")), "")
    entry["tests"] = tests
    return entry


def root_causes(requirements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The failed foundations other checks were blocked by, most blocking first.

    A check is blocked only when a foundation failed under it, so a requirement that blocked
    checks has failed, even where its own check happened to pass or did not run (a list that
    stops short shows the early tokens and not the later ones): its status is set to failed,
    with the blocked check's evidence as the reason. Nothing passes by being blocked.
    """
    by_id = {r["id"]: r for r in requirements}
    blocked: dict[str, dict[str, Any]] = {}
    for blocked_req in requirements:
        for test in blocked_req.get("tests", []):
            cause = test.get("blocked_by")
            if test["outcome"] != BLOCKED or cause is None:
                continue
            entry = blocked.setdefault(cause, {"checks": set(), "requirements": set(), "evidence": test.get("reason")})
            entry["checks"].add(test["nodeid"])
            entry["requirements"].add(blocked_req["id"])
    causes = []
    for rid, entry in blocked.items():
        req: dict[str, Any] | None = by_id.get(rid)
        if req is not None:
            if req["status"] not in (FAILED, UNEXPECTEDLY_PASSING, EXPECTED_FAILURE):
                evidence = blocked_by(entry["evidence"])
                req["status"] = FAILED
                req["reason"] = f"{rid} failed under other checks: {evidence[1] if evidence else entry['evidence']}"
            req["blocks"] = {"checks": len(entry["checks"]), "requirements": sorted(entry["requirements"])}
        causes.append(
            {
                "requirement": rid,
                "level": req["level"] if req else "?",
                "title": req["title"] if req else "",
                "status": req["status"] if req else FAILED,
                "reason": req.get("reason", "") if req else entry["evidence"],
                "blocked_checks": len(entry["checks"]),
                "blocked_requirements": sorted(entry["requirements"]),
            }
        )
    causes.sort(key=lambda c: (-c["blocked_checks"], c["requirement"]))
    return causes


def decide(
    requirements: list[dict[str, Any]],
    harness_errors: list[HarnessProblem],
    run: RunOutcome,
    *,
    tests_ran: int,
    causes: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The run's verdict: result, exit status, and the reasons for both."""

    def ids(level: str | None, status: str) -> list[str]:
        return [r["id"] for r in requirements if r["status"] == status and (level is None or r["level"] == level)]

    must_failed, should_failed = ids("MUST", FAILED), ids("SHOULD", FAILED)
    # blocked only by foundations the profile declares as known deviations: accounted for, like them
    deviations = {r["id"] for r in requirements if r["status"] == EXPECTED_FAILURE}
    excused = {
        r["id"] for r in requirements if r["status"] == BLOCKED and set(r.get("blocked_by") or ["?"]) <= deviations
    }
    must_blocked = [rid for rid in ids("MUST", BLOCKED) if rid not in excused]
    should_blocked = [rid for rid in ids("SHOULD", BLOCKED) if rid not in excused]
    must_inconclusive, should_inconclusive = ids("MUST", INCONCLUSIVE), ids("SHOULD", INCONCLUSIVE)
    inconclusive_fails = run.fail_inconclusive or run.strict
    xpassed = ids(None, UNEXPECTEDLY_PASSING)
    errored = ids(None, ERROR)
    not_run = ids(None, NOT_RUN)
    reasons: list[str] = []
    warnings: list[str] = []
    for cause in causes or []:
        how = "a known deviation," if cause["status"] == EXPECTED_FAILURE else "failed and"
        reasons.append(
            f"root cause: {cause['requirement']} ({cause['level']}) {how} blocked {cause['blocked_checks']} "
            f"check(s) of {len(cause['blocked_requirements'])} requirement(s)"
        )
    if must_failed:
        reasons.append(f"{len(must_failed)} MUST requirement(s) failed: {', '.join(must_failed)}")
    if must_blocked:
        reasons.append(
            f"{len(must_blocked)} MUST requirement(s) could not be checked, blocked by a failed foundation: "
            f"{', '.join(must_blocked)}"
        )
    for level, found in (("MUST", must_inconclusive), ("SHOULD", should_inconclusive)):
        if not found:
            continue
        text = f"{len(found)} {level} requirement(s) inconclusive, not judged: {', '.join(found)}"
        if inconclusive_fails:
            why = "--strict" if run.strict else "profile setting fail_on_inconclusive"
            reasons.append(f"{text} ({why})")
        else:
            warnings.append(f"{text} (fails the run with --strict or profile setting fail_on_inconclusive)")
    if xpassed:
        reasons.append(
            f"{len(xpassed)} known deviation(s) passed unexpectedly (remove them from the profile's "
            f"known_deviations): {', '.join(xpassed)}"
        )
    if should_failed:
        text = f"{len(should_failed)} SHOULD requirement(s) failed: {', '.join(should_failed)}"
        if run.strict:
            reasons.append(text + " (--strict)")
        else:
            warnings.append(text + " (a warning; fails the run only with --strict)")
    if should_blocked:
        listed = ", ".join(should_blocked)
        text = f"{len(should_blocked)} SHOULD requirement(s) blocked by a failed foundation: {listed}"
        if run.strict:
            reasons.append(text + " (--strict)")
        else:
            warnings.append(text)
    if errored:
        reasons.append(
            f"{len(errored)} requirement(s) could not be judged (harness error or target unreachable): "
            f"{', '.join(errored)}"
        )
    if harness_errors:
        reasons.append(f"{len(harness_errors)} harness error(s): " + "; ".join(e.where for e in harness_errors[:5]))
    if excused:
        warnings.append(
            f"{len(excused)} requirement(s) not fully checked, blocked by a known deviation of the profile: "
            + ", ".join(sorted(excused))
        )
    if not_run:
        warnings.append(f"{len(not_run)} requirement(s) had no check in this run (not run)")

    if run.interrupted:
        result, status = RESULT_ERROR, EXIT_INTERRUPTED
        reasons.insert(0, "the run was interrupted; the results are incomplete")
    elif (
        must_failed
        or must_blocked
        or xpassed
        or (run.strict and (should_failed or should_blocked))
        or (inconclusive_fails and (must_inconclusive or should_inconclusive))
    ):
        result, status = RESULT_FAIL, EXIT_FAIL
    elif errored or harness_errors:
        result, status = RESULT_ERROR, EXIT_ERROR
    elif tests_ran == 0:
        result, status = RESULT_ERROR, EXIT_NO_TESTS
        reasons.append("no check ran")
    else:
        result, status = RESULT_PASS, EXIT_PASS
        if must_inconclusive:
            # never a plain "passed": a gate reading only the first reason must see the hole
            reasons.append(
                f"every MUST requirement that ran passed, except {len(must_inconclusive)} inconclusive (not judged): "
                + ", ".join(must_inconclusive)
            )
        else:
            reasons.append("every MUST requirement that ran passed")
    # a failure is final, but errors seen beside it are still worth saying
    return {
        "result": result,
        "exit_status": status,
        "strict": run.strict,
        "complete": not not_run and not run.interrupted,
        "inconclusive": must_inconclusive + should_inconclusive,
        "reasons": reasons,
        "warnings": warnings,
    }


def clip_message(text: str | None) -> str | None:
    return None if text is None else clip(REDACTOR.mask(text), _MESSAGE_LIMIT)


def clip_details(text: str | None) -> str | None:
    return None if text is None else clip(REDACTOR.mask(text), _DETAILS_LIMIT)
