"""The checks of the modules marked ``together`` run at once, when the first of them runs.

Most checks are a short chain of requests (make or take a token, present it, read the list) that
depends on nothing another check of its module does. Against a distant or slow target a run spends
nearly all its time waiting for those answers, one check after another. In a module whose checks
are independent of each other and of the other such modules' (``pytestmark = pytest.mark.together``),
the first check to run starts every such check this process runs, each in a thread of its own,
and waits for them all (at most the profile's ``concurrency`` checks at once; their requests pass
the same bound on requests in flight, ``target/inflight.py``). Each check's outcome, and everything its requests
got, is kept apart (``client.Sink``); when pytest reaches that check, its call gives the kept
outcome: the same failure, skip or block, the same exchanges in the order they were sent, the same
server errors (ST-ERR-001) and leaked secrets (ST-ONCE-006) judged for it and for no other, and the
time its own call took (not the first check's wait for all of them).

A check runs ahead only where nothing is lost: its arguments are its own parameters, fixtures of
session scope (set up here as its own setup would: a ``together`` module's shared fixtures are of
session scope for this), fixtures of module scope when the first check is of its module, or plain
functions of those (one check's own, without teardown, as ``observe``); it has no other
function-scoped fixture, no ``skip``/``skipif``/``xfail`` mark and no failed foundation; it is not a
Hypothesis test (those draw their examples in their own order); and this process is known to run
it (under ``-n``, a module marked ``together`` goes to one worker whole, ``plugin.work_unit``, whose
checks run together when the first of them runs). A check marked ``alone``, and any other check,
runs as usual in its turn, after those that ran ahead: while no other check of the process runs.
``concurrency: 1`` runs every check in its turn, as before.

A batch starts slowly: :data:`SLOW_START` checks at once, and one more for each check that passes ahead
(up to the pool's size), so the checks in flight when a target first fails one are few.

Only while the target behaves: once a check that ran ahead does not pass (a failure, a block, an
inconclusive end), the checks not started yet run in their turn, one after another; and none runs
ahead at all once the run has seen the target fail something (``Plan.held_back``: a foundation or a
server error while the run was prepared, a failed check). Checks at once against a target that
misbehaves could make one defect read as many: a race that only simultaneous creates meet, more of the
run's tokens alive at once than its list shows, a delete that removes the newest token. What a check
met ahead of its turn is kept, a failure too: never run again, since a check may judge what only its
first try can see (a token presented for the first time after its expiry is refused).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import inspect
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

import pytest

from sts_conformance.core.preconditions import Blocked, Inconclusive
from sts_conformance.target import together
from sts_conformance.target.client import EXCHANGES, Sink
from sts_conformance.target.inflight import STOP_WHEN
from sts_conformance.target.throttle import THROTTLE

MARK = "together"
#: a check of a ``together`` module that runs in its own turn, while no other check of the process runs
ALONE = "alone"


@dataclasses.dataclass
class Outcome:
    """What one check run ahead did: everything its requests got, and what it raised (None: passed)."""

    sink: Sink
    error: BaseException | None = None
    #: how long its own call took, in its thread (pytest's report shows this, not the wait for the others)
    seconds: float = 0.0


#: how many checks run at once per request the profile lets be in flight
CHECKS_PER_REQUEST = 4
#: how many checks a batch starts with at once; each check that passes ahead lets one more run (a slow
#: start: a target that fails the first checks it meets has few others in flight to fail beside them)
SLOW_START = 2

_OUTCOMES = pytest.StashKey[dict[str, Outcome]]()
#: the checks that were offered to a batch run ahead (run there, or left to their turn): never offered again
_OFFERED = pytest.StashKey[set[str]]()
_OWN_SECONDS = pytest.StashKey[float]()

MARKERS = (
    f"{MARK}(one_at_a_time=KEY): the module's checks are independent of the others; they run at once when the "
    "first runs (those of one KEY one after another)",
    f"{ALONE}: in a module marked {MARK}, a check that runs in its own turn, while no other check runs",
)


@dataclasses.dataclass(frozen=True)
class Plan:
    """What the plugin knows of this process's checks: which are blocked at their setup (a failed
    foundation) and which module an xdist worker is handed whole (the other checks one at a time)."""

    blocked: Callable[[pytest.Item], bool]
    whole_module: Callable[[str], bool]
    #: why no check should run ahead any more (the target has already failed something), or None
    held_back: Callable[[pytest.Session], str | None] = lambda session: None


#: whether checks run ahead at all (the profile's ``checks_together``; off: every check in its turn)
ENABLED = False


def configure(enabled: bool) -> None:
    """Set from the profile, at the start of a run or worker."""
    global ENABLED
    ENABLED = bool(enabled)


def call(pyfuncitem: pytest.Function, plan: Plan) -> bool | None:
    """``pytest_pyfunc_call``: the kept outcome of a check that ran ahead (True: handled; or raised again);
    the first check of a ``together`` module runs the others first; None for pytest's own call."""
    outcomes = pyfuncitem.config.stash.setdefault(_OUTCOMES, {})
    offered = pyfuncitem.config.stash.setdefault(_OFFERED, set())
    kept = outcomes.pop(pyfuncitem.nodeid, None)
    if kept is None:
        if not ENABLED or together.LIMIT <= 1 or pyfuncitem.nodeid in offered:
            return None
        if plan.held_back(pyfuncitem.session) is not None:
            return None
        own = _arguments(pyfuncitem, pyfuncitem)
        if own is None:
            return None
        others = [item for item in _candidates(pyfuncitem, plan) if item.nodeid not in offered]
        if not others:
            return None
        offered.update(item.nodeid for item in (pyfuncitem, *others))
        outcomes.update(_run(pyfuncitem, own, others))
        kept = outcomes.pop(pyfuncitem.nodeid, None)
        if kept is None:
            return None  # it runs now, in its turn (see _run)
    EXCHANGES.restore(kept.sink)
    pyfuncitem.stash[_OWN_SECONDS] = kept.seconds
    if kept.error is not None:
        raise kept.error
    return True


def own_seconds(item: pytest.Item) -> float | None:
    """How long the call of a check that ran ahead took in its thread (None: it ran in its turn)."""
    return item.stash.get(_OWN_SECONDS, None)


def forget(item: pytest.Item) -> None:
    """``pytest_runtest_teardown``: nothing kept outlives its check (one whose call was not reached)."""
    item.config.stash.get(_OUTCOMES, {}).pop(item.nodeid, None)


def _candidates(first: pytest.Function, plan: Plan) -> list[pytest.Function]:
    """The checks after ``first`` that this process runs and that may run ahead, by their marks (whether
    their fixtures can be had is known only once tried): of every module marked ``together``; in an xdist
    worker, of ``first``'s module only (handed to it whole)."""
    module = first.nodeid.split("::", 1)[0]
    items = list(first.session.items)
    if hasattr(first.config, "workerinput"):
        if not plan.whole_module(module):
            return []  # a worker handed checks one at a time does not know which are its own
        items = [i for i in items if i.nodeid.split("::", 1)[0] == module]
    after = items[items.index(first) + 1 :] if first in items else []
    return [item for item in after if isinstance(item, pytest.Function) and _marked(item) and not plan.blocked(item)]


def _marked(item: pytest.Function) -> bool:
    """Whether the marks of ``item`` let it run ahead (see the module's docstring)."""
    if item.get_closest_marker(MARK) is None or item.get_closest_marker(ALONE) is not None:
        return False
    if getattr(item.obj, "is_hypothesis_test", False):
        return False
    return all(item.get_closest_marker(name) is None for name in ("skip", "skipif", "xfail"))


def _set_up(item: pytest.Function) -> bool:
    """Whether every fixture wider than one check that ``item`` takes is set up already (none to make)."""
    info = item._fixtureinfo
    for name in info.initialnames:
        defs = info.name2fixturedefs.get(name)
        if defs and defs[-1].scope != "function" and defs[-1].cached_result is None:
            return False
    return True


class _Alone(Exception):
    """This check cannot run ahead: it runs in its own turn."""


def _arguments(item: pytest.Function, via: pytest.Function) -> dict[str, Any] | None:
    """The arguments ``item`` is called with, fixtures wider than one check set up through ``via``'s
    request; None where it cannot run ahead (see the module's docstring)."""
    if not _marked(item):
        return None
    info = item._fixtureinfo
    try:
        if item is via:
            for name in info.initialnames:
                _value(name, item, via, dry=True)
            return {name: item.funcargs[name] for name in info.argnames}
        values = {name: _value(name, item, via) for name in info.initialnames}
    except _Alone:
        return None
    return {name: values[name] for name in info.argnames}


def _value(name: str, item: pytest.Function, via: pytest.Function, *, dry: bool = False) -> Any:
    """One fixture's (or parameter's) value for ``item``; raises :class:`_Alone` where it cannot be had
    ahead. ``dry``: only whether it could (``item`` is ``via``, whose fixtures pytest has set up)."""
    if name == "request":
        return item._request
    params = item.callspec.params if hasattr(item, "callspec") else {}
    defs = item._fixtureinfo.name2fixturedefs.get(name)
    if not defs:
        raise _Alone(name)
    fixture = defs[-1]
    if name in params and getattr(fixture.func, "__name__", "") == "get_direct_param_fixture_func":
        return params[name]  # a parameter given straight to the check
    if fixture.params is not None:
        raise _Alone(name)  # a parametrised fixture: set up per parameter, in the check's own turn
    if fixture.scope != "function":
        # a fixture of session scope is set up through the check's own request (it may be defined in its
        # module, seen from there alone); a narrower one only through a check of the same module running
        if fixture.scope != "session" and item.nodeid.split("::", 1)[0] != via.nodeid.split("::", 1)[0]:
            raise _Alone(name)
        if dry:
            return None
        request = item._request if fixture.scope == "session" else via._request
        try:
            # a fixture's setup belongs to its first check, not to this one's evidence; pytest 9 warns that
            # this check is not set up yet (and a later pytest refuses: the check then runs in its turn)
            with EXCHANGES.muted(), warnings.catch_warnings():
                warnings.simplefilter("ignore", pytest.PytestDeprecationWarning)
                return request.getfixturevalue(name)
        except Exception as exc:
            raise _Alone(name) from exc
    # one check's own fixture: only one without teardown (a plain function), made again for this check
    if inspect.isgeneratorfunction(fixture.func) or inspect.iscoroutinefunction(fixture.func):
        raise _Alone(name)
    args = {arg: _value(arg, item, via, dry=dry) for arg in fixture.argnames}
    return None if dry else fixture.func(**args)


def _one_at_a_time(item: pytest.Item) -> str | None:
    """The key of the checks ``item`` runs one at a time with (``together(one_at_a_time=KEY)``), if any."""
    mark = item.get_closest_marker(MARK)
    key = mark.kwargs.get("one_at_a_time") if mark is not None else None
    return str(key) if key is not None else None


def _interleaved(items: list[pytest.Function]) -> list[pytest.Function]:
    """``items`` with their modules taking turns: a module's first check, the next module's first, ... ."""
    by_module: dict[str, list[pytest.Function]] = {}
    for item in items:
        by_module.setdefault(item.nodeid.split("::", 1)[0], []).append(item)
    queues = list(by_module.values())
    return [q[i] for i in range(max(map(len, queues), default=0)) for q in queues if i < len(q)]


def _run(first: pytest.Function, own: dict[str, Any], others: list[pytest.Function]) -> dict[str, Outcome]:
    """Run ``first`` (called with ``own``) and ``others`` at once; the outcome of each that ran (the others run
    in their turn).

    The checks whose fixtures are all set up start at once; the fixtures the rest need are then set up
    here, in pytest's own thread (fixture set-up is not made for threads), each check starting as soon
    as its own are: a fixture that sends requests (a batch of CLI calls, a token used then deleted)
    does so while the checks already started run.
    """
    deadline = THROTTLE.deadline()
    turns: dict[str, threading.Lock] = {}
    for item in (first, *others):
        key = _one_at_a_time(item)
        if key is not None:
            turns.setdefault(key, threading.Lock())

    stop = threading.Event()  # set when the run is interrupted: the checks send nothing more
    # set once a check did not pass: the target misbehaves, and checks at once could make one defect read
    # as many (a race, more tokens alive at once than it lists, a delete that takes the newest token): the
    # checks not started yet run in their turn. What a check met ahead is kept, a failure too: a check may
    # judge something only its first try can see (a token presented for the first time after its expiry),
    # so one that failed is never run again to be judged a second time
    halt = threading.Event()
    # the slow start: how many checks may run at once (SLOW_START, one more for each that passed), and how
    # many do; a check waits for its place after its turn (one_at_a_time) is its own
    window = {"open": max(1, SLOW_START), "running": 0}
    places = threading.Condition()

    def place() -> bool:
        """Wait for a place among the checks running; False when the batch halted (or was stopped) first."""
        with places:
            places.wait_for(lambda: window["running"] < window["open"] or halt.is_set() or stop.is_set())
            if halt.is_set() or stop.is_set():
                return False
            window["running"] += 1
            return True

    def leave(passed: bool) -> None:
        with places:
            window["running"] -= 1
            window["open"] += 1 if passed else 0
            places.notify_all()

    def run(item: pytest.Function, kwargs: dict[str, Any]) -> Outcome | None:
        kept = Outcome(Sink.own())
        key = _one_at_a_time(item)
        turn = turns[key] if key is not None else contextlib.nullcontext()
        stoppable = STOP_WHEN.set(stop)
        try:
            with turn, EXCHANGES.isolated(kept.sink), THROTTLE.until(deadline):
                if not place():
                    return kept if stop.is_set() else None  # stopped: not run; halted: it runs in its turn
                began = time.perf_counter()
                try:
                    if not stop.is_set():
                        item.obj(**kwargs)
                except BaseException as exc:
                    kept.error = exc
                    if not _passes(exc):
                        halt.set()
                finally:
                    leave(kept.error is None or _passes(kept.error))
                kept.seconds = time.perf_counter() - began
        finally:
            STOP_WHEN.reset(stoppable)
        return kept

    # More checks than requests in flight: a check waits on the target, on a table another check is
    # making, on a token's expiry; the bound on requests holds whatever the number of checks
    # (``inflight.GATE``). The modules take turns, so the first checks started are of every module.
    set_up = {item.nodeid: _set_up(item) for item in others}
    ready = [item for item in others if set_up[item.nodeid]]
    later = [item for item in others if not set_up[item.nodeid]]
    futures: dict[str, concurrent.futures.Future[Outcome | None]] = {}
    pool = concurrent.futures.ThreadPoolExecutor(
        max_workers=max(1, int(CHECKS_PER_REQUEST * together.LIMIT)), thread_name_prefix="sts-ahead"
    )
    try:
        futures[first.nodeid] = pool.submit(run, first, own)
        for item in [*_interleaved(ready), *_interleaved(later)]:
            if halt.is_set():
                break  # (the fixtures of the rest are set up in their turn, as usual)
            kwargs = _arguments(item, first)
            if kwargs is not None:
                futures[item.nodeid] = pool.submit(run, item, kwargs)
        concurrent.futures.wait(futures.values())
    except BaseException:
        # interrupted (Ctrl-C, SIGTERM): the checks not started are not run; those running send no more
        # requests and end (a wait for a token's expiry ends first), before the cleanup deletes their tokens
        stop.set()
        with places:
            places.notify_all()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    ran = {nodeid: future.result() for nodeid, future in futures.items()}
    return {nodeid: outcome for nodeid, outcome in ran.items() if outcome is not None}


def _passes(exc: BaseException) -> bool:
    """Whether a check that raised ``exc`` still says nothing against the target: a skip the profile or the
    target's documented choices call for (not a failure, an error, a block or an inconclusive end)."""
    return isinstance(exc, pytest.skip.Exception) and not isinstance(exc, (Blocked, Inconclusive))
