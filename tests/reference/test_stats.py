"""``serve --stats-file``: request counts written as JSON while serving and at shutdown."""

from __future__ import annotations

import itertools
import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from sts_reference import stats as stats_module
from sts_reference.stats import WRITE_INTERVAL_S, route_key

from .support import ADMIN, Api, StartServer, http_client
from .test_serve_command import SECRET, serving, stop, write_config

HEADERS = {"X-API-Key": SECRET}


def read_stats(path: Path) -> dict[str, Any]:
    loaded = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def wait_for(path: Path, done: Callable[[dict[str, Any]], bool], timeout_s: float = 5.0) -> dict[str, Any]:
    """The stats file's content once ``done`` says so; fails after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    seen: dict[str, Any] = {}
    while time.monotonic() < deadline:
        if path.exists():
            seen = read_stats(path)
            if done(seen):
                return seen
        time.sleep(0.02)
    pytest.fail(f"the stats file never got there; last seen: {seen}")


def exercise(client: httpx.Client) -> None:
    """Eleven requests: 2 status, 1 info, 2 creates, 1 refused create, 2 lists, 1 delete, 2 other."""
    assert client.get("/api/server/status", headers=HEADERS).status_code == 200
    assert client.get("/api/server/status", headers={"X-API-Key": "wrong"}).status_code == 401
    assert client.get("/api/server/info", headers=HEADERS).status_code == 200
    for name in ("kept", "dropped"):
        assert client.post("/api/security/tokens", headers=HEADERS, json={"name": name, "roles": []}).status_code == 200
    assert client.post("/api/security/tokens", headers=HEADERS, json={"name": ""}).status_code == 400
    listed = client.get("/api/security/tokens", headers=HEADERS).json()
    (dropped,) = [item["id"] for item in listed if item["name"] == "dropped"]
    assert client.delete(f"/api/security/tokens/{dropped}", headers=HEADERS).status_code == 204
    assert client.get("/api/security/tokens", headers=HEADERS).status_code == 200
    assert client.get("/api/no-such-call", headers=HEADERS).status_code == 404
    assert client.put("/api/security/tokens", headers=HEADERS).status_code == 405


EXPECTED_ROUTES = {
    "GET /api/server/status": 2,
    "GET /api/server/info": 1,
    "POST /api/security/tokens": 3,
    "GET /api/security/tokens": 2,
    "DELETE /api/security/tokens/{id}": 1,
    "other": 2,
}
EXPECTED_STATUSES = {"200": 6, "204": 1, "400": 1, "401": 1, "404": 1, "405": 1}


def test_serve_writes_stats_while_serving_and_at_shutdown(tmp_path: Path) -> None:
    """The file appears once the server is up, follows the counts while it serves (without
    waiting for a stop), and holds the final counts after SIGTERM; no temporary file is left."""
    path = tmp_path / "stats" / "counts.json"
    path.parent.mkdir()
    with serving("--auth-config", str(write_config(tmp_path)), "--stats-file", str(path)) as (process, url):
        started = wait_for(path, lambda s: True)
        assert started["requests"] == 0 and started["tokens_alive"] == 0  # the bootstrap token is not counted
        with http_client(url) as client:
            exercise(client)
        running = wait_for(path, lambda s: s["requests"] == 11)
        status, _, err = stop(process)
    assert status == 0, err
    final = read_stats(path)
    for seen in (running, final):
        assert seen["by_route"] == EXPECTED_ROUTES
        assert seen["by_status"] == EXPECTED_STATUSES
        assert seen["tokens_created"] == 2
        assert seen["tokens_alive"] == 1
    assert final["written_at_ms"] >= running["written_at_ms"]
    assert abs(final["written_at_ms"] - time.time() * 1000) < 60_000  # the machine's clock
    assert sorted(p.name for p in path.parent.iterdir()) == ["counts.json"]


def test_stats_count_tokens_alive_and_ignore_the_bootstrap_token(start_server: StartServer, tmp_path: Path) -> None:
    """tokens_alive counts stored non-bootstrap tokens when written; deleting them brings it
    back to 0 (what a "nothing left behind" check reads)."""
    path = tmp_path / "stats.json"
    server = start_server(stats_file=path)
    with http_client(server.url) as http:
        api = Api(server, http)
        made = [api.new_token([])[0] for _ in range(3)]
        assert wait_for(path, lambda s: s["tokens_alive"] == 3)["tokens_created"] == 3
        for token_id in made:
            assert api.delete(token_id).status_code == 204
        assert api.status_with(ADMIN.token).status_code == 200
        seen = wait_for(path, lambda s: s["by_route"].get("DELETE /api/security/tokens/{id}") == 3)
    assert seen["tokens_alive"] == 0 and seen["tokens_created"] == 3


def test_stats_file_written_at_most_every_interval(
    start_server: StartServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under a steady stream of requests the file is rewritten at most once per interval,
    not once per request."""
    writes: list[float] = []
    original = stats_module.write_atomically

    def timed(path: Path, text: str) -> None:
        writes.append(time.monotonic())
        original(path, text)

    monkeypatch.setattr(stats_module, "write_atomically", timed)
    path = tmp_path / "stats.json"
    server = start_server(stats_file=path)
    requests = 0
    with http_client(server.url) as http:
        api = Api(server, http)
        until = time.monotonic() + 3 * WRITE_INTERVAL_S
        while time.monotonic() < until:
            assert api.status_with(ADMIN.token).status_code == 200
            requests += 1
        wait_for(path, lambda s: s["requests"] == requests)
    periodic = writes[1:]  # the first write is the one at start-up
    assert requests > 20 and 2 <= len(periodic) <= 5, (requests, writes)
    gaps = [later - earlier for earlier, later in itertools.pairwise(periodic)]
    assert all(gap >= WRITE_INTERVAL_S * 0.9 for gap in gaps), gaps


def test_unwritable_stats_file_does_not_stop_the_server(start_server: StartServer, tmp_path: Path) -> None:
    """A stats file in a directory that does not exist is logged, and the server serves on."""
    server = start_server(stats_file=tmp_path / "missing" / "stats.json")
    with http_client(server.url) as http:
        assert Api(server, http).status_with(ADMIN.token).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "key"),
    [
        ("GET", "/api/server/status", "GET /api/server/status"),
        ("GET", "/api/server/info", "GET /api/server/info"),
        ("GET", "/api/security/tokens", "GET /api/security/tokens"),
        ("POST", "/api/security/tokens", "POST /api/security/tokens"),
        ("DELETE", "/api/security/tokens/107484341630693", "DELETE /api/security/tokens/{id}"),
        ("DELETE", "/api/security/tokens/not-a-number", "DELETE /api/security/tokens/{id}"),
        ("DELETE", "/api/security/tokens/", "other"),
        ("DELETE", "/api/security/tokens/1/2", "other"),
        ("GET", "/api/security/tokens/", "other"),
        ("HEAD", "/api/server/status", "other"),
        ("PUT", "/api/security/tokens", "other"),
        ("GET", "/", "other"),
    ],
)
def test_route_keys(method: str, path: str, key: str) -> None:
    """Requests count under their route template; anything the API does not serve under other."""
    assert route_key(method, path) == key


def test_ctrl_c_writes_the_final_counts(tmp_path: Path) -> None:
    """Ctrl-C (SIGINT) is a normal shutdown too: the final counts are written."""
    path = tmp_path / "stats.json"
    with serving("--auth-config", str(write_config(tmp_path)), "--stats-file", str(path)) as (process, url):
        with http_client(url) as client:
            assert client.get("/api/server/status", headers=HEADERS).status_code == 200
        status, _, err = stop(process, signal.SIGINT)
    assert status == 0, err
    assert read_stats(path)["by_route"] == {"GET /api/server/status": 1}
