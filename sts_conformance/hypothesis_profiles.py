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

import random
from collections.abc import Callable
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

settings.register_profile(QUICK, max_examples=25, stateful_step_count=12, database=None, **_SERVER_FACING)
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


def suite_settings(share: float = 1.0, *, minimum: int = 1, **overrides: Any) -> settings:
    """Settings for one server-facing test: the active profile, ``share`` of its examples.

    ``share`` lets a test that runs many times (parametrised) or whose examples are long
    (a state machine) scale the profile's ``max_examples`` down, never below ``minimum``.
    """
    base = base_settings()
    examples = max(minimum, round(base.max_examples * share))
    health = sorted({*base.suppress_health_check, HealthCheck.too_slow}, key=lambda h: h.name)
    return settings(
        base,
        max_examples=examples,
        deadline=None,
        print_blob=True,
        suppress_health_check=health,
        **overrides,
    )


def run_seeded(obj: Any, *, config: Any, nodeid: str, run: Callable[[Any], None] | None = None) -> None:
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
