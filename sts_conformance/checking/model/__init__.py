"""A model of the documented behaviour of service tokens, which the suites run targets against.

The model predicts what a target must show after any sequence of calls, for every credential
that acts on it, and a check fails where the target disagrees, whatever the defect's class:

- :mod:`.actors` — who acts: the admin credential, the manager and unprivileged tokens prepared
  at the start of the run, and manager tokens a sequence makes (tokens made by tokens); each can
  create, list, delete and present. Tokens are not tied to their maker: deleting one touches no
  other.
- :mod:`.invariants` — what must hold after every step: the list as seen by each manager
  credential equals the model (every live token with every field as created, none deleted, no
  id twice, nothing under the run's names the model does not hold), every live token is
  accepted and every deleted one refused on the documented calls in both header forms, and
  nothing the step did not touch has changed (the frame condition).
- :mod:`.choices` — what the documentation leaves open is learned once and held for the rest
  of the run: a target that changes its mind mid-run is caught.
- :mod:`.machine` — the Hypothesis state machine tying them together; per-step checks are
  sampled (the cost of a distant target), complete at the end of each sequence.

The generators of the model's inputs (expiries over the whole int64 range, names in every
script, composed and decomposed) live beside the other strategies, in
:mod:`sts_conformance.checking.strategies`.
"""
