"""Keep token secrets out of everything a run prints or writes.

Every secret the harness sees (created tokens, the admin and bootstrap tokens) is
registered here; :func:`mask` replaces each with a short fingerprint that says *which*
secret it was without revealing it. Anything that looks like a product token
(``svctok-…``) is masked even when it was never registered, so a secret that a faulty
target leaks is masked too.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Iterable

_TOKEN_SHAPE = re.compile(r"svctok-[A-Za-z0-9_\-.~+/=]{4,}")
_MIN_SECRET = 6


def fingerprint(secret: str) -> str:
    """A stable, non-reversible label for a secret, e.g. ``<secret:3fa2c1>``."""
    return "<secret:" + hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()[:6] + ">"


class Redactor:
    """The set of known secrets of this process, and the masking of text."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def register(self, *secrets: str | None) -> None:
        with self._lock:
            for s in secrets:
                if s and len(s) >= _MIN_SECRET and s not in self._secrets:
                    self._secrets.add(s)
                    self._pattern = None

    def secrets(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._secrets)

    def _compiled(self) -> re.Pattern[str] | None:
        with self._lock:
            if self._pattern is None and self._secrets:
                # longest first, so a secret that contains another is masked whole
                alts = sorted(self._secrets, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(s) for s in alts))
            return self._pattern

    def mask(self, text: str) -> str:
        if not text:
            return text
        pattern = self._compiled()
        if pattern is not None:
            text = pattern.sub(lambda m: fingerprint(m.group(0)), text)
        return _TOKEN_SHAPE.sub(lambda m: fingerprint(m.group(0)), text)

    def contains_secret(self, text: str) -> bool:
        pattern = self._compiled()
        return bool((pattern and pattern.search(text)) or _TOKEN_SHAPE.search(text))

    def mask_all(self, texts: Iterable[str]) -> list[str]:
        return [self.mask(t) for t in texts]


#: The process-wide redactor. Each xdist worker masks its own secrets before a report
#: leaves the worker, so nothing needs to be shared between processes.
REDACTOR = Redactor()


def mask(text: str) -> str:
    return REDACTOR.mask(text)


def install_logging_filter() -> None:
    """Mask every log record at creation, whichever logger or handler it goes to."""
    current = logging.getLogRecordFactory()
    if getattr(current, "_sts_masking", False):
        return

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = current(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave the record to logging's own error path
            return record
        masked = REDACTOR.mask(message)
        if masked != message or record.args:
            record.msg, record.args = masked, None
        return record

    factory._sts_masking = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
