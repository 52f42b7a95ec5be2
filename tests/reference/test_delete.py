"""Deleting a service token: 204, and the token is refused from that moment."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sts_reference.testing import RunningServer

from .support import ADMIN, Api, StartServer, unique_name


@pytest.mark.parametrize(
    "form",
    [lambda t: {"X-API-Key": t}, lambda t: {"Authorization": f"ApiKey {t}"}],
    ids=["X-API-Key", "Authorization: ApiKey"],
)
def test_deleted_token_refused_at_once(api: Api, form: Callable[[str], dict[str, str]]) -> None:
    """After a 204 with no body, the secret is 401 in either header form and the id is gone."""
    token_id, secret = api.new_token(["stackstate-admin"])
    assert api.status(form(secret)).status_code == 200
    response = api.delete(token_id)
    assert response.status_code == 204
    assert response.content == b""
    assert api.status(form(secret)).status_code == 401
    assert token_id not in [item["id"] for item in api.listed()]


def test_delete_leaves_other_tokens_working(api: Api) -> None:
    """Deleting one token does not disturb another with the same name."""
    name = unique_name("pair")
    first_id, first = api.new_token([], name=name + "-1")
    _, second = api.new_token([], name=name + "-2")
    assert api.delete(first_id).status_code == 204
    assert api.status_with(first).status_code == 401
    assert api.status_with(second).status_code == 200


def test_delete_twice_is_404_the_second_time(api: Api) -> None:
    """A deleted id is unknown afterwards: 404 with a JSON body."""
    token_id, _ = api.new_token([])
    assert api.delete(token_id).status_code == 204
    api.error_body(api.delete(token_id), 404)


@pytest.mark.parametrize("token_id", ["100000000000000", "1", "0", "-5", str(2**63 - 1)])
def test_delete_unknown_id_is_404_and_changes_nothing(api: Api, token_id: str) -> None:
    """An int64 that names no token is 404 with a JSON body; the list is unchanged."""
    before = api.listed()
    api.error_body(api.delete(token_id), 404)
    assert api.listed() == before


@pytest.mark.parametrize(
    "token_id",
    ["abc", "1.5", "1e3", "0x10", str(2**63), "9" * 30, "%20", "12%2034"],
    ids=["word", "decimal", "exponent", "hex", "int64 max + 1", "30 digits", "space", "inner space"],
)
def test_delete_non_int64_id_is_400(api: Api, token_id: str) -> None:
    """An id that is not an int64 is 400 with a JSON body, never a 5xx."""
    before = api.listed()
    api.error_body(api.delete(token_id), 400)
    assert api.listed() == before


def test_token_may_delete_itself(api: Api) -> None:
    """A manager token deleting its own id gets 204, then is refused."""
    token_id, secret = api.new_token(["stackstate-admin"])
    assert api.delete(token_id, token=secret).status_code == 204
    assert api.status_with(secret).status_code == 401


def test_bootstrap_token_can_be_deleted(start_server: StartServer, api_for: Callable[[RunningServer], Api]) -> None:
    """The bootstrap token is an ordinary token once created: deleting it revokes it."""
    api = api_for(start_server())
    _, spare = api.new_token(["stackstate-admin"])
    bootstrap_id = api.by_name("bootstrap")["id"]
    assert api.delete(bootstrap_id, token=spare).status_code == 204
    assert api.status_with(ADMIN.token).status_code == 401
