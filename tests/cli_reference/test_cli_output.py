"""What the reference CLI prints: the real CLI's lines, its list table (wrapped to the width), JSON, colour."""

from __future__ import annotations

import json

import pytest
import respx

from sts_reference.cli_table import column_max_widths, render_table, wrap_text

from .conftest import SERVICE_TOKEN, TARGET_ENV, RunCli

SEED_TOKEN = {
    "id": 107484341630693,
    "name": "my-service-token",
    "roles": ["stackstate-power-user"],
    "lastUpdateTimestamp": 1_700_000_000_000,
}
ANSI = "\x1b["

# The layouts the real CLI's own printer tests expect (internal/printer/printer_test.go,
# TestPrintTableWrapEqualColumnTreatment and TestPrintTableWrapUnequalColumnTreatment), written
# out here line by line; trailing blanks are part of them.
WRAP_EQUAL = [
    "HELLO  | FOO    | WORLD ",
    "1      | 2      | 3     ",
    "hello  | I've c | Becaus",
    "darkne | ome to | e a vi",
    "ss my  |  talk  | sion s",
    "old fr | to you | oftly ",
    "iend   |  again | creepi",
    "       |        | ng    ",
]
WRAP_UNEQUAL = [
    "HELLO | FOO       | WORLD    ",
    "hello | darkness  | Because a",
    "      | my old fr |  vision s",
    "      | iend      | oftly cre",
    "      |           | eping    ",
]


def test_table_wraps_like_the_real_printer_equal_columns() -> None:
    rows = [
        ["1", "2", "3"],
        ["hello darkness my old friend", "I've come to talk to you again", "Because a vision softly creeping"],
    ]
    assert render_table(["Hello", "Foo", "World"], rows, 25) == WRAP_EQUAL


def test_table_wraps_like_the_real_printer_unequal_columns() -> None:
    rows = [["hello", "darkness my old friend", "Because a vision softly creeping"]]
    assert render_table(["Hello", "Foo", "World"], rows, 30) == WRAP_UNEQUAL


@pytest.mark.parametrize(
    ("width", "expected"),
    [
        pytest.param(80, [13, 13, 10, 13, 13], id="80: 13 each but EXPIRATION (10); id and header wrap"),
        pytest.param(200, [15, 16, 10, 18, 17], id="200: every column as wide as its widest cell"),
    ],
)
def test_column_widths_of_the_list_table(width: int, expected: list[int]) -> None:
    """(width - 3 * 4) / 5 each; what narrow columns leave is shared among the others (integer division)."""
    header = ["id", "name", "expiration", "roles", "dedicated_Subject"]
    rows = [["107484341630693", "my-service-token", "", "[stackstate-guest]", "-"]]
    assert column_max_widths(header, rows, width) == expected


@pytest.mark.parametrize(
    ("text", "width", "wrapped"),
    [("abcdef", 3, "abc\ndef"), ("abcdefg", 3, "abc\ndef\ng"), ("ab\ncd", 3, "ab\ncd"), ("abc", 0, "")],
)
def test_wrap_text_cuts_every_width_characters(text: str, width: int, wrapped: str) -> None:
    assert wrap_text(text, width) == wrapped


def test_create_prints_the_token_once_in_the_real_line(run_cli: RunCli, api: respx.MockRouter) -> None:
    """`[SUCCESS] Service token created: <token>` and an empty line on stdout (colour off), nothing else."""
    api.post("/security/tokens").respond(200, json={"name": "my-service-token", "token": "svctok-aaaaa-bbbb"})

    result = run_cli("service-token", "create", "--name", "my-service-token", "--roles", "stackstate-power-user")

    assert (result.code, result.err) == (0, "")
    assert result.out == "[SUCCESS] Service token created: svctok-aaaaa-bbbb\n\n"


@pytest.mark.parametrize(
    ("created", "printed"),
    [
        pytest.param({"name": "n", "token": "svctok-x"}, {"name": "n", "token": "svctok-x"}, id="without expiration"),
        pytest.param(
            {"name": "n", "token": "svctok-x", "expiration": 1_748_736_000_000, "extra": 1},
            {"expiration": 1_748_736_000_000, "name": "n", "token": "svctok-x"},
            id="with expiration, an unknown field dropped",
        ),
    ],
)
def test_create_json_wraps_the_response_in_service_token(
    run_cli: RunCli, api: respx.MockRouter, created: dict[str, object], printed: dict[str, object]
) -> None:
    """-o json prints {"service-token": {name, token, expiration?}}: the API model's fields only."""
    api.post("/security/tokens").respond(200, json=created)

    result = run_cli("service-token", "create", "--name", "n", "--roles", "r", "-o", "json")

    assert (result.code, result.err) == (0, "")
    assert json.loads(result.out) == {"service-token": printed}


def test_list_table_is_wrapped_to_80_columns_into_a_pipe(run_cli: RunCli, api: respx.MockRouter) -> None:
    """stdout no terminal: 80 columns, so the 15-digit id and the last header wrap onto a second line."""
    api.get("/security/tokens").respond(200, json=[SEED_TOKEN])

    result = run_cli("service-token", "list")

    assert (result.code, result.err) == (0, "")
    assert result.out.splitlines() == [
        "ID            | NAME          | EXPIRATION | ROLES         | DEDICATED_SUB",
        "              |               |            |               | JECT         ",
        "1074843416306 | my-service-to |            | [stackstate-p | -            ",
        "93            | ken           |            | ower-user]    |              ",
    ]


def test_list_table_follows_columns(run_cli: RunCli, api: respx.MockRouter) -> None:
    """COLUMNS widens the table (the real CLI reads the terminal's size): nothing wraps at 200."""
    api.get("/security/tokens").respond(200, json=[SEED_TOKEN])

    result = run_cli("service-token", "list", env={**TARGET_ENV, "COLUMNS": "200"})

    assert result.out.splitlines() == [
        "ID              | NAME             | EXPIRATION | ROLES                   | DEDICATED_SUBJECT",
        "107484341630693 | my-service-token |            | [stackstate-power-user] | -                ",
    ]


def test_list_like_the_real_list_test(run_cli: RunCli, api: respx.MockRouter) -> None:
    """The real CLI's servicetoken_list_test.go tokens: dates as yyyy-MM-dd, roles as [a b], no subject as -."""
    api.get("/security/tokens").respond(
        200,
        json=[
            {"id": 2, "name": "test2", "roles": ["test-role"]},
            {"id": 1, "name": "test", "roles": ["test-role", "another-role"], "expiration": 1590105600000},
        ],
    )

    result = run_cli("service-token", "list")

    assert result.out.splitlines() == [
        "ID | NAME  | EXPIRATION | ROLES                    | DEDICATED_SUBJECT",
        "1  | test  | 2020-05-22 | [test-role another-role] | -                ",
        "2  | test2 |            | [test-role]              | -                ",
    ]


def test_list_sorts_by_name_and_formats_each_cell(run_cli: RunCli, api: respx.MockRouter) -> None:
    """Sorted by name (byte order); [] for no roles, - for none given, the subject when there is one."""
    api.get("/security/tokens").respond(
        200,
        json=[
            {"id": 3, "name": "zulu", "roles": ["a", "b"], "expiration": 1_748_736_000_000, "dedicatedSubject": "s"},
            {"id": 12, "name": "Alpha", "roles": []},
            {"id": 1, "name": "mike"},
        ],
    )

    result = run_cli("service-token", "list")

    assert result.code == 0, result.err
    assert [line.rstrip() for line in result.out.splitlines()] == [
        "ID | NAME  | EXPIRATION | ROLES | DEDICATED_SUBJECT",
        "12 | Alpha |            | []    | -",
        "1  | mike  |            | -     | -",
        "3  | zulu  | 2025-06-01 | [a b] | s",
    ]


def test_list_pads_wide_characters_by_display_width(run_cli: RunCli, api: respx.MockRouter) -> None:
    """A name in wide characters takes two columns per character, so the bars still line up."""
    api.get("/security/tokens").respond(
        200, json=[{"id": 1, "name": "東京", "roles": ["r"]}, {"id": 2, "name": "tokyo", "roles": ["r"]}]
    )

    result = run_cli("service-token", "list")

    assert [line.rstrip() for line in result.out.splitlines()[1:]] == [
        "2  | tokyo |            | [r]   | -",
        "1  | 東京  |            | [r]   | -",
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


def test_list_json_gives_the_model_objects_sorted_by_name(run_cli: RunCli, api: respx.MockRouter) -> None:
    """-o json: {"service-tokens": [...]} sorted by name; a field the API model lacks (a leaked token) is dropped."""
    second = {**SEED_TOKEN, "id": 2, "name": "b", "dedicatedSubject": "subject-b"}
    first = {**SEED_TOKEN, "id": 1, "name": "a", "expiration": 1_748_736_000_000}
    api.get("/security/tokens").respond(200, json=[{**second, "token": "svctok-leaked"}, first])

    result = run_cli("service-token", "list", "-o", "json")

    assert result.code == 0, result.err
    assert json.loads(result.out) == {"service-tokens": [first, second]}
    assert "svctok-leaked" not in result.out


@pytest.mark.parametrize(
    ("output_args", "expected"),
    [
        pytest.param([], "[SUCCESS] Service token deleted: 42\n", id="text"),
        pytest.param(["-o", "json"], '{\n  "deleted-service-token": 42\n}\n', id="json"),
    ],
)
def test_delete_output(run_cli: RunCli, api: respx.MockRouter, output_args: list[str], expected: str) -> None:
    """The deleted line, or {"deleted-service-token": <id>} with the id as a number."""
    api.delete("/security/tokens/42").respond(204)

    result = run_cli("service-token", "delete", "--id", "42", *output_args)

    assert (result.code, result.out, result.err) == (0, expected, "")


@pytest.mark.parametrize("output", ["text", "json"])
@pytest.mark.parametrize(
    ("argv", "route"),
    [
        pytest.param(["create", "--name", "n", "--roles", "r"], ("POST", "/security/tokens"), id="create"),
        pytest.param(["list"], ("GET", "/security/tokens"), id="list"),
        pytest.param(["delete", "-i", "7"], ("DELETE", "/security/tokens/7"), id="delete"),
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
def test_colour_and_symbols_only_on_a_terminal_that_allows_it(
    run_cli: RunCli,
    api: respx.MockRouter,
    env: dict[str, str],
    flags: list[str],
    tty: bool,
    coloured: bool,
) -> None:
    """With colour: a cyan header and ✅; without: no ANSI codes and [SUCCESS], as the real printer."""
    api.post("/security/tokens").respond(200, json={"name": "n", "token": "svctok-x"})
    api.get("/security/tokens").respond(200, json=[SEED_TOKEN])
    run_env = {**TARGET_ENV, **env}

    created = run_cli("service-token", "create", "--name", "n", "--roles", "r", *flags, env=run_env, tty=tty)
    listed = run_cli("service-token", "list", *flags, env=run_env, tty=tty)

    assert ANSI in listed.out if coloured else ANSI not in listed.out
    marker = "✅" if coloured else "[SUCCESS]"
    assert created.out == f"{marker} Service token created: svctok-x\n\n"


def test_json_output_is_never_coloured(run_cli: RunCli, api: respx.MockRouter) -> None:
    """-o json on a terminal stays plain, parseable JSON."""
    api.get("/security/tokens").respond(200, json=[SEED_TOKEN])

    result = run_cli("service-token", "list", "-o", "json", tty=True)

    assert ANSI not in result.out
    assert json.loads(result.out) == {"service-tokens": [SEED_TOKEN]}
