"""The kill matrix runs once per session, for the entries the selected tests need, all at once.

Under xdist every worker needs the same outcomes: the first worker to get here runs the
matrix and leaves the outcomes in the session's shared temporary directory, under a file
lock; the others wait for it and read them.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import pytest

from .matrix import DEFAULT_WORKERS, WORKERS_ENV, Outcome, entries, run_matrix, write_reports

#: The parameter of the matrix tests that names the entry (fault or faithful profile) they judge.
ENTRY_PARAM = "entry_key"


def _wanted(session: pytest.Session) -> set[str]:
    wanted = set()
    for item in session.items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and ENTRY_PARAM in callspec.params:
            wanted.add(callspec.params[ENTRY_PARAM])
    return wanted


def _run(request: pytest.FixtureRequest, directory: Path) -> dict[str, Outcome]:
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")

    def progress(outcome: Outcome) -> None:
        if reporter is not None:
            caught = ", ".join(outcome.failed_requirements) or "nothing"
            reporter.write_line(
                f"kill matrix: {outcome.entry.key}: exit {outcome.exit_status}, {outcome.seconds:.0f} s, "
                f"failed requirements: {caught}"
            )

    workers = int(os.environ.get(WORKERS_ENV) or DEFAULT_WORKERS)
    wanted = _wanted(request.session)
    outcomes, wall = run_matrix([e for e in entries() if e.key in wanted], directory, workers, progress=progress)
    paths = write_reports(outcomes, wall, workers)
    if reporter is not None:
        reporter.write_line(f"kill matrix: {len(outcomes)} runs in {wall:.0f} s; see {', '.join(map(str, paths))}")
    return outcomes


@pytest.fixture(scope="session")
def kill_matrix(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """The outcome of every matrix entry a selected test asks for; the runs go concurrently, once."""
    if not hasattr(request.config, "workerinput"):
        return _run(request, tmp_path_factory.mktemp("kill-matrix"))
    shared = tmp_path_factory.getbasetemp().parent  # one directory for all workers of the session
    done = shared / "kill-matrix.json"
    with (shared / "kill-matrix.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            outcomes = _run(request, shared / "kill-matrix")
            done.write_text(json.dumps([o.to_json() for o in outcomes.values()]), encoding="utf-8")
        return {o.entry.key: o for o in map(Outcome.from_json, json.loads(done.read_text(encoding="utf-8")))}
