"""Expiry is judged on the server's clock: a target whose clock is a day off passes all the same."""

from __future__ import annotations

import email.utils
import subprocess
import sys
import time

import httpx
import pytest

from .suite_run import ROOT, run_suites

DAY_AND_AN_HOUR_MS = 25 * 3600 * 1000

PROFILE = """\
name: skewed-{label}
url: http://127.0.0.1:{{port}}
launch: "{{python}} -m sts_reference serve --port {{port}} --auth-config {{auth_config}} --clock-offset-ms={offset}"
cli:
  command: "{{python}} -m sts_reference.cli"
"""


def test_offset_option_shifts_the_date_header():
    """Precondition: --clock-offset-ms really moves the server's clock, as its Date header shows."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "sts_reference", "serve", "--port", "0", f"--clock-offset-ms={DAY_AND_AN_HOUR_MS}"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip().rsplit(" ", 1)[-1]
        date = httpx.get(f"{url}/api/server/status").headers["date"]
        server_ms = email.utils.parsedate_to_datetime(date).timestamp() * 1000
        assert abs(server_ms - time.time() * 1000 - DAY_AND_AN_HOUR_MS) < 5000
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.slow
@pytest.mark.parametrize(
    "offset",
    [
        pytest.param(DAY_AND_AN_HOUR_MS, id="server-25h-ahead"),
        pytest.param(-DAY_AND_AN_HOUR_MS, id="server-25h-behind"),
    ],
)
def test_suites_pass_against_a_faithful_server_with_a_skewed_clock(tmp_path, offset):
    """The whole conformance run passes: no check trusts the client's clock for an expiry."""
    profile = tmp_path / "skewed.yaml"
    profile.write_text(PROFILE.format(label=offset, offset=offset), encoding="utf-8")
    done = run_suites("--target", str(profile), report_dir=tmp_path / "reports", env={"STS_TARGET": ""})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
