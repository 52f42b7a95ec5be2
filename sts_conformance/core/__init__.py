"""The words every stage of the harness shares.

:mod:`.requirements` (the catalogue, ``requirements.yaml``), :mod:`.preconditions` (the
foundations a check stands on, and what "blocked" means), :mod:`.errors` (harness errors,
each with its exit status), :mod:`.redact` (secrets masked wherever text leaves the run) and
:mod:`.disguise` (the forms a secret can hide in: encoded, or a fragment of it). Nothing here
talks to a target.
"""
