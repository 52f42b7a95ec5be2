"""Fixtures the ledger's tests and the premade tokens' tests share: a reference server with an admin
bootstrap token, and no settle window (these targets show every effect at once or never)."""

from __future__ import annotations

import pytest

from sts_conformance.target.settle import SETTLE, Consistency
from sts_reference.config import BootstrapSpec
from sts_reference.testing import running_server


@pytest.fixture(autouse=True)
def immediate():
    """No settle window (test_settle.py has the windows)."""
    saved = (SETTLE.consistency, SETTLE.log)
    SETTLE.configure(Consistency(0, 0, 0), None)
    yield
    SETTLE.configure(*saved)


def admin_server(admin: str):
    """A ``server`` fixture: the reference, its bootstrap token ``admin`` with the manager role."""

    @pytest.fixture
    def server():
        spec = BootstrapSpec(token=admin, roles=["stackstate-admin"], ttl_ms=3_600_000)
        with running_server(auth_config=spec) as srv:
            yield srv

    return server
