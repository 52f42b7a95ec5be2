"""`sts service-token create`, `list` and `delete`: the secret shown once, the table, delete by id.

The CLI calls are few and run side by side (each is a process start): one module fixture
creates two tokens (text and ``-o json`` output) and lists them three ways: the table as the
CLI prints it into a pipe (the real CLI then lays it out for 80 columns and wraps long cells
onto continuation lines), the table in a wide terminal, and ``-o json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from sts_conformance.checking.checks import expect_refused, listed
from sts_conformance.checking.cli_runner import (
    CliCreate,
    CliResult,
    TableError,
    concurrently,
    create_with_cli,
    deleted_id,
    json_output,
    parse_roles,
    parse_table,
)
from sts_conformance.core import preconditions as pre
from sts_conformance.target import settle

# the sts CLI presents service tokens as X-API-Key only: where that form is not accepted (at all, or
# for token management) it cannot work, whatever the CLI does
# every create of the sts CLI carries "dedicatedSubject": "" (ST-LIFE-012)
# the checks run at once with the other modules' (checking/ahead.py; hence this module's fixtures are of
# session scope): each batch of CLI calls is made by a fixture, while the checks already started run
pytestmark = [
    pytest.mark.precondition(pre.X_API_KEY_FORM, pre.X_API_KEY_MANAGEMENT, pre.EMPTY_DEDICATED_SUBJECT),
    pytest.mark.together,
]


#: columns of the wide terminal the table is also read in (stdout a pipe: the real CLI assumes 80)
WIDE_TERMINAL = 200
TABLES = ("text", "wide")
_TABLE_IDS = ["pipe-80-columns", f"terminal-{WIDE_TERMINAL}-columns"]


@dataclass(frozen=True)
class Made:
    roles: list[str]
    text: CliCreate
    json: CliCreate
    lists: dict[str, CliResult]
    #: created over the API: its secret is known whatever the CLI prints
    by_api: Any

    def created(self) -> list[CliCreate]:
        return [self.text, self.json]


@pytest.fixture(scope="session")
def made(cli, target, ledger) -> Made:
    """Two tokens created through the CLI at once (text and -o json), then listed at once (text and -o json)."""
    roles = [target.profile.unprivileged_role]
    names = ledger.name("cli-create"), ledger.name("cli-create-json")
    text, as_json = concurrently(
        lambda: create_with_cli(cli, ledger, names[0], roles, token=target.admin_token),
        lambda: create_with_cli(cli, ledger, names[1], roles, token=target.admin_token, output="json"),
    )
    by_api = ledger.create("cli-listed", roles=roles)
    listing, wide, listing_json = concurrently(
        lambda: cli.run("service-token", "list", token=target.admin_token),
        lambda: cli.run("service-token", "list", token=target.admin_token, columns=WIDE_TERMINAL),
        lambda: cli.run("service-token", "list", token=target.admin_token, output="json"),
    )
    return Made(roles, text, as_json, {"text": listing, "wide": wide, "json": listing_json}, by_api)


def _expect_created(made: CliCreate, target: Any, roles: list[str], ledger: Any, printed: str) -> None:
    """The create exited 0, the API lists the token with its name and roles, and the secret authenticates."""
    assert made.result.exit_code == 0, f"create exited {made.result.exit_code}, expected 0\n{made.describe()}"
    assert made.token is not None and made.token.id is not None, (
        f"after the CLI's create, the API lists no token named {made.name!r}\n{made.describe()}"
    )
    entry = listed(ledger.list_items(), made.token.id)
    assert entry is not None, f"token {made.token.id} vanished from the API list"
    assert sorted(set(entry.get("roles") or [])) == sorted(set(roles)), (
        f"the token created with --roles {','.join(roles)} is listed by the API with roles {entry.get('roles')}"
    )
    assert made.secret, f"create printed no {printed}\n{made.describe()}"
    resp = target.probe(made.secret)
    assert resp.is_success, (
        f"the secret the CLI printed is refused by the target ({resp.status_code} on {target.profile.probe_path})"
    )


@pytest.mark.requirement("ST-CLI-001")
def test_create_prints_the_secret_once_and_it_authenticates(target, ledger, made):
    """`create` prints `✅ Service token created: <token>` (or [SUCCESS]); that token is listed and works."""
    printed = "line '✅ Service token created: <token>' (or '[SUCCESS] Service token created: <token>') on stdout"
    _expect_created(made.text, target, made.roles, ledger, printed)


@pytest.mark.requirement("ST-CLI-002")
def test_create_json_prints_service_token_document(target, ledger, made):
    """`create -o json` prints {"service-token": {name, token, expiration?}} with the name given."""
    c = made.json
    assert c.result.exit_code == 0, f"create -o json exited {c.result.exit_code}, expected 0\n{c.describe()}"
    doc = c.document
    assert isinstance(doc, dict), f"create -o json did not print one JSON document\n{c.describe()}"
    inner = doc.get("service-token")
    assert isinstance(inner, dict), f"create -o json printed keys {sorted(doc)}, expected 'service-token'"
    assert inner.get("name") == c.name, f"create -o json names the token {inner.get('name')!r}, sent {c.name!r}"
    assert isinstance(inner.get("token"), str) and inner["token"], (
        f"'service-token' carries no token string (keys: {sorted(inner)})"
    )
    assert inner.get("expiration") is None, (
        f"a token created without --expiration has expiration {inner.get('expiration')!r} in the output"
    )
    _expect_created(c, target, made.roles, ledger, "token in its JSON document")


@pytest.mark.requirement("ST-CLI-003")
@pytest.mark.parametrize("output", ["text", "wide", "json"])
def test_list_never_shows_a_secret(made, output):
    """`list` prints neither any token's secret nor the credential it was run with."""
    res = made.lists[output]
    assert res.exit_code == 0, f"list exited {res.exit_code}, expected 0\n{res.describe()}"
    leaked = res.shown_secrets()
    assert not leaked, f"`list` printed {len(leaked)} secret(s): {', '.join(leaked)}\n{res.describe()}"


def _table(res: CliResult) -> Any:
    try:
        return parse_table(res.out)
    except TableError as exc:
        raise AssertionError(f"`list` printed no readable table: {exc}\n{res.describe()}") from None


@pytest.mark.requirement("ST-CLI-004")
@pytest.mark.parametrize("layout", TABLES, ids=_TABLE_IDS)
def test_list_table_shows_id_name_roles_and_empty_expiration(ledger, made, observe, layout):
    """The table read as a person reads it (header found, wrapped cells joined back) has our rows
    with id, name, roles and no expiration, sorted by name: into a pipe (80 columns) and in a wide terminal."""
    res = made.lists[layout]
    assert res.exit_code == 0, f"list exited {res.exit_code}, expected 0\n{res.describe()}"
    table = _table(res)
    observe("cli_list_columns", list(table.columns))
    observe("cli_list_wrapped_rows", {"layout": layout, "rows": len(table.rows), "wrapped": table.wrapped_rows})
    for c in made.created():
        if c.token is None or c.token.id is None:
            continue  # the create failed; reported by ST-CLI-001/002
        rows = table.with_id(c.token.id)
        assert len(rows) == 1, f"the table has {len(rows)} rows with ID {c.token.id}, expected 1\n{res.describe()}"
        row = rows[0]
        assert row["NAME"] == c.name, f"row {c.token.id}: NAME {row['NAME']!r}, expected {c.name!r}"
        assert sorted(set(parse_roles(row["ROLES"]))) == sorted(set(made.roles)), (
            f"row {c.token.id}: ROLES {row['ROLES']!r}, expected {made.roles}"
        )
        assert row["EXPIRATION"] == "", (
            f"row {c.token.id}: EXPIRATION {row['EXPIRATION']!r} for a token without expiration, expected empty"
        )
    ours = [r["NAME"] for r in table.rows if ledger.is_ours(r["NAME"])]
    assert ours == sorted(ours), f"the table is not sorted by name: this run's rows come as {ours}"


@pytest.mark.requirement("ST-CLI-004")
def test_list_json_shows_service_tokens(made):
    """`list -o json` prints {"service-tokens": [...]} holding our tokens by id and name."""
    res = made.lists["json"]
    assert res.exit_code == 0, f"list -o json exited {res.exit_code}, expected 0\n{res.describe()}"
    doc = json_output(res)
    items = doc.get("service-tokens") if isinstance(doc, dict) else None
    assert isinstance(items, list), f"list -o json printed no 'service-tokens' array\n{res.describe()}"
    for c in made.created():
        if c.token is None or c.token.id is None:
            continue
        entry = listed([i for i in items if isinstance(i, dict)], c.token.id)
        assert entry is not None, f"list -o json has no entry with id {c.token.id}\n{res.describe()}"
        assert entry.get("name") == c.name, f"entry {c.token.id}: name {entry.get('name')!r}, expected {c.name!r}"


def _delete_with_cli(cli, target, ledger, token_id: int, output: str | None) -> list[tuple[str, CliResult]]:
    """Delete by id in the forms the profile allows: `--id ID` first, the positional `ID` as fallback."""
    forms = {"option": ["option"], "positional": ["positional"], "either": ["option", "positional"]}
    attempts = []
    for form in forms[target.profile.cli_delete_form]:
        args = ["--id", str(token_id)] if form == "option" else [str(token_id)]
        res = cli.run("service-token", "delete", *args, token=target.admin_token, output=output)
        attempts.append((form, res))
        if res.exit_code == 0 or listed(ledger.list_items(), token_id) is None:
            break  # done, or the failed attempt deleted it anyway: no second try
    return attempts


OUTPUTS = ("text", "json")


@pytest.fixture(scope="session")
def deletions(cli, target, ledger):
    """Two tokens made over the API, each deleted through the CLI (text and -o json), at once."""
    made = ledger.create_together(
        *({"label": f"cli-delete-{o}", "roles": [target.profile.unprivileged_role]} for o in OUTPUTS)
    )
    toks = dict(zip(OUTPUTS, made, strict=True))
    runs = concurrently(
        *(lambda o=o: _delete_with_cli(cli, target, ledger, toks[o].id, None if o == "text" else o) for o in OUTPUTS)
    )
    return {o: (toks[o], attempts) for o, attempts in zip(OUTPUTS, runs, strict=True)}


@pytest.mark.requirement("ST-CLI-005")
@pytest.mark.precondition(pre.DELETED_GONE, pre.REVOKED)  # the API's own delete removes and revokes
@pytest.mark.parametrize("output", OUTPUTS)
def test_delete_by_id_removes_and_revokes(target, ledger, deletions, observe, output):
    """`delete` by id exits 0 and says so; the token is then gone from the list and refused."""
    tok, attempts = deletions[output]
    form, res = attempts[-1]
    shown = "\n".join(f"[{f}] {r.describe()}" for f, r in attempts)
    assert res.exit_code == 0, (
        f"delete of {tok.id} failed in every form allowed by cli.delete_form "
        f"({target.profile.cli_delete_form})\n{shown}"
    )
    observe("cli_delete_form", form)
    if output == "json":
        doc = json_output(res)
        value = doc.get("deleted-service-token") if isinstance(doc, dict) else None
        assert str(value) == str(tok.id), (
            f"delete -o json printed {doc!r}, expected {{'deleted-service-token': {tok.id}}}"
        )
    else:
        assert deleted_id(res) == str(tok.id), (
            f"stdout has no line '✅ Service token deleted: {tok.id}' (or [SUCCESS])\n{res.describe()}"
        )
    still_listed = listed(ledger.list_without(tok.id, tok.name), tok.id, tok.name) is not None
    assert not still_listed, (
        f"token {tok.id} is still listed after the CLI said it deleted it{settle.note(settle.LIST)}\n{shown}"
    )
    ledger.forget(tok)
    resp = settle.refused(lambda: target.probe(tok.secret))
    expect_refused(
        resp, target.expect.unauthenticated_status, "a token deleted through the CLI" + settle.note(settle.REVOCATION)
    )
