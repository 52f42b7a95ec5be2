"""The kill matrix: the conformance suites run against the faithful reference and every fault.

Each entry is one ``python -m pytest suites`` in a subprocess, exactly as a user runs it,
against a managed target given with ``--target``: the faithful entries use the shipped
profiles, each fault entry a copy of ``fixtures/targets/reference.yaml`` whose launch adds
``--fault NAME``. Each run is serial (no xdist), with the default Hypothesis profile
(``quick``) and a temporary ``--report-dir``; which tests failed, and the requirements they
carry, come from the small plugin in ``collect_plugin.py``.

Entries run concurrently in a pool of subprocesses (``KILLMATRIX_WORKERS``, default 3). A
suite run spends about half its time waiting (on expiries, and on round trips between the
suite and the server), so three runs keep both cores busy; a fourth adds nothing measurable on
this 2-core machine. The suites judge time by the server's clock, never by how long a run
takes, so a loaded machine makes no check fail.

The result is written to ``reports/kill-matrix.json`` and ``reports/kill-matrix.md``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sts_conformance.requirements import catalogue
from sts_reference.faults import FAULTS

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ROOT / "fixtures" / "targets"
REPORTS = ROOT / "reports"
PLUGIN = "tests.killmatrix.collect_plugin"
RESULTS_ENV = "KILLMATRIX_RESULTS"
WORKERS_ENV = "KILLMATRIX_WORKERS"
DEFAULT_WORKERS = 3
#: One suite run normally takes well under a minute; a run that hangs is stopped here.
RUN_TIMEOUT_S = 300.0
#: Exit status of a run that could not start (a launch that failed): retried once, since two
#: concurrent runs may, rarely, pick the same free port.
EXIT_USAGE = 4

FAITHFUL = ("reference", "reference-pinned")

#: Faults whose runs take longest (many checks fail, each after a full exchange): started
#: first, right after the faithful runs, so no long run is left alone at the end of the pool.
SLOWEST = ("x-api-key-ignored", "ids-listed-as-strings", "delete-removes-next", "list-leaks-secret")


@dataclass(frozen=True)
class Entry:
    """One run of the matrix: a faithful profile, or the reference with one fault."""

    key: str
    profile: str
    fault: str | None = None

    @property
    def faithful(self) -> bool:
        return self.fault is None


def entries() -> list[Entry]:
    """Every entry of the matrix, in the order they are started: the longest runs first."""
    faithful = [Entry(name, name) for name in FAITHFUL]
    faults = sorted(FAULTS, key=lambda name: name not in SLOWEST)  # stable: catalogue order otherwise
    return faithful + [Entry(name, "reference", name) for name in faults]


@dataclass
class Outcome:
    """What one run did: its exit status, time, and every test phase that did not pass."""

    entry: Entry
    exit_status: int
    seconds: float
    tests: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 1
    output_tail: str = ""

    @property
    def failures(self) -> list[dict[str, Any]]:
        return [t for t in self.tests if t["outcome"] in ("failed", "error")]

    @property
    def failed_requirements(self) -> list[str]:
        return sorted({rid for t in self.failures for rid in t["requirements"]})

    @property
    def passed_tests(self) -> int:
        return sum(1 for t in self.tests if t["when"] == "call" and t["outcome"] == "passed")

    def to_json(self) -> dict[str, Any]:
        """Everything needed to rebuild the outcome in another process (xdist workers share one run)."""
        return {
            "key": self.entry.key,
            "exit_status": self.exit_status,
            "seconds": self.seconds,
            "tests": self.tests,
            "attempts": self.attempts,
            "output_tail": self.output_tail,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Outcome:
        entry = next(e for e in entries() if e.key == data["key"])
        return cls(entry, data["exit_status"], data["seconds"], data["tests"], data["attempts"], data["output_tail"])

    def as_dict(self) -> dict[str, Any]:
        """The outcome as the written matrix shows it."""
        known = catalogue()
        return {
            "entry": self.entry.key,
            "fault": self.entry.fault,
            "description": FAULTS.get(self.entry.fault or ""),
            "profile": self.entry.profile,
            "exit_status": self.exit_status,
            "seconds": round(self.seconds, 1),
            "attempts": self.attempts,
            "tests_passed": self.passed_tests,
            "tests_failed": len(self.failures),
            "caught_by": [
                {"requirement": rid, "level": known[rid].level if rid in known else "?"}
                for rid in self.failed_requirements
            ],
            "failed_tests": sorted({t["nodeid"] for t in self.failures}),
        }


def profile_for(entry: Entry, directory: Path) -> Path:
    """The profile file the entry's run is given with ``--target``."""
    source = TARGETS / f"{entry.profile}.yaml"
    if entry.fault is None:
        return source
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    data["name"] = f"{data['name']}+{entry.fault}"
    data["description"] = f"reference deployment with the fault {entry.fault}: {FAULTS[entry.fault]}"
    data["launch"] = f"{data['launch']} --fault {entry.fault}"
    path = directory / f"{entry.key}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _environment(results: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STS_", "PYTEST_", "KILLMATRIX_"))}
    env[RESULTS_ENV] = str(results)
    return env


def _run_once(entry: Entry, directory: Path) -> Outcome:
    work = directory / entry.key
    work.mkdir(parents=True, exist_ok=True)
    results = work / "results.jsonl"
    results.unlink(missing_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "suites",
        "--target",
        str(profile_for(entry, work)),
        "--report-dir",
        str(work / "reports"),
        "-p",
        "no:cacheprovider",
        "-p",
        PLUGIN,
        "-q",
    ]
    started = time.monotonic()
    log = work / "output.txt"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=_environment(results), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            status = proc.wait(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)  # the run's own group: pytest and the targets it launched
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            status = -1
    seconds = time.monotonic() - started
    tests = []
    if results.exists():
        tests = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines() if line.strip()]
    tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-40:])
    return Outcome(entry, status, seconds, tests, output_tail=tail)


def run_entry(entry: Entry, directory: Path) -> Outcome:
    outcome = _run_once(entry, directory)
    if outcome.exit_status == EXIT_USAGE:
        retry = _run_once(entry, directory)
        retry.attempts = 2
        retry.seconds += outcome.seconds
        return retry
    return outcome


def run_matrix(
    chosen: Iterable[Entry], directory: Path, workers: int | None = None, progress: Callable[[Outcome], None] = print
) -> tuple[dict[str, Outcome], float]:
    """Run every chosen entry, ``workers`` at a time; the outcomes by key, and the wall time."""
    todo = list(chosen)
    workers = workers or int(os.environ.get(WORKERS_ENV) or DEFAULT_WORKERS)
    started = time.monotonic()
    outcomes: dict[str, Outcome] = {}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for outcome in pool.map(lambda e: run_entry(e, directory), todo):
            outcomes[outcome.entry.key] = outcome
            progress(outcome)
    return outcomes, time.monotonic() - started


# -- the written matrix ------------------------------------------------------------------------


def write_reports(outcomes: dict[str, Outcome], wall_s: float, workers: int, out: Path = REPORTS) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    order = [*FAITHFUL, *FAULTS]  # the catalogue's order reads best
    ordered = [outcomes[key] for key in order if key in outcomes]
    doc = {
        "generated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "complete": len(ordered) == len(entries()),
        "workers": workers,
        "wall_seconds": round(wall_s, 1),
        "serial_seconds": round(sum(o.seconds for o in ordered), 1),
        "entries": [o.as_dict() for o in ordered],
    }
    json_path = out / "kill-matrix.json"
    json_path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    md_path = out / "kill-matrix.md"
    md_path.write_text(render_markdown(doc), encoding="utf-8")
    return [json_path, md_path]


def render_markdown(doc: dict[str, Any]) -> str:
    faults = [e for e in doc["entries"] if e["fault"]]
    caught = [e for e in faults if e["caught_by"]]
    lines = [
        "# Kill matrix",
        "",
        f"Generated {doc['generated']}{'' if doc['complete'] else ' (partial: not every entry ran)'}. "
        f"{len(caught)} of {len(faults)} faults caught. Wall time {doc['wall_seconds']:.0f} s with "
        f"{doc['workers']} concurrent runs (the runs took {doc['serial_seconds']:.0f} s in total).",
        "",
        "| target | exit | time | failed tests | caught by |",
        "|---|---:|---:|---:|---|",
    ]
    for e in doc["entries"]:
        name = f"`{e['fault']}`" if e["fault"] else f"**faithful** ({e['profile']})"
        by = ", ".join(f"{c['requirement']}{'' if c['level'] == 'MUST' else ' (SHOULD)'}" for c in e["caught_by"])
        if not e["fault"]:
            by = "— (passes)" if not e["caught_by"] else f"FALSE FAILURES: {by}"
        row = [name, str(e["exit_status"]), f"{e['seconds']:.0f} s", str(e["tests_failed"]), by or "NOTHING"]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "## The faults", ""]
    lines += [f"- `{e['fault']}`: {e['description']}" for e in faults]
    return "\n".join(lines) + "\n"
