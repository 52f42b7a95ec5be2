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

import hashlib
import logging
import re
import threading
import urllib.parse
from collections.abc import Iterable

from sts_conformance.core.disguise import encoded_forms, fragments

_TOKEN_SHAPE = re.compile(r"svctok-[A-Za-z0-9_\-.~+/=]{4,}")
_MIN_SECRET = 6
#: up to this many forms, masking tests each for a substring; beyond, it walks the text through an index
_LINEAR_UP_TO = 100


def fingerprint(secret: str) -> str:
    """A stable, non-reversible label for a secret, e.g. ``<secret:3fa2c1>``."""
    return "<secret:" + hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()[:6] + ">"


class Redactor:
    """The set of known secrets of this process, and the masking of text.

    Every form masked (each secret, its base64 encodings, an issued secret's fragments; at least
    :data:`_MIN_SECRET` characters each) is filed under its first characters. While there are few,
    masking tests each form as a substring (fast in C); once there are many (a long fuzzing run
    registers thousands of secrets, each with several forms) it walks the text once, looking each
    position up in that index, so its cost follows the text's length, not the number of secrets.
    The forms found are replaced longest first, so a secret that contains another is masked whole.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: set[str] = set()
        self._issued: set[str] = set()
        #: every form masked (a secret, its encodings, its fragments) -> the fingerprint it is masked as
        self._labels: dict[str, str] = {}
        #: the forms under their first _MIN_SECRET characters (for many forms), and as one tuple (for few)
        self._index: dict[str, list[str]] = {}
        self._listed: tuple[str, ...] = ()
        #: the service-token secrets the run holds (issued ones, and those registered ``held``): no
        #: answer may carry one (ST-ONCE-006, judged in ``checking/leaks.py``); each form -> its secret
        self._held: set[str] = set()
        self._secret_of: dict[str, str] = {}

    def register(self, *secrets: str | None, issued: bool = False, held: bool = False) -> None:
        """Mask these secrets from now on; ``issued``: the target generated them (fragments count);
        ``held``: a service token the run was given (the admin's): no answer may carry it either."""
        with self._lock:
            for s in secrets:
                if not s or len(s) < _MIN_SECRET:
                    continue
                if issued or held:
                    self._held.add(s)
                if issued and s not in self._issued:
                    self._issued.add(s)
                    self._add_forms(s, fragments(s))
                if s not in self._known:
                    self._known.add(s)
                    self._add_forms(s, (s, *encoded_forms(s)))

    def _add_forms(self, secret: str, forms: tuple[str, ...]) -> None:
        label = fingerprint(secret)
        for form in forms:
            if form not in self._labels and len(form) >= _MIN_SECRET:
                self._labels[form] = label
                self._secret_of[form] = secret
                # a new list, not an append: a reader may hold the old one
                key = form[:_MIN_SECRET]
                self._index[key] = [*self._index.get(key, ()), form]

    def secrets(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._known)

    def issued(self) -> frozenset[str]:
        """The registered secrets the target issued (see :func:`.disguise.how_carried`)."""
        with self._lock:
            return frozenset(self._issued)

    def held_in(self, texts: Iterable[str]) -> set[str]:
        """The held secrets (see :meth:`register`) that ``texts`` carry, in clear or in a disguise masking
        knows (base64, an issued secret's fragment; percent-encoded texts are read decoded too)."""
        found: set[str] = set()
        for text in texts:
            for variant in (text, urllib.parse.unquote(text)) if "%" in text else (text,):
                found.update(self._secret_of.get(form, "") for form in self._present(variant))
        with self._lock:
            return found & self._held

    def _present(self, text: str) -> list[str]:
        """The forms that occur in ``text``, longest first."""
        few = len(self._labels) <= _LINEAR_UP_TO  # then a substring test per form is fastest
        found = [f for f in self._forms() if f in text] if few else self._walk(text)
        return sorted(found, key=len, reverse=True)

    def _forms(self) -> tuple[str, ...]:
        with self._lock:
            if len(self._listed) != len(self._labels):
                self._listed = tuple(self._labels)
            return self._listed

    def _walk(self, text: str) -> list[str]:
        """Each position of ``text`` looked up in the index: the cost follows the text, not the forms."""
        get, width = self._index.get, _MIN_SECRET
        found: set[str] = set()
        for i in range(len(text) - width + 1):
            forms = get(text[i : i + width])
            if forms:
                found.update(f for f in forms if text.startswith(f, i))
        return list(found)

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
