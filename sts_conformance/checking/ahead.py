"""The checks of a module marked ``together`` run at once, when the first of them runs.

Most checks are a short chain of requests (make or take a token, present it, read the list) that
depends on nothing another check of its module does. Against a distant or slow target a run spends
nearly all its time waiting for those answers, one check after another. In a module whose checks
are independent of each other (``pytestmark = pytest.mark.together``), the first check to run
starts every check of the module this process runs, each in a thread of its own, and waits for
them all (at most the profile's ``concurrency`` checks at once; their requests pass the same bound
on requests in flight, ``target/inflight.py``). Each check's outcome, and everything its requests
got, is kept apart (``client.Sink``); when pytest reaches that check, its call gives the kept
outcome: the same failure, skip or block, the same exchanges in the order they were sent, the same
server errors (ST-ERR-001) and leaked secrets (ST-ONCE-006) judged for it and for no other. Only
the time a check's call took in pytest's report changes: the first carries the others' wait.

A check runs ahead only where nothing is lost: its arguments are its own parameters or fixtures
wider than one check (module or session scope, set up here as its own setup would); it has no
function-scoped fixture, no ``skip``/``skipif``/``xfail`` mark and no failed foundation; it is not a
Hypothesis test (those draw their examples in their own order); and this process is known to run
it (under ``-n``, a module marked ``together`` goes to one worker whole: ``plugin.work_unit``). Any
other check of the module runs as usual, in its turn. ``concurrency: 1`` runs every check in its
turn, as before.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import pytest

from sts_conformance.target import together
from sts_conformance.target.client import EXCHANGES, Sink
from sts_conformance.target.throttle import THROTTLE

MARK = "together"
#: a check of a ``together`` module that runs in its own turn, while no other check of the process runs
ALONE = "alone"


@dataclasses.dataclass
class Outcome:
    """What one check run ahead did: everything its requests got, and what it raised (None: passed)."""

    sink: Sink
    error: BaseException | None = None


_OUTCOMES = pytest.StashKey[dict[str, Outcome]]()

MARKERS = (
    f"{MARK}: the module's checks are independent of each other; they run at once when the first runs",
    f"{ALONE}: in a module marked {MARK}, a check that runs in its own turn, while no other check runs",
)


@dataclasses.dataclass(frozen=True)
class Plan:
    """What the plugin knows of this process's checks: which are blocked at their setup (a failed
    foundation) and which module an xdist worker is handed whole (the other checks one at a time)."""

    blocked: Callable[[pytest.Item], bool]
    whole_module: Callable[[str], bool]


def call(pyfuncitem: pytest.Function, plan: Plan) -> bool | None:
    """``pytest_pyfunc_call``: the kept outcome of a check that ran ahead (True: handled; or raised again);
    the first check of a ``together`` module runs the others first; None for pytest's own call."""
    outcomes = pyfuncitem.config.stash.setdefault(_OUTCOMES, {})
    kept = outcomes.pop(pyfuncitem.nodeid, None)
    if kept is None:
        if together.LIMIT <= 1 or _arguments(pyfuncitem, pyfuncitem) is None:
            return None
        group = _group(pyfuncitem, plan)
        if len(group) <= 1:
            return None
        outcomes.update(_run(group))
        kept = outcomes.pop(pyfuncitem.nodeid)
    EXCHANGES.restore(kept.sink)
    if kept.error is not None:
        raise kept.error
    return True


def forget(item: pytest.Item) -> None:
    """``pytest_runtest_teardown``: nothing kept outlives its check (one whose call was not reached)."""
    item.config.stash.get(_OUTCOMES, {}).pop(item.nodeid, None)


def _group(first: pytest.Function, plan: Plan) -> list[tuple[pytest.Function, dict[str, Any]]]:
    """``first`` and the checks of its module after it that this process runs and that can run ahead."""
    module = first.nodeid.split("::", 1)[0]
    items = [i for i in first.session.items if i.nodeid.split("::", 1)[0] == module]
    if hasattr(first.config, "workerinput") and not plan.whole_module(module):
        return []  # an xdist worker handed checks one at a time: it does not know which are its own
    after = items[items.index(first) + 1 :] if first in items else []
    group = [(first, _arguments(first, first) or {})]
    for item in after:
        if not isinstance(item, pytest.Function) or plan.blocked(item):
            continue
        kwargs = _arguments(item, first)
        if kwargs is not None:
            group.append((item, kwargs))
    return group


class _Alone(Exception):
    """This check cannot run ahead: it runs in its own turn."""


def _arguments(item: pytest.Function, via: pytest.Function) -> dict[str, Any] | None:
    """The arguments ``item`` is called with, fixtures wider than one check set up through ``via``'s
    request; None where it cannot run ahead (see the module's docstring)."""
    if item.get_closest_marker(MARK) is None or item.get_closest_marker(ALONE) is not None:
        return None
    if getattr(item.obj, "is_hypothesis_test", False):
        return None
    if any(item.get_closest_marker(name) is not None for name in ("skip", "skipif", "xfail")):
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
        if dry:
            return None
        try:
            with EXCHANGES.muted():  # a fixture's setup belongs to its first check, not to this one's evidence
                return via._request.getfixturevalue(name)
        except Exception as exc:
            raise _Alone(name) from exc
    # one check's own fixture: only one without teardown (a plain function), made again for this check
    if inspect.isgeneratorfunction(fixture.func) or inspect.iscoroutinefunction(fixture.func):
        raise _Alone(name)
    args = {arg: _value(arg, item, via, dry=dry) for arg in fixture.argnames}
    return None if dry else fixture.func(**args)


def _run(group: list[tuple[pytest.Function, dict[str, Any]]]) -> dict[str, Outcome]:
    deadline = THROTTLE.deadline()

    def run(item: pytest.Function, kwargs: dict[str, Any]) -> Outcome:
        kept = Outcome(Sink.own())
        with EXCHANGES.isolated(kept.sink), THROTTLE.until(deadline):
            try:
                item.obj(**kwargs)
            except BaseException as exc:
                kept.error = exc
        return kept

    with concurrent.futures.ThreadPoolExecutor(
        max_workers=min(together.LIMIT, len(group)), thread_name_prefix="sts-ahead"
    ) as pool:
        futures = {item.nodeid: pool.submit(run, item, kwargs) for item, kwargs in group}
        try:
            concurrent.futures.wait(futures.values())
        except BaseException:
            # interrupted (Ctrl-C, SIGTERM): the checks not started are not run; those running end
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return {nodeid: future.result() for nodeid, future in futures.items()}
