"""Independent requests in flight together, at most the profile's ``concurrency`` at once.

A run against a distant or slow target spends most of its time waiting for answers. Where a
check (or the preparation, or the final sweep) has several requests that do not depend on
each other, :func:`run_together` sends them at once through the one client of the process
(``httpx.Client`` is safe to share between threads), at most :data:`LIMIT` in flight, and
returns their results in the order given. ``concurrency: 1`` in the profile runs them one
after another in the calling thread, as before.

What a reader of a failure sees does not change: the exchanges of the calls go into the
exchange log in the order the calls were given, not the order the answers came, each call's
exchanges together; a muted caller's calls stay muted; the cleanup's own throttling deadline
applies to its calls; the 5xx answers and leaked secrets the calls see are kept where the
caller keeps its own (``client.Sink``). The throttling pace (``throttle.py``) is per process, so a
throttled target slows every call in flight together. Calls may nest (a check run ahead together
with others, ``checking/ahead.py``, sends calls together in turn): the bound on requests in
flight is kept per request by ``inflight.GATE``, not by counting threads, so however they nest
no more than :data:`LIMIT` requests of the process are on the wire at once.

Every call runs to its end; then the first exception, in the order given, is raised (a
check's failure or block is the one the first failing call gives, as it would be serially).
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from sts_conformance.target.client import EXCHANGES, Exchange
from sts_conformance.target.inflight import DEFAULT_LIMIT, GATE
from sts_conformance.target.throttle import THROTTLE

T = TypeVar("T")

#: how many requests of this process may be in flight together (the profile's ``concurrency``)
LIMIT = DEFAULT_LIMIT


def configure(limit: int) -> None:
    """Set the bound of this process (from the profile, at the start of a run or worker)."""
    global LIMIT
    LIMIT = max(1, int(limit))
    GATE.configure(LIMIT)


def run_together(calls: Iterable[Callable[[], T]], limit: int | None = None) -> list[T]:
    """Run independent calls together (each usually one request); their results in the order given."""
    todo = list(calls)
    bound = LIMIT if limit is None else max(1, limit)
    if bound <= 1 or len(todo) <= 1:
        return [call() for call in todo]
    parent = EXCHANGES.sink()
    deadline = THROTTLE.deadline()
    logs: list[list[Exchange]] = [[] for _ in todo]
    # a bound wider than the process's, asked for on purpose, is these calls' own
    wider = threading.BoundedSemaphore(bound) if bound > LIMIT else None

    def run(index: int) -> T:
        with EXCHANGES.collected(logs[index], parent=parent), THROTTLE.until(deadline):
            if wider is None:
                return todo[index]()
            with GATE.own(wider):
                return todo[index]()

    with concurrent.futures.ThreadPoolExecutor(max_workers=min(bound, len(todo)), thread_name_prefix="sts") as pool:
        # each call in a copy of the caller's context: what the caller holds (a lock for a wave, say) its calls hold
        futures = [pool.submit(contextvars.copy_context().run, run, i) for i in range(len(todo))]
        try:
            concurrent.futures.wait(futures)
        except BaseException:
            # interrupted (Ctrl-C, SIGTERM): the calls not started yet are not sent; those in flight end
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    for log in logs:
        for exchange in log:
            EXCHANGES.add(exchange)
    return _results(futures)


def _results(futures: Sequence[concurrent.futures.Future[T]]) -> list[T]:
    for future in futures:
        exc = future.exception()
        if exc is not None:
            raise exc
    return [future.result() for future in futures]
