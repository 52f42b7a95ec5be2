"""Listing service tokens: every token, expired and bootstrap ones included, no secrets."""

from __future__ import annotations

from collections.abc import Callable

from sts_reference.clock import FakeClock
from sts_reference.testing import RunningServer

from .support import ADMIN, DAY_MS, START_MS, Api, StartServer, VendorSchemas


def test_list_items_match_the_vendor_schema(api: Api, vendor: VendorSchemas) -> None:
    """The list is a JSON array of ServiceToken objects with int64 ids."""
    api.new_token(["stackstate-guest"], expiry=START_MS + DAY_MS)
    response = api.list_tokens()
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    items = response.json()
    vendor.validate_list("ServiceToken", items)
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids))
    assert all(isinstance(i, int) and 0 < i < 2**53 for i in ids)


def test_list_never_carries_a_secret(api: Api) -> None:
    """No item has a token field, and no secret (bootstrap or created) appears anywhere."""
    _, secret = api.new_token(["stackstate-admin"])
    response = api.list_tokens()
    assert all("token" not in item for item in response.json())
    assert secret not in response.text
    assert ADMIN.token not in response.text


def test_list_includes_the_bootstrap_token(api: Api) -> None:
    """The bootstrap token is listed like any other, with its roles and expiry."""
    bootstrap = [item for item in api.listed() if item["name"] == "bootstrap"]
    assert len(bootstrap) == 1
    assert bootstrap[0]["roles"] == ADMIN.roles
    assert bootstrap[0]["expiration"] == START_MS + ADMIN.ttl_ms


def test_list_keeps_expired_tokens(start_server: StartServer, api_for: Callable[[RunningServer], Api]) -> None:
    """A token past its expiry is refused but still listed, so it can be found and deleted."""
    clock = FakeClock(START_MS)
    api = api_for(start_server(clock=clock))
    token_id, secret = api.new_token([], expiry=START_MS + 1000)
    clock.advance(5000)
    assert api.status_with(secret).status_code == 401
    assert token_id in [item["id"] for item in api.listed()]
    assert api.delete(token_id).status_code == 204
