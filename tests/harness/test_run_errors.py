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


# -- set-up mistakes a new user makes: each named as the user's, before any check (issue 24) ----------


def _one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("ERROR:")]
    assert len(lines) == 1, done.stdout[-3000:] + done.stderr[-3000:]
    return lines[0]


@pytest.fixture
def external(tmp_path):
    """An external reference deployment whose bootstrap token has the given roles; yields a profile writer."""
    import contextlib

    from sts_reference.config import BootstrapSpec
    from sts_reference.testing import running_server

    with contextlib.ExitStack() as stack:

        def start(token: str, roles: list[str], extra: str = "", url_tail: str = "") -> Path:
            spec = BootstrapSpec(token=token, roles=roles, ttl_ms=600_000)
            srv = stack.enter_context(running_server(auth_config=spec))
            path = tmp_path / "t.yaml"
            path.write_text(f"name: ext\nurl: {srv.url}{url_tail}\nadmin_token: {token}\n{extra}", encoding="utf-8")
            return path

        yield start


def test_admin_token_that_may_not_manage_tokens_is_named(external):
    """A token that authenticates but lacks the manager role (a guest) stops the run: exit 4, the role it needs,
    and no leftovers reported, since no token was created."""
    path = external("a-guest-token-0123456789", ["stackstate-guest"])
    done = _run("--target", str(path))
    assert done.returncode == 4, done.stdout[-3000:] + done.stderr[-3000:]
    line = _one_error_line(done)
    assert "may not list service tokens" in line and "answered 403" in line, line
    assert "'stackstate-admin'" in line, line
    assert "could not be deleted" not in done.stdout + done.stderr
    assert "a-guest-token-0123456789" not in done.stdout + done.stderr


def test_url_ending_in_api_is_a_probe_path_mistake_not_the_credentials(external):
    """A url ending in /api sends the probe to …/api/api/…: a 404 named with its full URL, never the credential."""
    path = external("the-real-admin-0123456789", ["stackstate-admin"], url_tail="/api")
    done = _run("--target", str(path))
    assert done.returncode == 4, done.stdout[-3000:] + done.stderr[-3000:]
    line = _one_error_line(done)
    assert "/api/api/server/status answered 404" in line and "http://" in line, line
    assert "url ends in '/api'" in line and "api_path" in line and "probe_path" in line, line
    assert "credential" not in line.replace("without a credential and with one", ""), line


def test_another_web_server_is_a_probe_path_mistake(tmp_path):
    """A url pointing at some other web server (404 everywhere) is named as such, not as a refused credential."""
    import http.server
    import threading

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_error(404)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        path = tmp_path / "t.yaml"
        path.write_text(f"name: web\nurl: http://127.0.0.1:{server.server_port}\nadmin_token: abcdefgh12345\n")
        done = _run("--target", str(path))
    finally:
        server.shutdown()
    assert done.returncode == 4, done.stdout[-3000:] + done.stderr[-3000:]
    line = _one_error_line(done)
    assert f"http://127.0.0.1:{server.server_port}/api/server/status answered 404" in line, line
    assert "refused admin_token" not in line and "check the credential" not in line, line


def test_wrong_admin_token_from_a_variable_names_the_variable(external):
    """A refused admin_token written as ${VAR} names the variable the value came from."""
    path = external("the-real-admin-0123456789", ["stackstate-admin"])
    path.write_text(path.read_text().replace("the-real-admin-0123456789", "${STS_H24_ADMIN}"), encoding="utf-8")
    done = _run("--target", str(path), env={"STS_H24_ADMIN": "a-wrong-admin-0123456789"})
    assert done.returncode == 4, done.stdout[-3000:] + done.stderr[-3000:]
    line = _one_error_line(done)
    assert "refused admin_token (from ${STS_H24_ADMIN})" in line, line
    assert "a-wrong-admin-0123456789" not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("sts-h24-not-installed", "'sts-h24-not-installed' is not on PATH"),
        ("/nonexistent/bin/sts", "/nonexistent/bin/sts does not exist"),
    ],
    ids=["not-on-path", "no-such-file"],
)
def test_cli_command_that_cannot_start_is_one_usage_error(tmp_path, command, message):
    """A cli.command that cannot be started stops the run before any check (not one error per CLI check)."""
    text = (Path(__file__).resolve().parents[2] / "fixtures" / "targets" / "reference.yaml").read_text("utf-8")
    path = tmp_path / "t.yaml"
    path.write_text(text.replace('"{python} -m sts_reference.cli"', command), encoding="utf-8")
    done = _run("--target", str(path))
    assert done.returncode == 4, done.stdout[-3000:] + done.stderr[-3000:]
    line = _one_error_line(done)
    assert message in line and "cli.command" in line, line
    assert "passed" not in done.stdout and "error" not in done.stdout.lower().replace("error:", "")
