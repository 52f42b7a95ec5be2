"""Credentials taken from places the documentation never names: only the deliberate faults do it.

The faithful server reads a service token from two headers only, ``Authorization: ApiKey``
and ``X-API-Key`` (``auth.py``). Real deployments grow other places through the layers in
front of the API: a gateway that accepts ``?api_key=`` for scripts that cannot set headers,
a framework's Basic-auth filter, a handler that reads a ``token`` field out of any JSON body.
Each fault below is one such layer, written as ASGI middleware that moves the stray
credential into ``X-API-Key`` when the request has no credential header of its own, so the
app then authenticates it as if it had come the documented way.
"""

from __future__ import annotations

import base64
import binascii
import json
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .faults import FaultSet

#: the faults this module implements
STRAY_FAULTS = ("query-api-key-accepted", "basic-auth-password-accepted", "json-body-token-accepted")
_CREDENTIAL_HEADERS = (b"x-api-key", b"authorization")


def wrap(app: ASGIApp, faults: FaultSet) -> ASGIApp:
    """``app`` behind the stray-credential faults in ``faults``; ``app`` itself when there are none."""
    if faults.on("json-body-token-accepted"):
        app = _JsonBodyToken(app)
    if faults.on("basic-auth-password-accepted"):
        app = _BasicPassword(app)
    if faults.on("query-api-key-accepted"):
        app = _QueryApiKey(app)
    return app


def _with_key(scope: Scope, secret: bytes) -> Scope:
    """``scope`` presenting ``secret`` as X-API-Key (Basic's Authorization line is dropped for it)."""
    headers = [(k, v) for k, v in scope["headers"] if k not in _CREDENTIAL_HEADERS]
    return dict(scope, headers=[*headers, (b"x-api-key", secret)])


class _QueryApiKey:
    """query-api-key-accepted: ``?api_key=<token>`` stands for ``X-API-Key: <token>``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not any(k in _CREDENTIAL_HEADERS for k, _ in scope["headers"]):
            query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
            if query.get("api_key"):
                scope = _with_key(scope, query["api_key"].encode("latin-1"))
        await self.app(scope, receive, send)


class _BasicPassword:
    """basic-auth-password-accepted: ``Authorization: Basic base64(any:<token>)`` stands for the token."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                scheme, _, encoded = value.strip().partition(b" ")
                if name == b"authorization" and scheme.lower() == b"basic":
                    try:
                        _user, _, password = base64.b64decode(encoded.strip(), validate=True).partition(b":")
                    except (binascii.Error, ValueError):
                        break
                    if password:
                        scope = _with_key(scope, password)
                    break
        await self.app(scope, receive, send)


class _JsonBodyToken:
    """json-body-token-accepted: a JSON object body with a ``token`` string authenticates a request
    that has no credential header; the body is then handed on unchanged."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or any(k in _CREDENTIAL_HEADERS for k, _ in scope["headers"]):
            await self.app(scope, receive, send)
            return
        body = await whole_body(receive)
        try:
            doc = json.loads(body) if body else None
        except ValueError:
            doc = None
        if isinstance(doc, dict) and isinstance(doc.get("token"), str) and doc["token"]:
            scope = _with_key(scope, doc["token"].encode("utf-8"))
        await self.app(scope, replay(body, receive), send)


async def whole_body(receive: Receive) -> bytes:
    """The whole request body, read from ``receive`` (give it on with :func:`replay`)."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` (already read) once more, then what ``receive`` gives."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return again
