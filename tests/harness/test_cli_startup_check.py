"""A CLI that cannot reach the target is a harness error before the CLI checks, never a failed requirement.

The CLI suites run as a user runs them, against the embedded reference (plain HTTP); only
the CLI is cut off from it: a proxy that is a closed port, or a command that does not exist.
A CLI that does get answers but behaves wrongly still fails the CLI checks.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from sts_conformance.target.connect import free_port

from .suite_run import run_suites
from .tls_support import neutral_environment

PROFILE = """\
name: cli-startup
url: http://127.0.0.1:{{port}}
launch: "{{python}} -m sts_reference serve --host 127.0.0.1 --port {{port}} --auth-config {{auth_config}}"
cli:
  command: "{command}"
"""
#: a CLI that got an answer and reports it wrongly: every call "refused", whatever the credential
WRONG_CLI = """\
import sys
print("❌ could not connect to the server: 401 Unauthorized", file=sys.stderr)
sys.exit(4)
"""


def _run_cli_suites(tmp_path: Path, command: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    profile = tmp_path / "profile.yaml"
    profile.write_text(PROFILE.format(command=command), encoding="utf-8")
    done = run_suites(
        "--target",
        str(profile),
        "--ignore-glob=suites/test_*.py",  # the CLI suites (suites/cli/) only
        report_dir=tmp_path / "reports",
        env=neutral_environment(),
        timeout=300,
    )
    report = json.loads((tmp_path / "reports" / "conformance.json").read_text(encoding="utf-8"))
    return done, report


def _cli_statuses(report: dict) -> set[str]:
    return {r["status"] for r in report["requirements"] if r["id"].startswith("ST-CLI-")}


@pytest.mark.parametrize(
    ("command", "message"),
    [
        pytest.param(
            "env HTTP_PROXY=http://127.0.0.1:{closed} {{python}} -m sts_reference.cli",
            "the CLI got no HTTP answer from http://127.0.0.1:",
            id="proxy-is-a-closed-port",
        ),
    ],
)
def test_cli_that_cannot_reach_the_target_is_a_harness_error(tmp_path, command, message):
    """Exit 3 with the reason on every CLI check; no CLI requirement is reported as failed."""
    done, report = _run_cli_suites(tmp_path, command.format(closed=free_port()))
    output = done.stdout + done.stderr
    assert done.returncode == 3, output[-3000:]
    assert message in output
    assert _cli_statuses(report) == {"error"}
    assert not [r["id"] for r in report["requirements"] if r["status"] == "failed"]
    first = next(r for r in report["requirements"] if r["id"] == "ST-CLI-001")
    assert message in first["reason"]


def test_cli_that_gets_answers_but_behaves_wrongly_still_fails(tmp_path):
    """The start-up check only asks whether an HTTP answer came back; judging the CLI is for the checks."""
    script = tmp_path / "wrong_cli.py"
    script.write_text(WRONG_CLI, encoding="utf-8")
    done, report = _run_cli_suites(tmp_path, f"{{python}} {script}")
    assert done.returncode == 1, (done.stdout + done.stderr)[-3000:]
    assert next(r for r in report["requirements"] if r["id"] == "ST-CLI-001")["status"] == "failed"
    assert "error" not in _cli_statuses(report)
