"""Interruptions: SIGTERM ends a run like Ctrl-C, and cleanup is not cut short by a second signal.

A CI job that is cancelled gets SIGTERM (often the whole process group: pytest, its xdist
workers). Python's default for SIGTERM is to die on the spot, with no cleanup at all; here it
raises KeyboardInterrupt instead, so the run stops the way Ctrl-C stops it: pytest reports the
interruption (exit status 2), fixtures are torn down, tokens are deleted and launched
processes are stopped. While that cleanup runs, further SIGINT/SIGTERM are noted and
ignored, so a impatient second Ctrl-C does not leave tokens behind; the cleanup itself is
bounded in time (``tokens.CLEANUP_SECONDS``).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType

_shielding = 0
_lock = threading.Lock()
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _handler(signum: int, frame: FrameType | None) -> None:
    if _shielding:
        name = signal.Signals(signum).name
        sys.stderr.write(f"\nsts-conformance: {name} received while cleaning up; finishing the cleanup first\n")
        return
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
