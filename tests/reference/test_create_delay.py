"""``serve --create-delay-ms``: a server whose creates are slow (a secret hashed with a slow hash).

Only lower bounds on time are asserted (a busy machine can only lengthen a wait), and the
other calls are shown not to wait by ordering: they are answered while a create is still
waiting for a minute.
"""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from sts_reference.__main__ import main

from .support import http_client
from .test_serve_command import SECRET, serving, stop, write_config

HEADERS = {"X-API-Key": SECRET}
NEW_TOKEN = {"name": "slow-create", "roles": ["stackstate-guest"]}


def test_create_delay_makes_a_create_wait(tmp_path: Path) -> None:
    """A create, accepted or refused, answers no sooner than the delay, and answers as without it."""
    options = ("--auth-config", str(write_config(tmp_path)), "--create-delay-ms", "400")
    with serving(*options) as (process, url), http_client(url) as client:
        created = client.post("/api/security/tokens", headers=HEADERS, json=NEW_TOKEN)
        refused = client.post("/api/security/tokens", json=NEW_TOKEN)
        listed = client.get("/api/security/tokens", headers=HEADERS)
        assert stop(process)[0] == 0
    assert created.status_code == 200 and created.json()["name"] == NEW_TOKEN["name"]
    assert refused.status_code == 401
    assert created.elapsed.total_seconds() >= 0.4 and refused.elapsed.total_seconds() >= 0.4
    assert NEW_TOKEN["name"] in [item["name"] for item in listed.json()]


def test_other_calls_are_answered_while_a_create_waits(tmp_path: Path) -> None:
    """The wait blocks nothing else: status, server info, list and delete are answered while a
    create sent before them still waits out a delay of a minute (the delete is of an id no
    token has: a create to make one would wait its minute too)."""
    options = ("--auth-config", str(write_config(tmp_path)), "--create-delay-ms", "60000")
    with serving(*options) as (process, url):
        done = threading.Event()

        def slow_create() -> None:
            try:
                with httpx.Client(base_url=url, timeout=120) as own:
                    own.post("/api/security/tokens", headers=HEADERS, json={**NEW_TOKEN, "name": "pending"})
            except httpx.HTTPError:
                pass  # the server is killed below while this create still waits
            finally:
                done.set()

        waiting = threading.Thread(target=slow_create, daemon=True)
        waiting.start()
        with http_client(url) as client:
            status = client.get("/api/server/status", headers=HEADERS)
            info = client.get("/api/server/info", headers=HEADERS)
            listed = client.get("/api/security/tokens", headers=HEADERS)
            deleted = client.delete("/api/security/tokens/123456789", headers=HEADERS)
        still_waiting = not done.is_set()
        process.kill()
        waiting.join(timeout=30)
    assert [status.status_code, info.status_code, listed.status_code, deleted.status_code] == [200, 200, 200, 404]
    assert still_waiting, "the other calls were answered only after the pending create"


@pytest.mark.parametrize("value", ["-1", "60001", "soon"])
def test_create_delay_out_of_range_exits_2(capsys: pytest.CaptureFixture[str], value: str) -> None:
    """A bad --create-delay-ms is refused by the command line, exit status 2, before listening."""
    assert main(["serve", "--create-delay-ms", value]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "--create-delay-ms" in captured.err
