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

Faults (see ``faults.py``) are consulted where the faithful behaviour is decided, and so
are variants (see ``variants.py``): other correct choices where the material leaves one open.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from email.utils import formatdate
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import aliases, infra, model_faults, rights_faults, stray_credentials, unnamed_faults
from .api_common import (
    BOOTSTRAP_TOKEN_NAME,
    DEBUG_PRINCIPAL_HEADER,
    SERVER_INFO,
    _credential_text,
    _Refusal,
    logger,
)
from .auth import Authentication
from .clock import Clock
from .config import DEFAULT_MANAGER_ROLES, BootstrapSpec
from .faults import FaultSet
from .lag import Lag
from .stats import RequestStats, StatsWriter, count_requests
from .store import TokenRecord, TokenStore
from .token_calls import TokenCalls
from .variants import VariantSet


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


class ServiceTokenApi(Authentication, TokenCalls):
    """Request handlers and the state they share. One instance per app."""

    def __init__(
        self,
        store: TokenStore,
        clock: Clock,
        *,
        manager_roles: Iterable[str],
        faults: FaultSet,
        variants: VariantSet,
        bootstrap: BootstrapSpec | None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.manager_roles = frozenset(manager_roles)
        self.faults = faults
        self.variants = variants
        # Read on every request: one attribute check keeps the faithful path free of fault
        # and variant lookups.
        self._faulty = bool(faults)
        self._varied = bool(variants)
        self.bootstrap = bootstrap
        # Authentication cache: SHA-256 of a secret -> its record. Filled on create and on a
        # lookup hit, emptied for a token when it is deleted; the store stays the authority.
        self._by_digest: dict[bytes, TokenRecord] = {}
        self._digest_by_id: dict[int, bytes] = {}
        # The revocation-skipped-on-* faults: a second cache that a delete never empties.
        self._keeps_stale_cache = any(
            faults.on(name) for name in ("revocation-skipped-on-management", "revocation-skipped-on-server-info")
        )
        self._stale_by_digest: dict[bytes, TokenRecord] = {}
        # Only faults keep secrets in memory (id -> secret): the faithful server never does.
        self._keeps_secrets = any(
            faults.on(name)
            for name in (
                "list-leaks-secret",
                "token-prefix-match",
                "token-case-insensitive",
                "get-token-by-id-returns-secret",
                "list-leaks-base64-secret",
                "create-idempotent-by-name",
            )
        )
        self._secrets: dict[int, str] = {}
        self._secret_key = secrets.token_bytes(32)  # the secret-from-name fault's "server key"
        # issue 19's faults of use (rights_faults.py): an expiry moved on each use, and a cache
        # filled on each use that a delete never empties
        self._sliding = rights_faults.SlidingExpiry() if faults.on("sliding-expiry-on-use") else None
        if faults.on("expiry-from-first-use"):
            self._sliding = model_faults.FirstUseExpiry()  # (the same two decisions: expiration, used)
        if faults.on("bootstrap-ttl-from-first-use"):
            self._sliding = model_faults.BootstrapFirstUseExpiry()
        # issue 23's faults of makers and of a mind changed mid-run (model_faults.py)
        tied = any(
            faults.on(name)
            for name in (
                "tokens-die-with-their-maker",
                "list-shows-only-own-tokens",
                "deleted-maker-manages-in-authorization",
            )
        )
        self._makers = model_faults.Makers() if tied else None
        deferred = faults.on("deleted-maker-manages-in-authorization")
        self._deferred_makers = model_faults.DeferredMakers() if deferred else None
        first_only = faults.on("duplicate-names-refused-after-first")
        self._first_duplicate = model_faults.FirstDuplicateOnly() if first_only else None
        self._used_cache: dict[bytes, TokenRecord] | None = {} if faults.on("use-cache-survives-delete") else None
        self._bootstrap_record: TokenRecord | None = None  # the bootstrap-delete-not-revoking fault's copy
        self._last_id: int | None = None  # the id-race-on-concurrent-create fault's counter
        self._lag = Lag(variants, clock)  # the list-lag, revocation-lag and bootstrap-token timing variants
        self._deleted_ids: set[int] = set()  # the double-delete-500 fault's tombstones
        # the session-outlives-delete fault: what a session cookie was made for, kept past a delete
        self._session_records: dict[bytes, TokenRecord] | None = {} if faults.on("session-outlives-delete") else None

    # ---- start-up -------------------------------------------------------------------

    def create_bootstrap_token(self, at_ms: int | None = None) -> None:
        """Store the configured bootstrap token, expiring its ttl after ``at_ms`` (default: now), unless stored."""
        spec = self.bootstrap
        if spec is None:
            return
        existing = self.store.find_by_secret(spec.token)
        if existing is not None:
            logger.info("bootstrap token already present (id %d); not creating it", existing.id)
            record = existing
        else:
            now = self.clock.now_ms() if at_ms is None else at_ms
            roles = spec.roles
            expiration: int | None = now + spec.ttl_ms
            if self._faulty:
                if self.faults.on("bootstrap-roles-ignored"):
                    roles = ["stackstate-admin"]
                if self.faults.on("bootstrap-ttl-ignored"):
                    expiration = None
            record = self.store.create(
                secret=spec.token,
                name=BOOTSTRAP_TOKEN_NAME,
                roles=roles,
                expiration=expiration,
                now_ms=now,
                bootstrap=True,
                sequential_id=self._varied and self.variants.on("sequential-ids"),
            )
            logger.info("bootstrap token created (id %d, expires %s)", record.id, expiration)
        if self._keeps_secrets:
            self._secrets[record.id] = spec.token
        self._bootstrap_record = record

    # ---- responses ------------------------------------------------------------------

    def error(self, refusal: _Refusal, scope: Scope | None = None) -> Response:
        """The response that ends a refused request; ``scope`` is the request's, when known."""
        status = self._varied_status(refusal.status) if self._varied else refusal.status
        headers = {"WWW-Authenticate": "ApiKey"} if status == 401 else {}
        if self._faulty and scope is not None and 400 <= status < 500 and self.faults.on("error-header-echoes-token"):
            credential = _credential_text(scope)
            if credential is not None:
                headers[DEBUG_PRINCIPAL_HEADER] = credential
        if self._varied and status in (401, 403, 404) and self.variants.on("plain-text-errors"):
            return PlainTextResponse(refusal.message, status_code=status, headers=headers)
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
                        "errorCode": status,
                    }
                ],
            }
        return JSONResponse(body, status_code=status, headers=headers)

    def _varied_status(self, status: int) -> int:
        """The unauthenticated-403 and forbidden-401 variants: the other status of the two."""
        if status == 401 and self.variants.on("unauthenticated-403"):
            return 403
        if status == 403 and self.variants.on("forbidden-401"):
            return 401
        return status

    # ---- handlers -------------------------------------------------------------------

    async def server_status(self, request: Request) -> Response:
        public = self._faulty and self.faults.on("status-public") and not self._has_credential(request.scope)
        try:
            if not public:
                self.authenticate(request.scope, "status")
        except _Refusal as refusal:
            return self.error(refusal, request.scope)
        body: dict[str, Any] = {"status": "OK", "serverTimestamp": self.clock.now_ms()}
        if self._faulty and self.faults.on("status-echoes-token") and not public:
            body["principal"] = _credential_text(request.scope)
        return JSONResponse(body)

    async def server_info(self, request: Request) -> Response:
        public = self._faulty and self.faults.on("server-info-public") and not self._has_credential(request.scope)
        try:
            if not public:
                self.authenticate(request.scope, "info")
        except _Refusal as refusal:
            return self.error(refusal, request.scope)
        if self._faulty and self.faults.on("server-info-echoes-token") and not public:
            principal = self._presented_secret(request.scope, "info").decode("latin-1")
            return JSONResponse({**SERVER_INFO, "principal": principal})
        return JSONResponse(SERVER_INFO)


def create_app(
    store: TokenStore,
    clock: Clock,
    *,
    manager_roles: Iterable[str] = DEFAULT_MANAGER_ROLES,
    faults: FaultSet | None = None,
    variants: VariantSet | None = None,
    bootstrap: BootstrapSpec | None = None,
    stats_file: str | os.PathLike[str] | None = None,
    delay_ms: int = 0,
    create_delay_ms: int = 0,
) -> ASGIApp:
    """The reference server as an ASGI app. Run its lifespan (uvicorn does) so that the
    bootstrap token is created at start-up. With ``stats_file``, requests are counted and the
    counts written there as JSON (see ``stats.py``) while they change and at shutdown. With
    ``delay_ms``, every answer waits that long first: a deployment far away, for benchmarks; with
    ``create_delay_ms``, a create's answer waits that long more (a secret hashed slowly)."""
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
        variants=variants if variants is not None else VariantSet(()),
        bootstrap=bootstrap,
    )
    stats = RequestStats() if stats_file is not None else None

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        api._lag.start(api.create_bootstrap_token)
        if stats is None or stats_file is None:
            yield
            return
        async with StatsWriter(stats, stats_file, tokens_alive=lambda: store.count(bootstrap=False)):
            yield

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        refusal = _Refusal(exc.status_code, exc.detail)
        response = api.error(refusal, request.scope)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    async def server_error(request: Request, exc: Exception) -> Response:
        # Reached only through a bug in this server; the message must not echo input.
        return api.error(_Refusal(500, "internal error in the reference server"), request.scope)

    app = Starlette(
        routes=[
            Route("/api/security/tokens", api.tokens, methods=["GET", "POST"]),
            Route("/api/security/tokens/{token_id}", api.delete_token, methods=["DELETE"]),
            Route("/api/server/info", api.server_info, methods=["GET"]),
            Route("/api/server/status", api.server_status, methods=["GET"]),
            *aliases.routes(api),
        ],
        exception_handlers={HTTPException: http_error, Exception: server_error},
        lifespan=lifespan,
    )
    # A trailing slash would otherwise be answered with a redirect, which a POST client
    # may follow as a GET; an unknown path is simply 404.
    app.router.redirect_slashes = False
    app.state.api = api
    counted: ASGIApp = app if stats is None else count_requests(app, stats)
    delayed = counted if delay_ms <= 0 else _Delayed(counted, delay_ms / 1000)
    if create_delay_ms > 0:
        delayed = _Delayed(delayed, create_delay_ms / 1000, only=_is_create)
    wrapped = infra.wrap(
        stray_credentials.wrap(unnamed_faults.wrap(delayed, api.faults, api), api.faults), api, api.variants
    )
    if api.variants.on("no-date-header"):
        return wrapped
    # proxy-date-ahead: the Date header comes from a proxy whose clock is ahead of the API's
    date_clock = _Ahead(clock, PROXY_AHEAD_MS) if api.variants.on("proxy-date-ahead") else clock
    return _DateHeader(wrapped, date_clock)


#: how far ahead of the API's clock the proxy-date-ahead variant's Date header runs
PROXY_AHEAD_MS = 20_000


class _Ahead:
    """Another clock, ``offset_ms`` ahead of ``clock`` (the proxy-date-ahead variant's proxy)."""

    def __init__(self, clock: Clock, offset_ms: int) -> None:
        self.clock = clock
        self.offset_ms = offset_ms

    def now_ms(self) -> int:
        return self.clock.now_ms() + self.offset_ms


class _Delayed:
    """Waits before each HTTP request is handled (without blocking other requests): a distant target."""

    def __init__(self, app: ASGIApp, seconds: float, only: Callable[[Scope], bool] | None = None) -> None:
        self.app = app
        self.seconds = seconds
        self.only = only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (self.only is None or self.only(scope)):
            await asyncio.sleep(self.seconds)
        await self.app(scope, receive, send)


def _is_create(scope: Scope) -> bool:
    """Whether a request is a create of a service token (the documented call)."""
    return scope.get("method") == "POST" and str(scope.get("path", "")).rstrip("/") == "/api/security/tokens"
