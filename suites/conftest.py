"""Everything under suites/ is a conformance check: resolve the target before collection."""

import pytest

from sts_conformance.plugin import activate


def pytest_configure(config: pytest.Config) -> None:
    activate(config)
