"""Probes of the faults of issue 23's unnamed classes (``sts_reference/unnamed_faults.py``): a strict
media-type match on the create, a hand-rolled Authorization parser, HEAD answered otherwise than
GET, and JSON answers labelled as something else.

Each probe runs a short scenario against a lab (``test_faults.Lab``) and says whether the server
behaved faithfully; ``test_faults.PROBES`` takes them in.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .support import ADMIN, unique_name

MANAGER = "stackstate-admin"
TOKENS = "/api/security/tokens"

Probe = Callable[[Any], bool]


def create_with_spelt_media_type_accepted(lab: Any) -> bool:
    name = unique_name()
    headers = {"X-API-Key": ADMIN.token, "Content-Type": "application/json; charset=utf-8"}
    resp = lab.api.http.post(TOKENS, content=json.dumps({"name": name, "roles": []}), headers=headers)
    return resp.status_code == 200 and name in [item["name"] for item in lab.api.listed()]


def token_after_two_spaces_accepted(lab: Any) -> bool:
    return bool(lab.api.status({"Authorization": f"ApiKey  {ADMIN.token}"}).status_code == 200)


def deleted_manager_refused_on_head_of_list(lab: Any) -> bool:
    token_id, secret = lab.api.new_token([MANAGER])
    assert lab.api.delete(token_id).status_code == 204
    return bool(lab.api.http.head(TOKENS, headers={"X-API-Key": secret}).status_code == 401)


def anonymous_head_of_server_info_refused(lab: Any) -> bool:
    return bool(lab.api.http.head("/api/server/info").status_code == 401)


def answers_labelled_json(lab: Any) -> bool:
    resp = lab.api.list_tokens()
    return resp.status_code == 200 and resp.headers.get("content-type", "").startswith("application/json")


def bad_json_400_quotes_no_credential(lab: Any) -> bool:
    headers = {"X-API-Key": ADMIN.token, "Content-Type": "application/json"}
    resp = lab.api.http.post(TOKENS, content=b"{not json", headers=headers)
    return resp.status_code == 400 and ADMIN.token not in resp.text


PROBES: dict[str, Probe] = {
    "json-content-type-exact": create_with_spelt_media_type_accepted,
    "authorization-one-space-only": token_after_two_spaces_accepted,
    "head-list-skips-revocation": deleted_manager_refused_on_head_of_list,
    "server-info-head-public": anonymous_head_of_server_info_refused,
    "token-answers-text-plain": answers_labelled_json,
    "bad-json-400-echoes-headers": bad_json_400_quotes_no_credential,
}
