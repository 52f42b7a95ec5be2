"""Who may manage service tokens: a token holding a manager role; anyone may ask status."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sts_reference.config import BootstrapSpec
from sts_reference.testing import RunningServer

from .support import Api, StartServer, unique_name

NON_MANAGER_ROLES = [
    pytest.param(["stackstate-power-user"], id="power user"),
    pytest.param(["stackstate-guest", "stackstate-k8s-troubleshooter"], id="guest and troubleshooter"),
    pytest.param([], id="no roles"),
    pytest.param(["Stackstate-Admin"], id="admin in other case"),
    pytest.param(["stackstate-admin "], id="admin with trailing space"),
    pytest.param(["manage-service-tokens"], id="a permission name is not a role"),
]


@pytest.mark.parametrize("roles", NON_MANAGER_ROLES)
def test_token_without_manager_role_refused_token_management(api: Api, roles: list[str]) -> None:
    """List, create and delete are 403 for a valid token lacking a manager role (role names
    are case-sensitive), and the refused create changes nothing."""
    victim_id, _ = api.new_token(["stackstate-guest"])
    _, secret = api.new_token(roles)
    before = api.listed()
    refused_name = unique_name("refused")
    responses = [
        api.list_tokens(token=secret),
        api.create({"name": refused_name, "roles": ["stackstate-admin"]}, token=secret),
        api.delete(victim_id, token=secret),
    ]
    for response in responses:
        api.error_body(response, 403)
    assert api.listed() == before


@pytest.mark.parametrize("roles", NON_MANAGER_ROLES)
def test_any_authenticated_token_may_read_server_status_and_info(api: Api, roles: list[str]) -> None:
    """status and info need authentication only, not a particular role."""
    _, secret = api.new_token(roles)
    assert api.status_with(secret).status_code == 200
    assert api.info(token=secret).status_code == 200


def test_one_manager_role_among_others_is_enough(api: Api) -> None:
    """A token needs just one of its roles to be a manager role."""
    _, secret = api.new_token(["stackstate-guest", "stackstate-admin"])
    assert api.list_tokens(token=secret).status_code == 200


def test_manager_roles_are_configurable(start_server: StartServer, api_for: Callable[[RunningServer], Api]) -> None:
    """With manager_roles=("ops", "sre"), those roles manage tokens and stackstate-admin does not."""
    ops = BootstrapSpec(token="ops-bootstrap-token", roles=["ops"])
    server = start_server(auth_config=ops, manager_roles=("ops", "sre"))
    api = api_for(server)
    assert api.list_tokens(token=ops.token).status_code == 200
    created = api.create({"name": "admin", "roles": ["stackstate-admin"]}, token=ops.token)
    assert created.status_code == 200
    assert api.list_tokens(token=created.json()["token"]).status_code == 403
    sre = api.create({"name": "sre", "roles": ["sre"]}, token=ops.token).json()["token"]
    assert api.list_tokens(token=sre).status_code == 200
