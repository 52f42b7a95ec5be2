"""Probes of the faults of issue 19 (paths and methods, server errors, disguised secrets).

Each probe runs a short scenario against a lab (``test_faults.Lab``) and says whether the server
behaved faithfully; ``test_faults.PROBES`` takes them in.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from sts_conformance.core.disguise import how_carried

from .support import ADMIN, unique_name

GUEST = "stackstate-guest"
TOKENS = "/api/security/tokens"

Probe = Callable[[Any], bool]


def _listed_ids(lab: Any) -> list[int]:
    return [item["id"] for item in lab.api.listed()]


def trailing_slash_list_refuses_anonymous(lab: Any) -> bool:
    return bool(lab.api.http.get(TOKENS + "/").status_code >= 400)


def get_one_token_carries_no_secret(lab: Any) -> bool:
    token_id, secret = lab.api.new_token([GUEST])
    resp = lab.api.http.get(f"{TOKENS}/{token_id}", headers={"X-API-Key": ADMIN.token})
    return how_carried([resp.text], secret, issued=True) is None


def method_override_cannot_delete_for_a_guest(lab: Any) -> bool:
    target_id, _ = lab.api.new_token([GUEST])
    _, guest = lab.api.new_token([GUEST])
    for headers, query in (({"X-HTTP-Method-Override": "DELETE"}, ""), ({}, "?_method=DELETE")):
        lab.api.http.post(f"{TOKENS}/{target_id}{query}", headers={"X-API-Key": guest, **headers})
    return target_id in _listed_ids(lab)


def options_gets_no_server_error(lab: Any) -> bool:
    return bool(lab.api.http.options(TOKENS, headers={"X-API-Key": ADMIN.token}).status_code < 500)


def second_delete_gets_no_server_error(lab: Any) -> bool:
    token_id, _ = lab.api.new_token([GUEST])
    first = lab.api.delete(token_id)
    return first.status_code == 204 and lab.api.delete(token_id).status_code < 500


def malformed_ids_get_no_server_error(lab: Any) -> bool:
    return all(lab.api.delete(bad).status_code < 500 for bad in ("abc", "9" * 20, str(2**63)))


def nine_roles_get_no_server_error(lab: Any) -> bool:
    roles = [GUEST, *(f"role-{i}" for i in range(8))]
    return bool(lab.api.create({"name": unique_name(), "roles": roles}).status_code < 500)


def nul_in_name_gets_no_server_error(lab: Any) -> bool:
    return bool(lab.api.create({"name": unique_name() + "\x00x", "roles": [GUEST]}).status_code < 500)


def id_in_create_body_does_not_bind(lab: Any) -> bool:
    name = unique_name("owner")
    owner_id, _ = lab.api.new_token([GUEST], name=name)
    assert lab.api.create({"name": unique_name(), "roles": [GUEST], "id": owner_id}).status_code == 200
    return any(item["id"] == owner_id and item["name"] == name for item in lab.api.listed())


def token_in_create_body_does_not_bind(lab: Any) -> bool:
    chosen = "svctok-" + secrets.token_urlsafe(24)
    resp = lab.api.create({"name": unique_name(), "roles": [GUEST], "token": chosen})
    return resp.status_code == 200 and resp.json()["token"] != chosen and lab.api.status_with(chosen).status_code == 401


def forbidden_carries_no_fragment(lab: Any) -> bool:
    _, guest = lab.api.new_token([GUEST])
    resp = lab.api.list_tokens(token=guest)
    return resp.status_code == 403 and how_carried([resp.text], guest, issued=True) is None


def list_carries_no_encoded_secret(lab: Any) -> bool:
    _, secret = lab.api.new_token([GUEST])
    return how_carried([lab.api.list_tokens().text], secret) is None


PROBES: dict[str, Probe] = {
    "trailing-slash-skips-auth": trailing_slash_list_refuses_anonymous,
    "get-token-by-id-returns-secret": get_one_token_carries_no_secret,
    "method-override-skips-role-check": method_override_cannot_delete_for_a_guest,
    "options-500": options_gets_no_server_error,
    "double-delete-500": second_delete_gets_no_server_error,
    "non-numeric-id-500": malformed_ids_get_no_server_error,
    "many-roles-500": nine_roles_get_no_server_error,
    "nul-in-name-500": nul_in_name_gets_no_server_error,
    "create-binds-extra-id": id_in_create_body_does_not_bind,
    "create-binds-extra-token": token_in_create_body_does_not_bind,
    "error-echoes-secret-prefix": forbidden_carries_no_fragment,
    "list-leaks-base64-secret": list_carries_no_encoded_secret,
}
