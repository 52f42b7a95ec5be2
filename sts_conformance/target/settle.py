"""Eventual consistency: the effect of a create or a delete is read within a bounded settle window.

A real deployment may show what just changed a little late: a list served from a replica, an
authentication cache that lets a deleted token work a moment longer, a bootstrap token written
just after the API starts answering. None of that is a defect within a bounded window, so a
check that reads such an effect does it through :func:`until`: the first read decides when it
already shows the effect (a target that is consistent at once pays nothing more); otherwise
the read is repeated with backoff until it does, or until the window for that kind of effect
(profile ``consistency.*``, 0 demands immediacy) has passed. What the last read showed is then
judged as before, and the check's message names the time it waited (:func:`note`).

Every wait is recorded in the run's directory (``settle.jsonl``, shared by all its processes),
so the report states the lag measured (how often, how long at most) and how often a target did
not settle at all. A target that has failed to settle :data:`GIVE_UP_AFTER` times for one kind
of effect gets a short window for that kind from then on (twice the longest lag it did settle
in, at least :data:`MIN_WINDOW_S`): a defect costs a few windows per run, not one per check.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sts_conformance.core.errors import ProfileError

T = TypeVar("T")

#: the list shows a create or a delete
LIST = "list"
#: a deleted token is refused
REVOCATION = "revocation"
#: a launched target's bootstrap token works once the API answers
BOOTSTRAP = "bootstrap"
KINDS = (LIST, REVOCATION, BOOTSTRAP)
#: the profile key of each kind's window
PROFILE_KEYS = {LIST: "list_within", REVOCATION: "revocation_within", BOOTSTRAP: "bootstrap_within"}
#: seconds each kind may take by default
DEFAULTS = {LIST: 3.0, REVOCATION: 3.0, BOOTSTRAP: 5.0}
#: the longest window a profile may set (a window is waited, in the worst case, a few times per run)
MAX_WINDOW_S = 120.0
#: after this many waits that ran out for one kind, that kind's window shrinks
GIVE_UP_AFTER = 2
#: the shortest window after that (a target that settles, even late, has shown how late)
MIN_WINDOW_S = 0.5
#: the first pause between reads, doubled each time up to ``_MAX_PAUSE_S``
_FIRST_PAUSE_S = 0.05
_MAX_PAUSE_S = 0.25
LOG_NAME = "settle.jsonl"


@dataclass(frozen=True)
class Consistency:
    """The settle windows of a target profile (seconds; 0 demands that the first read shows the effect)."""

    list_within: float = DEFAULTS[LIST]
    revocation_within: float = DEFAULTS[REVOCATION]
    bootstrap_within: float = DEFAULTS[BOOTSTRAP]

    def window(self, kind: str) -> float:
        return float(getattr(self, PROFILE_KEYS[kind]))

    def as_dict(self) -> dict[str, float]:
        return {PROFILE_KEYS[k]: self.window(k) for k in KINDS}


def parse_consistency(section: Any, source: str) -> Consistency:
    """The ``consistency`` section of a profile; one clear ProfileError for anything else."""
    if section is None:
        return Consistency()
    if not isinstance(section, Mapping):
        raise ProfileError(f"target profile {source}: consistency must be a mapping, got {type(section).__name__}")
    known = set(PROFILE_KEYS.values())
    unknown = sorted(set(section) - known)
    if unknown:
        raise ProfileError(
            f"target profile {source}: unknown key 'consistency.{unknown[0]}' (known keys: {', '.join(sorted(known))})"
        )
    values = {}
    for key, value in section.items():
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not math.isfinite(value) or not 0 <= value <= MAX_WINDOW_S:
            raise ProfileError(
                f"target profile {source}: consistency.{key} must be a number of seconds from 0 (immediately) "
                f"to {MAX_WINDOW_S:g}, got {value!r}"
            )
        values[key] = float(value)
    return Consistency(**values)


class Settler:
    """Waits for effects to show, within the windows of one run; one per process (:data:`SETTLE`)."""

    def __init__(self, consistency: Consistency | None = None, log: Path | None = None) -> None:
        self.consistency = consistency or Consistency()
        self.log = log
        self._mutex = threading.Lock()
        self._local = threading.local()
        #: per kind: waits that ran out here, and the longest lag that did settle (seconds)
        self._timeouts: dict[str, int] = {}
        self._max_lag: dict[str, float] = {}

    def configure(self, consistency: Consistency, run_dir: Path | None) -> None:
        self.consistency = consistency
        self.log = run_dir / LOG_NAME if run_dir is not None else None
        with self._mutex:
            self._timeouts.clear()
            self._max_lag.clear()

    # -- waiting ----------------------------------------------------------------------------

    def window(self, kind: str) -> float:
        """The window a new wait for ``kind`` gets: the profile's, or a short one once the target gave up settling."""
        full = self.consistency.window(kind)
        timeouts, max_lag = self._history(kind)
        if timeouts < GIVE_UP_AFTER:
            return full
        return min(full, max(MIN_WINDOW_S, 2 * max_lag))

    def until(self, kind: str, read: Callable[[], T], ok: Callable[[T], bool], *, may_not: bool = False) -> T:
        """``read()`` until ``ok`` holds for what it returns, within ``kind``'s window; the last reading.

        The first reading is returned at once when it is ``ok`` (no wait, nothing recorded).
        ``may_not``: a correct target may never show it (an optional behaviour), so a wait that runs
        out does not count as the target failing to settle.
        """
        self._local.waited = {**getattr(self._local, "waited", {}), kind: 0.0}
        value = read()
        if ok(value):
            return value
        window = self.window(kind)
        start = time.monotonic()
        pause = _FIRST_PAUSE_S
        settled = False
        while time.monotonic() - start < window:
            time.sleep(max(0.0, min(pause, window - (time.monotonic() - start))))
            pause = min(pause * 2, _MAX_PAUSE_S)
            value = read()
            if ok(value):
                settled = True
                break
        waited = time.monotonic() - start
        self._local.waited[kind] = waited
        if settled or not may_not:
            self._record(kind, settled, waited, window)
        return value

    def waited(self, kind: str) -> float:
        """How long the last wait of this thread for ``kind`` took (0: the first read showed the effect)."""
        return float(getattr(self._local, "waited", {}).get(kind, 0.0))

    def note(self, kind: str) -> str:
        """For a failure message: how long the check waited for the effect to show, and the setting that says so."""
        waited = self.waited(kind)
        if waited <= 0:
            window = self.window(kind)
            if window > 0:
                return ""
            return f" (profile consistency.{PROFILE_KEYS[kind]} is 0: the effect must show at once)"
        return (
            f" (still so after waiting {waited:.1f} s for the target to settle; "
            f"profile consistency.{PROFILE_KEYS[kind]} is {self.consistency.window(kind):g} s)"
        )

    # -- the record --------------------------------------------------------------------------

    def _record(self, kind: str, settled: bool, waited: float, window: float) -> None:
        with self._mutex:
            if settled:
                self._max_lag[kind] = max(self._max_lag.get(kind, 0.0), waited)
            else:
                self._timeouts[kind] = self._timeouts.get(kind, 0) + 1
        write_event(self.log, {"k": kind, "ok": settled, "s": round(waited, 3), "window": round(window, 3)})

    def _history(self, kind: str) -> tuple[int, float]:
        """Waits that ran out for ``kind`` and the longest lag that settled: this process's, or the run's log."""
        with self._mutex:
            timeouts, max_lag = self._timeouts.get(kind, 0), self._max_lag.get(kind, 0.0)
        if timeouts < GIVE_UP_AFTER and self.log is not None:
            events = [e for e in read_events(self.log) if e.get("k") == kind]
            timeouts = max(timeouts, sum(1 for e in events if not e.get("ok")))
            max_lag = max([max_lag, *(float(e.get("s") or 0) for e in events if e.get("ok"))])
        return timeouts, max_lag


def write_event(log: Path | None, event: dict[str, Any]) -> None:
    """Append one event to the run's settle log (one short line: an atomic append)."""
    if log is None:
        return
    line = (json.dumps(event, sort_keys=True) + "\n").encode("utf-8")
    with contextlib.suppress(OSError):
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


def read_events(log: Path) -> list[dict[str, Any]]:
    try:
        text = log.read_text(encoding="utf-8")
    except OSError:
        return []
    events = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if isinstance(event, dict):
                events.append(event)
    return events


def summary(run_dir: Path | None, consistency: Consistency) -> dict[str, Any]:
    """What the report says about lag: per kind, the window, how often and how long the target lagged,
    how often it did not settle within the window; and the notes on the target's clock."""
    events = read_events(run_dir / LOG_NAME) if run_dir is not None else []
    out: dict[str, Any] = {}
    for kind in KINDS:
        mine = [e for e in events if e.get("k") == kind]
        lags = [float(e.get("s") or 0) for e in mine if e.get("ok")]
        out[kind] = {
            "window_s": consistency.window(kind),
            "lagged": len(lags),
            "max_lag_s": round(max(lags), 3) if lags else 0.0,
            "not_settled": sum(1 for e in mine if not e.get("ok")),
        }
    notes = [str(e["note"]) for e in events if e.get("k") == "clock" and e.get("note")]
    out["clock_notes"] = list(dict.fromkeys(notes))
    return out


def describe(data: Mapping[str, Any]) -> list[str]:
    """One line per kind that lagged or never settled, and the clock notes: what a summary shows."""
    lines = []
    for kind in KINDS:
        facts = data.get(kind) or {}
        lagged, missed = int(facts.get("lagged") or 0), int(facts.get("not_settled") or 0)
        if not lagged and not missed:
            continue
        text = f"{kind}: the target showed an effect late {lagged} time(s), by {facts.get('max_lag_s', 0):g} s at most"
        if missed:
            text += f"; {missed} time(s) not within {facts.get('window_s', 0):g} s"
        lines.append(f"settle window {text} (profile consistency.{PROFILE_KEYS[kind]})")
    lines += [str(n) for n in data.get("clock_notes") or []]
    return lines


#: this process's settler; the plugin configures it from the profile at the start of the run
SETTLE = Settler()


def until(kind: str, read: Callable[[], T], ok: Callable[[T], bool], *, may_not: bool = False) -> T:
    return SETTLE.until(kind, read, ok, may_not=may_not)


def note(kind: str) -> str:
    return SETTLE.note(kind)


def refused(read: Callable[[], Any]) -> Any:
    """The answer to ``read()`` (a call with a deleted token) once it is refused, within the revocation window."""
    return SETTLE.until(REVOCATION, read, lambda resp: not resp.is_success)
