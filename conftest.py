"""Root conftest: registers the suite's pytest plugin once, for suites/ and tests/ alike.

The plugin stays passive until ``suites/conftest.py`` activates it, so the project's own
tests (``tests/``) never launch or contact a target by accident.
"""

pytest_plugins = ["sts_conformance.plugin", "sts_conformance.checking.fixtures"]
