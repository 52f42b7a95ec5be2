"""What the checks in ``suites/`` lean on.

:mod:`.checks` (shared assertions and schema checks), :mod:`.fixtures` (pytest fixtures,
registered by the root ``conftest.py``), :mod:`.usage` (is a credential refused now),
:mod:`.server_errors` (a 5xx no check judged fails ST-ERR-001), :mod:`.strategies` and
:mod:`.hypothesis_profiles` (generated names and role lists, and how many),
:mod:`.cli_runner`, :mod:`.cli_table` and :mod:`.cli_terminal` (running the ``sts`` CLI
under test into a pipe or a terminal, and reading its tables as a person does),
:mod:`.fleet` and :mod:`.reconfigure` (bootstrap instances and reconfigured deployments,
taken through their scenarios at the start), :mod:`.late_use` (a token used just before and
after its expiry, in the background). A new check helper goes here.
"""
