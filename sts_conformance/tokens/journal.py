"""A run's journal of the tokens it creates, so that none is left behind whatever happens.

Every process of a run (the controller and each xdist worker) appends one line per event to
its own file in the run's directory, *before* it acts where that matters: the intent to
create a token (its name and roles) is written before the request is sent, so a create whose
answer never came (interrupted, timed out, a 5xx, a reset connection) is still known. The
journal holds names, roles and ids, never a secret.

At the end of the run the controller reads every journal (:func:`outstanding`) and deletes
what is still there — also after a worker was killed in the middle of a check.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

JOURNAL_GLOB = "journal-*.jsonl"

# The events, one JSON object per line, each with "e" naming it:
INTENT = "intent"  # {"k", "name", "roles", "t", "x"?}: about to send a create with this name (and expiryDate x)
ID = "id"  # {"k", "id"}: the token of intent k is listed under this id
ANSWERED = "answered"  # {"k", "status"}: the create was answered with this status
GONE = "gone"  # {"id"}: this id was deleted (or was already gone)
SETTLED = "settled"  # {"k"}: nothing of intent k is left on the target (looked for, or deleted)


def token_id(value: Any) -> int | None:
    """A token id as the list shows it: a JSON integer, or a string of digits (a lenient reading).

    The spec types ids as int64; the harness reads a string of digits as that id so that its
    own bookkeeping goes on, leaving the exact type to the check that judges it.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        digits = text[1:] if text.startswith("-") else text
        value = int(text) if digits.isascii() and digits.isdigit() and len(digits) <= 19 else None
    if isinstance(value, int) and -(2**63) <= value < 2**63:
        return value
    return None


class Journal:
    """The append-only journal of one process; ``path=None`` keeps it in memory only."""

    def __init__(self, path: Path | None, worker: str = "main") -> None:
        self.path = path
        self.worker = worker
        self._lock = threading.Lock()
        self._counter = itertools.count(1)
        self._events: list[dict[str, Any]] = []

    def _write(self, event: dict[str, Any]) -> None:
        line = json.dumps(event, ensure_ascii=False) + "\n"
        with self._lock:
            self._events.append(event)
            if self.path is None:
                return
            # one write per line, flushed at once: a process killed right after still leaves it
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode("utf-8", "surrogatepass"))
            finally:
                os.close(fd)

    def intent(self, name: str, roles: Iterable[Any], expiry_ms: Any = None) -> str:
        key = f"{self.worker}:{next(self._counter)}"
        shown_roles = [r if isinstance(r, str) else repr(r) for r in roles] if isinstance(roles, list | tuple) else []
        event = {"e": INTENT, "k": key, "name": name, "roles": shown_roles, "t": int(time.time() * 1000)}
        if isinstance(expiry_ms, int) and not isinstance(expiry_ms, bool):
            event["x"] = expiry_ms
        self._write(event)
        return key

    def found(self, key: str, token: int) -> None:
        self._write({"e": ID, "k": key, "id": token})

    def answered(self, key: str, status: int) -> None:
        self._write({"e": ANSWERED, "k": key, "status": status})

    def gone(self, token: int) -> None:
        self._write({"e": GONE, "id": token})

    def settled(self, key: str) -> None:
        self._write({"e": SETTLED, "k": key})

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._events)


@dataclass
class Pending:
    """A token the run may still have on the target, as the journals tell it."""

    key: str
    name: str
    roles: list[str] = field(default_factory=list)
    ids: set[int] = field(default_factory=set)
    #: the status the create was answered with; None when no answer came
    status: int | None = None
    #: the expiryDate the create sent (epoch ms, the server's clock), if any
    expiry_ms: int | None = None

    @property
    def created(self) -> bool:
        """The target said it created the token (a 2xx), or listed it."""
        return bool(self.ids) or (self.status is not None and 200 <= self.status < 300)


def duplicate_ids(items: Iterable[dict[str, Any]]) -> list[int]:
    """The ids the list shows more than once, in the order first seen (none on a correct target)."""
    seen: set[int] = set()
    twice: list[int] = []
    for item in items:
        tid = token_id(item.get("id")) if isinstance(item, dict) else None
        if tid is None:
            continue
        if tid in seen and tid not in twice:
            twice.append(tid)
        seen.add(tid)
    return twice


def read_events(run_dir: Path) -> Iterator[dict[str, Any]]:
    """Every event of every journal in ``run_dir`` (a torn last line is skipped)."""
    for path in sorted(run_dir.glob(JOURNAL_GLOB)):
        try:
            text = path.read_text(encoding="utf-8", errors="surrogateescape")
        except OSError:
            continue
        yield from parse_events(text)


def parse_events(text: str) -> Iterator[dict[str, Any]]:
    """The events in journal text, one JSON object a line; a line that is not one is skipped."""
    for line in text.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            yield event


def deleted_tokens(events: Iterable[dict[str, Any]]) -> list[tuple[int, str]]:
    """The (id, name) of every token the events say was deleted (its id gone), in the order deleted:
    the final sweep believes those deletes only once the list no longer shows the token."""
    names: dict[str, str] = {}
    key_of: dict[int, str] = {}
    pairs: list[tuple[int, str]] = []
    for event in events:
        kind, key = event.get("e"), str(event.get("k", ""))
        if kind == INTENT:
            names[key] = str(event.get("name", ""))
        elif kind == ID and key in names and (token := token_id(event.get("id"))) is not None:
            key_of[token] = key
        elif kind == GONE and (token := token_id(event.get("id"))) is not None and token in key_of:
            pairs.append((token, names[key_of.pop(token)]))
    return pairs


def outstanding(events: Iterable[dict[str, Any]]) -> list[Pending]:
    """The tokens the events leave possibly alive: every intent not known to be gone.

    Events are read in order, so an id deleted and later handed to a new token (a target
    may reuse ids) counts as gone only for the token that had it before.
    """
    pending: dict[str, Pending] = {}
    deleted: set[str] = set()  # keys whose every id was deleted
    for event in events:
        kind, key = event.get("e"), str(event.get("k", ""))
        if kind == INTENT:
            expiry = event.get("x")
            pending[key] = Pending(
                key,
                str(event.get("name", "")),
                list(event.get("roles") or []),
                expiry_ms=expiry if isinstance(expiry, int) and not isinstance(expiry, bool) else None,
            )
        elif kind == ID and key in pending and (token := token_id(event.get("id"))) is not None:
            pending[key].ids.add(token)
            deleted.discard(key)
        elif kind == ANSWERED and key in pending and isinstance(event.get("status"), int):
            pending[key].status = event["status"]
        elif kind == GONE and (token := token_id(event.get("id"))) is not None:
            for p in pending.values():
                if token in p.ids:
                    p.ids.discard(token)
                    if not p.ids:
                        deleted.add(p.key)
        elif kind == SETTLED:
            deleted.add(key)
    return [p for key, p in pending.items() if key not in deleted]
