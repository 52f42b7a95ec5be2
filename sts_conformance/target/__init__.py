"""Reaching a target: where it is, how to talk to it, and how it behaves as infrastructure.

:mod:`.profile` reads and validates a target profile; :mod:`.client` is the HTTP client
every check uses (both header forms, exchanges recorded as the server sent them);
:mod:`.throttle` waits out 429/503 answers within the run's budget; :mod:`.settle` reads
the effect of a create or delete within a bounded window; :mod:`.servertime` reads the
target's clock; :mod:`.probe` chooses the call credentials are presented to;
:mod:`.connect` launches the embedded reference or checks an external deployment before
any check runs. A new kind of target goes here.
"""
