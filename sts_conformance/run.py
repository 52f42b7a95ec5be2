"""The state of one conformance run, shared by the plugin's fixtures and the reporting hooks.

Each process of a run (the controller and every xdist worker) keeps one :class:`RunState`
in the pytest config's stash; :func:`finish_tokens` is the controller's final sweep, which
the reporting hooks call before they write the verdict. Living below both, it lets the
plugin (:mod:`sts_conformance.plugin`) and the hooks (:mod:`sts_conformance.reporting.hooks`)
share the run without importing each other.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sts_conformance.checking.hypothesis_profiles import DEFAULT_TIME_BUDGET_S
from sts_conformance.target.connect import Connection, ManagedProcess
from sts_conformance.target.profile import TargetProfile
from sts_conformance.target.throttle import THROTTLE
from sts_conformance.tokens import interrupts
from sts_conformance.tokens.journal import deleted_tokens, outstanding, read_events
from sts_conformance.tokens.ledger import TokenLedger
from sts_conformance.tokens.prepare import Prepared
from sts_conformance.tokens.sweep import CLEANUP_SECONDS, Leftover, run_prefix, sweep

STATE_KEY = pytest.StashKey["RunState"]()


@dataclass
class RunState:
    """What a run knows about its target; one per process (controller and each worker)."""

    profile: TargetProfile
    connection: Connection
    run_id: str
    run_dir: Path
    worker: str
    prepared: Prepared = field(default_factory=Prepared)
    started_at: float = field(default_factory=time.time)
    process: ManagedProcess | None = None
    #: controller only: the ledger of the tokens prepared at the start, and what the final cleanup left
    prep_ledger: TokenLedger | None = None
    leftovers: list[Leftover] | None = None
    #: further bootstrap configurations were taken through their scenarios (fleet.py, reconfigure.py)
    has_instances: bool = False
    time_budget: float = DEFAULT_TIME_BUDGET_S
    #: controller only: stops background work that may make tokens (the late use's wider tries), each
    #: called before the final sweep, so no token is made after the sweep has looked
    before_sweep: list[Callable[[], None]] = field(default_factory=list)

    @property
    def controller(self) -> bool:
        return self.prep_ledger is not None


def strict_gating(config: pytest.Config) -> bool:
    """SHOULD failures fail the run only under pytest's own ``--strict`` (ini ``strict``)."""
    return bool(config.getini("strict"))


def is_active(config: pytest.Config) -> bool:
    return STATE_KEY in config.stash


def finish_tokens(config: pytest.Config) -> list[Leftover]:
    """Controller, once, at the end: delete whatever any process of the run left, and say what could not be.

    Reads every journal of the run (the controller's and each worker's), so tokens of a worker
    that was killed, or of a create whose answer never came, are found too.
    """
    state = config.stash.get(STATE_KEY, None)
    if state is None or not state.controller:
        return []
    if state.leftovers is not None:
        return state.leftovers
    ledger = state.prep_ledger
    assert ledger is not None
    for stop in state.before_sweep:
        stop()
    deadline = time.monotonic() + CLEANUP_SECONDS
    # throttled deletes are waited out up to the cleanup's own deadline, also once the budget is spent
    with interrupts.shielded(), THROTTLE.until(deadline):
        ledger.cleanup(deadline)  # the tokens prepared at the start: by their ids, quietly
        events = list(read_events(state.run_dir))
        pending = outstanding(events)
        if pending:
            sys.stderr.write(f"sts-conformance: cleaning up {len(pending)} token(s) the run may have left\n")
        state.leftovers = sweep(
            ledger.client,
            ledger.admin_token,
            ledger.admin_form,
            pending,
            baseline=state.prepared.baseline,
            journal=ledger.journal,
            deadline=deadline,
            verify_prefix=run_prefix(state.run_id),
            # the deletes the checks made, believed only once the list no longer shows their tokens
            deleted=deleted_tokens(events),
        )
    if state.leftovers:
        reporting = config.pluginmanager.get_plugin("sts-conformance-reporting")
        if reporting is None:  # no report will say it: say it here
            sys.stderr.write(
                f"sts-conformance: {len(state.leftovers)} token(s) created by this run could not be deleted:\n"
                + "".join(f"  {left}\n" for left in state.leftovers)
            )
    return state.leftovers
