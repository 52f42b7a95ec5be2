"""A record a background thread of the controller writes once and checks in any process wait for.

The late use of the expiring token (:mod:`.late_use`) and the expiry-enforcement probe
(:mod:`.foundations`) each publish one JSON file in the run directory; a check polls for it.
The file is written whole (a temporary file, then a rename), so a reader never sees half of it.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def publish(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` as JSON, atomically, readable by the run's owner only."""
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


def wait_for(path: Path, build: Callable[[Any], T], timeout: float) -> T | None:
    """The record at ``path``, built by ``build``, once written (None when not there within ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError, ValueError, TypeError):
            return build(json.loads(path.read_text(encoding="utf-8")))
        if time.monotonic() > deadline:
            return None
        time.sleep(0.05)
