"""No 5xx, ever: a server error that no check judged fails ST-ERR-001 (a pytest plugin).

The suite's client records every answer in the 5xx range a check receives
(:meth:`ExchangeLog.server_errors <sts_conformance.target.client.ExchangeLog.server_errors>`). A
check whose own assertions judge the status (a fuzzed name must get 2xx or 4xx, a malformed
body a 4xx, ...) fails on its own requirement when it gets a 5xx, and a check that cannot
go on because a foundation failed is blocked by it: either way the run already names the
defect once. Everywhere else a 5xx would pass unnoticed — a refused call in a table that
accepts any refusal, a step a check does not look at. Such a check is reported failed
under **ST-ERR-001** instead of its own requirement, with the requests that got the server
errors as its evidence (secrets masked): one defect, one verdict, and no 5xx slips through.
A check of a SHOULD requirement that fails on a 5xx (a malformed body must get a 4xx) fails
ST-ERR-001 as well: a server error is a MUST failure wherever it shows.

The answers a check's request gets during the preparation at the start of the run, the
bootstrap scenarios run in the background and the final cleanup are not a check's: they
are judged by the foundations and the bootstrap checks, not here.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from sts_conformance.core.preconditions import Blocked
from sts_conformance.core.requirements import catalogue
from sts_conformance.target.client import EXCHANGES, Exchange

REQUIREMENT = "ST-ERR-001"
#: how many of a check's server errors its failure message lists
SHOWN = 6


def _is_check(item: pytest.Item) -> bool:
    return item.get_closest_marker("requirement") is not None


def _only_should(item: pytest.Item) -> bool:
    """Whether every requirement the check traces to is a SHOULD."""
    known = catalogue()
    levels = {known[str(m.args[0])].level for m in item.iter_markers("requirement") if m.args and m.args[0] in known}
    return levels == {"SHOULD"}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    EXCHANGES.clear_server_errors()


def judged() -> None:
    """Say that the server errors this check received so far are judged by its own assertions.

    For a table whose calls are made together, in whichever of its cells runs first, while
    every cell judges its own call's status: the 5xx then fail the cell they belong to, and
    must not fail ST-ERR-001 in the cell that happened to send them.
    """
    EXCHANGES.clear_server_errors()


def exchange_lines(seen: list[Exchange]) -> str:
    """The first :data:`SHOWN` exchanges, a line each, and how many more."""
    lines = [f"  {e.method} {e.url} -> {e.status}" for e in seen[:SHOWN]]
    more = f"\n  … and {len(seen) - SHOWN} more" if len(seen) > SHOWN else ""
    return "\n".join(lines) + more


def unnoticed_message(seen: list[Exchange]) -> str:
    return (
        f"{REQUIREMENT}: the target answered {len(seen)} request(s) of this check with a server error (5xx), "
        "which its own assertions let pass:\n" + exchange_lines(seen)
    )


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    # trylast: the innermost wrapper, so the plugin's masking and the reporting see the changed report
    report = yield
    if not _is_check(item):
        return report
    if call.when != "call":
        if report.passed:
            # a test's requirements are those of all its phases: the call's alone say it, so that
            # a check turned into an ST-ERR-001 failure below no longer counts for its own requirement
            report.user_properties = [(k, v) for k, v in report.user_properties if k != "requirement"]
        return report
    seen = EXCHANGES.server_errors()
    if not seen:
        return report
    blocked = call.excinfo is not None and isinstance(call.excinfo.value, Blocked)
    if report.failed and _only_should(item):
        # judged, but only as a SHOULD (a malformed body must get a 4xx): a 5xx is a MUST failure as well
        report.user_properties.append(("requirement", REQUIREMENT))
        return report
    overturn(report, blocked, seen, REQUIREMENT, unnoticed_message(seen))
    return report


def overturn(report: pytest.TestReport, blocked: bool, seen: list[Exchange], requirement: str, message: str) -> None:
    """Fail a check that passed (or was skipped, not ``blocked``) under ``requirement``, for what its requests
    got (``seen``, attached as its evidence) though its own assertions let it pass. A check that failed on
    its own, or was blocked, already names a defect: left as it is."""
    if not (report.passed or (report.skipped and not blocked)) or hasattr(report, "wasxfail"):
        return
    report.outcome = "failed"
    report.longrepr = message
    report.user_properties = [(k, v) for k, v in report.user_properties if k != "requirement"]
    report.user_properties.append(("requirement", requirement))
    EXCHANGES.clear()  # the evidence the plugin attaches: the requests named
    for exchange in seen[-SHOWN:]:
        EXCHANGES.add(exchange)
