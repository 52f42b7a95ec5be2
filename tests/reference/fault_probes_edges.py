"""Probes of the faults of issue 23 items 4 and 6: a list cut at the sizes where servers page or
cap; credentials taken from undocumented places, and session cookies that outlive their token.

Each probe runs a short scenario against a lab (``test_faults.Lab``) and says whether the server
behaved faithfully; ``test_faults.PROBES`` takes them in. The faithful server sets no cookie, so
there a cookie presented alone is simply an anonymous request.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from typing import Any

from .support import ADMIN, DAY_MS, START_MS, unique_name

GUEST = "stackstate-guest"
STATUS = "/api/server/status"
TOKENS = "/api/security/tokens"

Probe = Callable[[Any], bool]


def query_api_key_refused(lab: Any) -> bool:
    return bool(lab.api.http.get(STATUS, params={"api_key": ADMIN.token}).status_code == 401)


def basic_auth_password_refused(lab: Any) -> bool:
    basic = "Basic " + base64.b64encode(f"apikey:{ADMIN.token}".encode()).decode()
    return bool(lab.api.http.get(STATUS, headers={"Authorization": basic}).status_code == 401)


def json_body_token_refused(lab: Any) -> bool:
    name = unique_name()
    resp = lab.api.http.post(TOKENS, json={"name": name, "roles": [GUEST], "token": ADMIN.token})
    return resp.status_code == 401 and name not in [item["name"] for item in lab.api.listed()]


def _session_cookie(lab: Any, secret: str) -> str | None:
    resp = lab.api.http.get(STATUS, headers={"X-API-Key": secret})
    cookies = [c.split(";", 1)[0] for c in resp.headers.get_list("set-cookie")]
    lab.api.http.cookies.clear()  # presented below on purpose, never by the client on its own
    return "; ".join(cookies) or None


def _alone(lab: Any, cookie: str | None) -> int:
    return int(lab.api.http.get(STATUS, headers={"Cookie": cookie} if cookie else {}).status_code)


def session_dies_with_delete(lab: Any) -> bool:
    token_id, secret = lab.api.new_token([GUEST])
    cookie = _session_cookie(lab, secret)
    lab.api.delete(token_id)
    return _alone(lab, cookie) == 401


def session_dies_with_expiry(lab: Any) -> bool:
    _, secret = lab.api.new_token([GUEST], expiry=START_MS + DAY_MS)
    cookie = _session_cookie(lab, secret)
    lab.clock.advance(2 * DAY_MS)
    return _alone(lab, cookie) == 401


def _listed_in_full(lab: Any, count: int) -> bool:
    """With ``count`` tokens stored (put in the store directly: only the list is probed), all are listed."""
    store = lab.api.server.store
    names = {unique_name("many") for _ in range(count)}
    for name in names:
        store.create(secret=secrets.token_urlsafe(24), name=name, roles=[GUEST], expiration=None, now_ms=START_MS)
    return names <= {item["name"] for item in lab.api.listed()}


def list_complete_past_100(lab: Any) -> bool:
    return _listed_in_full(lab, 110)


def list_complete_past_1000(lab: Any) -> bool:
    return _listed_in_full(lab, 1_030)


PROBES: dict[str, Probe] = {
    "list-capped-at-100": list_complete_past_100,
    "list-paged-at-1000": list_complete_past_1000,
    "list-sorted-truncated": list_complete_past_1000,
    "query-api-key-accepted": query_api_key_refused,
    "basic-auth-password-accepted": basic_auth_password_refused,
    "json-body-token-accepted": json_body_token_refused,
    "session-outlives-delete": session_dies_with_delete,
    "session-outlives-expiry": session_dies_with_expiry,
}
