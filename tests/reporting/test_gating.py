"""A real suite run (subprocess, embedded reference) writes the reports and exits by the gating rules.

Exit status: 0 every MUST requirement that ran passed; 1 a MUST failed, a known deviation
passed, or (with --strict) a SHOULD failed; 3 a harness error or a target gone unreachable
(never counted as a failed requirement); 4 the run could not start. Each case runs a few
checks only, so the whole module stays a few seconds.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from .support import SCHEMA, profile, read_report, run_suite, statuses

LIFE = "suites/test_lifecycle.py::"
CREATE = LIFE + "test_create_answers_200_with_name_and_token"
DELETE = LIFE + "test_delete_answers_204_without_body"
DELETE_UNKNOWN = LIFE + "test_delete_unknown_id_no_server_error"
LISTED = LIFE + "test_created_token_listed_with_its_name_roles_and_a_new_id"
X_API_KEY = "suites/test_authorization_matrix.py::test_authorization[valid-manager/probe/X-API-Key]"


def ran(doc: dict) -> dict[str, str]:
    return {rid: s for rid, s in statuses(doc).items() if s != "not-run"}


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_run_writes_all_four_reports_once(tmp_path, workers):
    """A passing run writes junit.xml, conformance.json/.html and summary.md, with every test in them."""
    reports = tmp_path / "reports"
    (reports).mkdir()
    (reports / "conformance.html").write_text("stale", encoding="utf-8")
    done = run_suite(reports, *workers, "suites/test_lifecycle.py")
    assert done.returncode == 0, done.stdout[-3000:]
    assert sorted(p.name for p in reports.iterdir()) == [
        "conformance.html",
        "conformance.json",
        "junit.xml",
        "summary.md",
    ]
    doc = read_report(reports)
    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text(encoding="utf-8"))).validate(doc)
    junit = ET.parse(reports / "junit.xml").getroot()
    cases = junit.findall(".//testcase")
    tests = {t["nodeid"] for r in doc["requirements"] for t in r["tests"]}
    assert len(cases) == len(tests) == sum(doc["counts"]["tests"].values()) > 10
    assert all(s == "passed" for s in ran(doc).values())
    assert doc["run"]["workers"] == (2 if workers else 0)
    assert "stale" not in (reports / "conformance.html").read_text(encoding="utf-8")
    assert "service-token conformance" in done.stdout and "verdict: PASS (exit status 0)" in done.stdout
    assert "MUST " in done.stdout and str(reports / "conformance.html") in done.stdout


def test_must_failure_exits_1(tmp_path):
    """A faulty target that ignores X-API-Key fails a MUST requirement: exit 1."""
    target = profile(tmp_path, fault="x-api-key-ignored")
    done = run_suite(tmp_path / "r", "--target", str(target), CREATE, X_API_KEY)
    assert done.returncode == 1, done.stdout[-3000:]
    doc = read_report(tmp_path / "r")
    assert ran(doc) == {"ST-LIFE-001": "passed", "ST-AUTH-003": "failed"}
    assert (doc["verdict"]["result"], doc["verdict"]["exit_status"]) == ("fail", 1)
    failed = next(r for r in doc["requirements"] if r["id"] == "ST-AUTH-003")
    assert "got 401" in failed["tests"][-1]["message"]
    # the evidence is the exchange that showed the failure at the start of the run, whatever else
    # (bootstrap instances taken through their scenarios meanwhile) talked to a target then
    evidence = failed["tests"][-1]["exchanges"][-1]
    assert evidence["status"] == 401 and evidence["url"].endswith("/api/server/status"), evidence
    assert {k.lower() for k in evidence["request_headers"]} >= {"x-api-key"}, evidence


@pytest.mark.parametrize(("strict", "exit_status"), [([], 0), (["--strict"], 1)], ids=["default", "strict"])
def test_should_failure_fails_only_under_strict(tmp_path, strict, exit_status):
    """A SHOULD requirement failing (the profile pins a status the target does not send) is a warning."""
    target = profile(tmp_path, expect={"delete_unknown_status": 418})
    done = run_suite(tmp_path / "r", *strict, "--target", str(target), CREATE, DELETE_UNKNOWN)
    assert done.returncode == exit_status, done.stdout[-3000:]
    doc = read_report(tmp_path / "r")
    assert ran(doc) == {"ST-LIFE-001": "passed", "ST-LIFE-008": "failed"}
    assert doc["verdict"]["strict"] is bool(strict)
    if not strict:
        assert any("ST-LIFE-008" in w and "--strict" in w for w in doc["verdict"]["warnings"])


def test_known_deviation_still_deviating_passes(tmp_path):
    """A listed deviation that still fails is an expected failure and the run passes."""
    target = profile(tmp_path, fault="x-api-key-ignored", deviations={"ST-AUTH-003": "reads only Authorization"})
    done = run_suite(tmp_path / "r", "--target", str(target), CREATE, X_API_KEY)
    assert done.returncode == 0, done.stdout[-3000:]
    doc = read_report(tmp_path / "r")
    req = next(r for r in doc["requirements"] if r["id"] == "ST-AUTH-003")
    assert (req["status"], req["reason"]) == ("expected-failure", "reads only Authorization")


def test_stale_known_deviation_fails_the_run(tmp_path):
    """A listed deviation that passes fails the run, and the report says to remove it."""
    target = profile(tmp_path, deviations={"ST-AUTH-003": "reads only Authorization"})
    done = run_suite(tmp_path / "r", "--target", str(target), CREATE, X_API_KEY)
    assert done.returncode == 1, done.stdout[-3000:]
    doc = read_report(tmp_path / "r")
    assert ran(doc)["ST-AUTH-003"] == "unexpectedly-passing"
    assert any("known_deviations" in r and "ST-AUTH-003" in r for r in doc["verdict"]["reasons"])
    assert "Remove the entry from known_deviations" in (tmp_path / "r" / "conformance.html").read_text("utf-8")


@pytest.mark.parametrize(
    ("how", "exit_status"),
    [([], 0), (["--strict"], 1), (["fail_on_inconclusive"], 1)],
    ids=["default", "strict", "profile-setting"],
)
def test_inconclusive_must_is_reported_and_fails_the_gate_when_asked(tmp_path, how, exit_status):
    """A MUST whose check could not conclude: its own status, named in the verdict; exit 1 under --strict
    or the profile's fail_on_inconclusive, else exit 0 with a verdict that does not read as a plain pass."""
    target = profile(tmp_path)
    options = [o for o in how if o.startswith("--")]
    if "fail_on_inconclusive" in how:
        target.write_text(target.read_text("utf-8") + "fail_on_inconclusive: true\n", encoding="utf-8")
    done = run_suite(
        tmp_path / "r",
        *options,
        "--target",
        str(target),
        CREATE,
        X_API_KEY,
        env={"STS_PROBE_INCONCLUSIVE": "X-API-Key"},
    )
    assert done.returncode == exit_status, done.stdout[-3000:]
    doc = read_report(tmp_path / "r")
    assert ran(doc) == {"ST-LIFE-001": "passed", "ST-AUTH-003": "inconclusive"}
    assert doc["verdict"]["inconclusive"] == ["ST-AUTH-003"]
    assert "every MUST requirement that ran passed\n" not in done.stdout
    assert "ST-AUTH-003" in done.stdout and "inconclusive" in done.stdout
    assert "| ST-AUTH-003 | MUST | inconclusive |" in (tmp_path / "r" / "summary.md").read_text("utf-8")


def test_harness_error_in_setup_exits_3(tmp_path):
    """A fixture that breaks (not an assertion about the target) is an error, not a failure."""
    done = run_suite(tmp_path / "r", CREATE, DELETE, env={"STS_PROBE_BREAK": "delete_answers"})
    assert done.returncode == 3, done.stdout[-3000:]
    doc = read_report(tmp_path / "r")
    assert ran(doc) == {"ST-LIFE-001": "passed", "ST-LIFE-004": "error"}
    assert doc["counts"]["requirements"]["MUST"]["failed"] == 0


def test_target_gone_mid_run_exits_3(tmp_path):
    """A target that stops answering during the run makes the run an error, not a failed requirement.
    (The second check runs alone, in its turn: the checks marked together run when the first of them runs.)"""
    done = run_suite(tmp_path / "r", CREATE, LISTED, env={"STS_PROBE_STOP_TARGET": "listed_with_its_name"})
    assert done.returncode == 3, done.stdout[-3000:]
    doc = read_report(tmp_path / "r")
    assert ran(doc) == {"ST-LIFE-001": "passed", "ST-LIFE-003": "error"}
    gone = next(r for r in doc["requirements"] if r["id"] == "ST-LIFE-003")
    assert "ConnectError" in gone["reason"]


def test_collection_error_exits_3(tmp_path):
    """A test module that cannot be imported is a harness error: exit 3 and an error report."""
    broken = tmp_path / "extra" / "test_broken.py"
    broken.parent.mkdir()
    broken.write_text("import no_such_module_for_the_report_test\n", encoding="utf-8")
    done = run_suite(tmp_path / "r", CREATE, str(broken))
    assert done.returncode == 3, done.stdout[-3000:]
    doc = read_report(tmp_path / "r")
    assert doc["verdict"]["result"] == "error"
    assert "no_such_module_for_the_report_test" in doc["harness_errors"][0]["message"]


def test_unreachable_target_at_start_leaves_an_error_report(tmp_path):
    """A target that cannot be reached stops the run (exit 4) and replaces old reports with an error one."""
    reports = tmp_path / "r"
    reports.mkdir()
    (reports / "conformance.json").write_text('{"stale": true}', encoding="utf-8")
    (reports / "junit.xml").write_text("<stale/>", encoding="utf-8")
    target = tmp_path / "gone.yaml"
    target.write_text("name: gone\nurl: http://127.0.0.1:9\nadmin_token: not-a-real-admin-token-123\n", "utf-8")
    done = run_suite(reports, "--target", str(target), CREATE)
    assert done.returncode == 4, done.stdout + done.stderr
    doc = read_report(reports)
    assert (doc["verdict"]["result"], doc["verdict"]["exit_status"]) == ("error", 4)
    assert "unreachable" in doc["verdict"]["reasons"][0]
    assert doc["profile"]["admin_token"] == "<set>"
    # junit.xml: the last run's results are gone; one error case says why this run did not start
    junit = ET.parse(reports / "junit.xml").getroot()
    cases = junit.findall(".//testcase")
    error = cases[0].find("error")
    assert len(cases) == 1 and error is not None and "unreachable" in error.get("message", ""), ET.tostring(junit)
    assert "not-a-real-admin-token-123" not in "".join(p.read_text("utf-8") for p in reports.iterdir())


def test_junitxml_option_is_respected(tmp_path):
    """A --junitxml given by the user wins over the report dir."""
    junit = tmp_path / "mine.xml"
    done = run_suite(tmp_path / "r", f"--junitxml={junit}", CREATE)
    assert done.returncode == 0, done.stdout[-3000:]
    assert junit.exists()
    assert not (tmp_path / "r" / "junit.xml").exists()
    assert (Path(tmp_path / "r") / "conformance.json").exists()


def test_collect_only_is_not_a_verdict(tmp_path):
    """--collect-only runs no check: pytest's own exit status, and no conformance report."""
    done = run_suite(tmp_path / "r", "--collect-only", "suites/test_lifecycle.py")
    assert done.returncode == 0, done.stdout[-3000:]
    assert not (tmp_path / "r" / "conformance.json").exists()
