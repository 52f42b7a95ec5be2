"""Shared by the reporting tests: running the suites in a subprocess, profiles, recorded runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from sts_conformance.reporting.results import PhaseRecord

ROOT = Path(__file__).resolve().parents[2]
RECORDED = Path(__file__).resolve().parent / "recorded"
SCHEMA = ROOT / "sts_conformance" / "reporting" / "schemas" / "conformance-report.json"
REFERENCE = ROOT / "fixtures" / "targets" / "reference.yaml"


def profile(
    directory: Path,
    *,
    fault: str | None = None,
    deviations: dict[str, str] | None = None,
    expect: dict[str, Any] | None = None,
    more_faults: tuple[str, ...] = (),
) -> Path:
    """The embedded reference profile, optionally with a ``--fault`` (or more), known deviations, pins."""
    text = REFERENCE.read_text(encoding="utf-8")
    name = "reference"
    faults = ([fault] if fault else []) + list(more_faults)
    if faults:
        switches = " ".join(f"--fault {f}" for f in faults)
        text = text.replace("--auth-config {auth_config}", f"--auth-config {{auth_config}} {switches}")
        name = f"reference-{'+'.join(faults)}"
        text = text.replace("name: reference", f"name: {name}")
    if deviations:
        text += "known_deviations:\n" + "".join(
            f"  - requirement: {rid}\n    reason: {json.dumps(reason)}\n" for rid, reason in deviations.items()
        )
    if expect:
        text += "expect:\n" + "".join(f"  {key}: {json.dumps(value)}\n" for key, value in expect.items())
    path = directory / f"{name}-{len(list(directory.glob('*.yaml')))}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def run_suite(
    report_dir: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``python -m pytest`` over the suites with the probe plugin, from the project root."""
    cmd = [sys.executable, "-m", "pytest", "-p", "tests.reporting.report_probe", "-p", "no:cacheprovider", "-q"]
    return subprocess.run(
        [*cmd, "--report-dir", str(report_dir), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def read_report(report_dir: Path) -> dict[str, Any]:
    return json.loads((report_dir / "conformance.json").read_text(encoding="utf-8"))


def statuses(doc: dict[str, Any]) -> dict[str, str]:
    return {r["id"]: r["status"] for r in doc["requirements"]}


def recorded_doc(name: str) -> dict[str, Any]:
    return json.loads((RECORDED / f"{name}.conformance.json").read_text(encoding="utf-8"))


def recorded_records(name: str) -> list[PhaseRecord]:
    lines = (RECORDED / f"{name}.records.jsonl").read_text(encoding="utf-8").splitlines()
    return [PhaseRecord.from_dict(json.loads(line)) for line in lines if line.strip()]
