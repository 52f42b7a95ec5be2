"""A 5xx that no check judged fails ST-ERR-001 instead of the check's own requirement; a judged one does not.

Real suite runs (subprocess, embedded reference with one fault), a few checks each.
"""

from __future__ import annotations

import pytest

from .support import profile, read_report, run_suite, statuses

#: the first cell of the unprivileged row makes all the row's calls, OPTIONS among them
ROW_MAKER = "suites/test_path_variants.py::test_variant_refuses_what_the_documented_call_refuses"
FIRST_CELL = f"{ROW_MAKER}[valid-unprivileged/list-trailing-slash]"
OPTIONS_CELL = f"{ROW_MAKER}[valid-unprivileged/list-options]"


def ran(doc: dict) -> dict[str, str]:
    return {rid: s for rid, s in statuses(doc).items() if s != "not-run"}


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_unjudged_server_error_fails_err_001_not_the_checks_own_requirement(tmp_path, workers):
    """OPTIONS answered 500 passes the refusal cells (a 500 refuses), so it is ST-ERR-001 that fails."""
    target = profile(tmp_path, fault="options-500")
    done = run_suite(tmp_path / "r", *workers, "--target", str(target), FIRST_CELL, OPTIONS_CELL)
    assert done.returncode == 1, done.stdout[-3000:]
    doc = read_report(tmp_path / "r")
    # under xdist each worker makes the row of the cell it runs: then both cells sent the OPTIONS
    got = ran(doc)
    assert got["ST-ERR-001"] == "failed" and got.get("ST-PATH-001", "passed") == "passed", got
    failed = next(r for r in doc["requirements"] if r["id"] == "ST-ERR-001")
    test = next(t for t in failed["tests"] if t["outcome"] == "failed")
    assert "OPTIONS" in test["message"] and "-> 500" in test["message"], test["message"]
    assert test["exchanges"] and test["exchanges"][-1]["status"] == 500


def test_server_error_a_cell_judges_is_not_counted_again(tmp_path):
    """A second delete answered 500 fails ST-ERR-002's cell; the cell that sent it does not fail ST-ERR-001."""
    target = profile(tmp_path, fault="double-delete-500")
    done = run_suite(tmp_path / "r", "--target", str(target), "suites/test_server_errors.py")
    assert done.returncode == 1, done.stdout[-3000:]
    doc = read_report(tmp_path / "r")
    assert {rid for rid, s in ran(doc).items() if s == "failed"} == {"ST-ERR-002"}


def test_server_error_a_should_check_judges_fails_err_001_too(tmp_path):
    """A 5xx to a malformed body fails ST-LIFE-011 (SHOULD: a 4xx) and, as a server error, ST-ERR-001 (MUST)."""
    target = profile(tmp_path, fault="malformed-json-500")
    done = run_suite(
        tmp_path / "r", "--target", str(target), "suites/test_lifecycle.py::test_malformed_create_gets_4xx_not_5xx"
    )
    assert done.returncode == 1, done.stdout[-3000:]
    assert ran(read_report(tmp_path / "r")) == {"ST-LIFE-011": "failed", "ST-ERR-001": "failed"}
