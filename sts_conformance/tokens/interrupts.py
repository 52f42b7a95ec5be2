"""Interruptions: SIGTERM ends a run like Ctrl-C, and cleanup is not cut short by a second signal.

A CI job that is cancelled gets SIGTERM (often the whole process group: pytest, its xdist
workers). Python's default for SIGTERM is to die on the spot, with no cleanup at all; here it
raises KeyboardInterrupt instead, so the run stops the way Ctrl-C stops it: pytest reports the
interruption (exit status 2), fixtures are torn down, tokens are deleted and launched
processes are stopped. Only the first signal interrupts: any later SIGINT/SIGTERM (a second
Ctrl-C, a CI runner that sends SIGINT then SIGTERM, a signal to every process of the group
that reaches one twice) is noted and ignored, so it cannot cut the winding-down short and
leave tokens behind; the cleanup itself is bounded in time (``sweep.CLEANUP_SECONDS``),
and SIGKILL still ends everything at once.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType

_shielding = 0
_interrupted = False
_lock = threading.Lock()
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _handler(signum: int, frame: FrameType | None) -> None:
    global _interrupted
    if _shielding or _interrupted:
        name = signal.Signals(signum).name
        sys.stderr.write(
            f"\nsts-conformance: {name} received while stopping; cleaning up first (SIGKILL ends it now)\n"
        )
        return
    _interrupted = True
    raise KeyboardInterrupt


def install() -> None:
    """SIGTERM and SIGINT raise KeyboardInterrupt (unless a cleanup is running). Main thread only."""
    with contextlib.suppress(ValueError):  # not in the main thread: signals cannot be set there
        for sig in _SIGNALS:
            signal.signal(sig, _handler)


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Run a cleanup without being interrupted by SIGINT/SIGTERM (they are noted and ignored)."""
    global _shielding
    with _lock:
        _shielding += 1
    try:
        yield
    finally:
        with _lock:
            _shielding -= 1
