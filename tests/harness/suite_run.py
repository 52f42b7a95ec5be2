"""Run the conformance suites as a user would, in a subprocess, for the project's own tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_suites(
    *args: str,
    report_dir: Path | str,
    env: dict[str, str] | None = None,
    timeout: float = 600,
    paths: tuple[str, ...] = ("suites",),
) -> subprocess.CompletedProcess[str]:
    """``python -m pytest suites -q`` (or ``paths``) from the repository root, reports written to ``report_dir``."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *paths,
            "-q",
            "-p",
            "no:cacheprovider",
            "--report-dir",
            str(report_dir),
            *args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
