"""Presenting a service token: the two documented header forms, and every refusal."""

from __future__ import annotations

import pytest

from .support import ADMIN, Api, raw_get

ENDPOINTS = [
    ("GET", "/api/server/status"),
    ("GET", "/api/server/info"),
    ("GET", "/api/security/tokens"),
    ("POST", "/api/security/tokens"),
    ("DELETE", "/api/security/tokens/123456789012345"),
]


@pytest.mark.parametrize(
    "header_line",
    [
        "Authorization: ApiKey {token}",
        "authorization: apikey {token}",
        "AUTHORIZATION: APIKEY {token}",
        "Authorization: apiKEY {token}",
        "Authorization:   ApiKey    {token}   ",
        "Authorization: ApiKey\t{token}",
        "X-API-Key: {token}",
        "x-api-key: {token}",
        "X-Api-Key:\t {token} \t",
    ],
)
def test_token_accepted_in_either_documented_header(api: Api, header_line: str) -> None:
    """Authorization: ApiKey and X-API-Key both work, whatever the case of the header name
    and the scheme word, with surrounding whitespace trimmed."""
    response = raw_get(api.server.url, "/api/server/status", [header_line.format(token=ADMIN.token)])
    assert response.status == 200, response.body


def test_token_accepted_when_both_headers_carry_it(api: Api) -> None:
    """Sending the same token in both headers is not ambiguous."""
    headers = {"Authorization": f"ApiKey {ADMIN.token}", "X-API-Key": ADMIN.token}
    assert api.status(headers).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no credentials"),
        pytest.param({"X-API-Key": ""}, id="empty X-API-Key"),
        pytest.param({"Authorization": "ApiKey"}, id="ApiKey without a token"),
        pytest.param({"X-API-Key": "svctok-unknown"}, id="unknown token"),
        pytest.param({"X-API-Key": ADMIN.token.upper()}, id="token in other case"),
        pytest.param({"X-API-Key": ADMIN.token + "x"}, id="token with a suffix"),
        pytest.param({"X-API-Key": ADMIN.token[:-1]}, id="token truncated"),
        pytest.param({"Authorization": f"ApiKey{ADMIN.token}"}, id="no space after ApiKey"),
        pytest.param({"Authorization": f"Bearer {ADMIN.token}"}, id="Bearer scheme"),
        pytest.param({"Authorization": f"ApiToken {ADMIN.token}"}, id="personal ApiToken scheme"),
        pytest.param({"X-API-Token": ADMIN.token}, id="personal X-API-Token header"),
        pytest.param({"Authorization": "Basic YWRtaW46YWRtaW4="}, id="Basic credentials"),
        pytest.param(
            {"Authorization": f"ApiKey {ADMIN.token}", "X-API-Key": "svctok-other"},
            id="headers disagree",
        ),
        pytest.param(
            {"Authorization": "ApiKey svctok-other", "X-API-Key": ADMIN.token},
            id="headers disagree the other way",
        ),
    ],
)
def test_status_refused_without_one_valid_service_token(api: Api, headers: dict[str, str]) -> None:
    """Anything but exactly one valid service token is 401 with the vendor's error body."""
    api.error_body(api.status(headers), 401)


@pytest.mark.parametrize(("method", "path"), ENDPOINTS, ids=[f"{m} {p}" for m, p in ENDPOINTS])
def test_every_endpoint_refuses_a_missing_token(api: Api, method: str, path: str) -> None:
    """No call answers without authentication, and the refusal has a JSON body."""
    api.error_body(api.http.request(method, path, json={"name": "x", "roles": []}), 401)


def test_repeated_x_api_key_headers_must_agree(api: Api) -> None:
    """Two X-API-Key headers with different values are as ambiguous as two header forms."""
    lines = [f"X-API-Key: {ADMIN.token}", "X-API-Key: svctok-other"]
    assert raw_get(api.server.url, "/api/server/status", lines).status == 401
    lines = [f"X-API-Key: {ADMIN.token}", f"X-API-Key: {ADMIN.token}"]
    assert raw_get(api.server.url, "/api/server/status", lines).status == 200
