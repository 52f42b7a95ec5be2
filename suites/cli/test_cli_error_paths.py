"""The CLI's error paths: a token without the manager role, an id nobody has, and what stays in ``$HOME``.

Each case is one CLI call, all run side by side; the runner gives every call a throw-away
home and searches it afterwards for any secret the run knows (the credentials it handed
over, every token created). The exact exit code is recorded, not required: any non-zero
status is a failure reported.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, cast

import pytest

from sts_conformance.checking import foundations
from sts_conformance.checking.checks import listed
from sts_conformance.checking.cli_runner import CliResult, concurrently, create_with_cli, listed_by_api
from sts_conformance.core import preconditions as pre

# the sts CLI presents service tokens as X-API-Key only: where that form is not accepted (at all, or
# for token management) it cannot work, whatever the CLI does
# every create of the sts CLI carries "dedicatedSubject": "" (ST-LIFE-012)
# the checks run at once with the other modules' (checking/ahead.py; hence this module's fixtures are of
# session scope): each batch of CLI calls is made by a fixture, while the checks already started run
pytestmark = [
    pytest.mark.precondition(pre.X_API_KEY_FORM, pre.X_API_KEY_MANAGEMENT, pre.EMPTY_DEDICATED_SUBJECT),
    pytest.mark.together,
]

#: case -> (the credential the CLI runs with, the command); ``{name}``, ``{victim}``, ``{unknown}`` filled in
ERROR_PATHS: dict[str, tuple[str, tuple[str, ...]]] = {
    "unprivileged-list": ("unprivileged", ("service-token", "list")),
    "unprivileged-create": ("unprivileged", ("service-token", "create", "--name", "{name}", "--roles", "{role}")),
    "unprivileged-delete": ("unprivileged", ("service-token", "delete", "--id", "{victim}")),
    "unknown-id-delete": ("manager", ("service-token", "delete", "--id", "{unknown}")),
    "unknown-id-delete-json": ("manager", ("service-token", "delete", "--id", "{unknown}", "-o", "json")),
}
UNPRIVILEGED = tuple(case for case, (who, _) in ERROR_PATHS.items() if who == "unprivileged")
UNKNOWN_ID = tuple(case for case, (who, _) in ERROR_PATHS.items() if who == "manager")


@dataclass
class ErrorPaths:
    unprivileged: Any
    victim: Any
    unknown: int
    names: dict[str, str]
    results: dict[str, CliResult]
    #: a successful create through the CLI: the secret it printed must not be left in its home either
    success: Any
    #: tokens named by each case, as the API lists them after every call
    created: dict[str, list[dict[str, Any]]]


def _unknown_id(ledger: Any) -> int:
    taken = {item.get("id") for item in ledger.list_items()}
    while True:
        candidate = 10**14 + secrets.randbelow(9 * 10**14)  # 15 digits, as the product's ids
        if candidate not in taken:
            return candidate


@pytest.fixture(scope="session")
def error_paths(cli, target, ledger) -> ErrorPaths:
    """Every case of ERROR_PATHS and one successful create, all at once; then one API list."""
    role = target.profile.unprivileged_role
    unprivileged, victim = ledger.create_together(
        {"label": "cli-unprivileged", "roles": [role]}, {"label": "cli-victim", "roles": [role]}
    )
    unknown = _unknown_id(ledger)
    names = {case: ledger.name(f"cli-{case}") for case in ERROR_PATHS}
    credential = {"unprivileged": unprivileged.secret, "manager": target.admin_token}

    def run(case: str) -> CliResult:
        who, argv = ERROR_PATHS[case]
        fill = {"name": names[case], "role": role, "victim": str(victim.id), "unknown": str(unknown)}
        return cli.run(*(word.format(**fill) for word in argv), token=credential[who])

    success_name = ledger.name("cli-home")
    *ran, success = concurrently(
        *(lambda c=c: run(c) for c in ERROR_PATHS),
        lambda: create_with_cli(cli, ledger, success_name, [role], token=target.admin_token),
    )
    results = [cast(CliResult, r) for r in ran]
    found = listed_by_api(ledger, names.values())
    for name, entries in found.items():
        if entries:
            ledger.adopt(name)  # created by a refused credential: the check fails, cleanup removes it
    return ErrorPaths(
        unprivileged,
        victim,
        unknown,
        names,
        dict(zip(ERROR_PATHS, results, strict=True)),
        success,
        {case: found[names[case]] for case in ERROR_PATHS},
    )


def _expect_no_secret(res: CliResult, case: str, name: str) -> None:
    leaked = res.shown_secrets()
    assert not leaked, (
        f"[{case}] the CLI printed {len(leaked)} secret(s) ({', '.join(leaked)})\n{res.describe(hide_unparsed=[name])}"
    )


@pytest.mark.requirement("ST-CLI-014")
@pytest.mark.parametrize("case", UNPRIVILEGED)
def test_unprivileged_token_fails_without_printing_a_secret(target, ledger, error_paths, case, observe):
    """A token without the manager role: the CLI exits non-zero, changes nothing and prints no secret."""
    paths = error_paths
    res, name = paths.results[case], paths.names[case]
    observe("cli_error_path", {"case": case, "exit_code": res.exit_code})
    if res.exit_code == 0:
        # the CLI only reports what the target answered: did the target itself let the token in?
        allowed = {
            "unprivileged-list": lambda: target.client.list_tokens(paths.unprivileged.secret).is_success,
            "unprivileged-create": lambda: bool(paths.created[case]),
            "unprivileged-delete": lambda: listed(ledger.list_items(), paths.victim.id, paths.victim.name) is None,
        }[case]()
        if allowed:
            foundations.require_anonymous_refused(target, case.removeprefix("unprivileged-"))
            pre.block("ST-ROLE-002", f"the target itself lets a token without the manager role do {case}")
    _expect_no_secret(res, case, name)
    assert res.exit_code != 0, (
        f"[{case}] the CLI exited 0 with a token without the manager role, which the target refuses\n"
        f"{res.describe(hide_unparsed=[name])}"
    )
    assert not paths.created[case], f"[{case}] a token named {name!r} was created although the CLI failed"


@pytest.mark.requirement("ST-CLI-015")
@pytest.mark.parametrize("case", UNKNOWN_ID)
def test_unknown_id_delete_fails_without_printing_a_secret(target, error_paths, case, observe):
    """`delete --id <an id nobody has>`: a non-zero exit (where the target refuses it), no secret printed."""
    res = error_paths.results[case]
    observe("cli_error_path", {"case": case, "exit_code": res.exit_code})
    _expect_no_secret(res, case, error_paths.names[case])
    if res.exit_code == 0:
        status = target.client.delete_token(target.admin_token, error_paths.unknown).status_code
        if 200 <= status < 300:
            return  # the target answers success for an unknown id (a correct choice): so may the CLI
        raise AssertionError(
            f"[{case}] delete of unknown id {error_paths.unknown} exited 0, while the target answers {status} to it\n"
            f"{res.describe()}"
        )


@pytest.mark.requirement("ST-CLI-016")
def test_no_secret_left_in_files_under_home(error_paths):
    """After each call (failed ones and a successful create), no file under the CLI's $HOME holds a secret."""
    calls = {**error_paths.results, "create": error_paths.success.result}
    left = {case: res.home_secrets for case, res in calls.items() if res.home_secrets}
    assert not left, "the CLI left secrets in files under its $HOME: " + "; ".join(
        f"{case}: {', '.join(found)} after `{calls[case].command_line()}`" for case, found in left.items()
    )
