"""HTTP access to a target: the two ways of presenting a token, and a record of exchanges.

Every request and response goes into :data:`EXCHANGES` (masked, truncated), so that a
failed check can show what was sent and what came back without leaking a secret.
"""

from __future__ import annotations

import collections
import email.utils
import enum
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from .redact import REDACTOR

TOKENS_PATH = "/security/tokens"
_BODY_EXCERPT = 800


class AuthForm(enum.Enum):
    """The two documented ways of presenting a service token."""

    AUTHORIZATION = "Authorization: ApiKey"
    X_API_KEY = "X-API-Key"

    def headers(self, token: str, *, scheme: str = "ApiKey", name_case: str | None = None) -> dict[str, str]:
        """Headers carrying ``token`` in this form; ``name_case`` rewrites the header name."""
        if self is AuthForm.AUTHORIZATION:
            name, value = "Authorization", f"{scheme} {token}"
        else:
            name, value = "X-API-Key", token
        if name_case == "lower":
            name = name.lower()
        elif name_case == "upper":
            name = name.upper()
        return {name: value}


@dataclass(frozen=True)
class Exchange:
    """One request and its response, secrets masked, bodies cut to an excerpt."""

    method: str
    url: str
    request_headers: dict[str, str]
    request_body: str
    status: int | None
    response_body: str
    error: str | None = None

    def render(self) -> str:
        lines = [f"> {self.method} {self.url}"]
        lines += [f"> {k}: {v}" for k, v in self.request_headers.items()]
        if self.request_body:
            lines.append(f"> {self.request_body}")
        if self.error:
            lines.append(f"< (no response: {self.error})")
        else:
            lines.append(f"< {self.status}")
            if self.response_body:
                lines.append(f"< {self.response_body}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "url": self.url,
            "request_headers": self.request_headers,
            "request_body": self.request_body,
            "status": self.status,
            "response_body": self.response_body,
            "error": self.error,
        }


_SENSITIVE_HEADERS = {"authorization", "x-api-key", "x-api-token", "cookie", "x-api-servicebearer"}


def _excerpt(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    text = REDACTOR.mask(text)
    return text if len(text) <= _BODY_EXCERPT else text[:_BODY_EXCERPT] + f"… ({len(text)} chars)"


def _mask_header(name: str, value: str) -> str:
    if name.lower() in _SENSITIVE_HEADERS:
        scheme, sep, rest = value.partition(" ")
        if name.lower() == "authorization" and sep:
            return f"{scheme} {REDACTOR.mask(rest) if REDACTOR.contains_secret(rest) else '<masked>'}"
        return REDACTOR.mask(value) if REDACTOR.contains_secret(value) else "<masked>"
    return REDACTOR.mask(value)


class ExchangeLog:
    """The recent exchanges of the test that is running in this process."""

    def __init__(self, size: int = 12) -> None:
        self._items: collections.deque[Exchange] = collections.deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, item: Exchange) -> None:
        with self._lock:
            self._items.append(item)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def snapshot(self) -> list[Exchange]:
        with self._lock:
            return list(self._items)


EXCHANGES = ExchangeLog()


def server_time_ms(response: httpx.Response) -> int | None:
    """The server's clock from the response's ``Date`` header (1 s resolution), in epoch ms."""
    value = response.headers.get("date")
    if not value:
        return None
    try:
        return int(email.utils.parsedate_to_datetime(value).timestamp() * 1000)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


class ApiClient:
    """A thin httpx client for one target: ``{url}`` and ``{url}{api_path}``."""

    def __init__(self, url: str, api_path: str = "/api", *, timeout: float = 10.0, verify: bool = True):
        self.url = url.rstrip("/")
        self.api_url = self.url + api_path
        self._http = httpx.Client(timeout=timeout, verify=verify, follow_redirects=False)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- raw access ---------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        form: AuthForm = AuthForm.X_API_KEY,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        content: bytes | str | None = None,
        api: bool = True,
    ) -> httpx.Response:
        """Send one request; ``path`` is below the API root unless ``api`` is false."""
        url = (self.api_url if api else self.url) + path
        all_headers: dict[str, str] = {}
        if token is not None:
            all_headers.update(form.headers(token))
        if headers:
            all_headers.update(headers)
        body: bytes | None
        if json_body is not None:
            body = json.dumps(json_body).encode()
            all_headers.setdefault("Content-Type", "application/json")
        elif isinstance(content, str):
            body = content.encode()
        else:
            body = content
        shown_headers = {k: _mask_header(k, v) for k, v in all_headers.items()}
        try:
            try:
                response = self._http.request(method, url, headers=all_headers, content=body)
            except (httpx.ReadError, httpx.RemoteProtocolError):
                # A server may close a kept-alive connection after an error answer without
                # saying so; a GET changes nothing, so it is safe to send once more on a
                # fresh connection. Other methods are never resent: that could act twice.
                if method.upper() != "GET":
                    raise
                response = self._http.request(method, url, headers=all_headers, content=body)
        except httpx.HTTPError as exc:
            EXCHANGES.add(Exchange(method, url, shown_headers, _excerpt(body or b""), None, "", type(exc).__name__))
            raise
        EXCHANGES.add(
            Exchange(
                method, url, shown_headers, _excerpt(body or b""), response.status_code, _excerpt(response.content)
            )
        )
        return response

    # -- the documented calls ------------------------------------------------------------

    def create_token(self, token: str, body: Any, **kw: Any) -> httpx.Response:
        return self.request("POST", TOKENS_PATH, token=token, json_body=body, **kw)

    def list_tokens(self, token: str, **kw: Any) -> httpx.Response:
        return self.request("GET", TOKENS_PATH, token=token, **kw)

    def delete_token(self, token: str, token_id: int | str, **kw: Any) -> httpx.Response:
        return self.request("DELETE", f"{TOKENS_PATH}/{token_id}", token=token, **kw)

    def server_info(self, token: str | None, **kw: Any) -> httpx.Response:
        return self.request("GET", "/server/info", token=token, **kw)

    def probe(
        self, path: str, token: str | None = None, form: AuthForm = AuthForm.X_API_KEY, **kw: Any
    ) -> httpx.Response:
        """GET the profile's probe path (relative to the target url, not the API root)."""
        return self.request("GET", path, token=token, form=form, api=False, **kw)
