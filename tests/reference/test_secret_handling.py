"""Secrets are shown once, in the create response, and nowhere else: not in logs, not in
the list, not in the database."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from sts_reference.testing import RunningServer

from .support import ADMIN, Api, StartServer


def test_no_secret_reaches_the_logs(
    tmp_path: Path,
    start_server: StartServer,
    api_for: Callable[[RunningServer], Api],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Start-up, create, list, delete and refused requests log nothing secret, at any level."""
    caplog.set_level(logging.DEBUG)
    server = start_server(db_path=tmp_path / "tokens.sqlite3")
    api = api_for(server)
    token_id, secret = api.new_token(["stackstate-admin"])
    api.status_with(secret + "-wrong")
    api.status({"Authorization": f"ApiToken {secret}"})
    api.delete(token_id)
    api.status_with(secret)
    assert caplog.records, "expected at least the bootstrap start-up line"
    for secret_text in (secret, ADMIN.token):
        assert secret_text not in caplog.text
    for file in tmp_path.iterdir():
        assert ADMIN.token.encode() not in file.read_bytes()
        assert secret.encode() not in file.read_bytes()
