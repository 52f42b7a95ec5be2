"""The report says how often and how long the target throttled, and a target that throttles
beyond the budget is a harness error (exit status 3), never a failed requirement (issue 18)."""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace
from typing import Any

import jsonschema
import pytest

from sts_conformance.reporting import render_html, render_summary
from sts_conformance.reporting.collect import failure_kind
from sts_conformance.reporting.results import KIND_UNREACHABLE, PhaseRecord
from sts_conformance.target.throttle import TargetThrottled, ThrottleStats

from .support import SCHEMA, recorded_records
from .test_writers import rebuild

GAVE_UP = "the target throttled the run for longer than it may wait: GET /security/tokens answered 429"


def _doc(throttling: ThrottleStats, extra: tuple[PhaseRecord, ...] = ()) -> dict:
    return rebuild("serial-pass", extra=extra, throttling=throttling.as_dict())


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))


def test_throttling_is_reported_everywhere_and_judges_nothing(validator):
    stats = ThrottleStats(37, {"429": 36, "cli": 1}, 4.25, 1.0)
    doc = _doc(stats)
    assert list(validator.iter_errors(doc)) == []
    assert doc["run"]["throttling"] == {
        "responses": 37,
        "statuses": {"429": 36, "cli": 1},
        "waited_s": 4.25,
        "longest_s": 1.0,
    }
    assert doc["verdict"]["exit_status"] == 0
    (said,) = [w for w in doc["verdict"]["warnings"] if "throttled" in w]
    assert "37 answer(s) (36 × 429, 1 × cli)" in said and "4.2 s" in said
    assert said in render_summary(doc) and said in render_html(doc)


def test_no_throttling_no_warning(validator):
    doc = _doc(ThrottleStats())
    assert list(validator.iter_errors(doc)) == []
    assert doc["run"]["throttling"]["responses"] == 0
    assert not [w for w in doc["verdict"]["warnings"] if "throttled" in w]


def test_throttling_beyond_the_budget_is_a_harness_error_not_a_failure():
    """The check the throttling stopped is an error (unreachable), the cause leads the reasons, exit status 3."""
    exc = TargetThrottled(GAVE_UP)
    report: Any = SimpleNamespace(longrepr="TargetThrottled: ...")
    call: Any = SimpleNamespace(excinfo=SimpleNamespace(value=exc), when="call")
    assert failure_kind(report, call) == KIND_UNREACHABLE
    passed = next(r for r in recorded_records("serial-pass") if r.when == "call" and r.outcome == "passed")
    stopped = dataclasses.replace(passed, outcome="failed", kind=KIND_UNREACHABLE, message=GAVE_UP)
    doc = _doc(ThrottleStats(3, {"429": 3}, 119.0, 60.0, gave_up=GAVE_UP), (stopped,))
    assert doc["verdict"]["exit_status"] == 3
    assert doc["verdict"]["reasons"][0] == f"harness error: {GAVE_UP}"
    assert not [r for r in doc["requirements"] if r["status"] == "failed"]
