"""Helpers the reference-server tests share: a thin client for the token API and the
vendor-schema validator. Fixtures that hand these out live in ``conftest.py``."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import yaml
from openapi_schema_validator import OAS30Validator, oas30_format_checker

from sts_reference.config import BootstrapSpec
from sts_reference.testing import RunningServer

StartServer = Callable[..., RunningServer]
"""The ``start_server`` fixture: ``running_server`` options in, a running server out."""

# 2023-11-14T22:13:20Z: every fake clock starts here unless a test says otherwise.
START_MS = 1_700_000_000_000
DAY_MS = 86_400_000

ADMIN = BootstrapSpec(token="admin-" + "a1" * 16, roles=["stackstate-admin"], ttl_ms=365 * DAY_MS)

SPEC_ENV = "STS_VENDOR_OPENAPI"
"""Environment variable naming the vendor OpenAPI file; the default is the copy kept next to
the repository (``../shared/service-tokens.openapi.yaml``)."""

DEFAULT_SPEC_PATH = Path(__file__).resolve().parents[3] / "shared" / "service-tokens.openapi.yaml"


def vendor_spec_path() -> Path:
    return Path(os.environ.get(SPEC_ENV) or DEFAULT_SPEC_PATH)


class VendorSchemas:
    """Validates bodies against ``components.schemas`` of the vendor OpenAPI document."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self._components = document["components"]

    def validate(self, schema_name: str, body: object) -> None:
        assert schema_name in self._components["schemas"], f"no schema {schema_name}"
        schema = {"$ref": f"#/components/schemas/{schema_name}", "components": self._components}
        OAS30Validator(schema, format_checker=oas30_format_checker).validate(body)

    def validate_list(self, item_schema: str, body: object) -> None:
        assert isinstance(body, list), f"expected a JSON array, got {body!r}"
        for item in body:
            self.validate(item_schema, item)


def load_vendor_schemas(path: Path) -> VendorSchemas:
    with path.open(encoding="utf-8") as handle:
        return VendorSchemas(yaml.safe_load(handle))


def http_client(base_url: str = "") -> httpx.Client:
    """A client for plain HTTP on loopback. ``verify=False`` only skips loading the CA bundle
    (tens of milliseconds per client); no TLS is ever used."""
    return httpx.Client(base_url=base_url, timeout=10, verify=False, trust_env=False)


def unique_name(prefix: str = "t") -> str:
    return f"{prefix}-{secrets.token_hex(6)}"


@dataclass
class Api:
    """The token API of one running reference server, called over real HTTP."""

    server: RunningServer
    http: httpx.Client
    authorization_header: bool = False
    """Present tokens as ``Authorization: ApiKey`` instead of ``X-API-Key``."""
    vendor: VendorSchemas | None = None
    """When set, every 200 body of the documented calls is validated against it."""

    def using_authorization_header(self) -> Api:
        return replace(self, authorization_header=True)

    @property
    def manager_token(self) -> str:
        """The token calls use the server's bootstrap token unless told otherwise."""
        return self.server.bootstrap.token if self.server.bootstrap else ADMIN.token

    def key(self, token: str) -> dict[str, str]:
        if self.authorization_header:
            return {"Authorization": f"ApiKey {token}"}
        return {"X-API-Key": token}

    def _checked(self, response: httpx.Response, schema: str, *, items: bool = False) -> httpx.Response:
        if self.vendor is not None and response.status_code == 200:
            if items:
                self.vendor.validate_list(schema, response.json())
            else:
                self.vendor.validate(schema, response.json())
        return response

    def error_body(
        self, response: httpx.Response, status: int, schema: str = "GenericErrorsResponse"
    ) -> dict[str, Any]:
        """Assert ``response`` is the given error status with a JSON error body of ``schema``
        (checked against the vendor spec when present, by shape always) and return the body."""
        assert response.status_code == status, (response.status_code, response.text)
        assert response.headers["content-type"] == "application/json", response.headers
        body = response.json()
        assert isinstance(body, dict), body
        if schema == "GenericErrorsResponse":
            assert body["_type"] == "ErrorsResponse" and body["errors"][0]["errorCode"] == status, body
        else:
            assert body["_type"] == "ServiceTokenInvalidExpiryError" and body["message"], body
        if self.vendor is not None:
            self.vendor.validate(schema, body)
        return body

    def create(self, body: object, *, token: str | None = None) -> httpx.Response:
        headers = self.key(token or self.manager_token)
        response = self.http.post("/api/security/tokens", json=body, headers=headers)
        return self._checked(response, "ServiceTokenCreatedResponse")

    def list_tokens(self, *, token: str | None = None) -> httpx.Response:
        response = self.http.get("/api/security/tokens", headers=self.key(token or self.manager_token))
        return self._checked(response, "ServiceToken", items=True)

    def info(self, *, token: str | None = None) -> httpx.Response:
        response = self.http.get("/api/server/info", headers=self.key(token or self.manager_token))
        return self._checked(response, "ServerInfo")

    def delete(self, token_id: int | str, *, token: str | None = None) -> httpx.Response:
        headers = self.key(token or self.manager_token)
        return self.http.delete(f"/api/security/tokens/{token_id}", headers=headers)

    def status(self, headers: Mapping[str, str]) -> httpx.Response:
        return self.http.get("/api/server/status", headers=dict(headers))

    def status_with(self, token: str) -> httpx.Response:
        return self.status(self.key(token))

    def listed(self) -> list[dict[str, Any]]:
        response = self.list_tokens()
        assert response.status_code == 200, response.text
        items = response.json()
        assert isinstance(items, list)
        return items

    def by_name(self, name: str) -> dict[str, Any]:
        matches = [item for item in self.listed() if item["name"] == name]
        assert len(matches) == 1, f"expected one token named {name!r}, found {matches}"
        return matches[0]

    def new_token(
        self, roles: list[str] | None = None, *, expiry: int | None = None, name: str | None = None
    ) -> tuple[int, str]:
        """Create a token and return (id, secret); the id comes from the list, since the
        create response carries none."""
        name = name or unique_name()
        body: dict[str, Any] = {"name": name, "roles": roles if roles is not None else []}
        if expiry is not None:
            body["expiryDate"] = expiry
        response = self.create(body)
        assert response.status_code == 200, response.text
        return self.by_name(name)["id"], response.json()["token"]


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        import json

        return json.loads(self.body)


def raw_get(url: str, path: str, header_lines: list[str]) -> RawResponse:
    """GET ``path`` with header lines written exactly as given. httpx (h11) refuses header
    values with surrounding whitespace, which servers must still trim (RFC 9110 OWS)."""
    return raw_request(url, "GET", path, header_lines)


def raw_request(url: str, method: str, path: str, header_lines: list[str], body: bytes = b"") -> RawResponse:
    """One request over a fresh socket, header lines sent verbatim (no Content-Length is
    added), read until the server closes the connection."""
    import socket

    parsed = httpx.URL(url)
    assert parsed.host and parsed.port
    head = [f"{method} {path} HTTP/1.1", f"Host: {parsed.host}:{parsed.port}", "Connection: close"]
    request = "\r\n".join([*head, *header_lines, "", ""]).encode("latin-1") + body
    with socket.create_connection((parsed.host, parsed.port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    raw = b"".join(chunks)
    head_bytes, _, payload = raw.partition(b"\r\n\r\n")
    status_line, *lines = head_bytes.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawResponse(int(status_line.split()[1]), headers, payload)
