"""Bad create requests: always a 4xx with a JSON body, never a 5xx, and nothing stored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from sts_reference.api_common import MAX_BODY_BYTES, MAX_NAME_LENGTH

from .support import ADMIN, START_MS, Api, raw_request

HEADERS = {"X-API-Key": ADMIN.token, "Content-Type": "application/json"}


def refused(
    api: Api, content: bytes | Iterator[bytes], status: int = 400, schema: str = "GenericErrorsResponse"
) -> dict[str, Any]:
    """POST raw bytes, expect the error ``status`` with a ``schema`` body, and check that
    nothing was stored."""
    before = api.listed()
    response = api.http.post("/api/security/tokens", content=content, headers=HEADERS)
    body = api.error_body(response, status, schema)
    assert api.listed() == before, "a refused create must not store anything"
    return body


MALFORMED = {
    "empty body": b"",
    "only whitespace": b"  \n",
    "truncated JSON": b'{"name": "x", "roles": [',
    "single quotes": b"{'name': 'x', 'roles': []}",
    "trailing comma": b'{"name": "x", "roles": [],}',
    "JSON array": b'[{"name": "x", "roles": []}]',
    "JSON string": b'"name"',
    "JSON null": b"null",
    "invalid UTF-8": b'{"name": "\xff\xfe", "roles": []}',
    "NaN literal": b'{"name": "x", "roles": [], "expiryDate": NaN}',
    "Infinity literal": b'{"name": "x", "roles": [], "expiryDate": Infinity}',
    "deeply nested": b'{"name": "x", "roles": [], "extra": ' + b"[" * 20_000 + b"]" * 20_000 + b"}",
    "integer of 5000 digits": b'{"name": "x", "roles": [], "expiryDate": ' + b"9" * 5000 + b"}",
}


@pytest.mark.parametrize("content", MALFORMED.values(), ids=MALFORMED.keys())
def test_create_malformed_body_is_400(api: Api, content: bytes) -> None:
    """A body that is not one JSON object is 400 with the generic error body."""
    refused(api, content)


def field_cases() -> dict[str, object]:
    return {
        "name missing": {"roles": []},
        "name null": {"name": None, "roles": []},
        "name a number": {"name": 7, "roles": []},
        "name a list": {"name": ["x"], "roles": []},
        "name empty": {"name": "", "roles": []},
        "name only spaces": {"name": "   ", "roles": []},
        "name only whitespace controls": {"name": "\t\n\r", "roles": []},
        "name over the limit": {"name": "n" * (MAX_NAME_LENGTH + 1), "roles": []},
        "roles missing": {"name": "x"},
        "roles null": {"name": "x", "roles": None},
        "roles a string": {"name": "x", "roles": "stackstate-admin"},
        "roles an object": {"name": "x", "roles": {"stackstate-admin": True}},
        "role a number": {"name": "x", "roles": [1]},
        "role null": {"name": "x", "roles": [None]},
        "role a list": {"name": "x", "roles": [["stackstate-admin"]]},
        "dedicatedSubject a number": {"name": "x", "roles": [], "dedicatedSubject": 5},
    }


@pytest.mark.parametrize("request_body", field_cases().values(), ids=field_cases().keys())
def test_create_invalid_field_is_400(api: Api, request_body: object) -> None:
    """Missing or mistyped name/roles, and names outside 1..MAX_NAME_LENGTH, are 400."""
    refused(api, json.dumps(request_body).encode())


@pytest.mark.parametrize(
    "content",
    [
        b'{"name": "\\ud800", "roles": []}',
        b'{"name": "x", "roles": ["\\udfff"]}',
        b'{"name": "x", "roles": [], "dedicatedSubject": "\\ud83d"}',
    ],
    ids=["in name", "in a role", "in dedicatedSubject"],
)
def test_create_unpaired_surrogate_is_400(api: Api, content: bytes) -> None:
    """JSON can spell a lone UTF-16 surrogate, which no UTF-8 store can keep: 400, not 500."""
    refused(api, content)


EXPIRY_CASES = {
    "now": START_MS,
    "one ms ago": START_MS - 1,
    "epoch zero": 0,
    "negative": -1,
    "seconds not ms": START_MS // 1000,
    "a string": str(START_MS + 60_000),
    "a float": float(START_MS + 60_000),
    "a boolean": True,
    "a list": [START_MS + 60_000],
    "an object": {"ms": START_MS + 60_000},
    "beyond int64": 2**63,
    "below int64": -(2**63) - 1,
}


@pytest.mark.parametrize("expiry", EXPIRY_CASES.values(), ids=EXPIRY_CASES.keys())
def test_create_invalid_expiry_is_service_token_invalid_expiry_error(api: Api, expiry: object) -> None:
    """An expiryDate that is not a future int64 of epoch ms is the documented 400."""
    content = json.dumps({"name": "x", "roles": [], "expiryDate": expiry}).encode()
    refused(api, content, 400, "ServiceTokenCreateError")


def padded_body(size: int) -> bytes:
    """A valid create request of exactly ``size`` bytes (padding in an ignored field)."""
    base = json.dumps({"name": "padded", "roles": [], "padding": ""}).encode()
    return base.replace(b'"padding": ""', b'"padding": "' + b"p" * (size - len(base)) + b'"')


def test_create_body_at_the_limit_accepted(api: Api) -> None:
    """A body of exactly MAX_BODY_BYTES is still read."""
    content = padded_body(MAX_BODY_BYTES)
    assert len(content) == MAX_BODY_BYTES
    response = api.http.post("/api/security/tokens", content=content, headers=HEADERS)
    assert response.status_code == 200


@pytest.mark.parametrize("chunked", [False, True], ids=["with Content-Length", "chunked"])
def test_create_body_over_the_limit_is_413(api: Api, chunked: bool) -> None:
    """One byte over MAX_BODY_BYTES is 413 with a JSON body, however the body is framed."""
    content = padded_body(MAX_BODY_BYTES + 1)
    refused(api, iter([content[:1000], content[1000:]]) if chunked else content, 413)


def test_create_huge_declared_length_refused_before_reading(api: Api) -> None:
    """A Content-Length far over the limit is 413 at once, without waiting for that body."""
    lines = [f"{name}: {value}" for name, value in HEADERS.items()]
    lines.append(f"Content-Length: {10 * 1024 * 1024}")
    response = raw_request(api.server.url, "POST", "/api/security/tokens", lines, b"{}")
    assert response.status == 413
    assert response.headers["content-type"] == "application/json"
