"""Token bookkeeping: every token a run creates, its id, and its cleanup.

The create response carries no id, so the ledger finds the id of each token it makes by
listing: a candidate must carry the token's name, must not be claimed already (by this
process, or by another xdist worker of the run, as its journal says), and must not have
existed before the run. Cleanup deletes only what the run created: a token the run did not
create is never touched, whatever its name.

Bookkeeping is tolerant where conformance is not its job: any 2xx create with a usable secret
is good enough to go on, and an id listed as a string of digits is still that id. The exact
behaviour is judged only by the requirement that names it. When bookkeeping cannot go on (a
create refused, a new token missing from the list), the running check is *blocked* by the
requirement of that foundation (:mod:`.preconditions`) instead of failing its own. When the
target clearly cannot show what was just created, the run stops creating tokens altogether,
so a broken target is not flooded.

Every create is journalled before it is sent (:mod:`.journal`), so a token whose create
answer was lost is still found and deleted at the end of the run.
"""

from __future__ import annotations

import contextlib
import contextvars
import fcntl
import functools
import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from sts_conformance.core import preconditions as pre
from sts_conformance.core.redact import REDACTOR, fingerprint
from sts_conformance.target import settle, together
from sts_conformance.target.client import ApiClient, AuthForm
from sts_conformance.target.together import run_together
from sts_conformance.tokens.journal import (
    GONE,
    ID,
    INTENT,
    JOURNAL_GLOB,
    Journal,
    duplicate_ids,
    outstanding,
    parse_events,
    token_id,
)
from sts_conformance.tokens.sweep import CLEANUP_SECONDS, Leftover, sweep

#: After this many tokens in a row were created but never listed, the run stops creating tokens.
BROKEN_AFTER = 3
_BROKEN_FLAG = "target-broken"


#: the ledger (its id) whose cross-worker lock the running code holds for a wave of foreign names
#: (:meth:`TokenLedger.foreign_names_together`): a context variable, so the calls the wave sends together
#: see it (``together.run_together`` runs each in a copy of its caller's context) and other checks do not
_WAVE_HOLDS_LOCK: contextvars.ContextVar[int | None] = contextvars.ContextVar("sts_wave_holds_lock", default=None)


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
    #: the status the create was answered with (any 2xx)
    status: int = 200
    #: the journal key of its create
    key: str | None = None
    #: when the list shows it only under an id another token has (of the run, or from before it)
    clash: int | None = None
    #: how long the create took to answer, in seconds
    elapsed: float | None = None

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
        *,
        run_dir: Path | None = None,
        journal: Journal | None = None,
        baseline: Iterable[int] = (),
        lock_path: Path | None = None,
    ):
        self.client = client
        self.admin_token = admin_token
        self.admin_form = admin_form
        self.prefix = prefix
        #: names every worker of this run makes start with this (``stsct-<run>-``)
        self.run_prefix = prefix.rsplit("-", 1)[0] + "-" if prefix.count("-") >= 2 else prefix + "-"
        self.run_dir = run_dir
        self.journal = journal or Journal(None, prefix.rsplit("-", 1)[-1])
        #: ids listed before the run started: never ours
        self.baseline = frozenset(baseline)
        self.lock_path = lock_path or (run_dir / "create.lock" if run_dir is not None else None)
        self._counter = itertools.count(1)
        self._owned: list[OwnedToken] = []
        self._claimed: set[int] = set()
        self._mutex = threading.RLock()
        #: set while :meth:`foreign_names_together` holds the cross-worker lock for a wave of creates
        self._unlisted_streak = 0
        self._broken: str | None = None
        self._peer_offsets: dict[Path, int] = {}
        self._peer_claims: set[int] = set()
        #: the names of the peers' claimed ids (from their journals' intents), where known
        self._peer_names: dict[int, str] = {}
        self._peer_intents: dict[str, str] = {}
        #: the name each id this ledger claimed was listed under when it was claimed
        self._listed_names: dict[int, str | None] = {}
        #: the list entry each id this ledger claimed had when it was claimed
        self._listed_entries: dict[int, dict[str, Any]] = {}
        #: ids of tokens this ledger deleted (a lagging list may still show them)
        self._released: dict[int, tuple[str, float, dict[str, Any] | None]] = {}

    # -- names --------------------------------------------------------------------------

    def name(self, label: str = "tok") -> str:
        """A name unique to this run and worker, e.g. ``stsct-1a2b3c-gw0-lifecycle-7``."""
        return f"{self.prefix}-{label}-{next(self._counter)}"

    def is_ours(self, name: object) -> bool:
        """Whether ``name`` is one this worker made with :meth:`name`."""
        return isinstance(name, str) and name.startswith(self.prefix + "-")

    def in_run(self, name: object) -> bool:
        """Whether ``name`` carries this run's prefix (any worker's)."""
        return isinstance(name, str) and name.startswith(self.run_prefix)

    @property
    def owned(self) -> list[OwnedToken]:
        with self._mutex:
            return list(self._owned)

    # -- admin calls --------------------------------------------------------------------

    def _list(self) -> list[dict[str, Any]]:
        """The list with the admin credential; raises LedgerError when it is not usable."""
        resp = self.client.list_tokens(self.admin_token, form=self.admin_form)
        if not resp.is_success:
            raise LedgerError(f"listing tokens with the admin credential answered {resp.status_code}")
        try:
            items = resp.json()
        except ValueError:
            raise LedgerError("the token list is not JSON") from None
        if not isinstance(items, list):
            raise LedgerError(f"the token list is a {type(items).__name__}, not a JSON array")
        return [i for i in items if isinstance(i, dict)]

    def list_items(self) -> list[dict[str, Any]]:
        """The list as a check reads it; a list that cannot be read blocks the check (ST-LIFE-002)."""
        try:
            return self._list()
        except LedgerError as exc:
            pre.block(pre.LIST, str(exc))

    def list_until(self, ok: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
        """The list once it shows what ``ok`` looks for (a create or a delete just made), within the
        profile's ``consistency.list_within``; the last list read when it never does. Say
        ``settle.note(settle.LIST)`` in the check's message when that is wrong."""
        return settle.until(settle.LIST, self.list_items, ok)

    def list_without(self, token: int | None, name: str | None = None) -> list[dict[str, Any]]:
        """The list once it no longer shows ``token`` (just deleted), within the settle window.

        With ``name`` (the deleted token's), an entry under that id with another name is a new token
        that was given the freed id, not the deleted one."""
        return self.list_until(
            lambda items: not any(token_id(i.get("id")) == token and name in (None, i.get("name")) for i in items)
        )

    def _attribute_settled(self, tok: OwnedToken) -> int | None:
        """The id of a token just created, read from the list until it shows the token, within the settle
        window: a list that shows it late is not a defect. Its name under another token's id (the first of
        two with one name) is judged a clash only on the last list read."""

        def read(loose: bool = False) -> int | None:
            tok.clash = None
            return self._attribute(tok, loose=loose)

        found = settle.until(settle.LIST, read, lambda tid: tid is not None)
        # not under its own name: once more, now taking a name the target stored altered for it
        return found if found is not None or self.in_run(tok.name) else read(loose=True)

    @contextlib.contextmanager
    def foreign_names_together(self) -> Iterator[None]:
        """Around creates of names that are not the run's own, sent together (``together.py``) from this
        process: the cross-worker lock that serialises such creates is taken once for all of them, not
        by each (which would send them one after another)."""
        with self._cross_worker_lock():
            held = _WAVE_HOLDS_LOCK.set(id(self))
            try:
                yield
            finally:
                _WAVE_HOLDS_LOCK.reset(held)

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

    def _others_claims(self) -> set[int]:
        """Ids that other processes of this run have claimed, from the new lines of their journals."""
        if self.run_dir is None:
            return set()
        mine = self.journal.path
        for path in sorted(self.run_dir.glob(JOURNAL_GLOB)):
            if path == mine:
                continue
            offset = self._peer_offsets.get(path, 0)
            try:
                with path.open("rb") as fh:
                    fh.seek(offset)
                    chunk = fh.read()
            except OSError:
                continue
            complete = chunk[: chunk.rfind(b"\n") + 1]
            self._peer_offsets[path] = offset + len(complete)
            for event in parse_events(complete.decode("utf-8", "replace")):
                tid = token_id(event.get("id"))
                if event.get("e") == INTENT and isinstance(event.get("name"), str):
                    self._peer_intents[str(event.get("k"))] = event["name"]
                elif tid is not None and event.get("e") == ID:
                    self._peer_claims.add(tid)
                    self._peer_names.pop(tid, None)
                    name = self._peer_intents.get(str(event.get("k")))
                    if name is not None and self.in_run(name):  # (a name a target alters is not told by it)
                        self._peer_names[tid] = name
                elif tid is not None and event.get("e") == GONE:
                    self._peer_claims.discard(tid)
                    self._peer_names.pop(tid, None)
        return self._peer_claims

    def _taken(self, items: list[dict[str, Any]], *, peers: bool = True) -> Callable[[dict[str, Any]], bool]:
        """Whether a list entry's id is another token's: there before the run, or claimed by a token of the
        run that the list still shows under that id with its own name.

        Ids are names, not identities: a target may hand a deleted token's id to the next token it
        makes (a database row id). An id claimed by a token of the run whose name is no longer listed
        under it has been freed and given again, so the entry there is a new token, not the claimant.
        """
        names: dict[int, str | None] = {tid: None for tid in self._claimed}
        if peers:
            others = self._others_claims()
            names.update({tid: self._peer_names.get(tid) for tid in others})
        names.update({tid: name for tid, name in self._listed_names.items() if tid in self._claimed})
        shown = {(token_id(i.get("id")), i.get("name")) for i in items}

        def taken(item: dict[str, Any]) -> bool:
            tid = token_id(item.get("id"))
            if tid in self.baseline:
                return True
            if tid not in names:
                return False
            name = names[tid]
            return name is None or (tid, name) in shown  # (a claimant whose name is unknown keeps its id)

        return taken

    # -- the target is broken: stop creating ---------------------------------------------

    def _broken_reason(self) -> str | None:
        if self._broken is None and self.run_dir is not None:
            with contextlib.suppress(OSError):
                self._broken = (self.run_dir / _BROKEN_FLAG).read_text(encoding="utf-8") or None
        return self._broken

    def _note_unlisted(self, name: str) -> None:
        with self._mutex:
            self._unlisted_streak += 1
            if self._unlisted_streak < BROKEN_AFTER or self._broken is not None:
                return
            self._broken = (
                f"{BROKEN_AFTER} tokens in a row were created but not listed (the last {name!r}), "
                "so the run creates no more tokens on this target"
            )
            if self.run_dir is not None:
                with contextlib.suppress(OSError):
                    (self.run_dir / _BROKEN_FLAG).write_text(self._broken, encoding="utf-8")

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
        """Create a token a check needs: any 2xx with a secret will do, and it must be listed.

        When the target does not let it happen, the running check is blocked by the
        foundation that failed (ST-LIFE-001 create, ST-LIFE-002 list, ST-LIFE-003 listed,
        ST-LIFE-007 unique ids), not failed.
        """
        body = self.body(label, name=name, roles=roles, expiry_ms=expiry_ms, default_roles=default_roles)
        # no answer at all (the target went away) is not a failed foundation: it propagates, and
        # the run reports the target as unreachable (a harness error), not as a defect
        resp, tok = self.create_raw(body)
        if tok is None:
            pre.block(pre.CREATE, self.refused(body, resp))
        self.block_unlisted(tok, f"token {tok.name!r} was created ({resp.status_code}) but")
        return tok

    def body(
        self,
        label: str = "tok",
        *,
        name: str | None = None,
        roles: Sequence[str] | None = None,
        expiry_ms: int | None = None,
        default_roles: Sequence[str] = ("stackstate-guest",),
    ) -> dict[str, Any]:
        """The create body :meth:`create` sends for its keywords (a new name from ``label`` unless ``name``)."""
        body: dict[str, Any] = {
            "name": name if name is not None else self.name(label),
            "roles": list(default_roles if roles is None else roles),
        }
        if expiry_ms is not None:
            body["expiryDate"] = expiry_ms
        return body

    @staticmethod
    def refused(body: dict[str, Any], resp: httpx.Response) -> str:
        """Why a create a check needed gave no token to go on with (the reason of its ST-LIFE-001 block)."""
        return (
            f"creating a token {body.get('name')!r} with roles {body.get('roles')} (expiryDate "
            f"{body.get('expiryDate')}) answered {resp.status_code}"
            + ("" if resp.is_success else f": {REDACTOR.mask(resp.text[:200])}")
            + " — no usable token to go on with"
        )

    def create_raw_together(
        self, bodies: Sequence[Any], **create_kw: Any
    ) -> list[tuple[httpx.Response, OwnedToken | None]]:
        """:meth:`create_raw` (``attribute=False``) of each body, sent together; answers in the order given.

        A create that got a server error while others were in flight is sent once more alone (a new
        intent, the same body): a target that cannot take creates at the same moment gets the verdicts
        it gets one create at a time, and the check that sends creates together on purpose
        (ST-LIFE-007) is the one that judges it."""

        def send(body: Any) -> tuple[httpx.Response, OwnedToken | None]:
            return self.create_raw(body, attribute=False, **create_kw)

        answers = run_together(functools.partial(send, body) for body in bodies)
        if len(bodies) > 1 and together.LIMIT > 1:
            answers = [
                send(body) if resp.status_code >= 500 else (resp, tok)
                for body, (resp, tok) in zip(bodies, answers, strict=True)
            ]
        return answers

    def create_together(self, *wanted: dict[str, Any]) -> list[OwnedToken]:
        """Create several tokens a check needs at once (each ``wanted`` holds :meth:`create`'s keywords):
        the creates go together (one wave, ``together.py``), their ids are found with one list. Blocks
        the check as :meth:`create` does, on the first token in the order given that cannot be had."""
        bodies = [
            self.body(want.get("label", "tok"), **{k: v for k, v in want.items() if k != "label"}) for want in wanted
        ]
        answers = self.create_raw_together(bodies)
        try:
            if any(tok is not None for _resp, tok in answers):
                self.attribute_all([tok for _resp, tok in answers if tok is not None])
        except LedgerError as exc:
            pre.block(pre.LIST, str(exc))
        made = []
        for body, (resp, tok) in zip(bodies, answers, strict=True):
            if tok is None:
                pre.block(pre.CREATE, self.refused(body, resp))
            _block_on_clash(tok, f"token {tok.name!r}")
            self.block_unlisted(tok, f"token {tok.name!r} was created ({resp.status_code}) but")
            made.append(tok)
        return made

    def block_unlisted(self, tok: OwnedToken, what: str) -> None:
        """Block the running check on a token with no id of its own: ST-LIFE-007 if it shares one, else ST-LIFE-003."""
        if tok.id is not None:
            return
        _block_on_clash(tok, f"{what}: the new token")
        pre.block(pre.LISTED, f"{what}: no new entry in the list carries its name")

    def create_raw(
        self,
        body: Any,
        *,
        token: str | None = None,
        form: AuthForm | None = None,
        headers: dict[str, str] | None = None,
        attribute: bool = True,
        resend: bool = True,
        **request_kw: Any,
    ) -> tuple[httpx.Response, OwnedToken | None]:
        """Send a create request as given; if the target accepts it, track the new token.

        ``token``/``form``/``headers`` present another credential than the admin one. Returns
        the response and, for a 2xx carrying a token, the tracked token (``id`` is None when
        no list entry could be attributed to it; with ``attribute=False`` the list is not read
        now, see :meth:`attribute_all`). The intent is journalled first, so whatever the
        target made of the request is cleaned up at the end of the run.

        A create whose connection closed before its answer is sent once more, the same body on a fresh
        connection; ``resend=False`` raises instead (a caller that counts its names: the target may have
        made the first one too, and then lists the name twice).
        """
        broken = self._broken_reason()
        if broken is not None:
            pre.block(pre.LISTED, broken)
        name = body.get("name") if isinstance(body, dict) else None
        roles = body.get("roles") if isinstance(body, dict) else None
        intent = functools.partial(
            self.journal.intent,
            name if isinstance(name, str) else "",
            roles if isinstance(roles, list) else [],
            body.get("expiryDate") if isinstance(body, dict) else None,
        )
        key = intent()
        ours = self.is_ours(name) or _WAVE_HOLDS_LOCK.get() == id(self)
        lock = contextlib.nullcontext() if ours else self._cross_worker_lock()
        with lock:
            send = functools.partial(
                self.client.request,
                "POST",
                "/security/tokens",
                token=self.admin_token if token is None and headers is None else token,
                form=self.admin_form if form is None else form,
                headers=headers,
                json_body=body,
                **request_kw,
            )
            try:
                resp = send()
            except (httpx.ReadError, httpx.RemoteProtocolError):
                if not resend:
                    raise
                # the server closed a kept-alive connection (some do after an error answer): send
                # once more on a fresh one, as a new intent; were both to create, the sweep at the
                # end of the run finds the first by its name
                key = intent()
                resp = send()
            tok = self._track(resp, body, key, attribute)
        if tok is not None:
            _block_on_clash(tok, f"token {tok.name!r}")
        return resp, tok

    def attribute_all(
        self, toks: Sequence[OwnedToken], items: list[dict[str, Any]] | None = None, *, fresh: bool = True
    ) -> dict[str, int]:
        """Find the ids of several new tokens with one list (``items``, or a fresh one); name -> id found.

        ``fresh=False`` says other calls came between the creates and the list (a delete may rightly
        have removed a token since): one not found then says nothing about the list itself.
        Raises LedgerError when the list cannot be read.
        """
        found: dict[str, int] = {}
        with self._mutex:
            items = self._list() if items is None else items
            if fresh and not self.shows(toks, items):
                # a list that shows the new tokens late (a replica) is read again, within the settle window
                items = settle.until(settle.LIST, self._list, lambda more: self.shows(toks, more))
            for tok in toks:
                if tok.id is None:
                    tok.id = self._attribute(tok, items)
                    # (a token with an expiry may have expired already, and a list may leave it out)
                    if tok.id is None and tok.clash is None and fresh and tok.expiration is None:
                        self._note_unlisted(tok.name)
                    elif tok.id is not None:
                        self._unlisted_streak = 0
                if tok.id is not None:
                    found[tok.name] = tok.id
        return found

    def shows(self, toks: Sequence[OwnedToken], items: list[dict[str, Any]]) -> bool:
        """Whether ``items`` shows each token still without an id under its name (a cheap look, no claims)."""
        taken = self._taken(items, peers=False)
        fresh = [i for i in items if not taken(i) and not self._ghost(i)]
        names = {i.get("name") for i in fresh}
        return all(tok.id is not None or tok.name in names for tok in toks)

    def _track(self, resp: httpx.Response, body: Any, key: str, attribute: bool = True) -> OwnedToken | None:
        self.journal.answered(key, resp.status_code)
        if not resp.is_success:
            return None
        try:
            data = resp.json()
        except ValueError:
            data = None
        secret = data.get("token") if isinstance(data, dict) else None
        if not isinstance(secret, str) or not secret:
            return None  # the intent stays open: the sweep at the end looks for the name
        REDACTOR.register(secret, issued=True)
        sent = body if isinstance(body, dict) else {}
        tok = OwnedToken(
            name=str(sent["name"]) if isinstance(sent.get("name"), str) else "",
            secret=secret,
            roles=list(sent.get("roles") or []) if isinstance(sent.get("roles"), list) else [],
            expiration=sent.get("expiryDate") if isinstance(sent.get("expiryDate"), int) else None,
            response=data if isinstance(data, dict) else {},
            status=resp.status_code,
            key=key,
            elapsed=elapsed_s(resp),
        )
        with self._mutex:
            self._owned.append(tok)
            if not attribute:
                return tok
            try:
                tok.id = self._attribute_settled(tok)
            except LedgerError:
                tok.id = None
            if tok.id is None and tok.clash is None:
                self._note_unlisted(tok.name)
            elif tok.id is not None:
                self._unlisted_streak = 0
        return tok

    def _ghost(self, item: dict[str, Any]) -> bool:
        """Whether a list entry may be a token this ledger just deleted, still shown by a lagging list: its id
        and name, within the settle window after its delete (a freed id handed to a new token comes with
        the new token's name)."""
        released = self._released.get(token_id(item.get("id")))  # type: ignore[arg-type]
        if released is None or released[0] != item.get("name"):
            return False
        if released[2] is not None and released[2] != item:
            return False  # its id and name given to a new token (another creation time, roles, ...)
        return time.monotonic() - released[1] < 2 * settle.SETTLE.consistency.list_within  # (and a window to read it)

    def _attribute(
        self, tok: OwnedToken, items: list[dict[str, Any]] | None = None, *, loose: bool = True
    ) -> int | None:
        """The id of ``tok`` in the list: its name, not claimed, not there before the run.

        ``loose=False`` looks for its exact name only (while a lagging list may not show it yet,
        a foreign entry that shows up is not taken for it: it may be one made before the run).
        """
        items = self._list() if items is None else items
        taken = self._taken(items)
        fresh = [i for i in items if token_id(i.get("id")) is not None and not taken(i)]
        fresh = [i for i in fresh if not self._ghost(i)]  # (a list may show a delete late)
        candidates = [i for i in fresh if i.get("name") == tok.name]
        if len(candidates) > 1:
            # the same name twice among unclaimed ids: narrow by what was sent
            narrowed = [
                i
                for i in candidates
                if sorted(map(str, i.get("roles") or [])) == sorted(tok.roles) and i.get("expiration") == tok.expiration
            ]
            candidates = narrowed or candidates
        if not candidates and loose and not self.in_run(tok.name):
            # the target changed the name (trimmed, normalised): the one new entry that is
            # not the run's own is ours, since creates of such names are serialised across workers
            foreign = [i for i in fresh if not self.in_run(i.get("name"))]
            if len(foreign) == 1:
                candidates = foreign
        if not candidates:
            # listed under its own name, but under an id that another token has (one of this run,
            # of another worker, or one there before the run): the ids are not unique
            clash = next((token_id(i.get("id")) for i in items if i.get("name") == tok.name and taken(i)), None)
            if clash is None:
                # not under its name at all, but the list shows one id twice: the entry may be there
                # under an altered name, hidden behind an id it shares; the defect is the shared id
                clash = next(iter(duplicate_ids(items)), None)
            tok.clash = clash
            return None
        chosen = token_id(candidates[0]["id"])
        assert chosen is not None
        self._claimed.add(chosen)
        listed_name = candidates[0].get("name")
        self._listed_names[chosen] = listed_name if isinstance(listed_name, str) else None
        self._listed_entries[chosen] = dict(candidates[0])
        if tok.key is not None:
            self.journal.found(tok.key, chosen)
        return chosen

    def creates_work(self, roles: Sequence[str]) -> str | None:
        """Positive control after a create failed with a server error: does a plain create work now?

        None when it does (the control token is deleted at once), else what the plain create got.
        A check uses it to tell "this input breaks the create" (its own failure) from "creates
        fail whatever is sent" (a failed foundation, ST-LIFE-001).
        """
        try:
            resp, tok = self.create_raw({"name": self.name("control"), "roles": list(roles)})
        except httpx.HTTPError as exc:
            return f"a plain create got no answer ({type(exc).__name__})"
        if tok is None:
            return f"a plain create answered {resp.status_code}"
        if tok.id is not None:
            self.delete(tok)
        return None

    def intend(self, name: str, roles: Sequence[str]) -> str:
        """Journal a create that something else (the CLI under test) is about to send."""
        return self.journal.intent(name, list(roles))

    def adopt(
        self,
        name: str,
        secret: str | None = None,
        roles: Sequence[str] = (),
        expiration: int | None = None,
        key: str | None = None,
        *,
        expected: bool = False,
    ) -> OwnedToken | None:
        """Take over a token that something else (the CLI under test) created under a run-unique name.

        Claims the listed entry with that name, so cleanup deletes it, and returns it; returns
        None when no such entry is listed. Only names from :meth:`name` are accepted: nothing
        the run did not make is adopted. Give the ``key`` :meth:`intend` returned, if any.
        ``expected``: the create said it worked, so a list that shows it late is read again.
        """
        if not self.is_ours(name):
            raise ValueError(f"only tokens with this run's names can be adopted, not {name!r}")
        REDACTOR.register(secret)
        key = key or self.journal.intent(name, list(roles))
        tok = OwnedToken(name=name, secret=secret or "", roles=list(roles), expiration=expiration, key=key)
        with self._mutex:
            try:
                tok.id = self._attribute_settled(tok) if expected else self._attribute(tok)
            except LedgerError as exc:
                pre.block(pre.LIST, str(exc))
            _block_on_clash(tok, f"token {tok.name!r}")
            if tok.id is None:
                return None
            self._owned.append(tok)
        return tok

    # -- delete and cleanup -------------------------------------------------------------

    def delete(self, tok: OwnedToken) -> httpx.Response:
        """Delete one of our tokens with the admin credential; any 2xx (or 404) means it is gone."""
        if tok.id is None:
            pre.block(pre.LISTED, f"token {tok.name!r} has no known id; it cannot be deleted")
        resp = self.client.delete_token(self.admin_token, tok.id, form=self.admin_form)
        if resp.is_success or resp.status_code == 404:
            self.forget(tok)
        return resp

    def remove(self, tok: OwnedToken) -> None:
        """Delete a token as a step of a check; a delete that does not work blocks it (ST-LIFE-004)."""
        resp = self.delete(tok)
        if not resp.is_success:
            pre.block(pre.DELETE, f"deleting token {tok.id} with the admin credential answered {resp.status_code}")

    def forget(self, tok: OwnedToken) -> None:
        """Mark a token as gone without a call (deleted another way, or removed by the target).

        Its id is released: a target may hand a freed id to the next token it creates.
        """
        with self._mutex:
            tok.deleted = True
            if tok.id is not None:
                self._claimed.discard(tok.id)
                self._released[tok.id] = (tok.name, time.monotonic(), self._listed_entries.get(tok.id))
                self.journal.gone(tok.id)

    def cleanup(self, deadline: float | None = None) -> list[Leftover]:
        """Delete every token of ours still alive; return what could not be removed."""
        pending = outstanding(self.journal.events())
        return sweep(
            self.client,
            self.admin_token,
            self.admin_form,
            pending,
            baseline=self.baseline,
            journal=self.journal,
            deadline=deadline if deadline is not None else time.monotonic() + CLEANUP_SECONDS,
        )


def _block_on_clash(tok: OwnedToken, what: str) -> None:
    """A token listed only under an id another token has: what the check wanted to see of it
    cannot be told apart from the shared id, which is the defect (ST-LIFE-007)."""
    if tok.id is None and tok.clash is not None:
        pre.block(pre.UNIQUE_IDS, f"{what} is listed under id {tok.clash}, which another token has as well")


def elapsed_s(resp: httpx.Response) -> float | None:
    try:
        return resp.elapsed.total_seconds()
    except RuntimeError:  # a response not read through a client (a test's stand-in) has no timing
        return None
