"""The embedded reference deployment: a service-token server that behaves like SUSE
Observability (StackState) as documented, over real HTTP and a real SQLite database.

Start it by hand with ``python -m sts_reference serve``; start it from tests with
``sts_reference.testing.running_server``.

Where things are decided:

- the HTTP API: :mod:`.app` (routes, server/status and server/info, error bodies, wiring),
  :mod:`.auth` (which token a request presents, expiry, revocation, who may manage tokens),
  :mod:`.token_calls` (list, create, delete and what a create may send), sharing the limits
  and state of :mod:`.api_common`; routes beside the documented ones in :mod:`.aliases`;
- storage and configuration: :mod:`.store` (SQLite), :mod:`.config` and :mod:`.durations`
  (``authentication.yaml`` and ttls), :mod:`.clock`;
- deliberate defects and other correct choices: :mod:`.faults` and :mod:`.rights_faults`,
  :mod:`.variants`, with what real infrastructure adds in :mod:`.infra` (compression, rate
  limits, cookies) and :mod:`.lag` (replicas, caches, a late bootstrap token);
- the ``sts`` CLI: :mod:`.cli`, :mod:`.cli_table` (the go-pretty table),
  :mod:`.cli_transport` (its TLS settings);
- running it: :mod:`.server`, :mod:`.testing`, :mod:`.stats` (request counting).
"""
