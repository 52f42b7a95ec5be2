"""The tokens a run owns, from before they are created until after the run.

:mod:`.journal` writes each create's intent before it is sent; :mod:`.ledger` creates,
attributes and deletes tokens; :mod:`.premade` makes the tokens a group of checks takes together,
on the first check's demand; :mod:`.sweep` deletes at the end whatever the run may have
left and reports what the final list still shows; :mod:`.prepare` probes the
foundations and prepares the shared credentials at the start; :mod:`.interrupts` keeps a
signal from cutting the cleanup short; :mod:`.cleanup` is the ``sts-conformance-cleanup``
command. A new cleanup rule goes here.
"""
