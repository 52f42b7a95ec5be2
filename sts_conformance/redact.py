"""Keep token secrets out of everything a run prints or writes.

Every secret the harness sees (created tokens, the admin and bootstrap tokens) is
registered here; :func:`mask` replaces each with a short fingerprint that says *which*
secret it was without revealing it. Anything that looks like a product token
(``svctok-…``) is masked even when it was never registered, so a secret that a faulty
target leaks is masked too. So are a registered secret's disguises (:mod:`.disguise`): its
base64 encodings, and, for a secret the target issued, the start and the end of its random
part (``<secret:3fa2c1>`` for each; percent-encoded text is masked once decoded, by whoever
decodes it).
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import re
import threading

from .disguise import encoded_forms, fragments

_TOKEN_SHAPE = re.compile(r"svctok-[A-Za-z0-9_\-.~+/=]{4,}")
_MIN_SECRET = 6


def fingerprint(secret: str) -> str:
    """A stable, non-reversible label for a secret, e.g. ``<secret:3fa2c1>``."""
    return "<secret:" + hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()[:6] + ">"


class Redactor:
    """The set of known secrets of this process, and the masking of text.

    Masking first asks which known secrets occur in the text at all (a plain substring
    test per secret, fast even with thousands registered), then replaces only those,
    longest first, so a secret that contains another is masked whole. Registering never
    recompiles anything: a long fuzzing run registers thousands of secrets.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: set[str] = set()
        self._issued: set[str] = set()
        #: every form masked (a secret, its encodings, its fragments) -> the fingerprint it is masked as
        self._labels: dict[str, str] = {}
        self._ordered: tuple[str, ...] = ()  # longest first
        self._pending: list[str] = []

    def register(self, *secrets: str | None, issued: bool = False) -> None:
        """Mask these secrets from now on; ``issued``: the target generated them (fragments count)."""
        with self._lock:
            for s in secrets:
                if not s or len(s) < _MIN_SECRET:
                    continue
                if issued and s not in self._issued:
                    self._issued.add(s)
                    self._add_forms(s, fragments(s))
                if s not in self._known:
                    self._known.add(s)
                    self._add_forms(s, (s, *encoded_forms(s)))

    def _add_forms(self, secret: str, forms: tuple[str, ...]) -> None:
        label = fingerprint(secret)
        for form in forms:
            if form not in self._labels:
                self._labels[form] = label
                self._pending.append(form)

    def secrets(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._known)

    def issued(self) -> frozenset[str]:
        """The registered secrets the target issued (see :func:`.disguise.how_carried`)."""
        with self._lock:
            return frozenset(self._issued)

    def _snapshot(self) -> tuple[str, ...]:
        with self._lock:
            if self._pending:
                merged = list(self._ordered)
                for s in self._pending:
                    # keep longest-first order without re-sorting everything
                    bisect.insort(merged, s, key=lambda x: -len(x))
                self._ordered = tuple(merged)
                self._pending.clear()
            return self._ordered

    def _present(self, text: str) -> list[str]:
        return [s for s in self._snapshot() if s in text]

    def mask(self, text: str) -> str:
        if not text:
            return text
        for s in self._present(text):
            text = text.replace(s, self._labels.get(s) or fingerprint(s))
        return _TOKEN_SHAPE.sub(lambda m: fingerprint(m.group(0)), text)

    def contains_secret(self, text: str) -> bool:
        return bool(self._present(text) or _TOKEN_SHAPE.search(text))


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
