"""A run interrupted at any moment leaves nothing behind: no token on the target, no process running.

Each case runs the conformance suites as a user does, in a new process group, and interrupts
it at a chosen moment (``interrupt_probe.py``) the way a cancelled CI job does: SIGTERM to the
whole group (or Ctrl-C). The target answers every request 100-200 ms late, so the signal
lands while requests are in flight. Afterwards:

- the run ended within 30 s of the signal, with the interrupted status (2) — or, when the
  signal came during the final cleanup, which finishes first, with its normal status;
- the target holds no token of the run: for an external target, the reference's own count
  of stored tokens (``--stats-file``) at its shutdown is zero, besides its bootstrap token;
  for the embedded target the same count at the moment the run stopped it;
- no process the run launched is still running.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .suite_run import ROOT

ADMIN = "interrupt-admin-0123456789abcdef"
#: the most a run may take to end after the signal (issue: within 30 s)
WITHIN_S = 30.0
#: interrupted, as pytest (and the suite's verdict) says
INTERRUPTED = 2

pytestmark = pytest.mark.slow

EMBEDDED_PROFILE = """\
name: embedded-slow
url: http://127.0.0.1:{{port}}
launch: "{{python}} -m sts_reference serve --port {{port}} --auth-config {{auth_config}} --delay-ms {delay}
  --stats-file {stats}/stats-{{port}}.json {extra}"
cli:
  command: "{{python}} -m sts_reference.cli"
"""

EXTERNAL_PROFILE = """\
name: external-slow
url: {url}
admin_token: {admin}
cli:
  command: "{{python}} -m sts_reference.cli"
"""


class ExternalTarget:
    """The reference served by the test (not by the run), answering slowly, counting its tokens."""

    def __init__(self, work: Path, delay_ms: int, extra: tuple[str, ...] = ()):
        self.stats = work / "external-stats.json"
        auth = work / "auth.yaml"
        auth.write_text(
            "stackstate:\n  authentication:\n    serviceToken:\n      bootstrap:\n"
            f"        token: {ADMIN}\n        roles: [stackstate-admin]\n",
            encoding="utf-8",
        )
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sts_reference",
                "serve",
                "--port",
                "0",
                "--auth-config",
                str(auth),
                "--delay-ms",
                str(delay_ms),
                "--stats-file",
                str(self.stats),
                *extra,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip().rsplit(" ", 1)[-1]

    def stop(self) -> dict:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=20)
        return json.loads(self.stats.read_text(encoding="utf-8"))


def _run(work: Path, profile: Path, moment: str, *args: str, sig: str = "TERM") -> tuple[int, float]:
    """Run the suites, interrupted at ``moment``; (exit status, seconds from the signal to the end)."""
    mark = work / "signalled-at"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("STS_", "PYTEST_"))},
        "STS_INTERRUPT_AT": moment,
        "STS_INTERRUPT_MARK": str(mark),
        "STS_INTERRUPT_SIGNAL": sig,
    }
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        *SELECTED.get(moment, ("suites",)),
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "tests.harness.interrupt_probe",
        "--target",
        str(profile),
        "--report-dir",
        str(work / "reports"),
        *args,
    ]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        out, _ = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"the run did not end after the signal at {moment!r}:\n{out[-3000:]}")
    ended = time.time()
    assert mark.exists(), f"the run never reached the moment {moment!r}:\n{out[-3000:]}"
    signalled = float(mark.read_text(encoding="utf-8").split()[0])
    (work / "output.txt").write_text(out, encoding="utf-8")
    return proc.returncode, ended - signalled


def _launched_still_running(marker: Path) -> list[str]:
    """Processes whose command line names ``marker`` (every target the run launched does)."""
    found = subprocess.run(["pgrep", "-af", str(marker)], capture_output=True, text=True, check=False)
    return [line for line in found.stdout.splitlines() if "pgrep" not in line]


def _expect_interrupted(status: int, took: float, moment: str, work: Path) -> None:
    output = (work / "output.txt").read_text(encoding="utf-8")[-3000:]
    assert took <= WITHIN_S, f"the run took {took:.1f} s to end after the signal at {moment!r}"
    if moment == "cleanup":
        assert status in (0, INTERRUPTED), output  # the cleanup is finished first; the run may have been done
    else:
        assert status == INTERRUPTED, output


MOMENTS = ["launch", "create-in-flight", "fleet", "matrix", "hypothesis", "shrinking", "cleanup"]

#: a fault only generated names show (longer than 64 characters), so Hypothesis shrinks the failing one
SHRINKS = "names-cut-at-64"

#: the part of the suites a run at each moment needs (the target answers slowly: a whole run takes minutes)
SELECTED = {
    "matrix": ("suites/test_authorization_matrix.py",),
    "hypothesis": ("suites/test_fuzz_names_roles.py",),
    "shrinking": ("suites/test_fuzz_names_roles.py",),
    "cleanup": ("suites/test_lifecycle.py",),
}


@pytest.mark.parametrize("moment", MOMENTS)
def test_embedded_run_interrupted_leaves_nothing(tmp_path, moment):
    """The embedded default, interrupted at each moment: every process it launched stopped, no token kept."""
    stats = tmp_path / "stats"
    stats.mkdir()
    extra = f"--fault {SHRINKS}" if moment == "shrinking" else ""
    profile = tmp_path / "embedded.yaml"
    profile.write_text(EMBEDDED_PROFILE.format(delay=100, stats=stats, extra=extra), encoding="utf-8")
    status, took = _run(tmp_path, profile, moment)
    _expect_interrupted(status, took, moment, tmp_path)
    time.sleep(0.5)  # a stopped process may still be reaped
    assert _launched_still_running(stats) == [], "processes the run launched are still running"
    counts = [json.loads(p.read_text(encoding="utf-8")) for p in stats.glob("stats-*.json")]
    if moment != "launch" and counts:
        # the main target is the one the run talked to most (the others are its bootstrap instances)
        main = max(counts, key=lambda c: c["requests"])
        assert main["tokens_alive"] == 0, f"the embedded target held {main['tokens_alive']} token(s) at its stop"


@pytest.mark.parametrize(
    ("moment", "args", "sig"),
    [
        *[
            pytest.param(m, (), "TERM", id=m)
            for m in ("create-in-flight", "matrix", "hypothesis", "shrinking", "cleanup")
        ],
        pytest.param("matrix", ("-n", "2"), "TERM", id="matrix-xdist"),
        pytest.param("hypothesis", ("-n", "2"), "TERM", id="hypothesis-xdist"),
        pytest.param("create-in-flight", ("-n", "2"), "INT", id="create-in-flight-xdist-ctrl-c"),
    ],
)
def test_external_run_interrupted_leaves_no_token(tmp_path, moment, args, sig):
    """An external target, interrupted at each moment (serial and -n 2): none of the run's tokens is left."""
    extra = ("--fault", SHRINKS) if moment == "shrinking" else ()
    target = ExternalTarget(tmp_path, delay_ms=200, extra=extra)
    try:
        profile = tmp_path / "external.yaml"
        profile.write_text(EXTERNAL_PROFILE.format(url=target.url, admin=ADMIN), encoding="utf-8")
        status, took = _run(tmp_path, profile, moment, *args, sig=sig)
    finally:
        counts = target.stop()
    _expect_interrupted(status, took, moment, tmp_path)
    assert counts["tokens_created"] > 0 or moment == "create-in-flight", "the run created no token at all"
    assert counts["tokens_alive"] == 0, (
        f"{counts['tokens_alive']} token(s) of the run are left on the target after the signal at {moment!r}"
    )
