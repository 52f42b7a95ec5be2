"""Fixtures for the reference CLI's own tests.

``run_cli`` runs ``sts_reference.cli.main`` in-process with its own environment and output
streams, so no test touches ``os.environ`` or the process's stdout. ``api`` is a strict
respx router for the reference target: the ``GET /server/info`` the CLI always sends first
is answered, every route a test declares must be called, and any request nobody declared
fails the test. ``offline`` is the same router with no routes at all, for checks that the
CLI sends nothing.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

import pytest
import respx

from sts_reference import cli

URL = "http://sts.test"
API = f"{URL}/api"
SERVICE_TOKEN = "svctok-unit-test-secret"
API_TOKEN = "apitok-unit-test-secret"
SERVER_INFO = {
    "version": {"major": 6, "minor": 0, "patch": 0, "diff": "", "commit": "ref", "isDev": False},
    "deploymentMode": "SelfHosted",
    "applicationDomains": ["Observability"],
}
# A complete, valid target; tests that are about one setting start from this.
TARGET_ENV: Mapping[str, str] = {
    "STS_CLI_URL": URL,
    "STS_CLI_SERVICE_TOKEN": SERVICE_TOKEN,
    "TZ": "UTC",
}


class FakeTerminal(io.StringIO):
    """An output stream that says it is a terminal, to see when colour is used."""

    def isatty(self) -> bool:
        return True


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


class RunCli(Protocol):
    def __call__(self, *argv: str, env: Mapping[str, str] = ..., tty: bool = ...) -> Result: ...


@pytest.fixture
def run_cli() -> RunCli:
    def run(*argv: str, env: Mapping[str, str] = TARGET_ENV, tty: bool = False) -> Result:
        out = FakeTerminal() if tty else io.StringIO()
        err = io.StringIO()
        code = cli.main(list(argv), env=dict(env), stdout=out, stderr=err)
        return Result(code, out.getvalue(), err.getvalue())

    return run


@pytest.fixture
def offline() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=True, assert_all_mocked=True) as router:
        yield router
    assert not router.calls, "the CLI sent a request"


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=API, assert_all_called=True, assert_all_mocked=True) as router:
        router.get("/server/info", name="server_info").respond(200, json=SERVER_INFO)
        yield router
