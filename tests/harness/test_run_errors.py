"""Bad input to a run: one clear message and exit status 4, before any check runs."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pytest

from .suite_run import run_suites


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_suites(*args, report_dir=Path(tempfile.gettempdir()) / "sts-run-errors-reports", env=env, timeout=120)


CASES = [
    pytest.param("name: t\nurl: http://127.0.0.1:9\n", "admin_token is required", id="broken-profile"),
    pytest.param(
        "name: t\nurl: http://127.0.0.1:9\nadmin_token: abcdefgh1234\n", "is unreachable at", id="unreachable-target"
    ),
    pytest.param(
        "name: t\nurl: http://127.0.0.1:{port}\nlaunch: 'exit 3'\n", "exited with status 3", id="launch-exits"
    ),
    pytest.param(
        "name: t\nurl: http://127.0.0.1:{port}\nlaunch: 'echo {nope}'\n", "unknown placeholder", id="launch-placeholder"
    ),
]


@pytest.mark.parametrize(("profile", "message"), CASES)
def test_unusable_target_is_one_usage_error(tmp_path, profile, message):
    """The run stops with exit 4 and one line naming the problem; no check is reported."""
    path = tmp_path / "t.yaml"
    path.write_text(profile)
    done = _run("--target", str(path))
    assert done.returncode == 4, done.stdout + done.stderr
    assert message in done.stderr
    assert "passed" not in done.stdout and "failed" not in done.stdout


def test_sts_target_env_is_honoured(tmp_path):
    """STS_TARGET names the profile when --target is not given."""
    done = _run(env={"STS_TARGET": str(tmp_path / "missing.yaml")})
    assert done.returncode == 4
    assert "missing.yaml: no such file" in done.stderr


def test_admin_token_refused_by_external_target_is_a_usage_error(tmp_path):
    """An external target that refuses the admin credential stops the run before any check."""
    from sts_reference.config import BootstrapSpec
    from sts_reference.testing import running_server

    spec = BootstrapSpec(token="the-real-admin-0123456789", roles=["stackstate-admin"], ttl_ms=600_000)
    with running_server(auth_config=spec) as srv:
        path = tmp_path / "t.yaml"
        path.write_text(f"name: ext\nurl: {srv.url}\nadmin_token: wrong-admin-0123456789\n")
        done = _run("--target", str(path))
    assert done.returncode == 4
    assert "refused admin_token" in done.stderr
    assert "wrong-admin-0123456789" not in done.stdout + done.stderr
