"""The ``serve`` command: ready line, clean stops, persistence, and refusing bad start-ups."""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sts_reference.__main__ import main
from sts_reference.faults import FAULTS

from .support import http_client

REPO = Path(__file__).resolve().parents[2]
READY = re.compile(r"sts-reference listening on (http://127\.0\.0\.1:(\d+))")
SECRET = "serve-test-" + "ab" * 12
START_TIMEOUT_S = 20


def write_config(directory: Path, token: str = SECRET, ttl: str = "1h") -> Path:
    path = directory / "authentication.yaml"
    path.write_text(
        "stackstate:\n  authentication:\n    serviceToken:\n      bootstrap:\n"
        f"        token: {token}\n        roles: [stackstate-admin]\n        ttl: {ttl}\n",
        encoding="utf-8",
    )
    return path


def command(*options: str) -> list[str]:
    return [sys.executable, "-m", "sts_reference", "serve", *options]


def environment() -> dict[str, str]:
    # The tests may run without the project installed; point the child at this checkout.
    paths = [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


@contextlib.contextmanager
def serving(*options: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Run ``serve`` until its ready line, yield (process, url), and kill it if still running."""
    process = subprocess.Popen(
        command("--port", "0", *options),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(),
    )
    try:
        assert process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            if not selector.select(START_TIMEOUT_S):
                pytest.fail(f"serve printed nothing in {START_TIMEOUT_S}s")
        line = process.stdout.readline()
        match = READY.fullmatch(line.rstrip("\n"))
        assert match, f"unexpected first line {line!r}; stderr: {process.stderr.read() if process.stderr else ''}"
        yield process, match[1]
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def stop(process: subprocess.Popen[str], signum: int = signal.SIGTERM) -> tuple[int, str, str]:
    process.send_signal(signum)
    out, err = process.communicate(timeout=15)
    return process.returncode, out, err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["Ctrl-C", "SIGTERM"])
def test_serve_announces_itself_then_stops_cleanly(tmp_path: Path, signum: int) -> None:
    """One ready line on stdout once it answers; a signal stops it with exit status 0, and
    nothing it wrote contains a secret."""
    with serving("--auth-config", str(write_config(tmp_path))) as (process, url):
        with http_client(url) as client:
            assert client.get("/api/server/status", headers={"X-API-Key": SECRET}).status_code == 200
            created = client.post(
                "/api/security/tokens", headers={"X-API-Key": SECRET}, json={"name": "n", "roles": []}
            ).json()["token"]
            assert client.get("/api/server/status", headers={"X-API-Key": "svctok-wrong"}).status_code == 401
        status, out, err = stop(process, signum)
    assert status == 0, err
    assert out == ""  # the ready line was the only output
    assert SECRET not in err and created not in err


def test_serve_keeps_tokens_across_restart_with_the_same_db(tmp_path: Path) -> None:
    """With --db, created tokens survive a restart and the bootstrap token is not duplicated."""
    options = ("--auth-config", str(write_config(tmp_path)), "--db", str(tmp_path / "tokens.sqlite3"))
    headers = {"X-API-Key": SECRET}
    with serving(*options) as (process, url), http_client(url) as client:
        created = client.post("/api/security/tokens", headers=headers, json={"name": "kept", "roles": []})
        kept_secret = created.json()["token"]
        before = client.get("/api/security/tokens", headers=headers).json()
        assert stop(process)[0] == 0
    with serving(*options) as (process, url), http_client(url) as client:
        after = client.get("/api/security/tokens", headers=headers).json()
        assert client.get("/api/server/status", headers={"X-API-Key": kept_secret}).status_code == 200
        assert stop(process)[0] == 0
    assert after == before
    assert [item["name"] for item in after].count("bootstrap") == 1


def test_serve_delay_makes_every_answer_wait(tmp_path: Path) -> None:
    """--delay-ms answers like a distant deployment: no answer comes sooner than the delay (a lower
    bound, which a busy machine can only lengthen), and the answers are the same."""
    options = ("--auth-config", str(write_config(tmp_path)), "--delay-ms", "300")
    with serving(*options) as (process, url), http_client(url) as client:
        resp = client.get("/api/server/status", headers={"X-API-Key": SECRET})
        refused = client.get("/api/server/status")
        assert stop(process)[0] == 0
    assert resp.status_code == 200 and refused.status_code == 401
    assert resp.elapsed.total_seconds() >= 0.3 and refused.elapsed.total_seconds() >= 0.3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("config_text", "complaint"),
    [
        ("stackstate: [unclosed\n", "not valid YAML"),
        (
            "stackstate:\n  authentication:\n    serviceToken:\n      bootstrap:\n"
            "        token: t\n        roles: [a]\n        ttl: soon\n",
            "stackstate.authentication.serviceToken.bootstrap.ttl",
        ),
        (None, "cannot read the file"),
    ],
    ids=["not YAML", "bad ttl", "missing file"],
)
def test_serve_bad_config_exits_2_before_listening(tmp_path: Path, config_text: str | None, complaint: str) -> None:
    """A bad authentication.yaml is one message on stderr naming the file, exit status 2,
    no ready line, and nothing listening on the requested port."""
    path = tmp_path / "authentication.yaml"
    if config_text is not None:
        path.write_text(config_text, encoding="utf-8")
    port = free_port()
    result = subprocess.run(
        command("--port", str(port), "--auth-config", str(path)),
        capture_output=True,
        text=True,
        env=environment(),
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and complaint in lines[0], result.stderr
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/api/server/status", timeout=2)


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["serve", "--fault", "delete-not-revokng"], "unknown fault 'delete-not-revokng'"),
        (["serve", "--port", "70000"], "port must be 0..65535"),
        (["serve", "--port", "eighty"], "not a port number"),
        (["serve", "--manager-role", " "], "role name must not be empty"),
        (["serve", "--delay-ms", "-5"], "must be 0..60000 milliseconds"),
        (["serve", "--bogus"], "unrecognized arguments: --bogus"),
        ([], "required: COMMAND"),
    ],
    ids=[
        "unknown fault",
        "port out of range",
        "port not a number",
        "empty role",
        "negative delay",
        "unknown option",
        "no command",
    ],
)
def test_serve_bad_option_exits_2_with_message(
    capsys: pytest.CaptureFixture[str], argv: list[str], complaint: str
) -> None:
    """A bad option is refused by the command line itself, with exit status 2."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert complaint in captured.err


def test_serve_unusable_db_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--db naming a file that is not a token database is refused before listening."""
    other = tmp_path / "notes.txt"
    other.write_text("not a database\n" * 100)
    assert main(["serve", "--port", "0", "--db", str(other)]) == 2
    assert "cannot use the database" in capsys.readouterr().err
    assert other.read_text() == "not a database\n" * 100


def test_serve_port_in_use_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    """An address already taken is reported, with exit status 1 (not a usage error)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 1
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_faults_command_lists_every_fault(capsys: pytest.CaptureFixture[str]) -> None:
    """``faults`` prints one line per fault: its name, then its description."""
    assert main(["faults"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(FAULTS)
    for line, (name, description) in zip(lines, FAULTS.items(), strict=True):
        assert line.startswith(name + " ") and line.endswith(description)


@pytest.mark.parametrize("command", ["faults", "variants"])
def test_listing_into_a_pipe_closed_early_ends_quietly(command: str) -> None:
    """``python -m sts_reference faults | head -1``: the reader is gone; no BrokenPipeError traceback."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # a reader that has already stopped: every write meets a broken pipe
    try:
        done = subprocess.run(
            [sys.executable, "-m", "sts_reference", command],
            cwd=REPO,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr
