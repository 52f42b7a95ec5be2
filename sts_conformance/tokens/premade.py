"""Tokens a group of checks needs, made together when the first of them needs one.

Against a target whose creates are slow, a check that makes its own token waits for that create
before it can do what it checks. A group of checks that each need a token of their own (one per
parametrised case, say) gets them from a :class:`Premade`: it holds a *plan* (a key for each token,
and the create body to send for it), and the first :meth:`~Premade.take` sends the creates of the
whole plan together, in one wave (``together.py``), and finds their ids with one list. Each case
then takes its own token by its key. A slow create costs its latency once for the group, not once
per case.

The plan covers only the cases this process runs (``plugin.planned``): the items pytest selected
(``-k``, ``--deselect``), less those a failed foundation blocks before they begin. Under
pytest-xdist a worker is handed checks one at a time, so it cannot know which cases of a group
come to it (except for a table module, which goes to one worker whole, ``plugin.work_unit``):
there each take makes its own token at once, as a check would by itself.

Nothing else changes:

- every create of a wave goes through :meth:`TokenLedger.create_raw`, so it is journalled before it
  is sent and swept at the end of the run, whether or not its case ever ran (``-x``, a crash);
- a token that cannot be had blocks the case that takes it, by the foundation that failed, as
  :meth:`TokenLedger.create` does (:meth:`~Premade.take`); :meth:`~Premade.take_raw` hands the
  create's answer to a check that judges it, as :meth:`TokenLedger.create_raw` does;
- a token made ahead that is no longer listed when its case takes it (a delete elsewhere that removed
  another token than it named: ST-LIFE-006's finding) is made again then, as the case would have made
  it; the list that shows it is read only when a delete was sent since the token was last seen;
- a failed case's report shows its token's create among its exchanges: the create was sent in the
  wave, before the case began, so taking the token puts that exchange (masked) back into the case's
  log, in the order the creates were sent, before anything the case sends itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from sts_conformance.core import preconditions as pre
from sts_conformance.target.client import EXCHANGES, exchange_of
from sts_conformance.tokens.journal import token_id
from sts_conformance.tokens.ledger import LedgerError, OwnedToken, TokenLedger, _block_on_clash


@dataclass
class _Made:
    """What the wave got for one key: the create's answer and the tracked token (None: no usable token)."""

    body: Any
    resp: httpx.Response
    tok: OwnedToken | None
    #: why the ids of the wave could not be found (the list could not be read), if so
    list_error: str | None = None


class Premade:
    """The tokens of a group of checks, by key: made together on the first :meth:`take`.

    ``plan`` maps each key to the create body to send for it (:meth:`TokenLedger.body` builds the
    usual one). ``together=False`` (an xdist worker outside a table) makes each token only when it
    is taken, by itself. A key taken again gets the same token.
    """

    def __init__(self, ledger: TokenLedger, plan: Mapping[Hashable, Any], *, together: bool = True):
        self.ledger = ledger
        self._plan = dict(plan)
        self._together = together
        self._made: dict[Hashable, _Made] = {}
        #: the order the creates were sent in, to replay their exchanges in that order
        self._order: dict[Hashable, int] = {}
        #: per key, the client's count of deletes sent when its token was last seen listed
        self._seen_at: dict[Hashable, int] = {}
        #: keys whose token a list no longer showed (made again when taken)
        self._gone: set[Hashable] = set()
        #: checks run ahead together (``checking/ahead.py``) take at once: one makes the wave, the others wait
        self._mutex = threading.RLock()

    @classmethod
    def for_items(
        cls,
        ledger: TokenLedger,
        items: Iterable[pytest.Item],
        wants: Callable[[pytest.Item], Mapping[Hashable, Any]],
        *,
        together: bool = True,
    ) -> Premade:
        """The premade tokens of a group of checks: ``items`` are those this process runs (``plugin.planned``),
        and ``wants`` names, for one of them, the keys and create bodies of the tokens it takes (none for a
        check that makes none, or that skips before it takes one). A key several items name is one token."""
        plan: dict[Hashable, Any] = {}
        for item in items:
            for key, body in wants(item).items():
                plan.setdefault(key, body)
        return cls(ledger, plan, together=together)

    def take(self, *keys: Hashable) -> list[OwnedToken]:
        """The tokens of ``keys``, each listed under an id of its own; blocks the check as
        :meth:`TokenLedger.create` does on the first of them (in the order given) that cannot be had."""
        made = self._fetch(keys)
        toks = []
        for m in made:
            body = m.body if isinstance(m.body, dict) else {}
            if m.tok is None:
                pre.block(pre.CREATE, self.ledger.refused(body, m.resp))
            if m.list_error is not None:
                pre.block(pre.LIST, m.list_error)
            self.ledger.block_unlisted(m.tok, f"token {m.tok.name!r} was created ({m.resp.status_code}) but")
            toks.append(m.tok)
        return toks

    def take_raw(self, key: Hashable) -> tuple[httpx.Response, OwnedToken | None]:
        """The create's answer for ``key`` and its token (None: no usable one; ``id`` None: not listed), as
        :meth:`TokenLedger.create_raw` gives them, for a check that judges the create itself."""
        (m,) = self._fetch((key,))
        if m.tok is not None:
            if m.list_error is not None:
                pre.block(pre.LIST, m.list_error)
            _block_on_clash(m.tok, f"token {m.tok.name!r}")
        return m.resp, m.tok

    def sent(self) -> dict[Hashable, tuple[httpx.Response, OwnedToken | None]]:
        """What the creates sent so far got, by key (nothing is shown in the running check's log)."""
        return {k: (m.resp, m.tok) for k, m in self._made.items()}

    def body(self, key: Hashable) -> Any:
        """The create body planned for ``key``."""
        return self._plan[key]

    def _fetch(self, keys: Iterable[Hashable]) -> list[_Made]:
        with self._mutex:
            return self._fetch_locked(list(keys))

    def _fetch_locked(self, keys: list[Hashable]) -> list[_Made]:
        missing = [k for k in keys if k not in self._made]
        for k in missing:
            if not self._ours(k):
                # a name the ledger did not make (none, or one a target may alter) is found in the list
                # under the lock that keeps such creates apart: sent by itself, when its check takes it
                resp, tok = self.ledger.create_raw(self._plan[k])
                self._order[k] = len(self._order)
                self._made[k] = _Made(self._plan[k], resp, tok)
        self._remake_gone([k for k in dict.fromkeys(keys) if k in self._made and k not in missing])
        missing = [k for k in missing if k not in self._made]
        if missing:
            wave = list(missing)
            if self._together:
                wave += [k for k in self._plan if k not in self._made and k not in missing and self._ours(k)]
            self._send(wave)
        made = [self._made[k] for k in keys]
        # the creates were sent before this check began: its log shows them first, in the order sent
        for k in sorted(dict.fromkeys(keys), key=self._order.__getitem__):
            exchange = exchange_of(self._made[k].resp)
            if exchange is not None:
                EXCHANGES.add(exchange)
        return made

    def _remake_gone(self, keys: list[Hashable]) -> None:
        """Make again, now, the tokens of ``keys`` that are no longer listed.

        A token made ahead is not the newest one when a check deletes its own: a target whose delete
        removes another token than the one it names (ST-LIFE-006's finding, judged there) may have taken
        it before its check began. A check then gets a token made when it needs it, as it would have
        made one itself. The list is read only when a delete was sent since a token was last seen."""
        now = self.ledger.client.deletes_sent
        if any(self._seen_at.get(k) != now and k not in self._gone and self._listed(k) for k in keys):
            shown = {(token_id(i.get("id")), i.get("name")) for i in self.ledger.list_items()}
            for k in self._made:
                tok = self._made[k].tok
                if self._listed(k) and k not in self._gone and self._seen_at.get(k) != now:
                    if tok is not None and (tok.id, tok.name) in shown:
                        self._seen_at[k] = now
                    else:
                        self._gone.add(k)
        gone = [k for k in keys if k in self._gone]
        if gone:
            self._gone.difference_update(gone)
            self._send(gone)

    def _listed(self, key: Hashable) -> bool:
        """Whether the token of ``key`` was found in the list when made."""
        tok = self._made[key].tok
        return tok is not None and tok.id is not None

    def _ours(self, key: Hashable) -> bool:
        body = self._plan[key]
        return isinstance(body, dict) and self.ledger.is_ours(body.get("name"))

    def _send(self, keys: list[Hashable]) -> None:
        for k in keys:
            self._seen_at[k] = self.ledger.client.deletes_sent
        bodies = [self._plan[k] for k in keys]
        answers = self.ledger.create_raw_together(bodies)
        error = None
        try:
            toks = [tok for _resp, tok in answers if tok is not None]
            if toks:
                self.ledger.attribute_all(toks)
        except LedgerError as exc:
            error = str(exc)
        for k, body, (resp, tok) in zip(keys, bodies, answers, strict=True):
            self._order[k] = len(self._order)
            self._made[k] = _Made(body, resp, tok, error)


def own(item: pytest.Item, count: int = 1) -> list[tuple[str, int]]:
    """The keys of ``count`` tokens of one check's own (not shared with another), for its plan and its take."""
    return [(item.nodeid, i) for i in range(count)]


def case_of(item: pytest.Item) -> dict[str, Any]:
    """The parameters of a parametrised item (empty for a plain one)."""
    callspec = getattr(item, "callspec", None)
    return dict(callspec.params) if callspec is not None else {}
