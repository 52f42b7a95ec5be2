"""--create-delay-ms delays the answers to creates only (a server hashing secrets slowly, for benchmarks)."""

from __future__ import annotations

import pytest

from sts_reference.app import _is_create


@pytest.mark.parametrize(
    ("method", "path", "delayed"),
    [
        ("POST", "/api/security/tokens", True),
        ("POST", "/api/security/tokens/", True),
        ("GET", "/api/security/tokens", False),
        ("DELETE", "/api/security/tokens/7", False),
        ("POST", "/api/security/tokens/7", False),
        ("GET", "/api/server/status", False),
    ],
)
def test_only_a_create_is_delayed(method, path, delayed):
    assert _is_create({"type": "http", "method": method, "path": path}) is delayed
