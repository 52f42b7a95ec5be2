"""Fixtures for the reference server's own tests.

``api`` talks to one server shared by the whole session (fake clock never moved, admin
bootstrap token); tests that move time, change configuration or delete shared state start
their own with ``start_server``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sts_reference.clock import FakeClock
from sts_reference.testing import RunningServer, running_server

from .support import (
    ADMIN,
    START_MS,
    Api,
    StartServer,
    VendorSchemas,
    http_client,
    load_vendor_schemas,
    vendor_spec_path,
)


@pytest.fixture(scope="session")
def vendor_or_none() -> VendorSchemas | None:
    path = vendor_spec_path()
    return load_vendor_schemas(path) if path.is_file() else None


@pytest.fixture(scope="session")
def vendor(vendor_or_none: VendorSchemas | None) -> VendorSchemas:
    """The vendor schemas; tests that assert against them skip when the spec is absent."""
    if vendor_or_none is None:
        pytest.skip(
            f"vendor OpenAPI spec not found at {vendor_spec_path()}; set STS_VENDOR_OPENAPI to its "
            "path to validate bodies against the vendor schemas"
        )
    return vendor_or_none


@pytest.fixture(scope="session")
def shared_server() -> Iterator[RunningServer]:
    with running_server(clock=FakeClock(START_MS), auth_config=ADMIN) as server:
        yield server


@pytest.fixture
def start_server() -> Iterator[StartServer]:
    """Start servers of one's own; all stop when the test ends. Keyword arguments are
    ``running_server``'s; the clock defaults to a FakeClock at START_MS and the bootstrap
    token to ADMIN."""
    with contextlib.ExitStack() as stack:

        def start(**options: Any) -> RunningServer:
            options.setdefault("clock", FakeClock(START_MS))
            options.setdefault("auth_config", ADMIN)
            return stack.enter_context(running_server(**options))

        yield start


@pytest.fixture
def api(shared_server: RunningServer, vendor_or_none: VendorSchemas | None) -> Iterator[Api]:
    """The shared server's API; every success body it receives is checked against the
    vendor schemas (when the spec is present)."""
    with http_client(shared_server.url) as client:
        yield Api(shared_server, client, vendor=vendor_or_none)


@pytest.fixture
def api_for(vendor_or_none: VendorSchemas | None) -> Iterator[Callable[[RunningServer], Api]]:
    """An ``Api`` for a server a test started itself, checking bodies like ``api``."""
    with contextlib.ExitStack() as stack:

        def make(server: RunningServer) -> Api:
            client = stack.enter_context(http_client(server.url))
            return Api(server, client, vendor=vendor_or_none)

        yield make
