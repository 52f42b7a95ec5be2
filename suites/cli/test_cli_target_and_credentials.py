"""The CLI's target and credential: where they come from, and what a wrong, deleted or expired token does.

The expired token is made when the first CLI check starts (fixture ``expiring_credential``)
and lives two seconds on the server's clock; this module runs after the others, so it has
usually expired by then and the wait below is short or nothing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import pytest

from sts_conformance.checking import foundations
from sts_conformance.checking.cli_runner import CliResult, concurrently, created_secret, json_output, listed_by_api
from sts_conformance.core import preconditions as pre
from sts_conformance.core.redact import REDACTOR
from sts_conformance.target import settle
from sts_conformance.tokens.journal import token_id

# the sts CLI presents service tokens as X-API-Key only: where that form is not accepted (at all, or
# for token management) it cannot work, whatever the CLI does
# every create of the sts CLI carries "dedicatedSubject": "" (ST-LIFE-012)
# the checks run at once with the other modules' (checking/ahead.py; hence this module's fixtures are of
# session scope): each batch of CLI calls is made by a fixture, while the checks already started run
pytestmark = [
    pytest.mark.precondition(pre.X_API_KEY_FORM, pre.X_API_KEY_MANAGEMENT, pre.EMPTY_DEDICATED_SUBJECT),
    pytest.mark.together,
]

BAD_KINDS = ("unknown", "deleted", "expired")
#: the requirement that says the API itself refuses each kind of bad token
_API_REFUSES = {"unknown": "ST-AUTH-006", "deleted": "ST-AUTH-007", "expired": "ST-EXP-006"}


@dataclass(frozen=True)
class BadRun:
    kind: str
    token: str
    name: str
    result: CliResult
    #: what the target answers to GET {api}/server/info with this token: the CLI's first call
    api_status: int
    created: list[dict[str, Any]]


@pytest.fixture(scope="session")
def bad_runs(cli, target, ledger, expiring_credential) -> dict[str, BadRun]:
    """`create` through the CLI with an unknown, a deleted and an expired manager token, all at once."""
    expiring = expiring_credential.token
    deleted = ledger.create("cli-deleted", roles=[target.profile.manager_role])
    gone = ledger.delete(deleted)
    assert gone.is_success, f"deleting a token over the API answered {gone.status_code}"
    settle.refused(lambda: target.client.server_info(deleted.secret))  # (an authentication cache may lag)
    unknown = "svctok-" + secrets.token_urlsafe(24)  # shaped like a documented token, issued by nobody
    REDACTOR.register(unknown)
    tokens = {"unknown": unknown, "deleted": deleted.secret, "expired": expiring.secret}
    names = {kind: ledger.name(f"cli-bad-{kind}") for kind in BAD_KINDS}

    def attempt(kind: str) -> CliResult:
        args = ["service-token", "create", "--name", names[kind], "--roles", target.profile.unprivileged_role]
        return cli.run(*args, token=tokens[kind])

    assert expiring.expiration is not None
    target.wait_until_server_time(expiring.expiration + 1000)
    results = dict(zip(BAD_KINDS, concurrently(*(lambda k=k: attempt(k) for k in BAD_KINDS)), strict=True))

    statuses = concurrently(*(lambda k=k: target.client.server_info(tokens[k]).status_code for k in BAD_KINDS))
    found = listed_by_api(ledger, names.values())
    for name, entries in found.items():
        if entries:
            ledger.adopt(name)  # created with a refused credential: the check fails, cleanup removes it
    return {
        kind: BadRun(kind, tokens[kind], names[kind], results[kind], status, found[names[kind]])
        for kind, status in zip(BAD_KINDS, statuses, strict=True)
    }


@pytest.mark.requirement("ST-CLI-010")
@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_credential_fails_with_error_line_and_does_nothing(target, bad_runs, expiring_credential, kind, observe):
    """A wrong, deleted or expired token: non-zero exit, a ❌/[ERROR] line, nothing created, token not printed."""
    run = bad_runs[kind]
    res = run.result
    shown = res.describe(hide_unparsed=[run.name])
    if kind == "expired":
        before = expiring_credential.status_before
        if not (200 <= before < 300 or not expiring_credential.surely_probed_before_expiry):
            pre.block(
                "ST-EXP-006",
                f"the token was refused ({before}) before its expiry, so its refusal after it says nothing",
            )
    observe("cli_bad_credential", {"kind": kind, "exit_code": res.exit_code, "api_status": run.api_status})
    if run.api_status < 400:
        # the target itself accepts the token: the CLI cannot be expected to refuse it; where that is
        # because server info answers anyone, or an expiry was not kept as sent, that is the finding
        foundations.require_anonymous_refused(target, "server-info")
        if kind == "expired":
            foundations.require_expiry_round_trip(target)
        pre.block(
            _API_REFUSES[kind],
            f"the target itself accepts the {kind} token on GET {target.profile.api_path}/server/info "
            f"({run.api_status})",
        )
    assert res.exit_code != 0, f"the CLI exited 0 with the {kind} token\n{shown}"
    assert created_secret(res) is None and not run.created, (
        f"the CLI created a token with the {kind} token ({len(run.created)} listed as {run.name!r})\n{shown}"
    )
    assert not res.shows(run.token), f"the CLI printed the {kind} token it was given\n{shown}"
    assert res.error_lines(), f"the CLI printed no line starting with ❌ or [ERROR] for the {kind} token\n{shown}"


@pytest.mark.requirement("ST-CLI-011")
@pytest.mark.parametrize("kind", BAD_KINDS)
def test_exit_code_4_when_server_info_answers_401(target, bad_runs, kind):
    """A 401 on the CLI's first call (server info) ends it with exit code 4."""
    run = bad_runs[kind]
    if run.api_status < 400:
        pytest.skip(
            f"the target accepts the {kind} token ({run.api_status}): nothing for the CLI to refuse (ST-CLI-010)"
        )
    if run.api_status != 401:
        pytest.skip(
            f"the target answers {run.api_status} to the {kind} token (expect.unauthenticated_status allows "
            f"{list(target.expect.unauthenticated_status)}); the CLI's exit code is documented for a 401 only"
        )
    assert run.result.exit_code == 4, (
        f"the CLI exited {run.result.exit_code} with the {kind} token (server info answers 401), expected 4\n"
        f"{run.result.describe(hide_unparsed=[run.name])}"
    )


CHANNELS = ("flags", "env")


@pytest.fixture(scope="session")
def channel_lists(cli, target, ledger):
    """A token made over the API, then `list -o json` with target and token as flags and as environment, at once."""
    tok = ledger.create("cli-channel", roles=[target.profile.unprivileged_role])
    runs = concurrently(
        *(
            lambda v=v: cli.run("service-token", "list", token=target.admin_token, output="json", via=v)
            for v in CHANNELS
        )
    )
    return tok, dict(zip(CHANNELS, runs, strict=True))


@pytest.mark.requirement("ST-CLI-012")
@pytest.mark.parametrize("via", CHANNELS, ids=["flags-url-service-token", "env-STS_CLI"])
def test_target_and_token_taken_from(channel_lists, via):
    """The CLI reaches the target with --url/--service-token alone, and with STS_CLI_URL/STS_CLI_SERVICE_TOKEN."""
    channel_token, runs = channel_lists
    res = runs[via]
    assert res.exit_code == 0, f"list -o json with the target given via {via} exited {res.exit_code}\n{res.describe()}"
    doc = json_output(res)
    items = doc.get("service-tokens") if isinstance(doc, dict) else None
    assert isinstance(items, list), f"list -o json printed no 'service-tokens' array\n{res.describe()}"
    ids = [token_id(i.get("id")) for i in items if isinstance(i, dict)]
    assert channel_token.id in ids, f"list -o json (via {via}) does not list token {channel_token.id}"
