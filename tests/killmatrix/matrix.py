"""The kill matrix: the conformance suites run against the faithful reference, every correct
variant of it, and every fault.

Each entry is one ``python -m pytest suites`` in a subprocess, exactly as a user runs it,
against a managed target given with ``--target``: the faithful entries use the shipped
profiles; each variant entry (a correct implementation that resolves an open point
differently, ``sts_reference/variants.py``) and each fault entry a copy of
``fixtures/targets/reference.yaml`` whose launch adds ``--variant NAME`` or ``--fault NAME``.
A CLI fault entry (``cli:NAME``, from ``CLI_FAULTS``) keeps the faithful server and adds
``--fault NAME`` to the reference CLI's ``cli.command`` instead.
Each run is serial (no xdist), with the default Hypothesis profile (``quick``) and a
temporary ``--report-dir``; the verdict, which requirements failed and which were blocked
come from the run's own ``conformance.json``, what it cost the target (requests, tokens
created) from the reference's ``--stats-file`` of every instance it launched.

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
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sts_conformance.core.requirements import catalogue
from sts_reference.faults import CLI_FAULTS, FAULTS
from sts_reference.variants import VARIANTS

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ROOT / "fixtures" / "targets"
REPORTS = ROOT / "reports"
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
    """One run of the matrix: a faithful profile, the reference as a correct variant, or with one fault."""

    key: str
    profile: str
    fault: str | None = None
    variant: str | None = None
    #: a fault of the reference CLI (``CLI_FAULTS``), the server faithful
    cli_fault: str | None = None

    @property
    def faithful(self) -> bool:
        """A correct implementation: the run must pass."""
        return self.fault is None and self.cli_fault is None

    @property
    def description(self) -> str | None:
        if self.cli_fault is not None:
            return CLI_FAULTS[self.cli_fault]
        return FAULTS.get(self.fault or "") or VARIANTS.get(self.variant or "")


def entries() -> list[Entry]:
    """Every entry of the matrix, in the order they are started: the longest runs first."""
    faithful = [Entry(name, name) for name in FAITHFUL]
    variants = [Entry(f"variant:{name}", "reference", variant=name) for name in VARIANTS]
    faults = sorted(FAULTS, key=lambda name: name not in SLOWEST)  # stable: catalogue order otherwise
    cli_faults = [Entry(f"cli:{name}", "reference", cli_fault=name) for name in CLI_FAULTS]
    return faithful + [Entry(name, "reference", name) for name in faults] + cli_faults + variants


@dataclass
class Outcome:
    """What one run did: its exit status, time, its report (requirement statuses) and its cost to the target."""

    entry: Entry
    exit_status: int
    seconds: float
    #: requirement id -> status, from the run's conformance.json (empty when it wrote none)
    statuses: dict[str, str] = field(default_factory=dict)
    #: node ids of the tests that failed or errored
    failed_tests: list[str] = field(default_factory=list)
    root_causes: list[dict[str, Any]] = field(default_factory=list)
    tests_passed: int = 0
    tests_blocked: int = 0
    #: summed over every instance the run launched (the reference's --stats-file)
    requests: int = 0
    tokens_created: int = 0
    tokens_left: int = 0
    leftovers: int = 0
    attempts: int = 1
    output_tail: str = ""

    def _with(self, *statuses: str) -> list[str]:
        return sorted(rid for rid, status in self.statuses.items() if status in statuses)

    @property
    def failed_requirements(self) -> list[str]:
        return self._with("failed", "error")

    @property
    def blocked_requirements(self) -> list[str]:
        return self._with("blocked")

    @property
    def failures(self) -> list[str]:
        return self.failed_tests

    def to_json(self) -> dict[str, Any]:
        """Everything needed to rebuild the outcome in another process (xdist workers share one run)."""
        data = {k: v for k, v in self.__dict__.items() if k != "entry"}
        return {"key": self.entry.key, **data}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Outcome:
        entry = next(e for e in entries() if e.key == data["key"])
        return cls(entry, **{k: v for k, v in data.items() if k != "key"})

    def as_dict(self) -> dict[str, Any]:
        """The outcome as the written matrix shows it."""
        known = catalogue()
        return {
            "entry": self.entry.key,
            "fault": self.entry.fault,
            "variant": self.entry.variant,
            "cli_fault": self.entry.cli_fault,
            "description": self.entry.description,
            "profile": self.entry.profile,
            "exit_status": self.exit_status,
            "seconds": round(self.seconds, 1),
            "attempts": self.attempts,
            "tests_passed": self.tests_passed,
            "tests_failed": len(self.failed_tests),
            "tests_blocked": self.tests_blocked,
            "caught_by": [
                {"requirement": rid, "level": known[rid].level if rid in known else "?"}
                for rid in self.failed_requirements
            ],
            "failed_requirements": len(self.failed_requirements),
            "blocked_requirements": self.blocked_requirements,
            "root_causes": [
                {"requirement": c["requirement"], "blocked_checks": c["blocked_checks"]} for c in self.root_causes
            ],
            "requests": self.requests,
            "tokens_created": self.tokens_created,
            "tokens_left": self.tokens_left,
            "failed_tests": self.failed_tests,
        }


def profile_for(entry: Entry, directory: Path) -> Path:
    """The profile file the entry's run is given with ``--target``; its launch writes stats into ``directory``."""
    source = TARGETS / f"{entry.profile}.yaml"
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    launch = f"{data['launch']} --stats-file {directory / 'stats-{port}.json'}"
    if entry.fault is not None:
        data["name"] = f"{data['name']}+{entry.fault}"
        data["description"] = f"reference deployment with the fault {entry.fault}: {FAULTS[entry.fault]}"
        launch += f" --fault {entry.fault}"
    if entry.variant is not None:
        data["name"] = f"{data['name']}+{entry.variant}"
        data["description"] = f"reference deployment, correct variant {entry.variant}: {VARIANTS[entry.variant]}"
        launch += f" --variant {entry.variant}"
    if entry.cli_fault is not None:
        data["name"] = f"{data['name']}+cli:{entry.cli_fault}"
        data["description"] = f"reference deployment, its CLI with the fault {entry.cli_fault}: {entry.description}"
        data["cli"] = {**data["cli"], "command": f"{data['cli']['command']} --fault {entry.cli_fault}"}
    data["launch"] = launch
    path = directory / f"{entry.key.replace(':', '-')}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("STS_", "PYTEST_", "KILLMATRIX_"))}


def _read_report(outcome: Outcome, report: Path) -> None:
    try:
        doc = json.loads(report.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    outcome.statuses = {r["id"]: r["status"] for r in doc.get("requirements", [])}
    tests = {t["nodeid"]: t["outcome"] for r in doc.get("requirements", []) for t in r.get("tests", [])}
    outcome.failed_tests = sorted(n for n, o in tests.items() if o in ("failed", "error"))
    outcome.tests_passed = sum(1 for o in tests.values() if o == "passed")
    outcome.tests_blocked = sum(1 for o in tests.values() if o == "blocked")
    outcome.root_causes = doc.get("root_causes", [])
    outcome.leftovers = len(doc.get("leftovers", []))


def _read_stats(outcome: Outcome, work: Path) -> None:
    """Requests and tokens summed over every instance; tokens left counted on the main target only
    (the further instances a run launches keep their tokens in storage thrown away with them)."""
    main_port = None
    try:
        doc = json.loads((work / "reports" / "conformance.json").read_text(encoding="utf-8"))
        main_port = doc["target"]["url"].rsplit(":", 1)[1]
    except (OSError, ValueError, KeyError, IndexError):
        pass
    for path in work.glob("stats-*.json"):
        try:
            stats = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        outcome.requests += int(stats.get("requests", 0))
        outcome.tokens_created += int(stats.get("tokens_created", 0))
        if path.stem == f"stats-{main_port}":
            outcome.tokens_left += int(stats.get("tokens_alive", 0))


def _run_once(entry: Entry, directory: Path) -> Outcome:
    work = directory / entry.key.replace(":", "-")
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
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
        "-q",
    ]
    started = time.monotonic()
    log = work / "output.txt"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=_environment(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
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
    outcome = Outcome(entry, status, time.monotonic() - started)
    _read_report(outcome, work / "reports" / "conformance.json")
    _read_stats(outcome, work)
    outcome.output_tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-40:])
    return outcome


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
    order = [e.key for e in entries() if e.faithful and e.variant is None]
    order += [f"variant:{name}" for name in VARIANTS] + list(FAULTS)  # the catalogues' order reads best
    order += [f"cli:{name}" for name in CLI_FAULTS]
    ordered = [outcomes[key] for key in order if key in outcomes]
    faults = [o for o in ordered if not o.entry.faithful]
    counts = sorted(len(o.failed_requirements) for o in faults)
    doc = {
        "generated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "complete": len(ordered) == len(entries()),
        "workers": workers,
        "wall_seconds": round(wall_s, 1),
        "serial_seconds": round(sum(o.seconds for o in ordered), 1),
        "failed_requirements_per_fault": {
            "median": statistics.median(counts) if counts else None,
            "max": max(counts) if counts else None,
        },
        "entries": [o.as_dict() for o in ordered],
    }
    json_path = out / "kill-matrix.json"
    json_path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    md_path = out / "kill-matrix.md"
    md_path.write_text(render_markdown(doc), encoding="utf-8")
    return [json_path, md_path]


def render_markdown(doc: dict[str, Any]) -> str:
    faults = [e for e in doc["entries"] if e["fault"] or e.get("cli_fault")]
    caught = [e for e in faults if e["caught_by"]]
    per = doc["failed_requirements_per_fault"]
    lines = [
        "# Kill matrix",
        "",
        f"Generated {doc['generated']}{'' if doc['complete'] else ' (partial: not every entry ran)'}. "
        f"{len(caught)} of {len(faults)} faults caught; failed requirements per fault: median {per['median']}, "
        f"at most {per['max']}. Wall time {doc['wall_seconds']:.0f} s with {doc['workers']} concurrent runs "
        f"(the runs took {doc['serial_seconds']:.0f} s in total).",
        "",
        "| target | exit | time | requests | tokens | failed tests | blocked tests | caught by (failed requirements) |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for e in doc["entries"]:
        if e["fault"]:
            name = f"`{e['fault']}`"
        elif e.get("cli_fault"):
            name = f"CLI fault `{e['cli_fault']}`"
        elif e["variant"]:
            name = f"correct variant `{e['variant']}`"
        else:
            name = f"**faithful** ({e['profile']})"
        by = ", ".join(f"{c['requirement']}{'' if c['level'] == 'MUST' else ' (SHOULD)'}" for c in e["caught_by"])
        if not (e["fault"] or e.get("cli_fault")):
            by = "— (passes)" if not e["caught_by"] else f"FALSE FAILURES: {by}"
        row = [
            name,
            str(e["exit_status"]),
            f"{e['seconds']:.0f} s",
            str(e["requests"]),
            str(e["tokens_created"]),
            str(e["tests_failed"]),
            str(e["tests_blocked"]),
            by or "NOTHING",
        ]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "## The faults", ""]
    lines += [f"- `{e['fault'] or 'cli:' + e['cli_fault']}`: {e['description']}" for e in faults]
    lines += ["", "## The correct variants", ""]
    lines += [f"- `{e['variant']}`: {e['description']}" for e in doc["entries"] if e["variant"]]
    return "\n".join(lines) + "\n"
