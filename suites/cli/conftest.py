"""The CLI suites: the `sts` CLI named by the profile's ``cli.command``, run against the same target."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import httpx
import pytest

from sts_conformance.cli_runner import CliRunner
from sts_conformance.tokens import OwnedToken

#: how long the expiring credential lives on the server's clock
EXPIRING_LIFETIME_MS = 2000


@dataclass(frozen=True)
class ExpiringCredential:
    token: OwnedToken
    #: the probe's status right after the create, before the expiry
    status_before: int


@pytest.fixture(scope="session")
def cli(target, request) -> CliRunner:
    """The profile's CLI, pointed at the target; skips every CLI check when ``cli.command`` is not set."""
    if not target.profile.cli_command:
        pytest.skip("no CLI to check: profile setting 'cli.command' is not set")
    try:
        runner = CliRunner.from_profile(target.profile, target.url)
    except ValueError as exc:
        pytest.fail(f"profile {target.profile.source}: {exc}", pytrace=False)
    # Start the expired-credential check's clock now: by the time that check runs, the token
    # has usually expired and nobody waits. If it cannot be made, pytest keeps the error and
    # reports it on that one check, not here.
    with contextlib.suppress(AssertionError, httpx.HTTPError):
        request.getfixturevalue("expiring_credential")
    return runner


@pytest.fixture(scope="session")
def expiring_credential(target, ledger) -> ExpiringCredential:
    """A manager token that expires two seconds (server clock) after it is made."""
    tok = ledger.create(
        "cli-expiring",
        roles=[target.profile.manager_role],
        expiry_ms=target.server_now_ms() + EXPIRING_LIFETIME_MS,
    )
    return ExpiringCredential(tok, target.probe(tok.secret).status_code)
