"""Conformance suite for SUSE Observability (StackState) service tokens: the harness.

A run goes through four stages, one folder each; a stage imports only the stages listed
before it, and :mod:`.plugin` on top wires them into pytest:

``core/``
    the words every stage shares: the requirement catalogue, blocked checks (foundations),
    harness errors and the masking of secrets.
``target/``
    reaching a target: the target profile, the HTTP client and its recorded exchanges,
    launching the embedded reference or checking an external deployment.
``tokens/``
    the tokens a run owns: the journal written before each create, the ledger, the
    credentials prepared at the start, the final sweep, interrupts and the cleanup command.
``checking/``
    what the checks in ``suites/`` lean on: shared assertions, Hypothesis strategies and
    profiles, pytest fixtures, running the ``sts`` CLI, bootstrap instances and
    reconfigured deployments.
``reporting/``
    the verdict: results, root causes, ``conformance.json``/HTML/Markdown, the comparison
    of runs.

:mod:`.run` holds the run's state that the plugin and the reporting hooks share.
"""

__version__ = "0.1.0"
