"""The embedded reference deployment: a service-token server that behaves like SUSE
Observability (StackState) as documented, over real HTTP and a real SQLite database.

Start it by hand with ``python -m sts_reference serve``; start it from tests with
``sts_reference.testing.running_server``.
"""
