"""What a CLI call runs in: stdout as a pipe or a terminal of a given width, and its throw-away home.

The real ``sts`` CLI sizes its ``list`` table to the terminal stdout is (80 columns when it
is a pipe): :func:`stdout_for` gives a call a pseudo-terminal of the width a check asks for.
:func:`secrets_in_files` searches the call's home afterwards for a secret it may have saved.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import struct
import subprocess
import termios
import threading
from collections.abc import Callable, Iterator
from typing import Any

from sts_conformance.core.redact import REDACTOR, fingerprint

#: rows of the pseudo-terminal (any value: nothing is laid out by height)
_ROWS = 50


@contextlib.contextmanager
def stdout_for(columns: int | None) -> Iterator[tuple[Any, Callable[[bytes | None], bytes]]]:
    """stdout for one call: a pipe, or a pseudo-terminal ``columns`` wide read by a thread.

    Yields what to give ``Popen`` as ``stdout`` and a function turning what ``communicate``
    returned into the call's stdout (call it once the process has ended).
    """
    if columns is None:
        yield subprocess.PIPE, lambda raw: raw or b""
        return
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", _ROWS, columns, 0, 0))
    attrs = termios.tcgetattr(follower)
    attrs[1] &= ~termios.ONLCR  # keep "\n" as written, not "\r\n"
    termios.tcsetattr(follower, termios.TCSANOW, attrs)
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: every writer has closed the terminal
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    open_ends = {"follower": True}

    def close_follower() -> None:
        if open_ends["follower"]:
            open_ends["follower"] = False
            os.close(follower)

    def collect(_: bytes | None) -> bytes:
        close_follower()  # the child's copy is closed with it: the reader then sees EIO
        reader.join(timeout=10)
        return b"".join(chunks)

    try:
        yield follower, collect
    finally:
        close_follower()
        reader.join(timeout=10)
        os.close(leader)


def secrets_in_files(directory: str, limit_bytes: int = 4_000_000) -> tuple[str, ...]:
    """Fingerprints of the secrets known to this process found in any file under ``directory``."""
    known = [s for s in REDACTOR.secrets() if s]
    found: set[str] = set()
    if not known:
        return ()
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            try:
                if os.path.islink(path) or os.path.getsize(path) > limit_bytes:
                    continue
                with open(path, "rb") as handle:
                    text = handle.read().decode("utf-8", "replace")
            except OSError:
                continue
            found.update(fingerprint(s) for s in known if s in text)
    return tuple(sorted(found))
