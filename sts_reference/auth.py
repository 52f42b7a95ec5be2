"""Authentication and authorization: which token a request presents, and whether it may manage tokens.

The faults and variants that change how a token is read, compared, cached, revoked or
expired are decided here, where the faithful behaviour is.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from starlette.types import Scope

from . import model_faults, rights_faults
from .api_common import (
    _OWS,
    EXPIRY_GRACE_MS,
    GENERATED_SECRET_LENGTH,
    HOUR_MS,
    MANAGEMENT_CALLS,
    POWER_USER_ROLE,
    PREFIX_MATCH_MIN,
    SECRET_HINT_LENGTH,
    SESSION_SCOPE_KEY,
    ApiState,
    Call,
    _credential_text,
    _presented_in_authorization,
    _Refusal,
    _scheme_and_credentials,
)
from .store import TokenRecord


class Authentication(ApiState):
    """Reads the credential a request presents and decides who it is and what it may do."""

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
            if self.faults.on("expiry-enforced-one-hour-late"):
                expiration += HOUR_MS
            if self.faults.on("far-expiry-wraps") and model_faults.far_expiry_wraps(expiration):
                return True
        return now >= expiration

    def authenticate(self, scope: Scope, call: Call) -> TokenRecord:
        if self._varied and (due := self._lag.bootstrap_due(self._presents_bootstrap(scope, call))) is not None:
            self.create_bootstrap_token(at_ms=due)
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
            if record is None and self._session_records is not None and scope.get(SESSION_SCOPE_KEY):
                record = self._session_records.get(digest)  # session-outlives-delete
            if record is None and self._faulty:
                record = self._faulty_lookup(presented, call, scope)
            if record is None:
                raise _Refusal(401, "unknown service token" + self._quoted(presented))
            self._remember(digest, record)
        now = self.clock.now_ms()
        if self._expired(record, now) and not (self._faulty and self._expiry_skipped(scope, call, record)):
            raise _Refusal(401, "the service token has expired" + self._quoted(presented))
        if self._faulty:
            self._used(digest, record, now)
        return record

    def _presents_bootstrap(self, scope: Scope, call: Call) -> bool:
        """Whether the request presents the configured bootstrap token (bootstrap-stored-when-presented)."""
        if self.bootstrap is None or not self._lag.bootstrap_when_presented:
            return False
        try:
            presented = self._presented_secret(scope, call)
        except _Refusal:
            return False
        return hmac.compare_digest(presented, self.bootstrap.token.encode("latin-1"))

    def _faulty_lookup(self, presented: bytes, call: Call, scope: Scope) -> TokenRecord | None:
        """A record that a faulty server finds for a secret that is not stored."""
        deferred = self._deferred_makers
        if deferred is not None and call in MANAGEMENT_CALLS and _presented_in_authorization(scope):
            found = deferred.granted(hashlib.sha256(presented).digest())
            if found is not None:
                return found
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
        if self._session_records is not None:
            self._session_records[digest] = record

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
        if scope.get(SESSION_SCOPE_KEY) and self.faults.on("session-outlives-expiry"):
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
            if self._faulty and self._deferred_makers is not None and self._makers is not None:
                digest = self._digest_by_id.get(gone)
                record = self._by_digest.get(digest) if digest is not None else None
                if digest is not None and record is not None:
                    self._deferred_makers.deleted(digest, record, self._makers.made_by(gone))
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
