"""Reading what the `sts` CLI prints: the list table in both layouts, the created and deleted lines."""

from __future__ import annotations

import pytest

from sts_conformance.cli_runner import (
    CliResult,
    TableError,
    cell_date,
    created_secret,
    deleted_id,
    parse_roles,
    parse_table,
)
from sts_conformance.redact import REDACTOR

FOUR_COLUMNS = """\
ID              | NAME        | EXPIRATION | ROLES
221034857716004 | ci-deployer | 2031-05-17 | [stackstate-guest stackstate-power-user]
907715243388121 | nightly     |            | [stackstate-admin]
"""

WITH_DEDICATED_SUBJECT = """\
ID              | NAME        | EXPIRATION | ROLES                                    | DEDICATED_SUBJECT
221034857716004 | ci-deployer | 2031-05-17 | [stackstate-guest stackstate-power-user] |
907715243388121 | nightly     |            | [stackstate-admin]                       | svc-nightly
"""


@pytest.mark.parametrize("text", [FOUR_COLUMNS, WITH_DEDICATED_SUBJECT], ids=["documented", "dedicated-subject"])
def test_both_layouts_read_by_header(text):
    """Rows are read by column name, whether DEDICATED_SUBJECT is there or not."""
    table = parse_table(text)
    assert table.columns[:4] == ("ID", "NAME", "EXPIRATION", "ROLES")
    assert [r["NAME"] for r in table.rows] == ["ci-deployer", "nightly"]
    first, second = table.with_id(221034857716004)[0], table.named("nightly")[0]
    assert first["EXPIRATION"] == "2031-05-17" and second["EXPIRATION"] == ""
    assert parse_roles(first["ROLES"]) == ["stackstate-guest", "stackstate-power-user"]
    assert second["ID"] == "907715243388121"
    assert table.unreadable == ()


def test_dedicated_subject_column_values():
    """The extra column is kept, empty cells included."""
    table = parse_table(WITH_DEDICATED_SUBJECT)
    assert [r["DEDICATED_SUBJECT"] for r in table.rows] == ["", "svc-nightly"]


def test_columns_in_another_order_with_border_separator_and_colour():
    """A bordered, coloured table with a rule under the header and its columns moved still reads."""
    text = (
        "+------+----+------------+---------+\n"
        "| \x1b[36mNAME\x1b[0m | ID | ROLES      | EXPIRATION |\n"
        "+------+----+------------+---------+\n"
        "| b    | 7  | [x]        | 2030-01-01 |\n"
        "+------+----+------------+---------+\n"
    )
    table = parse_table(text)
    assert table.columns == ("NAME", "ID", "ROLES", "EXPIRATION")
    assert table.rows == ({"NAME": "b", "ID": "7", "ROLES": "[x]", "EXPIRATION": "2030-01-01"},)


def test_lines_before_the_header_are_ignored():
    """A notice printed above the table does not hide it."""
    table = parse_table("note: a newer CLI is available\n\n" + FOUR_COLUMNS)
    assert len(table.rows) == 2


def test_no_tokens_message_is_an_empty_table():
    """`No service tokens found.` reads as a table without rows."""
    assert parse_table("No service tokens found.\n").rows == ()


@pytest.mark.parametrize(
    "text, problem",
    [
        pytest.param("", "no header", id="empty"),
        pytest.param("221034857716004 | x | | [a]\n", "no header", id="rows-without-header"),
        pytest.param("ID | NAME | ROLES\n1 | x | [a]\n", "lacks EXPIRATION", id="expiration-missing"),
        pytest.param("ID | NAME | EXPIRATION | ROLES | NAME\n", "twice", id="column-twice"),
    ],
)
def test_unreadable_tables_are_refused(text, problem):
    """Output without a usable header raises TableError saying what is wrong."""
    with pytest.raises(TableError, match=problem):
        parse_table(text)


def test_row_with_extra_bar_is_set_aside_not_misread():
    """A row whose name holds '|' has too many cells: it is reported, never shifted into other columns."""
    table = parse_table(FOUR_COLUMNS + "5 | a|b | | [x]\n")
    assert [r["ID"] for r in table.rows] == ["221034857716004", "907715243388121"]
    assert table.unreadable == ("5 | a|b | | [x]",)


@pytest.mark.parametrize(
    "cell, roles",
    [("[a b]", ["a", "b"]), ("[]", []), ("a, b", ["a", "b"]), ("[stackstate-admin]", ["stackstate-admin"])],
)
def test_roles_cell(cell, roles):
    assert parse_roles(cell) == roles


@pytest.mark.parametrize(
    "cell, day", [("2030-01-02", "2030-01-02"), ("2030-01-02 00:00:00 +0000 UTC", "2030-01-02"), ("", None)]
)
def test_expiration_cell(cell, day):
    assert cell_date(cell) == day


def _result(stdout: str, stderr: str = "") -> CliResult:
    return CliResult(("sts",), 0, stdout, stderr, "UTC", 0.1)


@pytest.mark.parametrize(
    "stdout",
    [
        "✅ Service token created: svctok-abcdefghij0123\n",
        "[SUCCESS] Service token created: svctok-abcdefghij0123\n\n",
        "\x1b[32m✅\x1b[0m Service token created: \x1b[1msvctok-abcdefghij0123\x1b[0m\n",
    ],
    ids=["check-mark", "success-word-and-blank-line", "coloured"],
)
def test_created_line_read_with_either_marker(stdout):
    """The secret is read after ✅ or [SUCCESS], colour removed, and registered for masking."""
    assert created_secret(_result(stdout)) == "svctok-abcdefghij0123"
    assert "svctok-abcdefghij0123" in REDACTOR.secrets()


@pytest.mark.parametrize(
    "stdout",
    ["Service token created: svctok-abcdefghij0123\n", "✅ Service token: svctok-abcdefghij0123\n", ""],
    ids=["no-marker", "other-wording", "nothing"],
)
def test_created_line_needs_marker_and_wording(stdout):
    assert created_secret(_result(stdout)) is None


def test_created_line_is_not_read_from_stderr():
    assert created_secret(_result("", "✅ Service token created: svctok-abcdefghij0123\n")) is None


def test_deleted_line_and_error_lines():
    """The deleted id is read after either marker; error lines are found on stdout and stderr."""
    assert deleted_id(_result("[SUCCESS] Service token deleted: 107484341630693\n")) == "107484341630693"
    assert deleted_id(_result("✅ Service token deleted: 42\n")) == "42"
    res = _result("", "❌ 401 Unauthorized\n{...}\n")
    assert res.error_lines() == ["❌ 401 Unauthorized"]
    assert _result("[ERROR] could not connect\n").error_lines() == ["[ERROR] could not connect"]


def test_row_with_trailing_empty_cells_trimmed():
    """A row that ends early (its trailing empty cells trimmed away) reads with those cells empty."""
    table = parse_table("ID | NAME | ROLES | EXPIRATION | DEDICATED_SUBJECT\n7 | x | [a]\n8 | y | [b] |\n")
    assert [(r["ID"], r["ROLES"], r["EXPIRATION"], r["DEDICATED_SUBJECT"]) for r in table.rows] == [
        ("7", "[a]", "", ""),
        ("8", "[b]", "", ""),
    ]
