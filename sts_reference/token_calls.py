"""The token calls: list, create and delete, and the validation of what a create sends.

The faults and variants that change what is listed, stored, answered or deleted are decided
here, where the faithful behaviour is.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import sqlite3
import uuid
from collections.abc import Mapping
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from . import model_faults, rights_faults
from .api_common import (
    _TOKEN_ID,
    HEX_SECRET_BYTES,
    HOUR_MS,
    ID_RACE_WINDOW_S,
    INT64_MAX,
    INT64_MIN,
    LIST_CAP,
    LIST_LIMIT,
    LIST_PAGE,
    MAX_BODY_BYTES,
    MAX_DEDICATED_SUBJECT_LENGTH,
    MAX_NAME_LENGTH,
    NAME_COLUMN_LENGTH,
    NAME_CUT_LENGTH,
    PREDEFINED_ROLES,
    ROLE_SLOTS,
    SECRET_PREFIX,
    SECRET_RANDOM_BYTES,
    SHORT_NAME_LENGTH,
    ApiState,
    _invalid_expiry,
    _json_type,
    _lenient_epoch_ms,
    _Refusal,
    _reject_constant,
    _utf8_safe,
    new_secret,
)
from .store import ID_MIN, TokenRecord

#: the ids-beyond-2-53 variant's smallest id: 2^53 + 1, the first integer a double cannot hold
BEYOND_DOUBLE_MIN = 2**53 + 1


class TokenCalls(ApiState):
    """Answers list, create and delete for a caller the handlers authorize."""

    async def tokens(self, request: Request) -> Response:
        # One route for both methods, so that other methods get 405 listing both.
        if request.method == "POST":
            return await self.create_token(request)
        return await self.list_tokens(request)

    async def list_tokens(self, request: Request) -> Response:
        if self._faulty and self.faults.on("list-public"):
            return self.listing()
        try:
            caller = self.authorize_manager(request.scope, "list")
        except _Refusal as refusal:
            return self.error(refusal, request.scope)
        if self._faulty and self.faults.on("list-shows-only-own-tokens") and not caller.bootstrap:
            return self.listing(only={caller.id} | self._made_by(caller.id))
        return self.listing()

    def _faulty_page(self, records: list[TokenRecord]) -> list[TokenRecord]:
        """The list faults of a large deployment: a cap, a silent first page, a sort then a cut."""
        if self.faults.on("list-capped-at-100"):
            return records[:LIST_CAP]
        if self.faults.on("list-paged-at-1000"):
            return records[:LIST_PAGE]
        if self.faults.on("list-sorted-truncated"):
            return sorted(records, key=lambda record: record.name)[:LIST_PAGE]
        return records

    def listing(self, only: set[int] | None = None) -> Response:
        """The list answer, for a caller already authorized (``only``: the ids a faulty list keeps)."""
        if self._varied and self.variants.on("expired-purged"):
            self._purge_expired()
        records = self._lag.listed(self.store.list()) if self._varied else self.store.list()
        if self._faulty and self.faults.on("list-stops-at-20"):
            records = records[:LIST_LIMIT]
        if self._faulty:
            records = self._faulty_page(records)
        if self._varied:
            records = self._varied_listing(records)
        items = []
        for record in records:
            if self._faulty and (self._hidden_by_fault(record) or (only is not None and record.id not in only)):
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
            caller = self.authorize_manager(request.scope, "create")
            body = await self._read_json_object(request)
            name, roles, expiry, subject = self._validate_new_token(body)
            if not late_expiry_check:
                self._check_expiry_ahead(expiry)
            if self._varied and self.variants.on("duplicate-names-refused"):
                self._check_name_free(name)
            first_only = self._first_duplicate if self._faulty else None
            if first_only is not None and first_only.refuses(not self._name_free(name)):
                raise _Refusal(409, "a service token with this name already exists")
        except _Refusal as refusal:
            return self.error(refusal, request.scope)
        if self._faulty and self.faults.on("create-idempotent-by-name"):
            again = self._created_again(name)
            if again is not None:
                return again
        secret = self._faulty_secret(name, roles) if self._faulty else None
        if secret is None:
            hex_secret = self._varied and self.variants.on("hex-secrets")
            secret = secrets.token_hex(HEX_SECRET_BYTES) if hex_secret else new_secret()
        token_id = await self._faulty_id() if self._faulty else None
        if token_id is None and self._varied and self.variants.on("ids-beyond-2-53"):
            token_id = BEYOND_DOUBLE_MIN + secrets.randbelow(2**63 - BEYOND_DOUBLE_MIN)
        if self._faulty:
            secret, token_id = self._bind_extra_fields(body, secret, token_id)
            expiry = self._misstored_expiry(expiry)
        record = self.store.create(
            secret=secret,
            name=name,
            roles=roles,
            expiration=expiry,
            now_ms=self.clock.now_ms(),
            dedicated_subject=subject,
            token_id=token_id,
            sequential_id=self._varied and self.variants.on("sequential-ids"),
            lowest_free_id=self._varied and self.variants.on("ids-reused-after-delete"),
        )
        self._remember(hashlib.sha256(secret.encode("ascii")).digest(), record)
        if self._faulty and self._makers is not None:
            self._makers.made(record.id, caller.id)
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

    def _created_again(self, name: str) -> Response | None:
        """create-idempotent-by-name: the live token holding ``name``, its secret shown once more."""
        now = self.clock.now_ms()
        for record in self.store.list():
            live = record.expiration is None or record.expiration > now
            if record.name == name and live and record.id in self._secrets:
                created: dict[str, Any] = {"name": name, "token": self._secrets[record.id]}
                if record.expiration is not None:
                    created["expiration"] = record.expiration
                return JSONResponse(created)
        return None

    def _misstored_expiry(self, expiry: int | None) -> int | None:
        """The expiry a faulty server stores, after it checked the one sent (issue 24's round-trip faults)."""
        if expiry is None:
            return None
        if self.faults.on("expiry-stored-times-1000"):
            return min(expiry * 1000, INT64_MAX)  # the column is a 64-bit integer
        if self.faults.on("expiry-one-hour-late"):
            return min(expiry + HOUR_MS, INT64_MAX)
        return expiry

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
        if not self._name_free(name):
            raise _Refusal(409, "a service token with this name already exists")

    def _name_free(self, name: str) -> bool:
        """Whether no live token holds ``name``."""
        now = self.clock.now_ms()
        return not any(
            record.name == name and not (record.expiration is not None and record.expiration <= now)
            for record in self.store.list()
        )

    def _made_by(self, maker_id: int) -> set[int]:
        return self._makers.made_by(maker_id) if self._makers is not None else set()

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
            if not (self._faulty and self.faults.on("delete-public")):
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
        if self._makers is not None and self.faults.on("tokens-die-with-their-maker"):
            removed = self._delete(token_id)
            if removed:
                removed += [gone for made in sorted(self._makers.made_by(token_id)) for gone in self._delete(made)]
            return removed
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
        if self._faulty and self.faults.on("roles-capped-at-32"):
            roles = model_faults.roles_capped(roles)
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
