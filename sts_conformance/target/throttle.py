"""Throttling is honoured, never judged: a 429 or 503 is waited out and the call sent again.

A target behind an ingress that rate-limits answers some requests with ``429 Too Many
Requests`` (or ``503 Service Unavailable``), with or without ``Retry-After``, and does
nothing for them. Such an answer says nothing about the service-token feature, so no check
ever sees it (except a 503 without ``Retry-After`` that persists through a few seconds of
backoff: that may be a broken server rather than a busy one, and is the check's to judge):
:class:`~sts_conformance.target.client.ApiClient` waits as ``Retry-After`` says
(seconds, or an HTTP-date read against the answer's own ``Date``) or, without it, backs
off exponentially with jitter, and sends the same request again -- a create too, since a
throttled create did nothing (its journal entry, written before the first attempt, stays
true). The pace then adapts: every request of the process waits for a spacing that grows
with each throttled answer and shrinks again with each answered one, so concurrent checks
send fewer requests at once.

The time spent waiting is bounded by the run's ``--time-budget`` in each process (the final
cleanup by its own deadline): a target that throttles for longer ends the check with
:class:`TargetThrottled`, a harness error (exit status 3) that names the cause, never a
failed requirement. How often and how long the target throttled goes into the report: each
process adds its figures to ``throttle-<process>.json`` in the run directory, and the
controller sums them (:func:`read_totals`).
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from sts_conformance.core.errors import TargetUnavailable

#: the answers that mean "not now" rather than anything about the request
THROTTLE_STATUSES = frozenset({429, 503})
#: backoff without Retry-After: the first wait, and the longest (each is jittered to 50-100 %)
BACKOFF_FIRST_S = 0.05
BACKOFF_MAX_S = 5.0
#: the spacing between requests of the process after a throttled answer, at most
SPACING_MAX_S = 1.0
SPACING_FIRST_S = 0.02
#: how much each answered request shrinks the spacing
SPACING_DECAY = 0.8
DEFAULT_BUDGET_S = 120.0
#: a 503 without Retry-After may be overload or a broken server: sent again this many times
#: (about 3 s of backoff), then it is the check's to judge. A 429, or a 503 that says when to
#: come back, is waited out as long as the budget allows.
BARE_503_RETRIES = 6
_FILE_GLOB = "throttle-*.json"


class TargetThrottled(TargetUnavailable):
    """The target kept throttling beyond the time the run may wait: a harness error, not a verdict."""


def retry_after_s(resp: httpx.Response) -> float | None:
    """What ``Retry-After`` asks for, in seconds (None: absent or unreadable).

    An HTTP-date is measured against the answer's own ``Date`` when it has one (the server's
    clock may be off ours), else against the local clock.
    """
    value = resp.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(int(value))
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    now = time.time()
    with contextlib.suppress(TypeError, ValueError, IndexError, OverflowError):
        date = resp.headers.get("date")
        if date:
            now = email.utils.parsedate_to_datetime(date).timestamp()
    return max(0.0, when - now)


def gives_up_on(resp: httpx.Response, attempts: int) -> bool:
    """Whether a throttle-like answer after ``attempts`` resends goes to the check after all."""
    return resp.status_code == 503 and "retry-after" not in resp.headers and attempts >= BARE_503_RETRIES


def backoff_s(attempt: int, rng: random.Random | None = None) -> float:
    """The wait before resending after ``attempt`` throttled answers without ``Retry-After``."""
    ceiling = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** max(0, attempt - 1))
    return ceiling * (rng or random).uniform(0.5, 1.0)


@dataclass
class ThrottleStats:
    """How often and how long a target throttled the run (or one process of it)."""

    #: throttled answers, and how many of them by status ("429", "503"; "cli" for a CLI call)
    responses: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    #: the time spent waiting them out, in all and the longest single wait
    waited_s: float = 0.0
    longest_s: float = 0.0
    #: why the run stopped waiting (the target throttled beyond the budget), or None
    gave_up: str | None = None

    def add(self, status: str, waited: float) -> None:
        self.responses += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.waited_s += waited
        self.longest_s = max(self.longest_s, waited)

    def merge(self, other: ThrottleStats) -> None:
        self.responses += other.responses
        for status, n in other.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + n
        self.waited_s += other.waited_s
        self.longest_s = max(self.longest_s, other.longest_s)
        self.gave_up = self.gave_up or other.gave_up

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["waited_s"] = round(self.waited_s, 3)
        data["longest_s"] = round(self.longest_s, 3)
        data["statuses"] = dict(sorted(self.statuses.items()))
        return data

    @classmethod
    def from_dict(cls, data: Any) -> ThrottleStats:
        if not isinstance(data, dict):
            return cls()
        statuses = data.get("statuses")
        return cls(
            int(data.get("responses") or 0),
            {str(k): int(v) for k, v in statuses.items()} if isinstance(statuses, dict) else {},
            float(data.get("waited_s") or 0.0),
            float(data.get("longest_s") or 0.0),
            data.get("gave_up") if isinstance(data.get("gave_up"), str) else None,
        )


class Throttle:
    """The process's pace towards the target, and what throttling cost it. One per process."""

    def __init__(self, budget_s: float = DEFAULT_BUDGET_S) -> None:
        self.budget_s = budget_s
        self.stats = ThrottleStats()
        self._lock = threading.Lock()
        self._spacing = 0.0
        self._next_at = 0.0
        self._record: Path | None = None
        self._local = threading.local()

    def configure(self, *, budget_s: float | None = None, record: Path | None = None) -> None:
        """The run's ``--time-budget``, and the file this process's figures are kept in."""
        if budget_s is not None:
            self.budget_s = float(budget_s)
        self._record = record

    def deadline(self) -> float | None:
        """This thread's deadline from :meth:`until`, or None (the budget applies)."""
        found = getattr(self._local, "deadline", None)
        return found if isinstance(found, float | int) else None

    @contextlib.contextmanager
    def until(self, deadline: float | None) -> Iterator[None]:
        """In this thread, wait out throttling up to ``deadline`` (``time.monotonic()``) instead of
        the budget: the final cleanup has its own time, also once the budget is spent (None: the budget)."""
        before = getattr(self._local, "deadline", None)
        self._local.deadline = deadline
        try:
            yield
        finally:
            self._local.deadline = before

    # -- around each request ---------------------------------------------------------------

    def pace(self) -> None:
        """Before a request: keep the spacing the target's throttling asked for (usually none)."""
        if self._spacing <= 0.0:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next_at)
            self._next_at = start + self._spacing
        if start > now:
            time.sleep(start - now)

    def answered(self) -> None:
        """After an answer that was not throttled: the pace relaxes again."""
        if self._spacing > 0.0:
            with self._lock:
                self._spacing = 0.0 if self._spacing < SPACING_FIRST_S / 2 else self._spacing * SPACING_DECAY

    def wait(self, resp: httpx.Response, attempt: int, what: str) -> None:
        """Wait out a throttled answer before the request is sent again, or raise TargetThrottled."""
        asked = retry_after_s(resp)
        delay = asked if asked is not None else backoff_s(attempt)
        status = str(resp.status_code)
        self._wait(delay, status, what, f"Retry-After {resp.headers['retry-after']!r}" if asked is not None else "")

    def wait_cli(self, attempt: int, what: str) -> None:
        """Wait before running a CLI command again whose call the target throttled."""
        self._wait(backoff_s(attempt), "cli", what, "")

    def _wait(self, delay: float, status: str, what: str, asked: str) -> None:
        deadline = getattr(self._local, "deadline", None)
        message: str | None = None
        with self._lock:
            if deadline is not None:
                allowed = deadline - time.monotonic()
                limit = "the cleanup's deadline"
            else:
                allowed = self.budget_s - self.stats.waited_s
                limit = f"the time budget of {self.budget_s:g} s (--time-budget)"
            if delay > allowed:
                shown = f" ({asked})" if asked else ""
                message = (
                    f"the target throttled the run for longer than it may wait: {what} answered {status}{shown} "
                    f"after {self.stats.responses} throttled answer(s) and {self.stats.waited_s:.1f} s of waiting, "
                    f"beyond {limit}; this is no verdict on the service-token feature"
                )
                self.stats.gave_up = self.stats.gave_up or message
            else:
                self.stats.add(status, delay)
                self._spacing = min(SPACING_MAX_S, max(SPACING_FIRST_S, self._spacing * 2))
            snapshot = self.stats.as_dict()
        self._write(snapshot)
        if message is not None:
            raise TargetThrottled(message)
        time.sleep(delay)

    def _write(self, snapshot: dict[str, Any]) -> None:
        if self._record is None:
            return
        with contextlib.suppress(OSError):
            tmp = self._record.with_suffix(".tmp")
            tmp.write_text(json.dumps(snapshot), encoding="utf-8")
            tmp.replace(self._record)


#: the one pace of this process towards its target
THROTTLE = Throttle()


def record_file(run_dir: Path, process: str) -> Path:
    return run_dir / f"throttle-{process}.json"


def read_totals(run_dir: Path) -> ThrottleStats:
    """The throttling of every process of the run, summed (the controller, at the end)."""
    total = ThrottleStats()
    for path in sorted(run_dir.glob(_FILE_GLOB)):
        with contextlib.suppress(OSError, ValueError):
            total.merge(ThrottleStats.from_dict(json.loads(path.read_text(encoding="utf-8"))))
    return total


def describe(stats: dict[str, Any] | None) -> str | None:
    """One sentence for the reports, or None when the target never throttled."""
    if not stats or not stats.get("responses"):
        return None
    by = ", ".join(f"{n} × {s}" for s, n in sorted(stats.get("statuses", {}).items()))
    return (
        f"the target throttled {stats['responses']} answer(s) ({by}); the run waited {stats['waited_s']:.1f} s "
        f"in all (longest {stats['longest_s']:.1f} s) and sent each again — no verdict is drawn from them"
    )
