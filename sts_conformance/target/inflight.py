"""The bound on requests of this process in flight at once (the profile's ``concurrency``).

Every request the client sends passes :data:`GATE` for the time it is on the wire (not while it
waits out a throttled target's pace), whichever thread sends it: calls sent together
(``together.py``), checks run ahead together (``checking/ahead.py``) and calls sent together
inside those. However they nest, no more than the bound are ever in flight from one process.
A caller that sets a wider bound on purpose (the list-scale step's waves on a target the suite
launched itself) runs its calls with a gate of their own (:meth:`Gate.own`).
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator

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
