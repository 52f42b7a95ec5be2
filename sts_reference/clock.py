"""Time source for the reference server.

Everything that depends on "now" (expiry checks, the bootstrap token's ttl, the ``Date``
header, timestamps in bodies) reads one injected clock, so the server's own tests can move
time forward instead of sleeping.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """A source of the current time as epoch milliseconds."""

    def now_ms(self) -> int: ...


class SystemClock:
    """The wall clock."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def __repr__(self) -> str:
        return "SystemClock()"


class SkewedClock:
    """The wall clock shifted by a fixed offset: a server whose clock is wrong.

    Lets the suite's own tests prove that expiry is judged on the server's clock (its
    ``Date`` header), not the client's.
    """

    def __init__(self, offset_ms: int) -> None:
        self.offset_ms = offset_ms

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset_ms

    def __repr__(self) -> str:
        return f"SkewedClock(offset_ms={self.offset_ms})"


class FakeClock:
    """A clock that only moves when told to; safe to drive from a test thread while the
    server reads it from its event-loop thread."""

    def __init__(self, start_ms: int) -> None:
        self._check(start_ms)
        self._lock = threading.Lock()
        self._now = start_ms

    @staticmethod
    def _check(value: int) -> None:
        # bool is an int subclass; FakeClock(True) is always a mistake.
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"clock time must be a non-negative int of epoch ms, got {value!r}")

    def now_ms(self) -> int:
        with self._lock:
            return self._now

    def advance(self, ms: int) -> int:
        """Move forward by ``ms`` milliseconds and return the new time."""
        if not isinstance(ms, int) or isinstance(ms, bool) or ms < 0:
            raise ValueError(f"can only advance by a non-negative int of ms, got {ms!r}")
        with self._lock:
            self._now += ms
            return self._now

    def set(self, ms: int) -> None:
        """Jump to ``ms`` (backwards too: tests of clock skew need that)."""
        self._check(ms)
        with self._lock:
            self._now = ms

    def __repr__(self) -> str:
        return f"FakeClock({self.now_ms()})"
