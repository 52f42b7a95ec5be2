"""The reference server's HTTP API: service tokens as the product documents them.

Routes (all under ``/api``)::

    POST   /security/tokens        create   -> 200 {name, token, expiration?}
    GET    /security/tokens        list     -> 200 [{id, name, expiration?, roles, ...}]
    DELETE /security/tokens/{id}   delete   -> 204
    GET    /server/info            ServerInfo, any authenticated token
    GET    /server/status          small JSON, any authenticated token

Choices where the public material is silent (the suite reports these, it does not
require them): a missing, unknown, expired or deleted token gets 401; a valid token
without a manager role gets 403 on the token calls; deleting an unknown id gets 404;
duplicate names, unknown role names and an empty role list are stored as given; the
bootstrap token is listed, can be deleted and survives a restart; expired tokens stay
listed.

Error bodies: an invalid ``expiryDate`` gets the documented
``{"_type": "ServiceTokenInvalidExpiryError", "message"}``. Every other error uses the
vendor's ``GenericErrorsResponse`` (the only error shape the spec gives for 401), with one
item whose ``errorCode`` is the HTTP status. The spec's item schema allows only
``"_type": "InternalError"``, so that is the item type even for a 4xx.

Faults (see ``faults.py``) are consulted where the faithful behaviour is decided.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import secrets
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from email.utils import formatdate
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .clock import Clock
from .config import DEFAULT_MANAGER_ROLES, BootstrapSpec
from .faults import FaultSet
from .store import TokenRecord, TokenStore

logger = logging.getLogger("sts_reference")

MAX_NAME_LENGTH = 256
"""Longest accepted token name, in characters (Unicode code points)."""

MAX_DEDICATED_SUBJECT_LENGTH = 256
MAX_BODY_BYTES = 64 * 1024
"""Larger request bodies get 413 without being parsed."""

SECRET_PREFIX = "svctok-"
SECRET_RANDOM_BYTES = 24
"""192 random bits, rendered in the URL-safe base64 alphabet (no header quoting needed)."""

BOOTSTRAP_TOKEN_NAME = "bootstrap"

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# Shaped like a product release so that clients checking the server version accept it;
# the commit field says which server this really is.
SERVER_INFO: dict[str, Any] = {
    "version": {
        "major": 6,
        "minor": 0,
        "patch": 0,
        "diff": "",
        "commit": "sts-reference",
        "isDev": False,
    },
    "deploymentMode": "SelfHosted",
    "applicationDomains": ["Observability"],
    "platformVersion": "6.0.0",
}

_TOKEN_ID = re.compile(r"-?[0-9]{1,20}", re.ASCII)
_OWS = b" \t"


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(SECRET_RANDOM_BYTES)


class _Refusal(Exception):
    """Ends a request with an error response."""

    def __init__(self, status: int, message: str, *, error_type: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type


def _invalid_expiry(message: str) -> _Refusal:
    return _Refusal(400, message, error_type="ServiceTokenInvalidExpiryError")


def _utf8_safe(value: str) -> bool:
    # JSON can carry lone surrogates ("\ud800"); they cannot be stored or echoed as UTF-8.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class _DateHeader:
    """Adds a ``Date`` header read from the injected clock to every response, so a test
    that moves a fake clock sees the server's idea of now move with it."""

    def __init__(self, app: ASGIApp, clock: Clock) -> None:
        self.app = app
        self.clock = clock
        self._second = -1
        self._value = b""

    def _date(self) -> bytes:
        second = self.clock.now_ms() // 1000
        if second != self._second:
            self._value = formatdate(second, usegmt=True).encode("ascii")
            self._second = second
        return self._value

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_date(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", ()) if h[0].lower() != b"date"]
                headers.append((b"date", self._date()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_date)


class ServiceTokenApi:
    """Request handlers and the state they share. One instance per app."""

    def __init__(
        self,
        store: TokenStore,
        clock: Clock,
        *,
        manager_roles: Iterable[str],
        faults: FaultSet,
        bootstrap: BootstrapSpec | None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.manager_roles = frozenset(manager_roles)
        self.faults = faults
        self.bootstrap = bootstrap
        # Authentication cache: SHA-256 of a secret -> its record. Filled on create and on a
        # lookup hit, emptied for a token when it is deleted; the store stays the authority.
        self._by_digest: dict[bytes, TokenRecord] = {}
        self._digest_by_id: dict[int, bytes] = {}
        # Only the list-leaks-secret fault keeps secrets in memory.
        self._leakable: dict[int, str] = {}

    # ---- start-up -------------------------------------------------------------------

    def create_bootstrap_token(self) -> None:
        spec = self.bootstrap
        if spec is None:
            return
        existing = self.store.find_by_secret(spec.token)
        if existing is not None:
            logger.info("bootstrap token already present (id %d); not creating it", existing.id)
            record = existing
        else:
            now = self.clock.now_ms()
            record = self.store.create(
                secret=spec.token,
                name=BOOTSTRAP_TOKEN_NAME,
                roles=spec.roles,
                expiration=now + spec.ttl_ms,
                now_ms=now,
                bootstrap=True,
            )
            logger.info("bootstrap token created (id %d, expires %d)", record.id, now + spec.ttl_ms)
        if self.faults.on("list-leaks-secret"):
            self._leakable[record.id] = spec.token

    # ---- authentication -------------------------------------------------------------

    def _presented_secret(self, scope: Scope) -> bytes:
        """The one service-token secret the request presents, as raw header bytes."""
        presented: set[bytes] = set()
        personal_token = False
        for name, value in scope["headers"]:
            if name == b"x-api-key":
                if self.faults.on("x-api-key-ignored"):
                    continue
                presented.add(value.strip(_OWS))
            elif name == b"authorization":
                scheme, _, credentials = value.strip(_OWS).replace(b"\t", b" ").partition(b" ")
                scheme = scheme.lower()
                if scheme == b"apikey":
                    presented.add(credentials.strip(_OWS))
                elif scheme == b"apitoken":
                    personal_token = True
            elif name == b"x-api-token":
                personal_token = True
        if not presented:
            if personal_token:
                raise _Refusal(
                    401,
                    "personal API tokens are not accepted here; present a service token as "
                    "'Authorization: ApiKey <token>' or 'X-API-Key: <token>'",
                )
            raise _Refusal(
                401,
                "no service token presented; send 'Authorization: ApiKey <token>' or 'X-API-Key: <token>'",
            )
        if len(presented) > 1:
            raise _Refusal(401, "the request presents more than one different service token")
        (secret,) = presented
        if not secret:
            raise _Refusal(401, "the presented service token is empty")
        return secret

    def _expired(self, record: TokenRecord, now: int) -> bool:
        expiration = record.expiration
        if expiration is None:
            return False
        if self.faults.on("expiry-seconds-as-ms"):
            expiration *= 1000
        if self.faults.on("expiry-inclusive"):
            return now > expiration
        return now >= expiration

    def authenticate(self, scope: Scope) -> TokenRecord:
        digest = hashlib.sha256(self._presented_secret(scope)).digest()
        record = self._by_digest.get(digest)
        if record is None:
            record = self.store.find_by_hash(digest)
            if record is None:
                raise _Refusal(401, "unknown service token")
            self._remember(digest, record)
        if self._expired(record, self.clock.now_ms()):
            raise _Refusal(401, "the service token has expired")
        return record

    def _remember(self, digest: bytes, record: TokenRecord) -> None:
        self._by_digest[digest] = record
        self._digest_by_id[record.id] = digest

    def authorize_manager(self, scope: Scope) -> TokenRecord:
        record = self.authenticate(scope)
        if self.manager_roles.isdisjoint(record.roles):
            raise _Refusal(
                403,
                "managing service tokens needs one of the roles " + ", ".join(sorted(self.manager_roles)),
            )
        return record

    # ---- responses ------------------------------------------------------------------

    def error(self, refusal: _Refusal) -> JSONResponse:
        body: dict[str, Any]
        if refusal.error_type is not None:
            body = {"_type": refusal.error_type, "message": refusal.message}
        else:
            body = {
                "_type": "ErrorsResponse",
                "trackingKey": uuid.uuid4().hex,
                "serverTimestamp": self.clock.now_ms(),
                "errors": [
                    {
                        "_type": "InternalError",
                        "message": refusal.message,
                        "errorCode": refusal.status,
                    }
                ],
            }
        headers = {"WWW-Authenticate": "ApiKey"} if refusal.status == 401 else None
        return JSONResponse(body, status_code=refusal.status, headers=headers)

    # ---- handlers -------------------------------------------------------------------

    async def server_status(self, request: Request) -> Response:
        try:
            self.authenticate(request.scope)
        except _Refusal as refusal:
            return self.error(refusal)
        return JSONResponse({"status": "OK", "serverTimestamp": self.clock.now_ms()})

    async def server_info(self, request: Request) -> Response:
        try:
            self.authenticate(request.scope)
        except _Refusal as refusal:
            return self.error(refusal)
        return JSONResponse(SERVER_INFO)

    async def tokens(self, request: Request) -> Response:
        # One route for both methods, so that other methods get 405 listing both.
        if request.method == "POST":
            return await self.create_token(request)
        return await self.list_tokens(request)

    async def list_tokens(self, request: Request) -> Response:
        try:
            self.authorize_manager(request.scope)
        except _Refusal as refusal:
            return self.error(refusal)
        items = []
        for record in self.store.list():
            item: dict[str, Any] = {
                "id": record.id,
                "name": record.name,
                "roles": list(record.roles),
                "lastUpdateTimestamp": record.last_update,
            }
            if record.expiration is not None:
                item["expiration"] = record.expiration
            if record.dedicated_subject is not None:
                item["dedicatedSubject"] = record.dedicated_subject
            if self.faults.on("list-leaks-secret") and record.id in self._leakable:
                item["token"] = self._leakable[record.id]
            items.append(item)
        return JSONResponse(items)

    async def create_token(self, request: Request) -> Response:
        try:
            self.authorize_manager(request.scope)
            body = await self._read_json_object(request)
            name, roles, expiry, subject = self._validate_new_token(body)
        except _Refusal as refusal:
            return self.error(refusal)
        secret = new_secret()
        record = self.store.create(
            secret=secret,
            name=name,
            roles=roles,
            expiration=expiry,
            now_ms=self.clock.now_ms(),
            dedicated_subject=subject,
        )
        self._remember(hashlib.sha256(secret.encode("ascii")).digest(), record)
        if self.faults.on("list-leaks-secret"):
            self._leakable[record.id] = secret
        created: dict[str, Any] = {"name": name, "token": secret}
        if expiry is not None:
            created["expiration"] = expiry
        return JSONResponse(created)

    async def delete_token(self, request: Request) -> Response:
        try:
            self.authorize_manager(request.scope)
            token_id = self._parse_token_id(request.path_params["token_id"])
            if not self.store.delete(token_id):
                raise _Refusal(404, f"no service token with id {token_id}")
        except _Refusal as refusal:
            return self.error(refusal)
        self._leakable.pop(token_id, None)
        if not self.faults.on("delete-not-revoking"):
            digest = self._digest_by_id.pop(token_id, None)
            if digest is not None:
                self._by_digest.pop(digest, None)
        return Response(status_code=204)

    # ---- input validation -----------------------------------------------------------

    @staticmethod
    def _parse_token_id(text: str) -> int:
        if _TOKEN_ID.fullmatch(text):
            value = int(text)
            if INT64_MIN <= value <= INT64_MAX:
                return value
        raise _Refusal(400, f"a service token id is a 64-bit integer, got {text!r}")

    @staticmethod
    async def _read_json_object(request: Request) -> dict[str, Any]:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise _Refusal(413, f"the request body is larger than {MAX_BODY_BYTES} bytes")
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise _Refusal(413, f"the request body is larger than {MAX_BODY_BYTES} bytes")
                chunks.append(chunk)
        except ClientDisconnect:
            raise _Refusal(400, "the client went away before sending the whole body") from None
        raw = b"".join(chunks)
        if not raw.strip():
            raise _Refusal(400, "the request body is empty; expected a JSON object")
        try:
            body = json.loads(raw, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            # ValueError covers bad UTF-8 and JSONDecodeError; RecursionError deep nesting.
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "cannot be decoded"
            raise _Refusal(400, f"the request body is not valid JSON: {reason}") from None
        if not isinstance(body, dict):
            raise _Refusal(400, f"the request body must be a JSON object, got {_json_type(body)}")
        return body

    def _validate_new_token(self, body: Mapping[str, Any]) -> tuple[str, list[str], int | None, str | None]:
        if "name" not in body:
            raise _Refusal(400, "name is required")
        name = body["name"]
        if not isinstance(name, str):
            raise _Refusal(400, f"name must be a string, got {_json_type(name)}")
        if not name.strip():
            raise _Refusal(400, "name must not be empty or only whitespace")
        if len(name) > MAX_NAME_LENGTH:
            raise _Refusal(400, f"name is longer than {MAX_NAME_LENGTH} characters")
        if not _utf8_safe(name):
            raise _Refusal(400, "name contains an unpaired UTF-16 surrogate")

        if "roles" not in body:
            raise _Refusal(400, "roles is required (a list of role names, may be empty)")
        roles = body["roles"]
        if not isinstance(roles, list):
            raise _Refusal(400, f"roles must be a list of strings, got {_json_type(roles)}")
        for index, role in enumerate(roles):
            if not isinstance(role, str):
                raise _Refusal(400, f"roles[{index}] must be a string, got {_json_type(role)}")
            if not _utf8_safe(role):
                raise _Refusal(400, f"roles[{index}] contains an unpaired UTF-16 surrogate")

        expiry = body.get("expiryDate")
        if expiry is not None:
            if not isinstance(expiry, int) or isinstance(expiry, bool):
                raise _invalid_expiry(f"expiryDate must be an integer of epoch milliseconds, got {_json_type(expiry)}")
            if not INT64_MIN <= expiry <= INT64_MAX:
                raise _invalid_expiry("expiryDate is outside the 64-bit integer range")
            now = self.clock.now_ms()
            compared = expiry * 1000 if self.faults.on("expiry-seconds-as-ms") else expiry
            if compared <= now:
                raise _invalid_expiry(f"expiryDate {expiry} is not in the future (server time is {now})")

        subject = body.get("dedicatedSubject")
        if subject is not None:
            if not isinstance(subject, str):
                raise _Refusal(400, f"dedicatedSubject must be a string, got {_json_type(subject)}")
            if len(subject) > MAX_DEDICATED_SUBJECT_LENGTH:
                raise _Refusal(
                    400,
                    f"dedicatedSubject is longer than {MAX_DEDICATED_SUBJECT_LENGTH} characters",
                )
            if not _utf8_safe(subject):
                raise _Refusal(400, "dedicatedSubject contains an unpaired UTF-16 surrogate")
        return name, list(roles), expiry, subject


def _reject_constant(text: str) -> Any:
    raise ValueError(f"{text} is not a JSON number")


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number with a fraction or exponent"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def create_app(
    store: TokenStore,
    clock: Clock,
    *,
    manager_roles: Iterable[str] = DEFAULT_MANAGER_ROLES,
    faults: FaultSet | None = None,
    bootstrap: BootstrapSpec | None = None,
) -> ASGIApp:
    """The reference server as an ASGI app. Run its lifespan (uvicorn does) so that the
    bootstrap token is created at start-up."""
    if isinstance(manager_roles, str):
        manager_roles = (manager_roles,)
    manager_roles = tuple(manager_roles)
    if not manager_roles or not all(isinstance(r, str) and r for r in manager_roles):
        raise ValueError("manager_roles must be one or more non-empty role names")
    api = ServiceTokenApi(
        store,
        clock,
        manager_roles=manager_roles,
        faults=faults if faults is not None else FaultSet(()),
        bootstrap=bootstrap,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        api.create_bootstrap_token()
        yield

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        refusal = _Refusal(exc.status_code, exc.detail)
        response = api.error(refusal)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    async def server_error(request: Request, exc: Exception) -> Response:
        # Reached only through a bug in this server; the message must not echo input.
        return api.error(_Refusal(500, "internal error in the reference server"))

    app = Starlette(
        routes=[
            Route("/api/security/tokens", api.tokens, methods=["GET", "POST"]),
            Route("/api/security/tokens/{token_id}", api.delete_token, methods=["DELETE"]),
            Route("/api/server/info", api.server_info, methods=["GET"]),
            Route("/api/server/status", api.server_status, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error, Exception: server_error},
        lifespan=lifespan,
    )
    # A trailing slash would otherwise be answered with a redirect, which a POST client
    # may follow as a GET; an unknown path is simply 404.
    app.router.redirect_slashes = False
    app.state.api = api
    return _DateHeader(app, clock)
