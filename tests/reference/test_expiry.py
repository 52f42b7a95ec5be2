"""Expiry: a token works until its expiration instant and is refused from that instant."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sts_reference.clock import FakeClock
from sts_reference.testing import RunningServer

from .support import DAY_MS, START_MS, Api, StartServer


@pytest.fixture
def clocked(start_server: StartServer, api_for: Callable[[RunningServer], Api]) -> tuple[Api, FakeClock]:
    clock = FakeClock(START_MS)
    return api_for(start_server(clock=clock)), clock


@pytest.mark.parametrize("lifetime_ms", [1, 1000, DAY_MS], ids=["1 ms", "1 s", "1 day"])
def test_token_refused_from_its_expiry_instant(clocked: tuple[Api, FakeClock], lifetime_ms: int) -> None:
    """Accepted one millisecond before expiration, refused at it and after it."""
    api, clock = clocked
    expiry = START_MS + lifetime_ms
    _, secret = api.new_token(["stackstate-admin"], expiry=expiry)
    clock.set(expiry - 1)
    assert api.status_with(secret).status_code == 200
    clock.set(expiry)
    assert api.status_with(secret).status_code == 401
    clock.set(expiry + DAY_MS)
    assert api.status_with(secret).status_code == 401


def test_expired_manager_token_cannot_manage(clocked: tuple[Api, FakeClock]) -> None:
    """An expired token is 401 on the token calls too, not 403 and not 200."""
    api, clock = clocked
    token_id, secret = api.new_token(["stackstate-admin"], expiry=START_MS + 10)
    clock.advance(10)
    assert api.list_tokens(token=secret).status_code == 401
    assert api.create({"name": "x", "roles": []}, token=secret).status_code == 401
    assert api.delete(token_id, token=secret).status_code == 401


def test_token_without_expiry_never_expires(clocked: tuple[Api, FakeClock]) -> None:
    """Without expiryDate a token still works a century later (bootstrap aside)."""
    api, clock = clocked
    _, secret = api.new_token([])
    clock.advance(100 * 365 * DAY_MS)
    assert api.status_with(secret).status_code == 200


def test_expiry_judged_by_the_server_clock(clocked: tuple[Api, FakeClock]) -> None:
    """ "In the past" means before the server's now, whatever the wall clock says."""
    api, clock = clocked
    clock.set(START_MS + 10 * DAY_MS)
    refused = api.create({"name": "late", "roles": [], "expiryDate": START_MS + DAY_MS})
    assert refused.status_code == 400
    assert refused.json()["_type"] == "ServiceTokenInvalidExpiryError"
    accepted = api.create({"name": "soon", "roles": [], "expiryDate": START_MS + 10 * DAY_MS + 1})
    assert accepted.status_code == 200
