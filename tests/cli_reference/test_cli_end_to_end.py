"""The reference CLI against the reference server, mostly as a subprocess in a clean environment.

The subprocess runs get only PATH, an empty HOME and TZ, so nothing from the developer's
shell or own `sts` configuration can leak in; in-process runs use a fake clock instead.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from sts_conformance.checking.cli_table import parse_table
from sts_reference.clock import FakeClock
from sts_reference.config import BootstrapSpec
from sts_reference.testing import RunningServer, running_server

from .conftest import RunCli

REPO_ROOT = Path(__file__).resolve().parents[2]
ADMIN = BootstrapSpec(token="0123456789abcdef0123456789abcdef", roles=["stackstate-admin"], ttl_ms=2 * 3600_000)
CREATED_LINE = re.compile(r"\[SUCCESS\] Service token created: (\S+)\n\n")


def run_subprocess(*argv: str, home: Path, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the CLI as `python -m sts_reference.cli` with only PATH, HOME, TZ and ``env``."""
    clean_env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "TZ": "UTC", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "sts_reference.cli", *argv],
        cwd=REPO_ROOT,
        env=clean_env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )


@pytest.fixture
def server() -> Iterator[RunningServer]:
    with running_server(auth_config=ADMIN) as running:
        yield running


@pytest.fixture
def run_name() -> str:
    """A random prefix, so every token a test makes can be told apart from the bootstrap one."""
    return f"cli-{uuid.uuid4().hex[:8]}"


def target(server: RunningServer, token: str = ADMIN.token) -> dict[str, str]:
    return {"STS_CLI_URL": server.url, "STS_CLI_SERVICE_TOKEN": token}


def names_on_server(server: RunningServer) -> list[str]:
    response = httpx.get(f"{server.api_url}/security/tokens", headers={"X-API-Key": ADMIN.token}, timeout=10)
    response.raise_for_status()
    return sorted(token["name"] for token in response.json())


def test_create_list_delete_round_trip(server: RunningServer, tmp_path: Path, run_name: str) -> None:
    """The secret is shown once and works; list never shows it; delete by id revokes it."""
    expires = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()

    create = f"service-token create --name {run_name} --roles stackstate-admin".split()
    created = run_subprocess(*create, "--expiration", expires, home=tmp_path, env=target(server))
    assert (created.returncode, created.stderr) == (0, "")
    match = CREATED_LINE.fullmatch(created.stdout)
    assert match, created.stdout
    secret = match.group(1)

    # The new token is itself enough to list, and the listing shows neither secret.
    listed = run_subprocess("service-token", "list", home=tmp_path, env=target(server, secret))
    assert listed.returncode == 0, listed.stderr
    (row,) = parse_table(listed.stdout).named(run_name)
    assert row["EXPIRATION"] == expires
    assert secret not in listed.stdout
    assert ADMIN.token not in listed.stdout

    as_json = run_subprocess("service-token", "list", "-o", "json", home=tmp_path, env=target(server))
    ids = [t["id"] for t in json.loads(as_json.stdout)["service-tokens"] if t["name"] == run_name]
    assert len(ids) == 1

    deleted = run_subprocess("service-token", "delete", "--id", str(ids[0]), home=tmp_path, env=target(server))
    assert (deleted.returncode, deleted.stdout) == (0, f"[SUCCESS] Service token deleted: {ids[0]}\n")

    refused = run_subprocess("service-token", "list", home=tmp_path, env=target(server, secret))
    assert refused.returncode == 4
    assert refused.stderr.startswith("[ERROR] Authentication failed when connecting to ")
    assert secret not in refused.stdout + refused.stderr


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Pacific/Pago_Pago"], ids=["UTC+14", "UTC-11"])
def test_expiration_reaches_the_server_as_midnight_utc_in_any_zone(
    server: RunningServer, tmp_path: Path, run_name: str, zone: str
) -> None:
    """A CLI process running far from UTC still sends 00:00 UTC of the given day."""
    day = (datetime.now(UTC) + timedelta(days=30)).date()
    create = f"service-token create --name {run_name} --roles stackstate-admin".split()

    result = run_subprocess(*create, "--expiration", day.isoformat(), home=tmp_path, env={**target(server), "TZ": zone})

    assert result.returncode == 0, result.stderr
    response = httpx.get(f"{server.api_url}/security/tokens", headers={"X-API-Key": ADMIN.token}, timeout=10)
    (stored,) = [t["expiration"] for t in response.json() if t["name"] == run_name]
    assert stored == int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1000


def test_bad_expiration_creates_nothing(server: RunningServer, tmp_path: Path, run_name: str) -> None:
    """An impossible date is a flag error (exit 3) and leaves the server's token list as it was."""
    before = names_on_server(server)

    create = f"service-token create --name {run_name} --roles stackstate-admin".split()
    result = run_subprocess(*create, "--expiration", "2031-02-30", home=tmp_path, env=target(server))

    assert result.returncode == 3
    assert "--expiration" in result.stderr
    assert names_on_server(server) == before


def test_delete_by_id_flag_then_unknown_id_is_an_http_error(
    server: RunningServer, run_cli: RunCli, run_name: str
) -> None:
    """`delete -i ID` removes the token; deleting it again is the server's error, exit 3."""
    env = {**target(server), "TZ": "UTC"}
    assert run_cli("service-token", "create", "--name", run_name, "--roles", "r", env=env).code == 0
    listed = json.loads(run_cli("service-token", "list", "-o", "json", env=env).out)
    (token_id,) = [t["id"] for t in listed["service-tokens"] if t["name"] == run_name]

    first = run_cli("service-token", "delete", "-i", str(token_id), env=env)
    again = run_cli("service-token", "delete", "-i", str(token_id), env=env)

    assert (first.code, first.out) == (0, f"[SUCCESS] Service token deleted: {token_id}\n")
    assert again.code == 3
    assert re.match(r"\[ERROR\] [45]\d\d ", again.err)


def test_expired_token_is_refused_with_exit_4(run_cli: RunCli, run_name: str) -> None:
    """Once the server's clock passes a token's expiry date, the CLI exits 4 with it."""
    clock = FakeClock(int(datetime(2025, 6, 15, tzinfo=UTC).timestamp() * 1000))
    with running_server(clock=clock, auth_config=ADMIN) as server:
        env = {**target(server), "TZ": "UTC"}
        create = f"service-token create --name {run_name} --roles stackstate-admin".split()
        created = run_cli(*create, "--expiration", "2025-07-01", env=env)
        match = CREATED_LINE.fullmatch(created.out)
        assert match, created.err
        with_new_token = {**env, "STS_CLI_SERVICE_TOKEN": match.group(1)}
        assert run_cli("service-token", "list", env=with_new_token).code == 0

        clock.advance(17 * 24 * 3600_000)  # 2025-07-02
        result = run_cli("service-token", "list", env=with_new_token)

    assert result.code == 4
    assert "401 Unauthorized" in result.err


def test_unreachable_server_exits_4(tmp_path: Path) -> None:
    """Nothing listening on the port: server/info fails, a connect error (exit code 4)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # The socket is closed again, so connecting to the port is refused.

    result = run_subprocess(
        "service-token",
        "list",
        home=tmp_path,
        env={"STS_CLI_URL": f"http://127.0.0.1:{port}", "STS_CLI_SERVICE_TOKEN": "t"},
    )

    assert result.returncode == 4
    assert result.stderr.startswith(f"[ERROR] Could not connect to http://127.0.0.1:{port}/api due to ")


def test_clean_environment_without_settings_is_a_usage_error(tmp_path: Path) -> None:
    """No flags, no STS_CLI_* and no config named: a config error (exit 1) naming the missing setting."""
    result = run_subprocess("service-token", "list", home=tmp_path)

    assert result.returncode == 1
    assert "STS_CLI_URL" in result.stderr
    assert result.stdout == ""
