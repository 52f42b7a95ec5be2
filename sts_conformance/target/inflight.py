"""The bound on requests of this process in flight at once (the profile's ``concurrency``).

Every request the client sends passes :data:`GATE` for the time it is on the wire (not while it
waits out a throttled target's pace), whichever thread sends it: calls sent together
(``together.py``), checks run ahead together (``checking/ahead.py``) and calls sent together
inside those. However they nest, no more than the bound are ever in flight from one process.
A caller that sets a wider bound on purpose (the list-scale step's waves on a target the suite
launched itself) runs its calls with a gate of their own (:meth:`Gate.own`).

:data:`IDS` keeps the run's creates out of the short windows in which a check sends a request to an
id it has just freed (a second delete of a deleted token's id): a correct target may hand a freed id
to the next token it makes, and a create of another check in that window would lose its token to the
second delete. Creates share the guard; such a window holds it alone, in this process and (through a
lock file in the run's directory) in every xdist worker of the run.
"""

from __future__ import annotations

import contextlib
import contextvars
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path

DEFAULT_LIMIT = 8

#: set in the threads of checks run ahead together (``checking/ahead.py``), and in the calls they send
#: together (which copy their context): once it is set, their next request is not sent (:class:`Stopped`)
STOP_WHEN: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar("sts_stop_when", default=None)


class Stopped(Exception):
    """The run was interrupted: a check running ahead of its turn sends nothing more and ends."""


class Gate:
    """A bound on how many requests are on the wire at once; :meth:`configure` changes it between runs."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self._slots = threading.BoundedSemaphore(limit)
        self._local = threading.local()

    def configure(self, limit: int) -> None:
        self.limit = max(1, int(limit))
        self._slots = threading.BoundedSemaphore(self.limit)

    @contextlib.contextmanager
    def passing(self) -> Iterator[None]:
        """Around one request on the wire: waits while the calling thread's bound is reached."""
        slots = getattr(self._local, "slots", None) or self._slots  # the one acquired is the one released
        with slots:
            stop = STOP_WHEN.get()
            if stop is not None and stop.is_set():
                raise Stopped("the run was interrupted: no more requests of the checks running together")
            yield

    @contextlib.contextmanager
    def own(self, slots: threading.BoundedSemaphore) -> Iterator[None]:
        """The calling thread's requests pass ``slots`` instead of the process's bound."""
        before = getattr(self._local, "slots", None)
        self._local.slots = slots
        try:
            yield
        finally:
            self._local.slots = before


GATE = Gate()


#: the lock file of :data:`IDS` in the run's directory
IDS_LOCK = "ids.lock"

#: set inside an :meth:`IdGuard.freeing` window (and the calls it sends together, which copy their context)
_FREEING: contextvars.ContextVar[bool] = contextvars.ContextVar("sts_freeing_ids", default=False)

#: the methods that never make a token (every other one may, on a target that routes it so)
_NEVER_CREATES = frozenset({"GET", "HEAD", "OPTIONS", "DELETE", "TRACE"})


class IdGuard:
    """Creates (shared) against the windows in which a freed id is sent again (exclusive).

    A waiting window goes before creates that come after it, so a steady stream of creates cannot
    keep it out. ``path``: a lock file every worker of the run takes the same way (``flock``)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._sharing = 0
        self._alone = False
        self._waiting = 0
        self.path: Path | None = None

    def configure(self, path: Path | None) -> None:
        self.path = path

    @staticmethod
    def may_create(method: str) -> bool:
        return method.upper() not in _NEVER_CREATES

    @contextlib.contextmanager
    def _flock(self, mode: int) -> Iterator[None]:
        if self.path is None:
            yield
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, mode)
            yield
        finally:
            os.close(fd)  # (closing the descriptor releases its lock)

    @contextlib.contextmanager
    def creating(self) -> Iterator[None]:
        """Around a request (or a CLI command) that may make a token."""
        if _FREEING.get():
            yield  # the window's own calls
            return
        with self._cond:
            self._cond.wait_for(lambda: not self._alone and not self._waiting)
            self._sharing += 1
        try:
            with self._flock(fcntl.LOCK_SH):
                yield
        finally:
            with self._cond:
                self._sharing -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def freeing(self) -> Iterator[None]:
        """Around a delete and the requests that send its id again: no create of the run is in flight."""
        if _FREEING.get():
            yield
            return
        with self._cond:
            self._waiting += 1
            self._cond.wait_for(lambda: not self._alone and not self._sharing)
            self._waiting -= 1
            self._alone = True
        held = _FREEING.set(True)
        try:
            with self._flock(fcntl.LOCK_EX):
                yield
        finally:
            _FREEING.reset(held)
            with self._cond:
                self._alone = False
                self._cond.notify_all()


IDS = IdGuard()
