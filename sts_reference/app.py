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
import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from email.utils import formatdate
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import aliases, infra, rights_faults
from .clock import Clock
from .config import DEFAULT_MANAGER_ROLES, BootstrapSpec
from .faults import FaultSet
from .lag import Lag
from .stats import RequestStats, StatsWriter, count_requests
from .store import ID_MIN, TokenRecord, TokenStore
from .variants import VariantSet

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

Call = Literal["status", "info", "list", "create", "delete"]
"""The API call a request makes; some faults check a token differently on different calls."""
MANAGEMENT_CALLS: frozenset[Call] = frozenset({"list", "create", "delete"})

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# Used only by the deliberate faults (faults.py).
GENERATED_SECRET_LENGTH = len(SECRET_PREFIX) + len(secrets.token_urlsafe(SECRET_RANDOM_BYTES))
EXPIRY_GRACE_MS = 30_000
ID_RACE_WINDOW_S = 0.005
"""How long the id-race fault takes between reading the last id and storing the next (a database round trip)."""
NAME_COLUMN_LENGTH = 255
NAME_CUT_LENGTH = 64
POWER_USER_ROLE = "stackstate-power-user"
PREFIX_MATCH_MIN = 8
LIST_LIMIT = 20
DEBUG_PRINCIPAL_HEADER = "X-Debug-Principal"
ROLE_SLOTS = 8
SECRET_HINT_LENGTH = 16

# Used only by the variants (variants.py).
PREDEFINED_ROLES = frozenset(
    {
        "stackstate-admin",
        "stackstate-power-user",
        "stackstate-k8s-troubleshooter",
        "stackstate-guest",
        "stackstate-k8s-admin",
    }
)
"""The roles the product defines (SaaS adds stackstate-k8s-admin); the unknown-roles-refused
variant accepts these and the manager roles."""
SHORT_NAME_LENGTH = 64
HEX_SECRET_BYTES = 32

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


def _scheme_and_credentials(value: bytes) -> tuple[bytes, bytes]:
    """An Authorization header value split into its scheme word and what follows it."""
    scheme, _, credentials = value.strip(_OWS).replace(b"\t", b" ").partition(b" ")
    return scheme, credentials.strip(_OWS)


def _credential_text(scope: Scope) -> str | None:
    """The credential a request carries, as text, without judging it (for the faults that echo it)."""
    for name, value in scope["headers"]:
        if name == b"x-api-key":
            return value.strip(_OWS).decode("latin-1")
        if name == b"authorization":
            return _scheme_and_credentials(value)[1].decode("latin-1")
    return None


def _presented_in_authorization(scope: Scope) -> bool:
    return any(
        name == b"authorization" and _scheme_and_credentials(value)[0].lower() == b"apikey"
        for name, value in scope["headers"]
    )


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
            )
        )
        self._secrets: dict[int, str] = {}
        self._secret_key = secrets.token_bytes(32)  # the secret-from-name fault's "server key"
        # issue 19's faults of use (rights_faults.py): an expiry moved on each use, and a cache
        # filled on each use that a delete never empties
        self._sliding = rights_faults.SlidingExpiry() if faults.on("sliding-expiry-on-use") else None
        self._used_cache: dict[bytes, TokenRecord] | None = {} if faults.on("use-cache-survives-delete") else None
        self._bootstrap_record: TokenRecord | None = None  # the bootstrap-delete-not-revoking fault's copy
        self._last_id: int | None = None  # the id-race-on-concurrent-create fault's counter
        self._lag = Lag(variants, clock)  # the list-lag, revocation-lag and late-bootstrap-token variants
        self._deleted_ids: set[int] = set()  # the double-delete-500 fault's tombstones

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

    # ---- authentication -------------------------------------------------------------

    def _presented_secret(self, scope: Scope, call: Call) -> bytes:
        """The one service-token secret the request presents, as raw header bytes."""
        presented = self._presented_secrets(scope, call)
        if len(presented) > 1:
            raise _Refusal(401, "the request presents more than one different service token")
        (secret,) = presented
        if not secret:
            raise _Refusal(401, "the presented service token is empty")
        return secret

    def _presented_secrets(self, scope: Scope, call: Call) -> set[bytes]:
        """Every service-token secret the request presents (at least one), as raw header bytes."""
        presented: set[bytes] = set()
        personal_token = False
        for name, value in scope["headers"]:
            if name == b"x-api-key":
                if self._faulty and self._x_api_key_ignored(call):
                    continue
                presented.add(value.strip(_OWS))
            elif name == b"authorization":
                scheme, credentials = _scheme_and_credentials(value)
                word = scheme.lower()
                any_scheme = self._faulty and self.faults.on("any-auth-scheme") and credentials
                if (word == b"apikey" and self._scheme_accepted(scheme)) or any_scheme:
                    presented.add(credentials)
                elif word == b"apitoken":
                    personal_token = True
            elif name == b"x-api-token":
                if self._faulty and self.faults.on("x-api-token-accepted"):
                    presented.add(value.strip(_OWS))
                    continue
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
        return presented

    def _x_api_key_ignored(self, call: Call) -> bool:
        if self.faults.on("x-api-key-ignored"):
            return True
        return call in MANAGEMENT_CALLS and self.faults.on("x-api-key-ignored-on-management")

    def _scheme_accepted(self, scheme: bytes) -> bool:
        """Whether an ``ApiKey`` scheme word in any case is accepted as written."""
        return scheme == b"ApiKey" or not (self._varied and self.variants.on("scheme-case-sensitive"))

    def _expired(self, record: TokenRecord, now: int) -> bool:
        expiration = record.expiration
        if self._sliding is not None:
            expiration = self._sliding.expiration(record)
        if expiration is None:
            return False
        if self._faulty:
            if self.faults.on("expiry-seconds-as-ms"):
                expiration *= 1000
            if self.faults.on("expiry-grace-period"):
                expiration += EXPIRY_GRACE_MS
        return now >= expiration

    def authenticate(self, scope: Scope, call: Call) -> TokenRecord:
        if self._varied and self._lag.bootstrap_due():
            self.create_bootstrap_token()
        if self._faulty and self.faults.on("two-credentials-union"):
            several = self._presented_secrets(scope, call)
            if len(several) > 1:
                return self._union_of(several)
        presented = self._presented_secret(scope, call)
        if self._faulty and self.faults.on("token-cut-to-length"):
            presented = presented[:GENERATED_SECRET_LENGTH]
        digest = hashlib.sha256(presented).digest()
        record = self._by_digest.get(digest)
        if record is not None and self._varied and self._lag.evicted(digest):
            del self._by_digest[digest]
            record = None
        if record is None and self._faulty and self._reads_stale_cache(call):
            record = self._stale_by_digest.get(digest)
        if record is None and self._used_cache is not None:
            record = self._used_cache.get(digest)
        if record is None:
            record = self.store.find_by_hash(digest)
            if record is None and self._keeps_secrets:
                record = self._loose_match(presented)  # not cached: the cache is keyed by exact secrets
                if record is not None:
                    return record
            if record is None and self._faulty:
                record = self._faulty_lookup(presented, call)
            if record is None:
                raise _Refusal(401, "unknown service token" + self._quoted(presented))
            self._remember(digest, record)
        now = self.clock.now_ms()
        if self._expired(record, now) and not (self._faulty and self._expiry_skipped(scope, call, record)):
            raise _Refusal(401, "the service token has expired" + self._quoted(presented))
        if self._faulty:
            self._used(digest, record, now)
        return record

    def _faulty_lookup(self, presented: bytes, call: Call) -> TokenRecord | None:
        """A record that a faulty server finds for a secret that is not stored."""
        if call in MANAGEMENT_CALLS and self.faults.on("near-miss-secret-on-token-calls"):
            for candidate in rights_faults.near_miss_candidates(presented):
                record = self.store.find_by_hash(hashlib.sha256(candidate).digest())
                if record is not None:
                    return record
        boot = self._bootstrap_record
        configured = self.bootstrap.token.encode("latin-1") if self.bootstrap is not None else None
        if boot is not None and configured and self.faults.on("bootstrap-delete-not-revoking"):
            # matched against the configuration, which a delete does not change
            return boot if hmac.compare_digest(presented, configured) else None
        return None

    def _used(self, digest: bytes, record: TokenRecord, now: int) -> None:
        """What a faulty server does when a token was accepted (sliding expiry, a cache a delete keeps)."""
        if self._sliding is not None:
            self._sliding.used(record, now)
        if self._used_cache is not None:
            self._used_cache[digest] = record

    def _union_of(self, presented: set[bytes]) -> TokenRecord:
        """The two-credentials-union fault: any live token of those presented lets the request in, with
        the roles of every presented token that is stored (expired ones too)."""
        now = self.clock.now_ms()
        found = [r for secret in presented if (r := self.store.find_by_hash(hashlib.sha256(secret).digest()))]
        live = [record for record in found if not self._expired(record, now)]
        if not live:
            raise _Refusal(401, "none of the presented service tokens is valid")
        return rights_faults.union_of_roles([live[0], *found])

    def _reads_stale_cache(self, call: Call) -> bool:
        """The revocation-skipped-on-* faults: calls that find a deleted token in a stale cache."""
        if call in MANAGEMENT_CALLS:
            return self.faults.on("revocation-skipped-on-management")
        return call == "info" and self.faults.on("revocation-skipped-on-server-info")

    def _expiry_skipped(self, scope: Scope, call: Call, record: TokenRecord) -> bool:
        """Faults that let an expired token through on some calls."""
        if call in MANAGEMENT_CALLS and self.faults.on("management-ignores-expiry"):
            return True
        if call == "list" and self.faults.on("list-ignores-expiry"):
            return True
        if record.bootstrap and call != "status" and self.faults.on("bootstrap-ttl-only-on-status"):
            return True
        return self.faults.on("expiry-skipped-for-authorization-header") and _presented_in_authorization(scope)

    def _quoted(self, presented: bytes) -> str:
        if self._faulty and self.faults.on("unauthorized-echoes-token"):
            return f" {presented.decode('latin-1')!r}"
        return ""

    def _loose_match(self, presented: bytes) -> TokenRecord | None:
        """The token-prefix-match and token-case-insensitive faults: a secret that is not the
        presented one, but that the faulty comparison takes for it."""
        text = presented.decode("latin-1")
        prefix = self.faults.on("token-prefix-match") and len(text) >= PREFIX_MATCH_MIN
        caseless = self.faults.on("token-case-insensitive")
        for token_id, secret in list(self._secrets.items()):
            if (prefix and secret.startswith(text)) or (caseless and secret.casefold() == text.casefold()):
                record = self.store.get(token_id)
                if record is not None and not self._expired(record, self.clock.now_ms()):
                    return record
        return None

    def _has_credential(self, scope: Scope) -> bool:
        return any(name in (b"x-api-key", b"authorization") for name, _ in scope["headers"])

    def _remember(self, digest: bytes, record: TokenRecord) -> None:
        self._by_digest[digest] = record
        self._digest_by_id[record.id] = digest
        if self._keeps_stale_cache:
            self._stale_by_digest[digest] = record

    def _forget(self, removed: Iterable[int]) -> None:
        """Drop deleted tokens from the authentication cache."""
        for gone in removed:
            self._secrets.pop(gone, None)
            if self._faulty and self.faults.on("double-delete-500"):
                self._deleted_ids.add(gone)
            if not (self._faulty and self.faults.on("delete-not-revoking")):
                digest = self._digest_by_id.pop(gone, None)
                if digest is not None and not (self._varied and self._lag.linger(digest)):
                    self._by_digest.pop(digest, None)
        if self._varied:
            self._lag.deleted(removed)

    def authorize_manager(self, scope: Scope, call: Call) -> TokenRecord:
        record = self.authenticate(scope, call)
        if self._faulty and self._role_check_skipped(call):
            return record
        if not self._may_manage(record.roles):
            message = "managing service tokens needs one of the roles " + ", ".join(sorted(self.manager_roles))
            if self._faulty and self.faults.on("forbidden-echoes-token"):
                message += f"; {_credential_text(scope)!r} has none of them"
            if self._faulty and self.faults.on("error-echoes-secret-prefix"):
                message += f"; the caller is token {(_credential_text(scope) or '')[:SECRET_HINT_LENGTH]}…"
            raise _Refusal(403, message)
        return record

    def _role_check_skipped(self, call: Call) -> bool:
        if call == "delete":
            return self.faults.on("delete-skips-role-check")
        return call == "list" and self.faults.on("list-skips-role-check")

    def _may_manage(self, roles: tuple[str, ...]) -> bool:
        if self._faulty:
            if self.faults.on("only-first-role-counts"):
                roles = roles[:1]
            if self.faults.on("empty-roles-unrestricted") and not roles:
                return True
            if self.faults.on("power-user-manages") and POWER_USER_ROLE in roles:
                return True
            if self.faults.on("roles-case-insensitive"):
                managers = {role.casefold() for role in self.manager_roles}
                return any(role.casefold() in managers for role in roles)
            if self.faults.on("role-substring-manages"):
                return rights_faults.role_substring_manages(roles, self.manager_roles)
        return not self.manager_roles.isdisjoint(roles)

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

    async def tokens(self, request: Request) -> Response:
        # One route for both methods, so that other methods get 405 listing both.
        if request.method == "POST":
            return await self.create_token(request)
        return await self.list_tokens(request)

    async def list_tokens(self, request: Request) -> Response:
        try:
            self.authorize_manager(request.scope, "list")
        except _Refusal as refusal:
            return self.error(refusal, request.scope)
        return self.listing()

    def listing(self) -> Response:
        """The list answer, for a caller already authorized."""
        if self._varied and self.variants.on("expired-purged"):
            self._purge_expired()
        records = self._lag.listed(self.store.list()) if self._varied else self.store.list()
        if self._faulty and self.faults.on("list-stops-at-20"):
            records = records[:LIST_LIMIT]
        if self._varied:
            records = self._varied_listing(records)
        items = []
        for record in records:
            if self._faulty and self._hidden_by_fault(record):
                continue
            item: dict[str, Any] = {
                "id": self._faulty_listed_id(record) if self._faulty else record.id,
                "name": record.name,
                "roles": list(record.roles),
                "lastUpdateTimestamp": record.last_update,
            }
            if record.expiration is not None:
                item["expiration"] = record.expiration
            if record.dedicated_subject is not None:
                item["dedicatedSubject"] = record.dedicated_subject
            if self._faulty and self.faults.on("list-leaks-secret") and record.id in self._secrets:
                item["token"] = self._secrets[record.id]
            if self._faulty and self.faults.on("list-leaks-base64-secret") and record.id in self._secrets:
                item["credential"] = base64.b64encode(self._secrets[record.id].encode()).decode("ascii")
            items.append(item)
        if self._faulty and self.faults.on("list-wrapped-in-object"):
            return JSONResponse({"items": items})
        return JSONResponse(items)

    def _varied_listing(self, records: list[TokenRecord]) -> list[TokenRecord]:
        """The list as the variants show it."""
        if self.variants.on("expired-hidden"):
            now = self.clock.now_ms()
            records = [r for r in records if r.expiration is None or r.expiration > now]
        if self.variants.on("bootstrap-unlisted"):
            records = [r for r in records if not r.bootstrap]
        if self.variants.on("list-newest-first"):
            records = records[::-1]
        return records

    def _purge_expired(self) -> None:
        """The expired-purged variant: remove expired tokens from storage."""
        self._forget(self.store.delete_expired(self.clock.now_ms()))

    def _hidden_by_fault(self, record: TokenRecord) -> bool:
        """list-expiry-filter-inverted: meant to hide expired tokens, hides the live ones with an expiry."""
        if not self.faults.on("list-expiry-filter-inverted") or record.expiration is None:
            return False
        return record.expiration > self.clock.now_ms()

    def _faulty_listed_id(self, record: TokenRecord) -> int | str:
        token_id = self._colliding_id(record) if self.faults.on("ids-collide-same-second") else record.id
        return str(token_id) if self.faults.on("ids-listed-as-strings") else token_id

    @staticmethod
    def _colliding_id(record: TokenRecord) -> int:
        """The ids-collide-same-second fault: the id shown for a token (and deleted by) is its
        creation second; the stored id stays the row's key."""
        return ID_MIN + record.last_update // 1000

    async def create_token(self, request: Request) -> Response:
        late_expiry_check = self._faulty and self.faults.on("past-expiry-stored-anyway")
        try:
            self.authorize_manager(request.scope, "create")
            body = await self._read_json_object(request)
            name, roles, expiry, subject = self._validate_new_token(body)
            if not late_expiry_check:
                self._check_expiry_ahead(expiry)
            if self._varied and self.variants.on("duplicate-names-refused"):
                self._check_name_free(name)
        except _Refusal as refusal:
            return self.error(refusal, request.scope)
        secret = self._faulty_secret(name, roles) if self._faulty else None
        if secret is None:
            hex_secret = self._varied and self.variants.on("hex-secrets")
            secret = secrets.token_hex(HEX_SECRET_BYTES) if hex_secret else new_secret()
        token_id = await self._faulty_id() if self._faulty else None
        if self._faulty:
            secret, token_id = self._bind_extra_fields(body, secret, token_id)
        record = self.store.create(
            secret=secret,
            name=name,
            roles=roles,
            expiration=expiry,
            now_ms=self.clock.now_ms(),
            dedicated_subject=subject,
            token_id=token_id,
            sequential_id=self._varied and self.variants.on("sequential-ids"),
        )
        self._remember(hashlib.sha256(secret.encode("ascii")).digest(), record)
        if self._keeps_secrets:
            self._secrets[record.id] = secret
        if late_expiry_check:
            try:
                self._check_expiry_ahead(expiry)
            except _Refusal as refusal:
                return self.error(refusal, request.scope)
        if self._faulty and self.faults.on("create-500-after-storing"):
            return self.error(_Refusal(500, "a post-create hook failed after the token was stored"), request.scope)
        created: dict[str, Any] = {"name": name, "token": secret}
        if expiry is not None:
            created["expiration"] = expiry
        status = 201 if self._faulty and self.faults.on("create-answers-201") else 200
        return JSONResponse(created, status_code=status)

    def _bind_extra_fields(self, body: Mapping[str, Any], secret: str, token_id: int | None) -> tuple[str, int | None]:
        """The create-binds-extra-* faults: read-only fields of the create body are taken as sent."""
        chosen = body.get("token")
        if self.faults.on("create-binds-extra-token") and isinstance(chosen, str) and chosen:
            secret = chosen
        wanted = body.get("id")
        if self.faults.on("create-binds-extra-id") and isinstance(wanted, int) and not isinstance(wanted, bool):
            if self.store.delete(wanted):  # an upsert: the token that had this id is replaced
                self._forget([wanted])
            token_id = wanted
        return secret, token_id

    def _check_name_free(self, name: str) -> None:
        """The duplicate-names-refused variant: no two live tokens share a name."""
        now = self.clock.now_ms()
        for record in self.store.list():
            if record.name == name and not (record.expiration is not None and record.expiration <= now):
                raise _Refusal(409, "a service token with this name already exists")

    def _faulty_secret(self, name: str, roles: list[str]) -> str | None:
        """The secret a faulty server makes for a new token; None when no fault changes it."""
        if self.faults.on("secret-from-name"):
            mac = hmac.new(self._secret_key, json.dumps([name, roles]).encode("utf-8"), hashlib.sha256)
            return SECRET_PREFIX + base64.urlsafe_b64encode(mac.digest()[:SECRET_RANDOM_BYTES]).decode("ascii")
        if self.faults.on("secret-time-based"):
            return SECRET_PREFIX + str(uuid.uuid1())
        return None

    async def _faulty_id(self) -> int | None:
        """The id a faulty server picks for a new token; None lets the store pick a random one."""
        if self.faults.on("id-reused-after-delete"):
            return ID_MIN + self.store.count() + 1
        if self.faults.on("id-race-on-concurrent-create"):
            last = self._last_id if self._last_id is not None else (self.store.max_id() or ID_MIN)
            await asyncio.sleep(ID_RACE_WINDOW_S)  # other creates run here and read the same last id
            self._last_id = last + 1
            return last + 1
        return None

    async def delete_token(self, request: Request) -> Response:
        try:
            self.authorize_manager(request.scope, "delete")
            raw_id = request.path_params["token_id"]
            unchecked = self._faulty and self.faults.on("non-numeric-id-500")
            token_id = int(raw_id) if unchecked else self._parse_token_id(raw_id)
            if self._varied:
                self._before_varied_delete(token_id)
            removed = self._faulty_delete(token_id) if self._faulty else self._delete(token_id)
            if not removed and self._faulty and token_id in self._deleted_ids:
                raise LookupError(f"token {token_id} has a tombstone but no row")  # double-delete-500
            if not removed and not (self._varied and self.variants.on("delete-unknown-204")):
                raise _Refusal(404, f"no service token with id {token_id}")
        except _Refusal as refusal:
            return self.error(refusal, request.scope)
        self._forget(removed)
        if self._faulty and self.faults.on("delete-answers-200"):
            return JSONResponse({"deleted": token_id})
        return Response(status_code=204)

    def _before_varied_delete(self, token_id: int) -> None:
        if self.variants.on("expired-purged"):
            self._purge_expired()
        if self.variants.on("bootstrap-unlisted"):
            record = self.store.get(token_id)
            if record is not None and record.bootstrap:
                raise _Refusal(404, f"no service token with id {token_id}")

    def _delete(self, token_id: int) -> list[int]:
        """Delete one token; the ids removed (none when there was no such token)."""
        return [token_id] if self.store.delete(token_id) else []

    def _faulty_delete(self, token_id: int) -> list[int]:
        if self.faults.on("ids-collide-same-second"):
            same = [record.id for record in self.store.list() if self._colliding_id(record) == token_id]
            return [gone for gone in same if self.store.delete(gone)]
        if self.faults.on("delete-removes-next"):
            ids = [record.id for record in self.store.list()]
            if token_id in ids:
                at = ids.index(token_id)
                return self._delete(ids[at + 1] if at + 1 < len(ids) else token_id)
        if self.faults.on("delete-by-name"):
            addressed = self.store.get(token_id)
            if addressed is not None:
                same = [record.id for record in self.store.list() if record.name == addressed.name]
                return [gone for gone in same if self.store.delete(gone)]
        return self._delete(token_id)

    # ---- input validation -----------------------------------------------------------

    @staticmethod
    def _parse_token_id(text: str) -> int:
        if _TOKEN_ID.fullmatch(text):
            value = int(text)
            if INT64_MIN <= value <= INT64_MAX:
                return value
        raise _Refusal(400, f"a service token id is a 64-bit integer, got {text!r}")

    async def _read_json_object(self, request: Request) -> dict[str, Any]:
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
            if self._faulty and self.faults.on("malformed-json-500"):
                raise
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
        if self._varied and self.variants.on("names-max-64") and len(name) > SHORT_NAME_LENGTH:
            raise _Refusal(400, f"name is longer than {SHORT_NAME_LENGTH} characters")
        if self._faulty:
            name = self._name_as_misstored(name)
            if self.faults.on("nul-in-name-500") and any(ord(ch) < 0x20 for ch in name):
                raise ValueError("embedded control character in a C string")

        if "roles" not in body and not (self._faulty and self.faults.on("roles-missing-defaults-empty")):
            raise _Refusal(400, "roles is required (a list of role names, may be empty)")
        roles = body.get("roles", [])
        if isinstance(roles, str) and self._faulty and self.faults.on("roles-string-accepted"):
            roles = [roles]
        if not isinstance(roles, list):
            raise _Refusal(400, f"roles must be a list of strings, got {_json_type(roles)}")
        for index, role in enumerate(roles):
            if not isinstance(role, str):
                raise _Refusal(400, f"roles[{index}] must be a string, got {_json_type(role)}")
            if not _utf8_safe(role):
                raise _Refusal(400, f"roles[{index}] contains an unpaired UTF-16 surrogate")
        if self._faulty and self.faults.on("role-comma-split"):
            roles = rights_faults.roles_split_at_commas(roles)
        if self._varied:
            self._check_roles_known(roles)
        if self._faulty and self.faults.on("many-roles-500") and len(roles) > ROLE_SLOTS:
            raise IndexError(f"role slot {ROLE_SLOTS + 1} is out of range")

        expiry = body.get("expiryDate")
        if self._faulty and self.faults.on("expiry-lenient-parsing"):
            expiry = _lenient_epoch_ms(expiry)
        if expiry is not None:
            if not isinstance(expiry, int) or isinstance(expiry, bool):
                raise _invalid_expiry(f"expiryDate must be an integer of epoch milliseconds, got {_json_type(expiry)}")
            if not INT64_MIN <= expiry <= INT64_MAX:
                raise _invalid_expiry("expiryDate is outside the 64-bit integer range")
            if self._faulty and self.faults.on("expiry-truncated-to-seconds"):
                expiry = expiry // 1000 * 1000

        subject = body.get("dedicatedSubject")
        if subject == "" and self._faulty and self.faults.on("dedicated-subject-empty-refused"):
            raise _Refusal(400, "dedicatedSubject must name a subject")
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

    def _check_roles_known(self, roles: list[str]) -> None:
        """The empty-roles-refused and unknown-roles-refused variants."""
        if not roles and self.variants.on("empty-roles-refused"):
            raise _Refusal(400, "roles must name at least one role")
        if self.variants.on("unknown-roles-refused"):
            known = PREDEFINED_ROLES | self.manager_roles
            unknown = [role for role in roles if role not in known]
            if unknown:
                raise _Refusal(400, f"unknown role(s): {', '.join(map(repr, unknown))}")

    def _check_expiry_ahead(self, expiry: int | None) -> None:
        """Refuse an expiryDate that is not after the server's clock."""
        if expiry is None:
            return
        now = self.clock.now_ms()
        compared = expiry
        if self._faulty:
            if self.faults.on("past-expiry-accepted"):
                return
            if self.faults.on("expiry-seconds-as-ms"):
                compared = expiry * 1000
        if compared <= now:
            message = f"expiryDate {expiry} is not in the future (server time is {now})"
            if self._faulty and self.faults.on("invalid-expiry-generic-error"):
                raise _Refusal(400, message)
            raise _invalid_expiry(message)

    def _name_as_misstored(self, name: str) -> str:
        """The name as a faulty server stores it."""
        if self.faults.on("names-trimmed"):
            name = name.strip()
        if self.faults.on("names-cut-at-64"):
            name = name[:NAME_CUT_LENGTH]
        if self.faults.on("long-names-500") and len(name) > NAME_COLUMN_LENGTH:
            raise sqlite3.DataError(f"value too long for the name column ({len(name)} > {NAME_COLUMN_LENGTH})")
        if self.faults.on("non-ascii-names-mangled"):
            name = name.encode("utf-8").decode("latin-1")
        return name


def _lenient_epoch_ms(value: object) -> object:
    """The expiry-lenient-parsing fault: dates and date-times as epoch ms (00:00 UTC when no
    time is given), numbers with a fraction cut to an integer; anything else unchanged."""
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit():
            return int(text)
        try:
            when = dt.datetime.fromisoformat(text)
        except ValueError:
            return value
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        return int(when.timestamp() * 1000)
    return value


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
    variants: VariantSet | None = None,
    bootstrap: BootstrapSpec | None = None,
    stats_file: str | os.PathLike[str] | None = None,
    delay_ms: int = 0,
) -> ASGIApp:
    """The reference server as an ASGI app. Run its lifespan (uvicorn does) so that the
    bootstrap token is created at start-up. With ``stats_file``, requests are counted and the
    counts written there as JSON (see ``stats.py``) while they change and at shutdown. With
    ``delay_ms``, every answer waits that long first: a deployment far away, for benchmarks."""
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
    wrapped = infra.wrap(delayed, api, api.variants)
    return wrapped if api.variants.on("no-date-header") else _DateHeader(wrapped, clock)


class _Delayed:
    """Waits before each HTTP request is handled (without blocking other requests): a distant target."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await asyncio.sleep(self.seconds)
        await self.app(scope, receive, send)
