"""What the reference CLI prints: the documented lines, the list table, JSON, colour."""

from __future__ import annotations

import json

import pytest
import respx

from .conftest import SERVICE_TOKEN, TARGET_ENV, RunCli

SEED_TOKEN = {
    "id": 107484341630693,
    "name": "my-service-token",
    "roles": ["stackstate-power-user"],
    "lastUpdateTimestamp": 1_700_000_000_000,
}
ANSI = "\x1b["


def test_create_prints_the_token_once_in_the_documented_line(run_cli: RunCli, api: respx.MockRouter) -> None:
    """`✅ Service token created: <token>` on stdout, and nothing else anywhere."""
    api.post("/security/tokens").respond(
        200, json={"name": "my-service-token", "token": "svctok-aaaaa-bbbb-ccccc-ddddd"}
    )

    result = run_cli("service-token", "create", "--name", "my-service-token", "--roles", "stackstate-power-user")

    assert (result.code, result.err) == (0, "")
    assert result.out == "✅ Service token created: svctok-aaaaa-bbbb-ccccc-ddddd\n"


@pytest.mark.parametrize(
    "created",
    [
        pytest.param({"name": "n", "token": "svctok-x"}, id="without expiration"),
        pytest.param(
            {"name": "n", "token": "svctok-x", "expiration": 1_748_736_000_000},
            id="with expiration",
        ),
    ],
)
def test_create_json_wraps_the_response_in_service_token(
    run_cli: RunCli, api: respx.MockRouter, created: dict[str, object]
) -> None:
    """-o json prints {"service-token": {name, token, expiration?}}."""
    api.post("/security/tokens").respond(200, json=created)

    result = run_cli("service-token", "create", "--name", "n", "--roles", "r", "-o", "json")

    assert (result.code, result.err) == (0, "")
    assert json.loads(result.out) == {"service-token": created}


def test_list_table_matches_the_documented_example(run_cli: RunCli, api: respx.MockRouter) -> None:
    """The seed document's table, byte for byte: padded columns joined by ` | `."""
    api.get("/security/tokens").respond(200, json=[SEED_TOKEN])

    result = run_cli("service-token", "list")

    assert (result.code, result.err) == (0, "")
    assert result.out == (
        "ID              | NAME             | EXPIRATION | ROLES\n"
        "107484341630693 | my-service-token |            | [stackstate-power-user]\n"
    )


def test_list_sorts_by_name_and_formats_each_cell(run_cli: RunCli, api: respx.MockRouter) -> None:
    """Rows sorted by name; roles as [a b]; empty cell when no expiration; [] when no roles."""
    api.get("/security/tokens").respond(
        200,
        json=[
            {"id": 3, "name": "zulu", "roles": ["a", "b"], "expiration": 1_748_736_000_000},
            {"id": 12, "name": "Alpha", "roles": []},
            {"id": 1, "name": "mike", "roles": ["stackstate-admin"]},
        ],
    )

    result = run_cli("service-token", "list")

    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        "ID | NAME  | EXPIRATION | ROLES",
        "12 | Alpha |            | []",
        "1  | mike  |            | [stackstate-admin]",
        "3  | zulu  | 2025-06-01 | [a b]",
    ]


def test_list_pads_wide_characters_by_display_width(run_cli: RunCli, api: respx.MockRouter) -> None:
    """A name in wide characters takes two columns per character, so the bars still line up."""
    api.get("/security/tokens").respond(
        200,
        json=[
            {"id": 1, "name": "東京", "roles": ["r"]},
            {"id": 2, "name": "tokyo", "roles": ["r"]},
        ],
    )

    result = run_cli("service-token", "list")

    assert result.out.splitlines()[1:] == [
        "2  | tokyo |            | [r]",
        "1  | 東京  |            | [r]",
    ]


@pytest.mark.parametrize(
    ("output_args", "expected"),
    [
        pytest.param([], "No service tokens found.\n", id="text"),
        pytest.param(["-o", "json"], '{\n  "service-tokens": []\n}\n', id="json"),
    ],
)
def test_list_when_empty(run_cli: RunCli, api: respx.MockRouter, output_args: list[str], expected: str) -> None:
    """No tokens: the not-found line, or an empty list under service-tokens."""
    api.get("/security/tokens").respond(200, json=[])

    result = run_cli("service-token", "list", *output_args)

    assert (result.code, result.out, result.err) == (0, expected, "")


def test_list_json_gives_the_api_objects_sorted_by_name(run_cli: RunCli, api: respx.MockRouter) -> None:
    """-o json prints {"service-tokens": [...]}, the API's objects unchanged, sorted by name."""
    second = {**SEED_TOKEN, "id": 2, "name": "b", "dedicatedSubject": "subject-b"}
    first = {**SEED_TOKEN, "id": 1, "name": "a", "expiration": 1_748_736_000_000}
    api.get("/security/tokens").respond(200, json=[second, first])

    result = run_cli("service-token", "list", "-o", "json")

    assert result.code == 0, result.err
    assert json.loads(result.out) == {"service-tokens": [first, second]}


@pytest.mark.parametrize(
    ("output_args", "expected"),
    [
        pytest.param([], "✅ Service token deleted: 42\n", id="text"),
        pytest.param(["-o", "json"], '{\n  "deleted-service-token": 42\n}\n', id="json"),
    ],
)
def test_delete_output(run_cli: RunCli, api: respx.MockRouter, output_args: list[str], expected: str) -> None:
    """The deleted line, or {"deleted-service-token": <id>} with the id as a number."""
    api.delete("/security/tokens/42").respond(204)

    result = run_cli("service-token", "delete", "42", *output_args)

    assert (result.code, result.out, result.err) == (0, expected, "")


@pytest.mark.parametrize("output", ["text", "json"])
@pytest.mark.parametrize(
    ("argv", "route"),
    [
        pytest.param(["create", "--name", "n", "--roles", "r"], ("POST", "/security/tokens"), id="create"),
        pytest.param(["list"], ("GET", "/security/tokens"), id="list"),
        pytest.param(["delete", "7"], ("DELETE", "/security/tokens/7"), id="delete"),
    ],
)
@pytest.mark.parametrize("status", [200, 401, 500])
def test_the_credential_is_never_printed(
    run_cli: RunCli,
    api: respx.MockRouter,
    argv: list[str],
    route: tuple[str, str],
    output: str,
    status: int,
) -> None:
    """Whatever happens, the service token the CLI authenticates with is not in its output."""
    if status == 401:
        api.routes["server_info"].respond(401, json={"errors": [{"message": "no"}]})
    else:
        body = {"name": "n", "token": "svctok-new"} if argv[0] == "create" else []
        api.request(*route).respond(status, json=body if status == 200 else {"errors": []})

    result = run_cli("service-token", *argv, "-o", output)

    assert SERVICE_TOKEN not in result.out + result.err


@pytest.mark.parametrize(
    ("env", "flags", "tty", "coloured"),
    [
        pytest.param({}, [], True, True, id="terminal: colour"),
        pytest.param({}, [], False, False, id="not a terminal: none"),
        pytest.param({"NO_COLOR": "1"}, [], True, False, id="NO_COLOR=1: none"),
        pytest.param({"NO_COLOR": ""}, [], True, False, id="NO_COLOR empty still counts"),
        pytest.param({"TERM": "dumb"}, [], True, False, id="TERM=dumb: none"),
        pytest.param({}, ["--no-color"], True, False, id="--no-color: none"),
    ],
)
def test_colour_only_on_a_terminal_that_allows_it(
    run_cli: RunCli,
    api: respx.MockRouter,
    env: dict[str, str],
    flags: list[str],
    tty: bool,
    coloured: bool,
) -> None:
    """ANSI codes only on a terminal, never with NO_COLOR (any value); the ✅ marker stays."""
    api.post("/security/tokens").respond(200, json={"name": "n", "token": "svctok-x"})
    api.get("/security/tokens").respond(200, json=[SEED_TOKEN])
    run_env = {**TARGET_ENV, **env}

    created = run_cli("service-token", "create", "--name", "n", "--roles", "r", *flags, env=run_env, tty=tty)
    listed = run_cli("service-token", "list", *flags, env=run_env, tty=tty)

    assert (ANSI in created.out, ANSI in listed.out) == (coloured, coloured)
    assert created.out.startswith("✅ Service token created: ")
    assert "svctok-x" in created.out
    assert "ID              | NAME" in listed.out


def test_json_output_is_never_coloured(run_cli: RunCli, api: respx.MockRouter) -> None:
    """-o json on a terminal stays plain, parseable JSON."""
    api.get("/security/tokens").respond(200, json=[SEED_TOKEN])

    result = run_cli("service-token", "list", "-o", "json", tty=True)

    assert ANSI not in result.out
    assert json.loads(result.out) == {"service-tokens": [SEED_TOKEN]}
