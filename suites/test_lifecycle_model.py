"""The token lifecycle against the model of the documented behaviour (``sts_conformance.checking.model``).

Any sequence of creates, deletes, calls and lists, by every actor on the target (the admin
credential, the run's prepared manager token, manager tokens the sequence makes, tokens made by
those), over names in every script and expiries up to the largest int64 value: after every step
the target must agree with the model — the list as each manager credential sees it, every live
token accepted and every deleted one refused, nothing the step did not touch changed — and what
the documentation leaves open must be answered the same way for the whole run. Tokens the model
did not create are never touched.
"""

from __future__ import annotations

import pytest
from hypothesis.stateful import run_state_machine_as_test

from sts_conformance.checking.hypothesis_profiles import base_settings, run_seeded, suite_settings
from sts_conformance.checking.model.choices import describe, held
from sts_conformance.checking.model.machine import TokenLifecycleModel, bind, requests_per_sequence

# The checks run at once with the other modules' (checking/ahead.py), but those that draw examples with
# Hypothesis one after another: they send names that are not the run's own, which two of them could draw
# alike, and the bounds on shrinking (hypothesis_profiles.bounded_shrinking) are the process's
pytestmark = pytest.mark.together(one_at_a_time="hypothesis")

#: a sequence replayed while shrinking may create up to MAX_LIVE tokens: at most this many replays
SHRINK_REPLAYS = 20

__all__ = ["TokenLifecycleModel"]


@pytest.mark.requirement("ST-FUZZ-003")
def test_any_sequence_of_creates_deletes_calls_and_lists_matches_model(target, ledger, observe, request):
    """After every step of any create/delete/present/list sequence, by any actor, the target agrees with the model."""
    machine = bind(target, ledger)
    per_sequence = requests_per_sequence(base_settings().stateful_step_count)
    budget = target.fuzz_budget()
    settings = suite_settings(0.2, minimum=2, budget=budget, requests_per_example=per_sequence)
    run_seeded(
        machine,
        config=request.config,
        nodeid=request.node.nodeid,
        run=lambda m: run_state_machine_as_test(m, settings=settings),
        shrink_seconds=budget.shrink_seconds(per_sequence),
        shrink_replays=SHRINK_REPLAYS,
    )
    for key, value in machine.observed:
        observe(key, value)


@pytest.mark.alone  # after every check that answers a left-open question has run
@pytest.mark.requirement("ST-FUZZ-005")
def test_left_open_behaviours_answered_one_way_for_the_whole_run(target):
    """Whether two live tokens may share a name, and whether a deleted token's name may be given again, is
    answered the same way by every create of the run so far (the lifecycle checks and the model above)."""
    choices = held(target.state)
    if not choices.as_dict():
        pytest.skip("no left-open behaviour that is held for the run was observed (by this process)")
    firsts = {key: (first, later) for key, first, later in reversed(choices.conflicts)}  # each key's first change
    assert not firsts, "; ".join(describe(key, first, later) for key, (first, later) in firsts.items()) + (
        f" ({len(choices.conflicts)} different answer(s) in all)"
    )
