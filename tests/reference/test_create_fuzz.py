"""Arbitrary create bodies: the answer is 200 or a 4xx with a JSON body, never a 5xx, and a
refused request stores nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sts_reference.clock import FakeClock
from sts_reference.testing import running_server

from .support import ADMIN, START_MS, Api, http_client

# Values near the rules: valid and invalid names, roles and expiry dates, mixed with noise.
json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
names = st.text(max_size=300) | json_values
roles = st.lists(st.text(max_size=30), max_size=5) | json_values
expiries = st.integers(min_value=START_MS - 10, max_value=START_MS + 10) | st.integers() | json_values
bodies = st.fixed_dictionaries(
    {},
    optional={
        "name": names,
        "roles": roles,
        "expiryDate": expiries,
        "dedicatedSubject": st.text(max_size=20) | json_values,
        "extra": json_values,
    },
)

# Server-facing: no deadline, and the shared server fixture is deliberately reused across
# examples (each example checks its own effect on the list). The number of examples comes
# from the active Hypothesis profile (--hypothesis-profile).
SERVER_FACING = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def fuzz_api() -> Iterator[Api]:
    """A server of this module's own, so that the examples' tokens do not grow the shared
    server's list (and the shared list does not slow every example down)."""
    with running_server(clock=FakeClock(START_MS), auth_config=ADMIN) as server, http_client(server.url) as client:
        yield Api(server, client)


@SERVER_FACING
@given(body=bodies | json_values)
def test_create_any_json_body_is_answered_without_5xx(fuzz_api: Api, body: Any) -> None:
    """Whatever JSON arrives, the answer is 200 (and one more token) or 400 (and none)."""
    store = fuzz_api.server.store
    before = len(store.list())
    response = fuzz_api.create(body)
    assert response.status_code in (200, 400), response.text
    assert isinstance(response.json(), dict)
    if response.status_code == 200:
        assert response.json()["name"] == body["name"]
        assert len(store.list()) == before + 1
    else:
        assert len(store.list()) == before


@SERVER_FACING
@given(content=st.binary(max_size=200))
def test_create_any_bytes_are_answered_without_5xx(fuzz_api: Api, content: bytes) -> None:
    """Random bytes are 400 (or 200 when they happen to be a valid request), never a 5xx."""
    response = fuzz_api.http.post(
        "/api/security/tokens", content=content, headers={"X-API-Key": ADMIN.token, "Content-Type": "application/json"}
    )
    assert response.status_code in (200, 400)
    assert isinstance(json.loads(response.content), dict)
