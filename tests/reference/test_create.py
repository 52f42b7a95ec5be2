"""Creating a service token: the response, the secret, and what is stored."""

from __future__ import annotations

import base64
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from sts_reference.api_common import MAX_NAME_LENGTH

from .support import DAY_MS, START_MS, Api, VendorSchemas, http_client, unique_name

SECRET_FORM = re.compile(r"svctok-([A-Za-z0-9_-]+)")


def test_create_returns_name_and_token_only(api: Api, vendor: VendorSchemas) -> None:
    """Without expiryDate the 200 body is exactly {name, token}: no id, no expiration."""
    name = unique_name()
    response = api.create({"name": name, "roles": ["stackstate-power-user"]})
    assert response.status_code == 200
    body = response.json()
    vendor.validate("ServiceTokenCreatedResponse", body)
    assert set(body) == {"name", "token"}
    assert body["name"] == name


@pytest.mark.parametrize(
    "expiry",
    [START_MS + 1, START_MS + DAY_MS, 4_102_444_800_000, 2**53 + 1, 2**63 - 1],
    ids=["one ms ahead", "one day ahead", "year 2100", "beyond 2**53", "int64 max"],
)
def test_create_echoes_expiry_exactly(api: Api, vendor: VendorSchemas, expiry: int) -> None:
    """expiryDate comes back unchanged as expiration, and is listed unchanged too."""
    name = unique_name()
    response = api.create({"name": name, "roles": [], "expiryDate": expiry})
    assert response.status_code == 200
    body = response.json()
    vendor.validate("ServiceTokenCreatedResponse", body)
    assert body == {"name": name, "token": body["token"], "expiration": expiry}
    assert api.by_name(name)["expiration"] == expiry


def test_create_treats_null_expiry_as_never(api: Api) -> None:
    """ "expiryDate": null means the same as leaving it out: the token never expires."""
    name = unique_name()
    body = api.create({"name": name, "roles": [], "expiryDate": None}).json()
    assert "expiration" not in body
    assert "expiration" not in api.by_name(name)


def test_create_secret_is_svctok_with_at_least_128_random_bits(api: Api) -> None:
    """Secrets are svctok- plus URL-safe base64 of at least 16 random bytes, all distinct."""
    secrets = {api.create({"name": unique_name(), "roles": []}).json()["token"] for _ in range(40)}
    assert len(secrets) == 40
    for secret in secrets:
        match = SECRET_FORM.fullmatch(secret)
        assert match, secret
        random_part = match[1]
        assert len(base64.urlsafe_b64decode(random_part + "=" * (-len(random_part) % 4))) >= 16


def test_created_token_authenticates_at_once_with_its_roles(api: Api) -> None:
    """The new secret works immediately, and its roles decide what it may do."""
    admin_secret = api.create({"name": unique_name(), "roles": ["stackstate-admin"]}).json()["token"]
    guest_secret = api.create({"name": unique_name(), "roles": ["stackstate-guest"]}).json()["token"]
    assert api.status_with(admin_secret).status_code == 200
    assert api.list_tokens(token=admin_secret).status_code == 200
    assert api.list_tokens(token=guest_secret).status_code == 403


def test_created_token_listed_with_its_fields(api: Api, vendor: VendorSchemas) -> None:
    """The list shows the name, roles, expiration, dedicatedSubject and the server's time."""
    name = unique_name()
    expiry = START_MS + 7 * DAY_MS
    request = {"name": name, "roles": ["b", "a"], "expiryDate": expiry, "dedicatedSubject": "ci-bot"}
    assert api.create(request).status_code == 200
    item = api.by_name(name)
    vendor.validate("ServiceToken", item)
    assert item == {
        "id": item["id"],
        "name": name,
        "roles": ["b", "a"],
        "expiration": expiry,
        "lastUpdateTimestamp": START_MS,
        "dedicatedSubject": "ci-bot",
    }


@pytest.mark.parametrize(
    "name",
    [
        "x",
        "n" * MAX_NAME_LENGTH,
        "🔑" * MAX_NAME_LENGTH,
        "génération ✓ 令牌",
        "  padded  ",
        "with\ttab",
        "nul\x00inside",
        "<script>alert(1)</script>",
        "'; DROP TABLE service_tokens; --",
    ],
    ids=[
        "one character",
        "at the length limit",
        "limit in astral characters",
        "non-ASCII",
        "surrounding spaces kept",
        "tab inside",
        "NUL inside",
        "markup",
        "SQL",
    ],
)
def test_create_stores_any_name_within_the_limit_as_given(api: Api, name: str) -> None:
    """Names of 1..MAX_NAME_LENGTH characters are stored and listed exactly as sent."""
    response = api.create({"name": name, "roles": []})
    assert response.status_code == 200
    assert response.json()["name"] == name
    secret = response.json()["token"]
    assert [item for item in api.listed() if item["name"] == name]
    assert api.status_with(secret).status_code == 200


@pytest.mark.parametrize(
    "roles",
    [[], ["no-such-role"], ["dup", "dup"], ["", "x"], ["z", "a", "m"]],
    ids=["empty list", "unknown role", "duplicates", "empty role name", "unsorted"],
)
def test_create_stores_roles_as_given(api: Api, roles: list[str]) -> None:
    """Role lists are stored verbatim: unknown names, duplicates and order kept."""
    name = unique_name()
    assert api.create({"name": name, "roles": roles}).status_code == 200
    assert api.by_name(name)["roles"] == roles


def test_create_allows_duplicate_names(api: Api) -> None:
    """Two tokens may share a name; they get different ids and secrets."""
    name = unique_name("twin")
    first = api.create({"name": name, "roles": []}).json()["token"]
    second = api.create({"name": name, "roles": []}).json()["token"]
    assert first != second
    ids = [item["id"] for item in api.listed() if item["name"] == name]
    assert len(ids) == 2 and ids[0] != ids[1]


def test_create_ignores_unknown_fields(api: Api) -> None:
    """Fields the request schema does not know are ignored, not stored or echoed."""
    name = unique_name()
    response = api.create({"name": name, "roles": [], "description": "d", "id": 5, "token": "mine"})
    assert response.status_code == 200
    assert response.json()["token"] != "mine"
    assert set(api.by_name(name)) == {"id", "name", "roles", "lastUpdateTimestamp"}


def test_concurrent_creates_get_distinct_ids(api: Api) -> None:
    """Tokens created by many clients at once all get their own id and secret."""
    prefix = unique_name("burst")

    def create(index: int) -> str:
        with http_client(api.server.url) as client:
            response = client.post(
                "/api/security/tokens",
                json={"name": f"{prefix}-{index}", "roles": []},
                headers=api.key(api.manager_token),
            )
            assert response.status_code == 200
            return str(response.json()["token"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        secrets = list(pool.map(create, range(64)))
    ids = [item["id"] for item in api.listed() if item["name"].startswith(prefix)]
    assert len(set(secrets)) == len(set(ids)) == len(ids) == 64
