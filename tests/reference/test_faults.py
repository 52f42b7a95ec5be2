"""Named faults: each switches on one plausible defect, and that defect really shows.

Every fault has a probe: a short scenario against a server started in-process with a fake
clock, which says whether the server behaved faithfully. The faithful server passes every
probe; with the fault switched on, the server fails its probe and still answers the basic
calls (so no fault is a server that simply refuses everything). Whether the conformance
suites notice each fault is the kill matrix's question (tests/killmatrix).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from sts_reference.clock import FakeClock
from sts_reference.config import load_auth_config
from sts_reference.faults import FAULTS, FaultSet
from sts_reference.testing import RunningServer

from .fault_probes_edges import PROBES as EDGE_PROBES
from .fault_probes_paths import PROBES as PATH_AND_ERROR_PROBES
from .fault_probes_unnamed import PROBES as UNNAMED_PROBES
from .support import ADMIN, DAY_MS, START_MS, Api, StartServer, http_client, unique_name

GUEST = "stackstate-guest"
BOOT_SECRET = "0123456789abcdef0123456789abcdef"


@dataclass
class Lab:
    """The world of one probe: a server with the faults under test, and the means to start more."""

    faults: tuple[str, ...]
    clock: FakeClock
    api: Api
    start: Callable[..., Api]
    """Start another server with the same faults and clock; keyword arguments are ``running_server``'s."""
    boot: Callable[[str], Api]
    """Start another server whose bootstrap token comes from the given authentication.yaml text,
    read with the same faults (so faults in reading the config show too)."""


Probe = Callable[[Lab], bool]
"""Runs a scenario against a lab and says whether the server behaved faithfully."""


def _status_of(api: Api, headers: dict[str, str]) -> int:
    return api.status(headers).status_code


def _boot_yaml(*, key: str = "serviceToken", roles: str = "[stackstate-admin]", ttl: str | None = None) -> str:
    lines = ["stackstate:", "  authentication:", f"    {key}:", "      bootstrap:", f"        token: {BOOT_SECRET}"]
    lines.append(f"        roles: {roles}")
    if ttl is not None:
        lines.append(f"        ttl: {ttl}")
    return "\n".join(lines) + "\n"


def _names(api: Api) -> list[str]:
    return [item["name"] for item in api.listed()]


# -- presenting and comparing a token ---------------------------------------------------------


def x_api_key_accepted(lab: Lab) -> bool:
    return _status_of(lab.api, {"X-API-Key": ADMIN.token}) == 200


def other_schemes_refused(lab: Lab) -> bool:
    return all(_status_of(lab.api, {"Authorization": f"{s} {ADMIN.token}"}) == 401 for s in ("Bearer", "ApiToken"))


def x_api_token_refused(lab: Lab) -> bool:
    return _status_of(lab.api, {"X-API-Token": ADMIN.token}) == 401


def truncated_token_refused(lab: Lab) -> bool:
    _, secret = lab.api.new_token([GUEST])
    return lab.api.status_with(secret[:-1]).status_code == 401 and lab.api.status_with(secret).status_code == 200


def extended_token_refused(lab: Lab) -> bool:
    _, secret = lab.api.new_token([GUEST])
    return lab.api.status_with(secret + "x").status_code == 401


def case_altered_token_refused(lab: Lab) -> bool:
    _, secret = lab.api.new_token([GUEST])
    return lab.api.status_with(secret.swapcase()).status_code == 401


def anonymous_status_refused(lab: Lab) -> bool:
    return _status_of(lab.api, {}) == 401


def anonymous_info_refused(lab: Lab) -> bool:
    return lab.api.http.get("/api/server/info").status_code == 401


# -- revoking, ids and the list ---------------------------------------------------------------


def deleted_token_refused(lab: Lab) -> bool:
    token_id, secret = lab.api.new_token([])
    lab.api.delete(token_id)
    return lab.api.status_with(secret).status_code == 401


def delete_removes_only_that_token(lab: Lab) -> bool:
    first_id, _ = lab.api.new_token([GUEST])
    second_id, _ = lab.api.new_token([GUEST])
    lab.api.delete(first_id)
    ids = [item["id"] for item in lab.api.listed()]
    return first_id not in ids and second_id in ids


def delete_leaves_a_same_name_token(lab: Lab) -> bool:
    name = unique_name("twin")
    first_id, _ = lab.api.new_token([GUEST], name=name)
    assert lab.api.create({"name": name, "roles": [GUEST]}).status_code == 200
    lab.api.delete(first_id)
    return _names(lab.api).count(name) == 1


def delete_answers_204_without_body(lab: Lab) -> bool:
    token_id, _ = lab.api.new_token([GUEST])
    resp = lab.api.delete(token_id)
    return resp.status_code == 204 and resp.content == b""


def create_after_delete_works(lab: Lab) -> bool:
    first_id, _ = lab.api.new_token([GUEST])
    lab.api.new_token([GUEST])
    lab.api.delete(first_id)
    return lab.api.create({"name": unique_name(), "roles": [GUEST]}).status_code == 200


def concurrent_creates_all_succeed(lab: Lab) -> bool:
    count = 8
    start = threading.Barrier(count)

    def create(_: int) -> int:
        with http_client(lab.api.server.url) as http:
            start.wait(timeout=10)
            body = {"name": unique_name("together"), "roles": [GUEST]}
            return http.post("/api/security/tokens", json=body, headers={"X-API-Key": ADMIN.token}).status_code

    with ThreadPoolExecutor(count) as pool:
        statuses = list(pool.map(create, range(count)))
    ids = [item["id"] for item in lab.api.listed()]
    return statuses == [200] * count and len(ids) == len(set(ids)) == count + 1


def ids_listed_as_integers(lab: Lab) -> bool:
    lab.api.new_token([GUEST])
    return all(type(item["id"]) is int for item in lab.api.listed())


def roles_string_refused(lab: Lab) -> bool:
    return lab.api.create({"name": unique_name(), "roles": GUEST}).status_code == 400


def missing_roles_refused(lab: Lab) -> bool:
    return lab.api.create({"name": unique_name()}).status_code == 400


def malformed_json_gets_400(lab: Lab) -> bool:
    resp = lab.api.http.post(
        "/api/security/tokens",
        content=b'{"name": "x", "roles": [',
        headers={"X-API-Key": ADMIN.token, "Content-Type": "application/json"},
    )
    return resp.status_code == 400


# -- expiry -----------------------------------------------------------------------------------


def past_expiry_refused_and_expiry_enforced(lab: Lab) -> bool:
    past = lab.api.create({"name": "past", "roles": [], "expiryDate": START_MS - 1})
    _, secret = lab.api.new_token([], expiry=START_MS + 1000)
    lab.clock.advance(2000)
    return past.status_code == 400 and lab.api.status_with(secret).status_code == 401


def refused_just_after_expiry(lab: Lab) -> bool:
    _, secret = lab.api.new_token([GUEST], expiry=START_MS + 500)
    lab.clock.set(START_MS + 1500)
    return lab.api.status_with(secret).status_code == 401


def expiry_kept_to_the_millisecond(lab: Lab) -> bool:
    expiry = START_MS + DAY_MS + 457
    resp = lab.api.create({"name": unique_name(), "roles": [GUEST], "expiryDate": expiry})
    return bool(resp.json().get("expiration") == expiry)


def expiry_round_trips_and_is_enforced(lab: Lab) -> bool:
    """Issue 24: an expiry is echoed and listed as sent, and refused just after that instant."""
    expiry, name = START_MS + 500, unique_name("round-trip")
    resp = lab.api.create({"name": name, "roles": [GUEST], "expiryDate": expiry})
    secret = resp.json()["token"]
    kept = resp.json().get("expiration") == expiry and lab.api.by_name(name).get("expiration") == expiry
    lab.clock.set(START_MS + 1500)
    return kept and lab.api.status_with(secret).status_code == 401


def anonymous_list_refused(lab: Lab) -> bool:
    return lab.api.http.get("/api/security/tokens").status_code == 401


def anonymous_delete_refused(lab: Lab) -> bool:
    token_id, _ = lab.api.new_token([GUEST])
    refused = lab.api.http.delete(f"/api/security/tokens/{token_id}").status_code == 401
    return refused and token_id in [item["id"] for item in lab.api.listed()]


def past_expiry_refused(lab: Lab) -> bool:
    return lab.api.create({"name": unique_name(), "roles": [GUEST], "expiryDate": START_MS - 1}).status_code == 400


def refused_past_expiry_stores_nothing(lab: Lab) -> bool:
    name = unique_name("past")
    lab.api.create({"name": name, "roles": [GUEST], "expiryDate": START_MS - 1})
    return name not in _names(lab.api)


def past_expiry_error_is_invalid_expiry(lab: Lab) -> bool:
    resp = lab.api.create({"name": unique_name(), "roles": [GUEST], "expiryDate": START_MS - 1})
    return bool(resp.status_code == 400 and resp.json().get("_type") == "ServiceTokenInvalidExpiryError")


def date_string_expiry_refused(lab: Lab) -> bool:
    bodies: list[dict[str, object]] = [{"expiryDate": "2030-01-01"}, {"expiryDate": START_MS + DAY_MS + 0.5}]
    return all(lab.api.create({"name": unique_name(), "roles": [GUEST], **body}).status_code == 400 for body in bodies)


def token_with_expiry_listed(lab: Lab) -> bool:
    name = unique_name("expiring")
    assert lab.api.create({"name": name, "roles": [GUEST], "expiryDate": START_MS + DAY_MS}).status_code == 200
    return name in _names(lab.api)


def expired_manager_refused_management(lab: Lab) -> bool:
    _, secret = lab.api.new_token(["stackstate-admin"], expiry=START_MS + 1000)
    lab.clock.advance(2000)
    return lab.api.list_tokens(token=secret).status_code == 401


# -- the bootstrap token ----------------------------------------------------------------------


def _bootstrap_expires(ttl: str, ttl_ms: int) -> Probe:
    def probe(lab: Lab) -> bool:
        api = lab.boot(_boot_yaml(ttl=ttl))
        works = api.status_with(BOOT_SECRET).status_code == 200
        lab.clock.advance(ttl_ms)
        return works and api.status_with(BOOT_SECRET).status_code == 401

    return probe


def bootstrap_gets_its_roles(lab: Lab) -> bool:
    api = lab.boot(_boot_yaml(roles=f"[{GUEST}]"))
    return api.status_with(BOOT_SECRET).status_code == 200 and api.list_tokens(token=BOOT_SECRET).status_code == 403


def lower_case_key_read(lab: Lab) -> bool:
    return lab.boot(_boot_yaml(key="servicetoken")).status_with(BOOT_SECRET).status_code == 200


# -- roles ------------------------------------------------------------------------------------


def _manages(lab: Lab, roles: list[str]) -> bool:
    _, secret = lab.api.new_token(roles)
    return lab.api.list_tokens(token=secret).status_code == 200


def case_altered_role_cannot_manage(lab: Lab) -> bool:
    return not _manages(lab, ["STACKSTATE-ADMIN"])


def manager_role_second_manages(lab: Lab) -> bool:
    return _manages(lab, [GUEST, "stackstate-admin"])


def power_user_cannot_manage(lab: Lab) -> bool:
    return not _manages(lab, ["stackstate-power-user"])


def no_roles_cannot_manage(lab: Lab) -> bool:
    return not _manages(lab, [])


# -- secrets and what responses show ----------------------------------------------------------


def list_has_no_secrets(lab: Lab) -> bool:
    _, secret = lab.api.new_token([])
    text = lab.api.list_tokens().text
    return secret not in text and ADMIN.token not in text


def same_name_gets_new_secret(lab: Lab) -> bool:
    name = unique_name("again")
    first_id, first = lab.api.new_token([GUEST], name=name)
    lab.api.delete(first_id)
    _, second = lab.api.new_token([GUEST], name=name)
    return first != second


def secrets_share_no_suffix(lab: Lab) -> bool:
    secrets = [lab.api.new_token([GUEST])[1] for _ in range(4)]
    shared = 0
    while shared < min(map(len, secrets)) and len({s[-1 - shared] for s in secrets}) == 1:
        shared += 1
    return shared < 8


def info_has_no_credential(lab: Lab) -> bool:
    return ADMIN.token not in lab.api.info().text


def refusal_does_not_quote_token(lab: Lab) -> bool:
    presented = "not-a-token-" + "q" * 20
    resp = lab.api.status_with(presented)
    return resp.status_code == 401 and presented not in resp.text


# -- names ------------------------------------------------------------------------------------


def _listed_exactly(lab: Lab, name: str) -> bool:
    resp = lab.api.create({"name": name, "roles": [GUEST]})
    return resp.status_code == 200 and name in _names(lab.api)


# -- checks made on some calls but not on others ----------------------------------------------

MANAGER = "stackstate-admin"


def deleted_manager_refused_management(lab: Lab) -> bool:
    token_id, secret = lab.api.new_token([MANAGER])
    assert lab.api.list_tokens(token=secret).status_code == 200
    assert lab.api.delete(token_id).status_code == 204
    return lab.api.list_tokens(token=secret).status_code == 401


def deleted_token_refused_on_info(lab: Lab) -> bool:
    token_id, secret = lab.api.new_token([GUEST])
    assert lab.api.info(token=secret).status_code == 200
    assert lab.api.delete(token_id).status_code == 204
    return lab.api.info(token=secret).status_code == 401


def expired_token_refused_in_authorization_header(lab: Lab) -> bool:
    _, secret = lab.api.new_token([MANAGER], expiry=START_MS + 1000)
    lab.clock.advance(2000)
    return lab.api.using_authorization_header().status_with(secret).status_code == 401


def guest_cannot_delete(lab: Lab) -> bool:
    target_id, _ = lab.api.new_token([GUEST])
    _, guest = lab.api.new_token([GUEST])
    refused = lab.api.delete(target_id, token=guest).status_code == 403
    return refused and target_id in [item["id"] for item in lab.api.listed()]


def forbidden_does_not_quote_token(lab: Lab) -> bool:
    _, guest = lab.api.new_token([GUEST])
    resp = lab.api.list_tokens(token=guest)
    return resp.status_code == 403 and guest not in resp.text


def error_headers_do_not_carry_token(lab: Lab) -> bool:
    _, guest = lab.api.new_token([GUEST])
    unknown = "not-a-token-" + "h" * 20
    refusals = [lab.api.status_with(unknown), lab.api.list_tokens(token=guest)]
    statuses = [resp.status_code for resp in refusals]
    headers = " ".join(f"{k}: {v}" for resp in refusals for k, v in resp.headers.items())
    return statuses == [401, 403] and unknown not in headers and guest not in headers


def status_has_no_credential(lab: Lab) -> bool:
    resp = lab.api.status_with(ADMIN.token)
    return resp.status_code == 200 and ADMIN.token not in resp.text


def expired_bootstrap_refused_everywhere(lab: Lab) -> bool:
    api = lab.boot(_boot_yaml(ttl="90s"))
    works = api.info(token=BOOT_SECRET).status_code == 200
    lab.clock.advance(90_000)
    calls = [api.status_with(BOOT_SECRET), api.info(token=BOOT_SECRET), api.list_tokens(token=BOOT_SECRET)]
    return works and [resp.status_code for resp in calls] == [401, 401, 401]


# -- calls a client or test harness relies on -------------------------------------------------


def create_answers_200(lab: Lab) -> bool:
    return lab.api.create({"name": unique_name(), "roles": [GUEST]}).status_code == 200


def second_create_of_a_name_gets_a_new_secret(lab: Lab) -> bool:
    """A second create of a live name makes a second token with a secret of its own."""
    name = unique_name()
    first = lab.api.create({"name": name, "roles": [GUEST]})
    second = lab.api.create({"name": name, "roles": [GUEST]})
    assert first.status_code == 200 and second.status_code == 200
    return first.json()["token"] != second.json()["token"] and [i["name"] for i in lab.api.listed()].count(name) == 2


def same_second_tokens_get_distinct_ids(lab: Lab) -> bool:
    first_id, _ = lab.api.new_token([GUEST])
    second_id, _ = lab.api.new_token([GUEST])
    if first_id == second_id:
        return False
    assert lab.api.delete(first_id).status_code == 204
    return second_id in [item["id"] for item in lab.api.listed()]


def list_shows_more_than_20(lab: Lab) -> bool:
    names = [unique_name(f"many{n}") for n in range(21)]
    for name in names:
        assert lab.api.create({"name": name, "roles": [GUEST]}).status_code == 200
    listed = [item["name"] for item in lab.api.list_tokens().json()]
    return all(name in listed for name in names)


def create_returns_the_secret(lab: Lab) -> bool:
    resp = lab.api.create({"name": unique_name(), "roles": [GUEST]})
    return resp.status_code == 200 and isinstance(resp.json().get("token"), str)


def list_is_an_array(lab: Lab) -> bool:
    assert lab.api.create({"name": unique_name(), "roles": [GUEST]}).status_code == 200
    resp = lab.api.list_tokens()
    return resp.status_code == 200 and isinstance(resp.json(), list)


def empty_dedicated_subject_accepted(lab: Lab) -> bool:
    resp = lab.api.create({"name": unique_name(), "roles": [GUEST], "dedicatedSubject": ""})
    return resp.status_code == 200


# -- issue 19: what a token may do off the happy path -----------------------------------------


def substring_role_cannot_manage(lab: Lab) -> bool:
    return not _manages(lab, [f"{MANAGER}-readonly"])


def comma_role_kept_whole(lab: Lab) -> bool:
    role = f"{GUEST},stackstate-power-user"
    name = unique_name("comma")
    assert lab.api.create({"name": name, "roles": [role]}).status_code == 200
    return bool(lab.api.by_name(name)["roles"] == [role])


def used_token_expires_as_created(lab: Lab) -> bool:
    _, secret = lab.api.new_token([GUEST], expiry=START_MS + 3000)
    lab.clock.advance(2000)
    used = lab.api.status_with(secret).status_code == 200
    lab.clock.advance(1500)
    return used and lab.api.status_with(secret).status_code == 401


def never_used_token_expires_as_created(lab: Lab) -> bool:
    _, secret = lab.api.new_token([GUEST], expiry=START_MS + 3000)
    lab.clock.advance(3500)
    return lab.api.status_with(secret).status_code == 401


def tokens_outlive_their_maker(lab: Lab) -> bool:
    maker_id, maker = lab.api.new_token([MANAGER])
    name = unique_name()
    assert lab.api.create({"name": name, "roles": [GUEST]}, token=maker).status_code == 200
    assert lab.api.delete(maker_id).status_code == 204
    return any(item["name"] == name for item in lab.api.listed())


def manager_token_lists_every_token(lab: Lab) -> bool:
    other, _ = lab.api.new_token([GUEST])
    _, manager = lab.api.new_token([MANAGER])
    seen = {item["id"] for item in lab.api.list_tokens(token=manager).json()}
    return other in seen and seen == {item["id"] for item in lab.api.listed()}


def deleted_maker_refused_on_token_calls(lab: Lab) -> bool:
    """A manager token deleted while a token it made lives on is refused on the list in both header forms."""
    maker_id, maker = lab.api.new_token([MANAGER])
    assert lab.api.create({"name": unique_name(), "roles": [GUEST]}, token=maker).status_code == 200
    assert lab.api.delete(maker_id).status_code == 204
    forms = ({"X-API-Key": maker}, {"Authorization": f"ApiKey {maker}"})
    return all(lab.api.http.get("/api/security/tokens", headers=h).status_code == 401 for h in forms)


def forty_roles_listed_in_full(lab: Lab) -> bool:
    roles = [GUEST, *(f"role-{i:02d}" for i in range(38)), MANAGER]
    token_id, _ = lab.api.new_token(roles)
    return next(item["roles"] for item in lab.api.listed() if item["id"] == token_id) == roles


def int64_max_expiry_token_works(lab: Lab) -> bool:
    _, secret = lab.api.new_token([GUEST], expiry=2**63 - 1)
    return lab.api.status_with(secret).status_code == 200


def duplicate_names_answered_alike(lab: Lab) -> bool:
    name = unique_name()
    statuses = [lab.api.create({"name": name, "roles": [GUEST]}).status_code for _ in range(3)]
    return len(set(statuses)) == 1


def used_token_refused_after_delete(lab: Lab) -> bool:
    token_id, secret = lab.api.new_token([GUEST])
    assert lab.api.status_with(secret).status_code == 200
    assert lab.api.delete(token_id).status_code == 204
    return lab.api.status_with(secret).status_code == 401


def extended_token_refused_on_token_calls(lab: Lab) -> bool:
    _, secret = lab.api.new_token([MANAGER])
    return lab.api.list_tokens(token=secret + "x").status_code == 401


def two_credentials_not_combined(lab: Lab) -> bool:
    _, guest = lab.api.new_token([GUEST])
    _, manager = lab.api.new_token([MANAGER], expiry=START_MS + 1000)
    lab.clock.advance(2000)
    headers = {"X-API-Key": guest, "Authorization": f"ApiKey {manager}"}
    return lab.api.http.get("/api/security/tokens", headers=headers).status_code in (401, 403)


def deleted_bootstrap_refused(lab: Lab) -> bool:
    api = lab.boot(_boot_yaml())
    (entry,) = [item for item in api.list_tokens(token=BOOT_SECRET).json() if item["name"] == "bootstrap"]
    assert api.delete(entry["id"], token=BOOT_SECRET).status_code == 204
    return api.status_with(BOOT_SECRET).status_code == 401


def bootstrap_first_presented_after_ttl_refused(lab: Lab) -> bool:
    api = lab.boot(_boot_yaml(ttl="90s"))
    lab.clock.advance(90_000)
    return api.status_with(BOOT_SECRET).status_code == 401


def bootstrap_ttl_in_days_listed(lab: Lab) -> bool:
    api = lab.boot(_boot_yaml(ttl="7d"))
    (entry,) = [item for item in api.list_tokens(token=BOOT_SECRET).json() if item["name"] == "bootstrap"]
    return bool(entry.get("expiration") == START_MS + 7 * DAY_MS)


PROBES: dict[str, Probe] = {
    "x-api-key-ignored": x_api_key_accepted,
    "any-auth-scheme": other_schemes_refused,
    "x-api-token-accepted": x_api_token_refused,
    "token-prefix-match": truncated_token_refused,
    "token-cut-to-length": extended_token_refused,
    "token-case-insensitive": case_altered_token_refused,
    "status-public": anonymous_status_refused,
    "server-info-public": anonymous_info_refused,
    "delete-not-revoking": deleted_token_refused,
    "delete-removes-next": delete_removes_only_that_token,
    "delete-by-name": delete_leaves_a_same_name_token,
    "delete-answers-200": delete_answers_204_without_body,
    "id-reused-after-delete": create_after_delete_works,
    "id-race-on-concurrent-create": concurrent_creates_all_succeed,
    "ids-listed-as-strings": ids_listed_as_integers,
    "roles-string-accepted": roles_string_refused,
    "roles-missing-defaults-empty": missing_roles_refused,
    "malformed-json-500": malformed_json_gets_400,
    "expiry-seconds-as-ms": past_expiry_refused_and_expiry_enforced,
    "expiry-grace-period": refused_just_after_expiry,
    "expiry-truncated-to-seconds": expiry_kept_to_the_millisecond,
    "past-expiry-accepted": past_expiry_refused,
    "past-expiry-stored-anyway": refused_past_expiry_stores_nothing,
    "invalid-expiry-generic-error": past_expiry_error_is_invalid_expiry,
    "expiry-lenient-parsing": date_string_expiry_refused,
    "list-expiry-filter-inverted": token_with_expiry_listed,
    "management-ignores-expiry": expired_manager_refused_management,
    "bootstrap-ttl-ignored": _bootstrap_expires("90s", 90_000),
    "ttl-unit-by-first-letter": _bootstrap_expires("3000ms", 3_000),
    "ttl-long-units-default": _bootstrap_expires("3 seconds", 3_000),
    "bootstrap-roles-ignored": bootstrap_gets_its_roles,
    "servicetoken-key-ignored": lower_case_key_read,
    "roles-case-insensitive": case_altered_role_cannot_manage,
    "only-first-role-counts": manager_role_second_manages,
    "power-user-manages": power_user_cannot_manage,
    "empty-roles-unrestricted": no_roles_cannot_manage,
    "list-leaks-secret": list_has_no_secrets,
    "secret-from-name": same_name_gets_new_secret,
    "secret-time-based": secrets_share_no_suffix,
    "server-info-echoes-token": info_has_no_credential,
    "unauthorized-echoes-token": refusal_does_not_quote_token,
    "names-trimmed": lambda lab: _listed_exactly(lab, "  spaced out\t"),
    "names-cut-at-64": lambda lab: _listed_exactly(lab, "n" * 100),
    "long-names-500": lambda lab: _listed_exactly(lab, "l" * 256),
    "non-ascii-names-mangled": lambda lab: _listed_exactly(lab, "naïve-名前-🔑"),
    "revocation-skipped-on-management": deleted_manager_refused_management,
    "revocation-skipped-on-server-info": deleted_token_refused_on_info,
    "list-ignores-expiry": expired_manager_refused_management,
    "expiry-skipped-for-authorization-header": expired_token_refused_in_authorization_header,
    "delete-skips-role-check": guest_cannot_delete,
    "list-skips-role-check": lambda lab: not _manages(lab, [GUEST]),
    "forbidden-echoes-token": forbidden_does_not_quote_token,
    "error-header-echoes-token": error_headers_do_not_carry_token,
    "status-echoes-token": status_has_no_credential,
    "bootstrap-ttl-only-on-status": expired_bootstrap_refused_everywhere,
    "x-api-key-ignored-on-management": lambda lab: lab.api.list_tokens().status_code == 200,
    "create-answers-201": create_answers_200,
    "create-idempotent-by-name": second_create_of_a_name_gets_a_new_secret,
    "ids-collide-same-second": same_second_tokens_get_distinct_ids,
    "list-stops-at-20": list_shows_more_than_20,
    "create-500-after-storing": create_returns_the_secret,
    "list-wrapped-in-object": list_is_an_array,
    "dedicated-subject-empty-refused": empty_dedicated_subject_accepted,
    # issue 19 (h19paths): paths and methods, server errors, disguised secrets
    **PATH_AND_ERROR_PROBES,
    "role-substring-manages": substring_role_cannot_manage,
    "role-comma-split": comma_role_kept_whole,
    "sliding-expiry-on-use": used_token_expires_as_created,
    "use-cache-survives-delete": used_token_refused_after_delete,
    "near-miss-secret-on-token-calls": extended_token_refused_on_token_calls,
    "two-credentials-union": two_credentials_not_combined,
    "bootstrap-delete-not-revoking": deleted_bootstrap_refused,
    "ttl-days-read-as-hours": bootstrap_ttl_in_days_listed,
    "deleted-maker-manages-in-authorization": deleted_maker_refused_on_token_calls,
    "roles-capped-at-32": forty_roles_listed_in_full,
    # issue 23 item 5 (h23boot): a ttl counts from when it was set
    "bootstrap-ttl-from-first-use": bootstrap_first_presented_after_ttl_refused,
    # issue 23 items 4 and 6 (h23edges): the list at scale; credentials only where documented
    **EDGE_PROBES,
    # issue 24 (h24found): one defect under a foundation
    "expiry-stored-times-1000": expiry_round_trips_and_is_enforced,
    "expiry-one-hour-late": expiry_round_trips_and_is_enforced,
    "expiry-enforced-one-hour-late": expiry_round_trips_and_is_enforced,
    "list-public": anonymous_list_refused,
    "delete-public": anonymous_delete_refused,
    # issue 23 (h23model): what the model of the documented behaviour catches
    "expiry-from-first-use": never_used_token_expires_as_created,
    "tokens-die-with-their-maker": tokens_outlive_their_maker,
    "list-shows-only-own-tokens": manager_token_lists_every_token,
    "far-expiry-wraps": int64_max_expiry_token_works,
    "duplicate-names-refused-after-first": duplicate_names_answered_alike,
    # issue 23 (h23red): defects of a class no issue had named
    **UNNAMED_PROBES,
}


@pytest.fixture
def make_lab(start_server: StartServer, tmp_path: Path) -> Iterator[Callable[[tuple[str, ...]], Lab]]:
    """Labs whose servers carry the given faults; every server stops when the test ends."""
    with contextlib.ExitStack() as stack:

        def api_of(server: RunningServer) -> Api:
            # no vendor-schema checks: a faulty body must reach the probe, not fail validation first
            return Api(server, stack.enter_context(http_client(server.url)))

        def make(faults: tuple[str, ...]) -> Lab:
            clock = FakeClock(START_MS)

            def start(**options: object) -> Api:
                return api_of(start_server(clock=clock, faults=faults, **options))

            def boot(text: str) -> Api:
                path = tmp_path / f"authentication-{len(list(tmp_path.iterdir()))}.yaml"
                path.write_text(text, encoding="utf-8")
                return start(auth_config=load_auth_config(path, FaultSet(faults)))

            return Lab(faults, clock, start(), start, boot)

        yield make


def test_every_fault_has_a_probe() -> None:
    """The catalogue and the probes name the same faults."""
    assert sorted(PROBES) == sorted(FAULTS)


@pytest.mark.parametrize("fault", PROBES)
def test_fault_changes_what_it_names(make_lab: Callable[[tuple[str, ...]], Lab], fault: str) -> None:
    """The faithful server passes the fault's probe; with the fault on, the server fails it."""
    assert PROBES[fault](make_lab(())) is True, "the faithful server fails the probe"
    assert PROBES[fault](make_lab((fault,))) is False, f"the probe does not notice the fault {fault!r}"


#: Faults whose defect is the status of the create itself: the token is still stored.
CREATE_STATUS = {"create-answers-201": 201, "create-500-after-storing": 500}


@pytest.mark.parametrize("fault", PROBES)
def test_faulty_server_still_answers_the_basic_calls(make_lab: Callable[[tuple[str, ...]], Lab], fault: str) -> None:
    """No fault is a server that refuses everything: status, list and create still work (the
    create stores the token even where the fault is the status it answers)."""
    api = make_lab((fault,)).api.using_authorization_header()  # the one form no fault breaks
    assert api.status_with(ADMIN.token).status_code == 200
    assert api.list_tokens().status_code == 200
    assert api.create({"name": "still-works", "roles": [GUEST]}).status_code == CREATE_STATUS.get(fault, 200)
    assert "still-works" in api.list_tokens().text


def test_fault_catalogue_entries_are_one_line_descriptions() -> None:
    """Each fault has a kebab-case name and a one-line description for the faults command."""
    for name, description in FAULTS.items():
        assert name == name.lower() and " " not in name
        assert description and "\n" not in description


def test_fault_set_refuses_unknown_names_listing_known_ones() -> None:
    """A misspelt fault is an error naming the known faults, not a silently faithful server."""
    with pytest.raises(ValueError, match="unknown fault") as caught:
        FaultSet(["delete-not-revoking", "delete-not-revokng"])
    assert "delete-not-revokng" in str(caught.value)
    for name in FAULTS:
        assert name in str(caught.value)


def test_fault_set_membership_and_on() -> None:
    """A fault is on only when chosen; asking about an uncatalogued name is a server bug."""
    faults = FaultSet(["expiry-grace-period"])
    assert faults.on("expiry-grace-period") and "expiry-grace-period" in faults
    assert not faults.on("list-leaks-secret") and "list-leaks-secret" not in faults
    assert FaultSet("expiry-grace-period") == faults  # a lone string is one name, not letters
    with pytest.raises(KeyError):
        faults.on("no-such-fault")
    assert not FaultSet(())
