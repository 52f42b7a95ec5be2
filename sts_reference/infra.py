"""What a real deployment's infrastructure does to the answers: the variants of issue 18.

Each is a correct server (the suite must pass it) that behaves the way production clusters
do, as ASGI middleware around the reference app:

``gzip``
    compresses every non-empty answer with gzip when the client accepts it, as an ingress does.
``rate-limit``
    answers a share of requests (every :data:`RATE_LIMIT_EVERY`-th) with 429 and does nothing
    for them; ``Retry-After`` is ``0``, the current second as an HTTP-date, or absent, in turn.
``null-optional-fields``
    writes ``null`` for an optional field it has no value for (``expiration``,
    ``description``, ``dedicatedSubject``), as Jackson does by default.
``malformed-credential-400``
    answers 400 to a credential header it cannot parse: an empty ``X-API-Key`` or
    ``ApiKey`` credential, or one with characters a token cannot have (RFC 9110 token68).
``session-cookies``
    sets a session cookie on every accepted call that presented a credential and, like a
    real session, authenticates a later request that presents no credential but the cookie
    as that credential (re-checked: a deleted or expired token's session ends with it). A
    credential in the request always wins over the cookie. A client that replays cookies
    across credentials would see an anonymous call accepted; the suite keeps no cookies.
    The session faults (``session-outlives-delete``, ``session-outlives-expiry``) set the same
    cookies, whose sessions then outlive their token.

Nothing here changes what the service-token feature does for a request that gets through.
The middleware sees the app through :class:`~sts_reference.api_common.ApiState` (its clock and
its error shape), never through ``app.py``, which imports this module.
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
import threading
from email.utils import formatdate

from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .api_common import SESSION_SCOPE_KEY, ApiState, _Refusal
from .variants import VariantSet

#: the variants this module implements
INFRA_VARIANTS = (
    "gzip",
    "rate-limit",
    "null-optional-fields",
    "malformed-credential-400",
    "session-cookies",
    "unused-methods-501",
)
#: unused-methods-501: the methods the server implements somewhere; every other one is 501
IMPLEMENTED_METHODS = ("GET", "HEAD", "POST", "DELETE")
#: rate-limit: one request in this many is throttled
RATE_LIMIT_EVERY = 25
SESSION_COOKIE = "STSSESSION"
#: faults of the session (auth.py): they need its cookies whatever the variants
SESSION_FAULTS = ("session-outlives-delete", "session-outlives-expiry")
#: the optional fields null-optional-fields writes as null when absent
LISTED_OPTIONAL = ("expiration", "description", "dedicatedSubject")
CREATED_OPTIONAL = ("expiration",)
_TOKEN68 = re.compile(rb"[A-Za-z0-9\-._~+/]+=*")
_TOKENS_PATH = "/api/security/tokens"
_OWS = b" \t"


def wrap(app: ASGIApp, api: ApiState, variants: VariantSet) -> ASGIApp:
    """``app`` with the infrastructure variants in ``variants``; ``app`` itself when there are none."""
    if variants.on("null-optional-fields"):
        app = _NullOptionalFields(app)
    if variants.on("malformed-credential-400"):
        app = _MalformedCredential400(app, api)
    if variants.on("unused-methods-501"):
        app = _UnusedMethods501(app)
    if variants.on("session-cookies") or any(api.faults.on(name) for name in SESSION_FAULTS):
        app = _SessionCookies(app)
    if variants.on("gzip"):
        app = GZipMiddleware(app, minimum_size=1)
    if variants.on("rate-limit"):
        app = _RateLimit(app, api)
    return app


def _header(scope: Scope, name: bytes) -> bytes | None:
    return next((v for k, v in scope["headers"] if k == name), None)


def _presents_credential(scope: Scope) -> bool:
    return any(k in (b"x-api-key", b"authorization") for k, _ in scope["headers"])


class _RateLimit:
    """Every RATE_LIMIT_EVERY-th request gets 429 before anything is done for it."""

    def __init__(self, app: ASGIApp, api: ApiState) -> None:
        self.app = app
        self.api = api
        self._count = itertools.count(1)
        self._forms = itertools.cycle(("seconds", "date", "none"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or next(self._count) % RATE_LIMIT_EVERY:
            await self.app(scope, receive, send)
            return
        headers = [(b"content-type", b"application/json")]
        form = next(self._forms)
        if form == "seconds":
            headers.append((b"retry-after", b"0"))
        elif form == "date":
            now = self.api.clock.now_ms() // 1000
            headers.append((b"retry-after", formatdate(now, usegmt=True).encode("ascii")))
        body = json.dumps({"message": "too many requests, try again later"}).encode()
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class _UnusedMethods501:
    """A method the server implements on no path is answered 501 before routing (and before auth)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in IMPLEMENTED_METHODS:
            await self.app(scope, receive, send)
            return
        body = f"Unsupported method ({scope['method']!r})".encode()
        headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 501, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class _MalformedCredential400:
    """A credential header that cannot be parsed is a bad request."""

    def __init__(self, app: ASGIApp, api: ApiState) -> None:
        self.app = app
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _malformed(scope):
            response = self.api.error(_Refusal(400, "the credential header cannot be parsed"), scope)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _malformed(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"x-api-key":
            credential = value.strip(_OWS)
        elif name == b"authorization":
            scheme, _, rest = value.strip(_OWS).replace(b"\t", b" ").partition(b" ")
            if scheme.lower() != b"apikey":
                continue  # another scheme is not this server's to parse
            credential = rest.strip(_OWS)
        else:
            continue
        if not _TOKEN68.fullmatch(credential):
            return True
    return False


class _SessionCookies:
    """A session cookie for each credential accepted; a cookie alone stands for its credential."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._by_session: dict[str, tuple[bytes, bytes]] = {}
        self._by_credential: dict[tuple[bytes, bytes], str] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        credential = next(((k, v) for k, v in scope["headers"] if k in (b"x-api-key", b"authorization")), None)
        if credential is None:
            session = self._session_of(scope)
            if session is not None:
                scope = dict(scope, headers=[*scope["headers"], session], **{SESSION_SCOPE_KEY: True})
            await self.app(scope, receive, send)
            return

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and 200 <= message["status"] < 300:
                sid = self._session_for(credential)
                cookie = f"{SESSION_COOKIE}={sid}; Path=/; HttpOnly; SameSite=Lax".encode("ascii")
                message["headers"] = [*message.get("headers", ()), (b"set-cookie", cookie)]
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    def _session_for(self, credential: tuple[bytes, bytes]) -> str:
        with self._lock:
            sid = self._by_credential.get(credential)
            if sid is None:
                sid = secrets.token_urlsafe(18)
                self._by_credential[credential] = sid
                self._by_session[sid] = credential
            return sid

    def _session_of(self, scope: Scope) -> tuple[bytes, bytes] | None:
        raw = _header(scope, b"cookie")
        if raw is None:
            return None
        for part in raw.decode("latin-1").split(";"):
            name, _, value = part.strip().partition("=")
            if name == SESSION_COOKIE:
                with self._lock:
                    return self._by_session.get(value)
        return None


class _NullOptionalFields:
    """The list and create answers with ``null`` where an optional field has no value."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != _TOKENS_PATH:
            await self.app(scope, receive, send)
            return
        fields = CREATED_OPTIONAL if scope["method"] == "POST" else LISTED_OPTIONAL
        start: Message | None = None
        chunks: list[bytes] = []

        async def rewrite(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            if 200 <= start["status"] < 300:
                body = _with_nulls(body, fields)
            headers = [(k, v) for k, v in start.get("headers", ()) if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, rewrite)


def _with_nulls(body: bytes, fields: tuple[str, ...]) -> bytes:
    try:
        doc = json.loads(body)
    except ValueError:
        return body
    items = doc if isinstance(doc, list) else [doc]
    for item in items:
        if isinstance(item, dict):
            for name in fields:
                item.setdefault(name, None)
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")
