"""Defects of a class no earlier issue named (issue 23, "defects nobody named").

Each fault here is a layer a developer writing the service from its public documentation
could plausibly put in front of the documented handlers: a strict media-type match, a
hand-rolled Authorization parser, a HEAD route of its own, an authentication rule with a
health-check exemption, a response writer that labels JSON as text, an error handler that
dumps the request's headers. Each is ASGI middleware
around the faithful app (like ``stray_credentials.py``), so the faithful code path is
untouched; ``faults.py`` has their one-line descriptions. Where a fault needs what the server
knows (its manager roles), the middleware reads the app's state (``ApiState``).
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .api_common import ApiState
from .faults import FaultSet
from .stray_credentials import replay, whole_body

#: the faults this module implements
UNNAMED_FAULTS = (
    "json-content-type-exact",
    "authorization-one-space-only",
    "head-list-skips-revocation",
    "server-info-head-public",
    "token-answers-text-plain",
    "bad-json-400-echoes-headers",
)
TOKENS = "/api/security/tokens"
INFO = "/api/server/info"
JSON = b"application/json"


def wrap(app: ASGIApp, faults: FaultSet, api: ApiState) -> ASGIApp:
    """``app`` behind the faults of this module that are on; ``app`` itself when none is."""
    chosen = frozenset(name for name in UNNAMED_FAULTS if faults.on(name))
    return _Unnamed(app, chosen, api) if chosen else app


def _header(scope: Scope, name: bytes) -> bytes | None:
    return next((value for key, value in scope["headers"] if key == name), None)


def _credential(scope: Scope) -> bytes | None:
    """The credential of a request as the faithful server reads it (either documented header)."""
    key = _header(scope, b"x-api-key")
    if key is not None:
        return key.strip()
    auth = _header(scope, b"authorization")
    if auth is not None:
        scheme, _, rest = auth.strip().partition(b" ")
        if scheme.lower() == b"apikey":
            return rest.strip()
    return None


async def _answer(send: Send, status: int, body: bytes = b"") -> None:
    headers = [(b"content-type", JSON), (b"content-length", str(len(body)).encode("ascii"))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _roles_of(body: bytes) -> list[str]:
    """The role names a create body asks for (none when it is not a create body)."""
    try:
        doc = json.loads(body)
    except ValueError:
        return []
    roles = doc.get("roles") if isinstance(doc, dict) else None
    return [role for role in roles if isinstance(role, str)] if isinstance(roles, list) else []


def _one_space_only(scope: Scope) -> Scope:
    """authorization-one-space-only: the credential is everything after the first space, so a second
    space (RFC 9110's 1*SP allows it) is kept as part of it, and the lookup finds no such token."""
    headers = []
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, rest = value.partition(b" ")
            if rest[:1] == b" ":
                value = scheme + b" " + b"%20" + rest.strip()  # the space, as the lookup sees it
        headers.append((name, value))
    return dict(scope, headers=headers)


class _Unnamed:
    """The faults of this module that are on, each one decision in :meth:`__call__`."""

    def __init__(self, app: ASGIApp, faults: frozenset[str], api: ApiState) -> None:
        self.app = app
        self.faults = faults
        self.api = api
        #: head-list-skips-revocation: secret -> roles, filled on each create and never emptied
        self._created: dict[bytes, list[str]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        on = self.faults.__contains__
        if on("server-info-head-public") and method == "HEAD" and path == INFO and _credential(scope) is None:
            await _answer(send, 200)  # a health-check exemption: HEAD passes the authentication rule
            return
        if on("head-list-skips-revocation") and method == "HEAD" and path == TOKENS:
            roles = self._created.get(_credential(scope) or b"")
            if roles is not None and not self.api.manager_roles.isdisjoint(roles):
                await _answer(send, 200)  # a HEAD route of its own, through a cache a delete never empties
                return
        exact = on("json-content-type-exact") and method == "POST" and path == TOKENS
        if exact and _header(scope, b"content-type") != JSON:
            await _answer(send, 415, b'{"message": "Content-Type must be application/json"}')
            return
        if on("authorization-one-space-only"):
            scope = _one_space_only(scope)
        if on("bad-json-400-echoes-headers") and method == "POST" and path == TOKENS:
            body = await whole_body(receive)
            if not _parses(body):
                await self.app(scope, replay(body, receive), _echoing_headers(scope, send))
                return
            receive = replay(body, receive)
        if on("head-list-skips-revocation") and method == "POST" and path == TOKENS:
            body = await whole_body(receive)
            await self.app(scope, replay(body, receive), self._remembering(_roles_of(body), send))
            return
        if on("token-answers-text-plain") and path.startswith(TOKENS):
            send = _labelled_text(send)
        await self.app(scope, receive, send)

    def _remembering(self, roles: list[str], send: Send) -> Send:
        """head-list-skips-revocation: ``send``, keeping the secret of a successful create with its roles."""
        status = 0
        chunks: list[bytes] = []

        async def remember(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if status == 200 and not message.get("more_body", False):
                    secret = json.loads(b"".join(chunks)).get("token")
                    if isinstance(secret, str):
                        self._created[secret.encode("latin-1")] = roles
            await send(message)

        return remember


def _parses(body: bytes) -> bool:
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


def _echoing_headers(scope: Scope, send: Send) -> Send:
    """bad-json-400-echoes-headers: the 400 for a body that is not JSON is replaced by a debug message that
    lists the request's headers (its credential among them)."""
    dumped = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    body = json.dumps({"message": f"cannot parse the request body; request headers: {dumped}"}).encode()

    replaced = False

    async def echoing(message: Message) -> None:
        nonlocal replaced
        if message["type"] == "http.response.start" and message["status"] == 400:
            await _answer(send, 400, body)
            replaced = True
        elif not replaced:
            await send(message)

    return echoing


def _labelled_text(send: Send) -> Send:
    """token-answers-text-plain: every answer but a 204 is labelled text/plain, whatever it holds."""

    async def relabelled(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] != 204:
            headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"content-type"]
            message = dict(message, headers=[*headers, (b"content-type", b"text/plain; charset=utf-8")])
        await send(message)

    return relabelled
