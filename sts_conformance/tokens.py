"""Token bookkeeping: every token a run creates, its id, and its cleanup.

The create response carries no id, so the ledger finds the id of each token it makes by
listing: a candidate must carry the token's name, must not be claimed already, and —
for names that are not unique to this run — must not have existed before the create.
Creates of such names are serialised across xdist workers with a file lock, so two
workers never race for the same candidate. Cleanup deletes only ids the ledger claimed:
a token the run did not create is never touched, whatever its name.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .client import ApiClient, AuthForm
from .redact import REDACTOR, fingerprint

#: Every token name the suite makes starts with this, then the run id: ``stsct-1a2b3c-gw0-auth-7``.
NAME_PREFIX = "stsct-"


def run_prefix(run_id: str) -> str:
    """The name prefix shared by every token one run creates (all its workers)."""
    return f"{NAME_PREFIX}{run_id}-"


class LedgerError(AssertionError):
    """The target did something that keeps the ledger from tracking a token."""


@dataclass
class OwnedToken:
    """A token this run created. ``secret`` never appears in its repr."""

    name: str
    secret: str = field(repr=False)
    roles: list[str]
    expiration: int | None
    id: int | None = None
    deleted: bool = False
    response: dict[str, Any] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        return (
            f"OwnedToken(name={self.name!r}, id={self.id!r}, roles={self.roles!r}, "
            f"expiration={self.expiration!r}, secret={fingerprint(self.secret)}, deleted={self.deleted})"
        )


class TokenLedger:
    def __init__(
        self,
        client: ApiClient,
        admin_token: str,
        admin_form: AuthForm,
        prefix: str,
        lock_path: Path | None = None,
    ):
        self.client = client
        self.admin_token = admin_token
        self.admin_form = admin_form
        self.prefix = prefix
        #: names every worker of this run makes start with this (``stsct-<run>-``)
        self.run_prefix = prefix.rsplit("-", 1)[0] + "-" if prefix.count("-") >= 2 else prefix + "-"
        self.lock_path = lock_path
        self._counter = itertools.count(1)
        self._owned: list[OwnedToken] = []
        self._claimed: set[int] = set()
        self._mutex = threading.RLock()

    # -- names --------------------------------------------------------------------------

    def name(self, label: str = "tok") -> str:
        """A name unique to this run and worker, e.g. ``stsct-1a2b3c-gw0-lifecycle-7``."""
        return f"{self.prefix}-{label}-{next(self._counter)}"

    def is_ours(self, name: object) -> bool:
        return isinstance(name, str) and name.startswith(self.prefix + "-")

    @property
    def owned(self) -> list[OwnedToken]:
        with self._mutex:
            return list(self._owned)

    # -- admin calls --------------------------------------------------------------------

    def list_items(self) -> list[dict[str, Any]]:
        resp = self.client.list_tokens(self.admin_token, form=self.admin_form)
        if resp.status_code != 200:
            raise LedgerError(f"listing tokens with the admin credential returned {resp.status_code}")
        try:
            items = resp.json()
        except ValueError:
            raise LedgerError("the token list is not JSON") from None
        if not isinstance(items, list):
            raise LedgerError(f"the token list is a {type(items).__name__}, not a JSON array")
        return [i for i in items if isinstance(i, dict)]

    @contextlib.contextmanager
    def _cross_worker_lock(self) -> Iterator[None]:
        if self.lock_path is None:
            yield
            return
        with self.lock_path.open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # -- create -------------------------------------------------------------------------

    def create(
        self,
        label: str = "tok",
        *,
        name: str | None = None,
        roles: Sequence[str] | None = None,
        expiry_ms: int | None = None,
        default_roles: Sequence[str] = ("stackstate-guest",),
    ) -> OwnedToken:
        """Create a token that must be accepted (200); fail the check otherwise."""
        body: dict[str, Any] = {
            "name": name if name is not None else self.name(label),
            "roles": list(default_roles if roles is None else roles),
        }
        if expiry_ms is not None:
            body["expiryDate"] = expiry_ms
        resp, tok = self.create_raw(body)
        if tok is None:
            raise AssertionError(
                f"creating a token {body['name']!r} with roles {body['roles']} "
                f"(expiryDate {expiry_ms}) returned {resp.status_code}, expected 200: "
                f"{REDACTOR.mask(resp.text[:300])}"
            )
        if tok.id is None:
            raise LedgerError(f"token {tok.name!r} was created (200) but does not appear in the list")
        return tok

    def create_raw(self, body: Any, **request_kw: Any) -> tuple[httpx.Response, OwnedToken | None]:
        """Send a create request as given; if the target accepts it, track the new token.

        Returns the response and, when it is a 200 carrying a token, the tracked token
        (``id`` is None when no list entry could be attributed to it).
        """
        name = body.get("name") if isinstance(body, dict) else None
        unique = self.is_ours(name)
        lock = contextlib.nullcontext() if unique else self._cross_worker_lock()
        with lock:
            before = None if unique else {i.get("id") for i in self.list_items()}
            resp = self.client.create_token(self.admin_token, body, form=self.admin_form, **request_kw)
            tok = self._track(resp, body, before)
        return resp, tok

    def _track(self, resp: httpx.Response, body: Any, before: set[Any] | None) -> OwnedToken | None:
        if resp.status_code != 200:
            # A refused create must create nothing; record what the target did anyway, so a
            # token created despite the refusal is still cleaned up.
            if isinstance(body, dict) and isinstance(body.get("name"), str):
                self._adopt_strays(body["name"], before)
            return None
        try:
            data = resp.json()
        except ValueError:
            data = None
        secret = data.get("token") if isinstance(data, dict) else None
        if not isinstance(secret, str) or not secret:
            if isinstance(body, dict) and isinstance(body.get("name"), str):
                self._adopt_strays(body["name"], before)
            return None
        REDACTOR.register(secret)
        sent = body if isinstance(body, dict) else {}
        tok = OwnedToken(
            name=str(sent["name"]) if isinstance(sent.get("name"), str) else "",
            secret=secret,
            roles=list(sent.get("roles") or []) if isinstance(sent.get("roles"), list) else [],
            expiration=sent.get("expiryDate") if isinstance(sent.get("expiryDate"), int) else None,
            response=data,
        )
        with self._mutex:
            self._owned.append(tok)
            tok.id = self._attribute(tok.name, before, tok)
        return tok

    def _attribute(self, name: str, before: set[Any] | None, tok: OwnedToken | None) -> int | None:
        items = self.list_items()
        fresh = [
            i
            for i in items
            if isinstance(i.get("id"), int)
            and i["id"] not in self._claimed
            and (before is None or i["id"] not in before)
        ]
        candidates = [i for i in fresh if i.get("name") == name]
        if len(candidates) > 1 and tok is not None:
            # the same name twice among unclaimed ids: narrow by what was sent
            narrowed = [
                i
                for i in candidates
                if sorted(map(str, i.get("roles") or [])) == sorted(tok.roles) and i.get("expiration") == tok.expiration
            ]
            candidates = narrowed or candidates
        if not candidates and before is not None:
            # the target changed the name (trimmed, normalised): the one new id is ours, since
            # creates of non-unique names are serialised across workers — leaving out the
            # run-unique names other workers create at any moment
            foreign = [i for i in fresh if not str(i.get("name", "")).startswith(self.run_prefix)]
            if len(foreign) == 1:
                candidates = foreign
        if not candidates:
            return None
        chosen = int(candidates[0]["id"])
        self._claimed.add(chosen)
        return chosen

    def _adopt_strays(self, name: str, before: set[Any] | None) -> None:
        """After a refused create, claim any new entry with that name so cleanup removes it."""
        if before is None and not self.is_ours(name):
            return
        with self._mutex:
            try:
                while (stray := self._attribute(name, before, None)) is not None:
                    self._owned.append(OwnedToken(name=name, secret="", roles=[], expiration=None, id=stray))
            except LedgerError:
                return

    def adopt(
        self,
        name: str,
        secret: str | None = None,
        roles: Sequence[str] = (),
        expiration: int | None = None,
    ) -> OwnedToken | None:
        """Take over a token that something else (the CLI under test) created under a run-unique name.

        Claims the listed entry with that name, so cleanup deletes it, and returns it; returns
        None when no such entry is listed. Any further entries with the name are claimed as
        strays. Only names from :meth:`name` are accepted: nothing the run did not make is adopted.
        """
        if not self.is_ours(name):
            raise ValueError(f"only tokens with this run's names can be adopted, not {name!r}")
        REDACTOR.register(secret)
        tok = OwnedToken(name=name, secret=secret or "", roles=list(roles), expiration=expiration)
        with self._mutex:
            tok.id = self._attribute(name, None, tok)
            if tok.id is None:
                return None
            self._owned.append(tok)
            self._adopt_strays(name, None)
        return tok

    # -- delete and cleanup -------------------------------------------------------------

    def delete(self, tok: OwnedToken) -> httpx.Response:
        """Delete one of our tokens with the admin credential; mark it deleted on 2xx."""
        if tok.id is None:
            raise LedgerError(f"token {tok.name!r} has no known id; it cannot be deleted")
        resp = self.client.delete_token(self.admin_token, tok.id, form=self.admin_form)
        if resp.is_success:
            self.forget(tok)
        return resp

    def forget(self, tok: OwnedToken) -> None:
        """Mark a token as gone without a call (deleted another way, or removed by the target).

        Its id is released: a target may hand a freed id to the next token it creates.
        """
        with self._mutex:
            tok.deleted = True
            if tok.id is not None:
                self._claimed.discard(tok.id)

    def cleanup(self) -> list[str]:
        """Delete every token of ours still alive; return what could not be removed."""
        problems = []
        with self._mutex:
            pending = [t for t in self._owned if not t.deleted]
        for tok in pending:
            if tok.id is None:
                with self._mutex, contextlib.suppress(LedgerError):
                    tok.id = self._attribute(tok.name, None, tok) if self.is_ours(tok.name) else None
            if tok.id is None:
                problems.append(f"{tok!r}: id unknown, not deleted")
                continue
            try:
                resp = self.delete(tok)
            except httpx.HTTPError as exc:
                problems.append(f"{tok!r}: delete failed ({type(exc).__name__})")
                continue
            if not resp.is_success and resp.status_code != 404:
                problems.append(f"{tok!r}: delete returned {resp.status_code}")
            else:
                self.forget(tok)
        return problems
