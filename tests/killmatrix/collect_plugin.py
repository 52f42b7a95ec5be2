"""A pytest plugin the kill matrix passes to each suite run (``-p tests.killmatrix.collect_plugin``).

It writes one JSON line per test phase that matters (every call, and any setup or teardown
that did not pass) to the file named by ``$KILLMATRIX_RESULTS``: the node id, the phase,
the outcome and the requirement ids the harness attached to the test. Only the process
that sees every report writes (a serial run, or the xdist controller), so the file is
complete either way. It depends on nothing but pytest and the ``("requirement", id)``
user properties the conformance plugin sets, not on the format of ``reports/``.
"""

from __future__ import annotations

import json
import os
from typing import IO

import pytest

RESULTS_ENV = "KILLMATRIX_RESULTS"

_out: IO[str] | None = None


def _controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    global _out
    path = os.environ.get(RESULTS_ENV)
    if path and _controller(config):
        _out = open(path, "a", encoding="utf-8")  # noqa: SIM115  closed in pytest_unconfigure


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if _out is None or (report.when != "call" and report.passed):
        return
    outcome: str = "error" if report.when != "call" and report.failed else report.outcome
    record = {
        "nodeid": report.nodeid,
        "when": report.when,
        "outcome": outcome,
        "requirements": sorted({str(v) for k, v in report.user_properties if k == "requirement"}),
    }
    _out.write(json.dumps(record) + "\n")
    _out.flush()


def pytest_unconfigure(config: pytest.Config) -> None:
    global _out
    if _out is not None:
        _out.close()
        _out = None
