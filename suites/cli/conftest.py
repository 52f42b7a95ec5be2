"""The CLI suites: the `sts` CLI named by the profile's ``cli.command``, run against the same target."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import httpx
import pytest

from sts_conformance.checking.cli_runner import CliRunner
from sts_conformance.core.errors import ProfileError
from sts_conformance.target import servertime
from sts_conformance.tokens.ledger import OwnedToken

#: how long the expiring credential lives on the server's clock
EXPIRING_LIFETIME_MS = 2000


@dataclass(frozen=True)
class ExpiringCredential:
    token: OwnedToken
    #: the probe's status right after the create
    status_before: int
    #: the server's clock (Date header, 1 s resolution) when it answered that probe
    probed_at_ms: int | None

    @property
    def surely_probed_before_expiry(self) -> bool:
        """Whether that probe was certainly answered before the expiry (a slow target may have been late)."""
        expiry = self.token.expiration
        return self.probed_at_ms is not None and expiry is not None and self.probed_at_ms + 1000 <= expiry


@pytest.fixture(scope="session")
def cli(target, request) -> CliRunner:
    """The profile's CLI, pointed at the target; skips every CLI check when ``cli.command`` is not set.

    A CLI that cannot be started or never gets an HTTP answer from the target (TLS, proxy,
    DNS) ends the CLI checks with one harness error naming the setting to fix: that is the
    set-up's fault, not a failed requirement.
    """
    if not target.profile.cli_command:
        pytest.skip("no CLI to check: profile setting 'cli.command' is not set")
    try:
        runner = CliRunner.from_profile(target.profile, target.url)
    except ValueError as exc:
        raise ProfileError(f"target profile {target.profile.source}: {exc}") from None
    __tracebackhide__ = True  # a failed start-up check is repeated on every CLI check: its message is enough
    runner.check_reaches_target(target.admin_token, verify_tls=target.profile.verify_tls)
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
    resp = target.probe(tok.secret)
    return ExpiringCredential(tok, resp.status_code, servertime.reading_ms(resp, target.prepared.clock_facts))
