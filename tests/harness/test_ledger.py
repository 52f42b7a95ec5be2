"""The token ledger: it finds each created token's id, and cleans up only what it created."""

from __future__ import annotations

import json

import httpx
import pytest
import respx

from sts_conformance.client import ApiClient, AuthForm
from sts_conformance.tokens import LedgerError, TokenLedger
from sts_reference.config import BootstrapSpec
from sts_reference.testing import running_server

ADMIN = "ledger-admin-0123456789abcdef"
API = "http://target.test/api/security/tokens"


@pytest.fixture
def server():
    spec = BootstrapSpec(token=ADMIN, roles=["stackstate-admin"], ttl_ms=3_600_000)
    with running_server(auth_config=spec) as srv:
        yield srv


@pytest.fixture
def ledger(server):
    with ApiClient(server.url) as client:
        yield TokenLedger(client, ADMIN, AuthForm.X_API_KEY, prefix="stsct-test-gw0")


def test_create_finds_the_id_and_cleanup_deletes_only_own_tokens(server, ledger):
    """Cleanup removes every token the ledger created and leaves a foreign one with our prefix alone."""
    with ApiClient(server.url) as c:
        foreign = c.create_token(ADMIN, {"name": "stsct-test-gw0-lookalike-1", "roles": []})
        assert foreign.status_code == 200
    a = ledger.create("a")
    b = ledger.create("b", expiry_ms=4_102_444_800_000)
    assert a.id is not None and b.id is not None and a.id != b.id
    assert ledger.cleanup() == []
    names = [i["name"] for i in ledger.list_items()]
    assert a.name not in names and b.name not in names
    assert "stsct-test-gw0-lookalike-1" in names, "cleanup deleted a token the run did not create"


def test_duplicate_foreign_names_are_told_apart_by_the_before_list(server, ledger):
    """A non-unique name is attributed to the id that did not exist before the create."""
    with ApiClient(server.url) as c:
        assert c.create_token(ADMIN, {"name": "shared", "roles": []}).status_code == 200
    resp, tok = ledger.create_raw({"name": "shared", "roles": []})
    assert resp.status_code == 200 and tok is not None
    items = {i["id"]: i for i in ledger.list_items()}
    assert items[tok.id]["name"] == "shared"
    ledger.cleanup()
    assert [i["name"] for i in ledger.list_items()].count("shared") == 1


def test_repr_of_a_token_never_shows_the_secret(ledger):
    """OwnedToken's repr names a fingerprint, not the secret."""
    tok = ledger.create("repr")
    assert tok.secret not in repr(tok)
    ledger.cleanup()


def _listing(items):
    return httpx.Response(200, json=items)


def test_refused_create_that_still_created_a_token_is_cleaned_up():
    """A 400 that nevertheless created the token: the ledger adopts it and deletes it at cleanup."""
    stray = {"id": 77, "name": "stsct-x-gw0-bad-1", "roles": []}
    with respx.mock(assert_all_called=True, assert_all_mocked=True) as mock:
        mock.post(API).mock(return_value=httpx.Response(400, json={"_type": "Bad"}))
        mock.get(API).mock(side_effect=[_listing([stray]), _listing([])])
        delete = mock.delete(f"{API}/77").mock(return_value=httpx.Response(204))
        with ApiClient("http://target.test") as c:
            led = TokenLedger(c, ADMIN, AuthForm.X_API_KEY, prefix="stsct-x-gw0")
            resp, tok = led.create_raw({"name": led.name("bad"), "roles": []})
            assert resp.status_code == 400 and tok is None
            assert led.cleanup() == []
        assert delete.call_count == 1


def test_created_but_never_listed_is_an_error():
    """A 200 create whose token never shows up in the list fails loudly instead of leaking."""
    with respx.mock(assert_all_called=True, assert_all_mocked=True) as mock:
        mock.post(API).mock(return_value=httpx.Response(200, json={"name": "n", "token": "svctok-abcdefgh123"}))
        mock.get(API).mock(return_value=_listing([]))
        with ApiClient("http://target.test") as c:
            led = TokenLedger(c, ADMIN, AuthForm.X_API_KEY, prefix="stsct-x-gw0")
            with pytest.raises(LedgerError, match="does not appear in the list"):
                led.create("ghost")
            problems = led.cleanup()
    assert problems and "id unknown" in problems[0]
    assert "svctok-abcdefgh123" not in json.dumps(problems)


def test_list_that_is_not_an_array_is_reported():
    """A list call answering an object is a clear ledger error, not a crash."""
    with respx.mock(assert_all_called=True, assert_all_mocked=True) as mock:
        mock.get(API).mock(return_value=httpx.Response(200, json={"items": []}))
        with ApiClient("http://target.test") as c:
            led = TokenLedger(c, ADMIN, AuthForm.X_API_KEY, prefix="p")
            with pytest.raises(LedgerError, match="not a JSON array"):
                led.list_items()


def test_refused_odd_name_never_claims_another_workers_token():
    """After a refused create, a new token of another xdist worker of this run is not taken for ours."""
    other = {"id": 5, "name": "stsct-r1-gw1-a-1", "roles": []}
    with respx.mock(assert_all_called=True, assert_all_mocked=True) as mock:
        mock.post(API).mock(return_value=httpx.Response(400, json={"_type": "Bad"}))
        mock.get(API).mock(side_effect=[_listing([]), _listing([other])])
        with ApiClient("http://target.test") as c:
            led = TokenLedger(c, ADMIN, AuthForm.X_API_KEY, prefix="stsct-r1-gw0")
            resp, tok = led.create_raw({"name": "  odd  ", "roles": []})
            assert resp.status_code == 400 and tok is None
            assert led.owned == []
            assert led.cleanup() == []  # and no DELETE was sent (none is mocked)


def test_token_created_despite_a_server_error_is_cleaned_up():
    """A 500 that still stored the token: the ledger adopts the new entry and deletes it."""
    with respx.mock(assert_all_called=True, assert_all_mocked=True) as mock:
        mock.post(API).mock(return_value=httpx.Response(500, json={"_type": "ErrorsResponse"}))
        mock.get(API).mock(side_effect=[_listing([]), _listing([{"id": 9, "name": "x", "roles": []}]), _listing([])])
        delete = mock.delete(f"{API}/9").mock(return_value=httpx.Response(204))
        with ApiClient("http://target.test") as c:
            led = TokenLedger(c, ADMIN, AuthForm.X_API_KEY, prefix="stsct-r1-gw0")
            resp, tok = led.create_raw({"name": "x", "roles": []})
            assert resp.status_code == 500 and tok is None
            assert led.cleanup() == []
        assert delete.call_count == 1


def test_deleted_id_is_released_for_reuse():
    """A target that hands a freed id to the next token still gets that token attributed."""
    a = {"id": 3, "name": "stsct-r1-gw0-t-1", "roles": []}
    b = {"id": 3, "name": "stsct-r1-gw0-t-2", "roles": []}
    with respx.mock(assert_all_called=True, assert_all_mocked=True) as mock:
        mock.post(API).mock(
            side_effect=[
                httpx.Response(200, json={"name": a["name"], "token": "svctok-aaaaaaaaaa"}),
                httpx.Response(200, json={"name": b["name"], "token": "svctok-bbbbbbbbbb"}),
            ]
        )
        mock.get(API).mock(side_effect=[_listing([a]), _listing([b])])
        mock.delete(f"{API}/3").mock(return_value=httpx.Response(204))
        with ApiClient("http://target.test") as c:
            led = TokenLedger(c, ADMIN, AuthForm.X_API_KEY, prefix="stsct-r1-gw0")
            first = led.create("t")
            assert led.delete(first).status_code == 204
            second = led.create("t")
            assert second.id == 3
