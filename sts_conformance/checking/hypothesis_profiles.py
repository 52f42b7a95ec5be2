"""Hypothesis settings of the conformance suites, as named profiles, and replayable runs.

Registered when the plugin configures pytest (before Hypothesis' own plugin reads
``--hypothesis-profile``), so a run picks one with Hypothesis' own options:

- ``quick`` — what a run uses unless it names a profile (Hypothesis' built-in ``default``
  and ``ci`` profiles both map to it): a few dozen examples per test, so the whole
  default run stays well under half a minute against a local target.
- ``thorough`` — for nightly runs: many more examples and longer lifecycle sequences.
- any profile of the user's own, registered before the run, is used as it is.

Every profile is adjusted for a server on the other end: no ``deadline`` (a round trip's
time says nothing about the target's correctness), no ``too_slow`` health check for the
same reason, and ``print_blob`` so a failure prints its ``@reproduce_failure`` line.
``quick`` and ``thorough`` keep no example database (``database=None``): a suite pointed
at many different targets must not replay one target's failures against the next, and a
run must not leave a ``.hypothesis/`` directory wherever it was started. Failures are
replayed by seed instead: every run of a server-facing test uses a seed, either the one
given with ``--hypothesis-seed=N`` or a fresh one that the failure report names.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import seed as fixed_seed

QUICK = "quick"
THOROUGH = "thorough"

#: Hypothesis' own profiles; a run that stays on one of them gets ``quick``.
BUILT_IN = ("default", "ci")

#: Every phase but ``explain``: it reruns a failing example a hundred times or more, with
#: line tracing, to annotate it — seconds of server round trips per failure for a comment.
PHASES = (Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink)

_SERVER_FACING: dict[str, Any] = {
    # explicit, because a profile registered under CI=true inherits Hypothesis' ``ci``
    # profile, which derandomizes: runs would then draw no seed to name in a failure
    "derandomize": False,
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow],
    "print_blob": True,
    "phases": PHASES,
}

settings.register_profile(QUICK, max_examples=12, stateful_step_count=10, database=None, **_SERVER_FACING)
settings.register_profile(THOROUGH, max_examples=400, stateful_step_count=40, database=None, **_SERVER_FACING)


def active_profile() -> str:
    """The profile a server-facing test runs with: the one chosen, or ``quick``.

    Hypothesis' plugin renames the active profile when ``--hypothesis-verbosity`` or
    ``--hypothesis-explain`` is given (``default-with-verbose-verbosity``); the part before
    ``-with-`` is the profile that was chosen.
    """
    name = settings.get_current_profile_name().split("-with-")[0]
    return QUICK if name in BUILT_IN else name


def base_settings() -> settings:
    """The active profile's settings; for a built-in one, ``quick`` with the command line's verbosity."""
    name = settings.get_current_profile_name()
    current = settings.get_profile(name)
    if name.split("-with-")[0] not in BUILT_IN:
        return current
    quick = settings.get_profile(QUICK)
    explain = (Phase.explain,) if "-with-explain-phase" in name else ()
    return settings(quick, verbosity=current.verbosity, phases=(*quick.phases, *explain))


#: the default ``--time-budget``: what a CI job against a distant staging cluster should wait at most
DEFAULT_TIME_BUDGET_S = 120.0
#: the part of the budget the Hypothesis checks may use together (the rest is every other check)
FUZZ_FRACTION = 0.5
#: what the shares of all Hypothesis checks of the suites add up to, roughly (names 0.25 and roles 0.25,
#: each example a batch of about 4 creates sent together; the lifecycle model 0.2; the boundary lengths
#: 0.04 for each of three alphabets)
SHARE_TOTAL = 0.8


@dataclass(frozen=True)
class FuzzBudget:
    """What a run may spend on generated examples: its time budget and the target's latency.

    Against a target that answers in milliseconds the profile's own numbers apply; against a
    distant one (150 ms a round trip) each Hypothesis check gets at most its share of the
    budget, counted in requests: ``seconds × FUZZ_FRACTION × share / SHARE_TOTAL / (latency ×
    requests per example)`` examples, never fewer than the check's minimum.
    """

    seconds: float = DEFAULT_TIME_BUDGET_S
    latency_s: float = 0.0

    def cap(self, share: float, requests_per_example: float) -> int | None:
        """The most examples a check with this share may run; None when the budget does not bind."""
        if self.latency_s <= 0 or requests_per_example <= 0:
            return None
        seconds = self.seconds * FUZZ_FRACTION * share / SHARE_TOTAL
        return math.floor(seconds / (self.latency_s * requests_per_example))

    def shrink_seconds(self, requests_per_example: float) -> float:
        """How long a failing example may be shrunk: about SHRINK_EXAMPLES replays at the measured latency.

        Shrinking replays examples as fast as the target answers; counted in time alone, a target
        that answers in a millisecond would get thousands of tokens created while a failure is
        shrunk. Never less than MIN_SHRINKING_SECONDS, never more than MAX_SHRINKING_SECONDS.
        """
        if self.latency_s <= 0 or requests_per_example <= 0:
            return MAX_SHRINKING_SECONDS
        wanted = SHRINK_EXAMPLES * requests_per_example * self.latency_s
        return min(MAX_SHRINKING_SECONDS, max(MIN_SHRINKING_SECONDS, wanted))


def suite_settings(
    share: float = 1.0,
    *,
    minimum: int = 1,
    budget: FuzzBudget | None = None,
    requests_per_example: float = 4.0,
    **overrides: Any,
) -> settings:
    """Settings for one server-facing test: the active profile, ``share`` of its examples.

    ``share`` lets a test that runs many times (parametrised) or whose examples are long
    (a state machine) scale the profile's ``max_examples`` down, never below ``minimum``;
    ``budget`` caps them further so the run fits its time budget against a slow target
    (``requests_per_example`` says what one example costs).
    """
    base = base_settings()
    examples = round(base.max_examples * share)
    cap = budget.cap(share, requests_per_example) if budget is not None else None
    if cap is not None:
        examples = min(examples, cap)
    examples = max(minimum, examples)
    health = sorted({*base.suppress_health_check, HealthCheck.too_slow}, key=lambda h: h.name)
    return settings(
        base,
        max_examples=examples,
        deadline=None,
        print_blob=True,
        suppress_health_check=health,
        **overrides,
    )


#: Shrinking a failing example replays it many times against the target (each replay a few
#: requests, maybe a token): a run against a defective target stops shrinking after this many
#: replays, this many successful shrinks or this many seconds, whichever comes first, and
#: reports the smallest failing example found by then.
MAX_SHRINK_REPLAYS = 40
MAX_SHRINKS = 60
MAX_SHRINKING_SECONDS = 20.0
#: against a fast target shrinking is bounded by what it costs: about this many replays' worth of
#: requests (FuzzBudget.shrink_seconds), but never less time than MIN_SHRINKING_SECONDS
SHRINK_EXAMPLES = 25
MIN_SHRINKING_SECONDS = 1.0
#: what Hypothesis prints when shrinking stops on time (written for its own five-minute bound)
_SLOW_SHRINK_WARNING = "WARNING: Hypothesis has spent more than"


@contextlib.contextmanager
def bounded_shrinking(
    shrinks: int = MAX_SHRINKS, seconds: float = MAX_SHRINKING_SECONDS, replays: int = MAX_SHRINK_REPLAYS
) -> Iterator[None]:
    """Bound Hypothesis's shrinking for the checks run inside: replays, successful shrinks and time.

    Hypothesis has no public setting for this. Its engine keeps two bounds in module constants
    (500 shrinks, 300 s), lowered here while a check runs and put back after; the replays are
    counted around the engine's ``test_function``, and when there are too many the shrinking
    deadline is moved to now, so the engine stops as it does on time. Should a Hypothesis release
    change these internals, shrinking is simply bounded less.
    """
    from hypothesis.internal.conjecture import engine
    from hypothesis.reporting import current_reporter, with_reporter

    outer = current_reporter()

    def reporter(value: object) -> None:
        # Hypothesis's own words when it stops on time speak of five minutes and ask for a bug
        # report; here stopping is the plan, so say what happened instead
        if isinstance(value, str) and value.startswith(_SLOW_SHRINK_WARNING):
            value = (
                f"Shrinking stopped at the bound this run sets to spare the target ({replays} replays or "
                f"{seconds:g} s): the failing example below may not be the smallest one."
            )
        outer(value)

    runner = getattr(engine, "ConjectureRunner", None)
    original = getattr(runner, "test_function", None)

    def counted(self: Any, data: Any) -> Any:
        if getattr(self, "finish_shrinking_deadline", None) is not None:  # shrinking has begun
            self._sts_replays = getattr(self, "_sts_replays", 0) + 1
            if self._sts_replays > replays:
                self.finish_shrinking_deadline = 0.0  # already passed: the engine stops after this call
        return original(self, data)  # type: ignore[misc]

    saved = {name: getattr(engine, name) for name in ("MAX_SHRINKS", "MAX_SHRINKING_SECONDS") if hasattr(engine, name)}
    try:
        if "MAX_SHRINKS" in saved:
            engine.MAX_SHRINKS = min(saved["MAX_SHRINKS"], shrinks)
        if "MAX_SHRINKING_SECONDS" in saved:
            engine.MAX_SHRINKING_SECONDS = min(saved["MAX_SHRINKING_SECONDS"], seconds)
        if runner is not None and original is not None:
            runner.test_function = counted
        with with_reporter(reporter):
            yield
    finally:
        for name, value in saved.items():
            setattr(engine, name, value)
        if runner is not None and original is not None:
            runner.test_function = original


def run_seeded(
    obj: Any,
    *,
    config: Any,
    nodeid: str,
    run: Callable[[Any], None] | None = None,
    shrink_seconds: float = MAX_SHRINKING_SECONDS,
    shrink_replays: int = MAX_SHRINK_REPLAYS,
) -> None:
    """Run a ``@given`` function (or, through ``run``, a state machine class) under a seed the report names.

    The seed is the one given with ``--hypothesis-seed`` (read from the pytest ``config``)
    or a fresh one pinned with ``@seed``; either way a failure gets a note saying how to
    replay it. ``run`` receives the seeded object, e.g.
    ``lambda m: run_state_machine_as_test(m, settings=...)``; by default ``obj()`` is called.
    """
    forced = config.getoption("hypothesis_seed", None)
    derandomized = base_settings().derandomize
    chosen = None if forced is not None or derandomized else random.SystemRandom().randrange(2**32)
    if chosen is not None:
        obj = fixed_seed(chosen)(obj)
    try:
        with bounded_shrinking(seconds=shrink_seconds, replays=shrink_replays):
            if run is None:
                obj()
            else:
                run(obj)
    except Exception as exc:
        exc.add_note(replay_hint(nodeid, forced if chosen is None else chosen))
        raise


def replay_hint(nodeid: str, used_seed: object | None) -> str:
    """How to run a failed server-facing test again with the same examples."""
    command = f"python -m pytest '{nodeid}' --hypothesis-profile={active_profile()}"
    if used_seed is not None:
        command += f" --hypothesis-seed={used_seed}"
    return (
        f"To replay: {command} (and the same --target), or paste the @reproduce_failure(...) line printed "
        "above onto the @given function or state machine class of this test. The examples repeat exactly "
        "as long as the target answers as it did."
    )
