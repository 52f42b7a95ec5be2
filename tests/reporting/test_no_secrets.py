"""No secret a run sees reaches any file under the report dir.

The run goes against a reference that leaks secrets in its token list (``--fault
list-leaks-secret``), under xdist, so that failures carry request and response excerpts
full of secrets into the reports. The probe plugin makes every process (controller and
workers) write down the secrets its redactor knows; then every report file is searched
for each of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sts_conformance.core.redact import fingerprint

from .support import profile, read_report, run_suite

MODULES = [
    "suites/test_lifecycle.py",
    "suites/test_auth_headers.py",
    "suites/test_one_time_display.py",
    "suites/test_roles.py",
]
_UNMASKED_TOKEN = re.compile(r"svctok-[A-Za-z0-9_\-.~+/=]{4,}")


@dataclass(frozen=True)
class LeakyRun:
    reports: Path
    secrets: frozenset[str] = field(repr=False)  # never shown in a failure of these tests
    output: str = field(repr=False)


@pytest.fixture(scope="module")
def leaky_run(tmp_path_factory: pytest.TempPathFactory) -> LeakyRun:
    tmp = tmp_path_factory.mktemp("no-secrets")
    secrets_dir = tmp / "secrets"
    secrets_dir.mkdir()
    target = profile(tmp, fault="list-leaks-secret")
    reports = tmp / "reports"
    modules = [m for m in MODULES if (Path(__file__).resolve().parents[2] / m).exists()]
    done = run_suite(reports, "-n", "2", "--target", str(target), *modules, env={"STS_PROBE_SECRETS": str(secrets_dir)})
    secrets = {line for f in secrets_dir.glob("secrets-*.txt") for line in f.read_text("utf-8").splitlines() if line}
    return LeakyRun(reports, frozenset(secrets), done.stdout + done.stderr)


def test_the_run_saw_secrets_and_failed(leaky_run):
    """The probe is live: three processes' secrets were collected and the leak was caught."""
    reports, secrets, output = leaky_run.reports, leaky_run.secrets, leaky_run.output
    assert len(secrets) > 20, output[-3000:]
    assert read_report(reports)["verdict"]["result"] == "fail", output[-3000:]


def test_no_secret_in_any_report_file(leaky_run):
    """Every file under the report dir is free of every secret, and of anything shaped like a token."""
    reports, secrets = leaky_run.reports, leaky_run.secrets
    files = sorted(p for p in reports.rglob("*") if p.is_file())
    assert {p.name for p in files} >= {"conformance.json", "conformance.html", "summary.md", "junit.xml"}
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        leaked = sorted(fingerprint(s) for s in secrets if s in text)
        assert leaked == [], f"{path.name} contains secrets {leaked}"
        assert _UNMASKED_TOKEN.findall(text) == [], f"{path.name} contains an unmasked token"


def test_leaked_secrets_are_there_masked(leaky_run):
    """The leak did reach the reports, as fingerprints: the search above looked at real exposure."""
    reports, secrets = leaky_run.reports, leaky_run.secrets
    text = (reports / "conformance.json").read_text(encoding="utf-8")
    shown = {fingerprint(s) for s in secrets} & set(re.findall(r"<secret:[0-9a-f]{6}>", text))
    assert shown
