"""The bootstrap token: created at start from authentication.yaml, expiring after its ttl,
and created only once for a given secret however often the server restarts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from sts_reference.clock import FakeClock
from sts_reference.config import BootstrapSpec, load_auth_config
from sts_reference.testing import RunningServer, running_server

from .support import START_MS, Api, StartServer

SECRET = "0123456789abcdef0123456789abcdef"  # the Helm chart's own test uses 32 hex digits


def auth_yaml(
    tmp_path: Path, ttl: str | None = None, *, spelling: str = "serviceToken", roles: str = "[stackstate-admin]"
) -> Path:
    """Write an authentication.yaml in the Helm values shape and return its path."""
    lines = [
        "stackstate:",
        "  authentication:",
        f"    {spelling}:",
        "      bootstrap:",
        f"        token: {SECRET}",
        f"        roles: {roles}",
    ]
    if ttl is not None:
        lines.append(f"        ttl: {ttl}")
    path = tmp_path / "authentication.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("ttl", "ttl_ms"),
    [
        ("24h", 86_400_000),
        ("30m", 1_800_000),
        ("90s", 90_000),
        ("500ms", 500),
        ("7d", 604_800_000),
        ("2 minutes", 120_000),
        ("1.5 hours", 5_400_000),
        (None, 86_400_000),
    ],
    ids=["24h", "30m", "90s", "500ms", "7d", "2 minutes", "1.5 hours", "omitted means 24h"],
)
def test_bootstrap_token_expires_after_its_ttl(
    tmp_path: Path,
    start_server: StartServer,
    api_for: Callable[[RunningServer], Api],
    ttl: str | None,
    ttl_ms: int,
) -> None:
    """The configured token works from start until start + ttl, and is refused from then."""
    config = load_auth_config(auth_yaml(tmp_path, ttl))
    clock = FakeClock(START_MS)
    api = api_for(start_server(clock=clock, auth_config=config))
    assert api.by_name("bootstrap")["expiration"] == START_MS + ttl_ms
    clock.set(START_MS + ttl_ms - 1)
    assert api.status_with(SECRET).status_code == 200
    clock.set(START_MS + ttl_ms)
    assert api.status_with(SECRET).status_code == 401


@pytest.mark.parametrize("spelling", ["serviceToken", "servicetoken"])
def test_bootstrap_token_has_the_configured_roles(
    tmp_path: Path,
    start_server: StartServer,
    api_for: Callable[[RunningServer], Api],
    spelling: str,
) -> None:
    """Either spelling yields a token with exactly the configured roles."""
    config = load_auth_config(auth_yaml(tmp_path, spelling=spelling, roles="[stackstate-admin, extra]"))
    api = api_for(start_server(auth_config=config))
    item = api.by_name("bootstrap")
    assert item["roles"] == ["stackstate-admin", "extra"]


def test_bootstrap_without_manager_role_cannot_manage(
    start_server: StartServer, api_for: Callable[[RunningServer], Api]
) -> None:
    """A power-user bootstrap token (the seed document's example) authenticates but gets 403
    on the token calls."""
    spec = BootstrapSpec(token=SECRET, roles=["stackstate-power-user"])
    api = api_for(start_server(auth_config=spec))
    assert api.status_with(SECRET).status_code == 200
    assert api.list_tokens(token=SECRET).status_code == 403


def test_no_bootstrap_configured_means_no_tokens(
    start_server: StartServer, api_for: Callable[[RunningServer], Api]
) -> None:
    """Without a bootstrap section the store starts empty and nothing authenticates."""
    server = start_server(auth_config=None)
    assert server.store.list() == []
    assert api_for(server).status_with(SECRET).status_code == 401


def test_restart_does_not_duplicate_the_bootstrap_token(
    tmp_path: Path, api_for: Callable[[RunningServer], Api]
) -> None:
    """Restarting with the same config and database keeps one bootstrap token, with its
    id and its original expiry (a restart does not extend it), and keeps created tokens."""
    db = tmp_path / "tokens.sqlite3"
    spec = BootstrapSpec(token=SECRET, roles=["stackstate-admin"], ttl_ms=3_600_000)
    with running_server(clock=FakeClock(START_MS), auth_config=spec, db_path=db) as server:
        first = api_for(server)
        original = first.by_name("bootstrap")
        kept_id, kept_secret = first.new_token(["stackstate-guest"])

    with running_server(clock=FakeClock(START_MS + 60_000), auth_config=spec, db_path=db) as server:
        second = api_for(server)
        items = second.listed()
        assert [item for item in items if item["name"] == "bootstrap"] == [original]
        assert kept_id in [item["id"] for item in items]
        assert second.status_with(kept_secret).status_code == 200


def test_changed_bootstrap_secret_creates_a_new_token(
    tmp_path: Path, start_server: StartServer, api_for: Callable[[RunningServer], Api]
) -> None:
    """A different configured secret is a new bootstrap token; the old one stays until deleted."""
    db = tmp_path / "tokens.sqlite3"
    old = BootstrapSpec(token="old-" + SECRET, roles=["stackstate-admin"])
    new = BootstrapSpec(token="new-" + SECRET, roles=["stackstate-admin"])
    with running_server(auth_config=old, db_path=db):
        pass
    api = api_for(start_server(auth_config=new, db_path=db))
    assert len([item for item in api.listed() if item["name"] == "bootstrap"]) == 2
    assert api.status_with(old.token).status_code == 200
    assert api.status_with(new.token).status_code == 200
