"""Bootstrap checks on an external deployment through ``bootstrap.reconfigure``.

The deployment is the reference, served by the test as an external target that keeps its
tokens in a database file. A stand-in for ``helm upgrade … && kubectl rollout status …``
restarts it on the same port with the authentication.yaml it is given and returns once it
answers; ``restore`` restarts it with its original configuration. The profile's admin
credential is a service token made before the run (it lives in the database and outlives the
restarts), as the documentation of ``reconfigure`` asks.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from .suite_run import run_suites

pytestmark = pytest.mark.slow

BOOT = "reconfigure-boot-0123456789abcdef"

RESTART = textwrap.dedent(
    """\
    # stand-in for `helm upgrade --values AUTH ... && kubectl rollout status ...`: restart the
    # reference on its port with AUTH, return once it answers
    import os, signal, subprocess, sys, time, urllib.request, urllib.error
    here = os.path.dirname(os.path.abspath(__file__))
    port, db, auth = open(os.path.join(here, "port")).read().strip(), os.path.join(here, "tokens.db"), sys.argv[1]
    pidfile = os.path.join(here, "pid")
    if os.path.exists(pidfile):
        old = int(open(pidfile).read())
        try:
            os.kill(old, signal.SIGTERM)
            for _ in range(200):
                os.kill(old, 0)
                time.sleep(0.05)
        except ProcessLookupError:
            pass
    faults = [a for f in os.environ.get("STANDIN_FAULTS", "").split() for a in ("--fault", f)]
    log = open(os.path.join(here, "server.log"), "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "sts_reference", "serve", "--port", port, "--db", db, "--auth-config", auth, *faults],
        stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
    )
    open(pidfile, "w").write(str(proc.pid))
    for _ in range(400):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/server/status", timeout=1)
        except urllib.error.HTTPError:
            sys.exit(0)  # it answers (401: it wants a token)
        except OSError:
            time.sleep(0.05)
    sys.exit("the restarted deployment did not answer")
    """
)


def _auth(path: Path, token: str) -> Path:
    path.write_text(
        "stackstate:\n  authentication:\n    serviceToken:\n      bootstrap:\n"
        f"        token: {token}\n        roles: [stackstate-admin]\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def deployment(tmp_path, monkeypatch):
    """The external deployment: restarted by the stand-in, with a service token as the admin credential."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "port").write_text(str(port))
    (tmp_path / "restart.py").write_text(RESTART, encoding="utf-8")
    original = _auth(tmp_path / "original.yaml", BOOT)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    subprocess.run([sys.executable, str(tmp_path / "restart.py"), str(original)], check=True, env=env, timeout=60)
    url = f"http://127.0.0.1:{port}"
    created = httpx.post(
        f"{url}/api/security/tokens",
        headers={"X-API-Key": BOOT},
        json={"name": "platform-team-admin", "roles": ["stackstate-admin"]},
    )
    admin = created.json()["token"]
    yield tmp_path, url, admin, original
    pid = int((tmp_path / "pid").read_text())
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)


def _profile(work: Path, url: str, admin: str, original: Path, key_spellings: str = "") -> Path:
    path = work / "staging.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            name: staging-reconfigured
            url: {url}
            admin_token: {admin}
            bootstrap:
              reconfigure: "{{python}} {work / "restart.py"} {{auth_config}}"
              restore: "{{python}} {work / "restart.py"} {original}"
              reconfigure_timeout: 60
              ttl_spellings: ["3s", "3000ms", "3 seconds"]
              {key_spellings}
            cli:
              command: "{{python}} -m sts_reference.cli"
            """
        ),
        encoding="utf-8",
    )
    return path


def _statuses(report: Path) -> dict[str, str]:
    doc = json.loads((report / "conformance.json").read_text(encoding="utf-8"))
    return {r["id"]: r["status"] for r in doc["requirements"]}


@pytest.mark.parametrize(
    ("key_spellings", "configurations", "lower_case_key"),
    [
        # what current charts read: the servicetoken key is not tried (no rollout for it, no warning)
        pytest.param("", 4, "not-applicable", id="chart-keys"),
        pytest.param("key_spellings: [serviceToken, servicetoken]", 5, "passed", id="both-keys-asked"),
    ],
)
def test_bootstrap_checks_run_against_a_reconfigured_external_deployment(
    deployment, key_spellings, configurations, lower_case_key
):
    """Every bootstrap check runs and passes (ST-BOOT-004 only when the profile asks for the servicetoken
    key); the deployment is put back and left clean."""
    work, url, admin, original = deployment
    profile = _profile(work, url, admin, original, key_spellings)
    done = run_suites("--target", str(profile), report_dir=work / "reports")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    got = _statuses(work / "reports")
    for rid in ("ST-BOOT-001", "ST-BOOT-002", "ST-BOOT-003", "ST-BOOT-005", "ST-BOOT-006"):
        assert got[rid] == "passed", (rid, got[rid])
    assert got["ST-BOOT-004"] == lower_case_key
    doc = json.loads((work / "reports" / "conformance.json").read_text(encoding="utf-8"))
    expired = [
        t for r in doc["requirements"] for t in r["tests"] if "test_authorization[bootstrap-expired/" in t["nodeid"]
    ]
    assert len(expired) == 10 and all(t["outcome"] == "passed" for t in expired), expired
    # one configuration per ttl spelling, one with a long ttl, and one under the `servicetoken` key when asked for
    last = f"bootstrap {configurations}/{configurations}"
    assert f"bootstrap 1/{configurations}" in done.stderr and last in done.stderr, done.stderr
    assert "putting the deployment back" in done.stderr
    # restored: the original bootstrap token works again, and nothing of the run is left
    assert httpx.get(f"{url}/api/server/status", headers={"X-API-Key": BOOT}).status_code == 200
    names = [i["name"] for i in httpx.get(f"{url}/api/security/tokens", headers={"X-API-Key": admin}).json()]
    assert not [n for n in names if n.startswith("stsct-")], names
    assert BOOT not in done.stdout + done.stderr


def test_a_bootstrap_token_that_never_expires_fails_the_run(deployment, monkeypatch):
    """The same deployment whose bootstrap ttl is read but never applied fails ST-BOOT-003."""
    work, url, admin, original = deployment
    done = run_suites(
        "--target",
        str(_profile(work, url, admin, original)),
        report_dir=work / "reports",
        env={"STANDIN_FAULTS": "bootstrap-ttl-ignored"},
    )
    assert done.returncode == 1, done.stdout[-3000:]
    got = _statuses(work / "reports")
    assert got["ST-BOOT-003"] == "failed"
    assert got["ST-BOOT-001"] == "passed"


def test_a_reconfigure_that_fails_stops_the_run_before_any_check(deployment):
    """A reconfigure command that exits non-zero is one message and exit status 4, and restore still runs."""
    work, url, admin, original = deployment
    profile = _profile(work, url, admin, original)
    text = profile.read_text(encoding="utf-8").replace(
        f'reconfigure: "{{python}} {work / "restart.py"}', 'reconfigure: "exit 3; {python} restart.py'
    )
    profile.write_text(text, encoding="utf-8")
    done = run_suites("--target", str(profile), report_dir=work / "reports")
    assert done.returncode == 4, done.stdout[-2000:] + done.stderr[-2000:]
    assert "bootstrap.reconfigure exited with status 3" in done.stderr
    assert httpx.get(f"{url}/api/server/status", headers={"X-API-Key": BOOT}).status_code == 200
