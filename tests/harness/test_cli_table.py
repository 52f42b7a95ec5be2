"""Reading what the `sts` CLI prints: the list table in both layouts, the created and deleted lines."""

from __future__ import annotations

import pytest

from sts_conformance.checking.cli_runner import (
    CliResult,
    TableError,
    cell_date,
    created_secret,
    deleted_id,
    parse_roles,
    parse_table,
)
from sts_conformance.core.redact import REDACTOR

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


# -- wrapped tables: the layouts the real CLI's own tests expect ----------------------------------
# Written out from the expectations of the real CLI's printer tests (internal/printer/printer_test.go,
# TestPrintTableWrapEqualColumnTreatment at MaxWidth 25 and TestPrintTableWrapUnequalColumnTreatment at
# 30), trailing blanks included, and read back as a person would.

WRAP_EQUAL = (
    "HELLO  | FOO    | WORLD \n"
    "1      | 2      | 3     \n"
    "hello  | I've c | Becaus\n"
    "darkne | ome to | e a vi\n"
    "ss my  |  talk  | sion s\n"
    "old fr | to you | oftly \n"
    "iend   |  again | creepi\n"
    "       |        | ng    \n"
)
WRAP_UNEQUAL = (
    "HELLO | FOO       | WORLD    \n"
    "hello | darkness  | Because a\n"
    "      | my old fr |  vision s\n"
    "      | iend      | oftly cre\n"
    "      |           | eping    \n"
)


@pytest.mark.parametrize(
    ("text", "rows"),
    [
        pytest.param(
            WRAP_EQUAL,
            [
                ("1", "2", "3"),
                ("hello darkness my old friend", "I've come to talk to you again", "Because a vision softly creeping"),
            ],
            id="TestPrintTableWrapEqualColumnTreatment",
        ),
        pytest.param(
            WRAP_UNEQUAL,
            [("hello", "darkness my old friend", "Because a vision softly creeping")],
            id="TestPrintTableWrapUnequalColumnTreatment",
        ),
    ],
)
def test_wrapped_cells_of_the_real_printer_tests_are_joined_back(text, rows):
    table = parse_table(text, finds=("HELLO", "FOO"), required=())
    assert [(r["HELLO"], r["FOO"], r["WORLD"]) for r in table.rows] == rows
    assert table.unreadable == ()


# The real CLI's list (servicetoken_list_test.go's tokens, with the product's 15-digit ids) into a
# pipe: 80 columns, so the ids, a long name, the roles and the DEDICATED_SUBJECT header wrap.
LIST_80_COLUMNS = (
    "ID            | NAME          | EXPIRATION | ROLES         | DEDICATED_SUB\n"
    "              |               |            |               | JECT         \n"
    "1074843416306 | test          | 2020-05-22 | [test-role an | -            \n"
    "93            |               |            | other-role]   |              \n"
    "2210348577160 | test2-with-a- |            | [test-role]   | svc-subject  \n"
    "04            | longer-name   |            |               |              \n"
)
LIST_200_COLUMNS = (
    "ID              | NAME                     | EXPIRATION | ROLES                    | DEDICATED_SUBJECT\n"
    "107484341630693 | test                     | 2020-05-22 | [test-role another-role] | -                \n"
    "221034857716004 | test2-with-a-longer-name |            | [test-role]              | svc-subject      \n"
)


@pytest.mark.parametrize("text", [LIST_80_COLUMNS, LIST_200_COLUMNS], ids=["80-columns", "200-columns"])
def test_real_list_layout_reads_the_same_at_any_width(text):
    table = parse_table(text)
    assert table.columns == ("ID", "NAME", "EXPIRATION", "ROLES", "DEDICATED_SUBJECT")
    assert [(r["ID"], r["NAME"], r["EXPIRATION"], r["ROLES"], r["DEDICATED_SUBJECT"]) for r in table.rows] == [
        ("107484341630693", "test", "2020-05-22", "[test-role another-role]", "-"),
        ("221034857716004", "test2-with-a-longer-name", "", "[test-role]", "svc-subject"),
    ]
    assert parse_roles(table.rows[0]["ROLES"]) == ["test-role", "another-role"]


def test_rows_that_fill_every_column_are_not_merged():
    """A row whose cells all reach their column's end is followed by a row, not a continuation."""
    text = (
        "ID | NAME | EXPIRATION | ROLES\n"
        "10 | abcd | 2030-01-01 | [r1]\n"
        "9  | wxyz | 2030-01-02 | [r2]\n"
        "11 | ab   |            | [r3]\n"
    )
    assert [r["ID"] for r in parse_table(text).rows] == ["10", "9", "11"]


@pytest.mark.parametrize("width", [40, 80, 120, 200])
def test_tables_laid_out_as_the_real_cli_does_read_back_whole(width):
    """Lists laid out by the reference CLI's reproduction of the real printer read back exactly, at any width."""
    import random

    from sts_reference.cli_table import render_table

    rng = random.Random(width)
    header = ["id", "name", "expiration", "roles", "dedicated_Subject"]
    for _ in range(60):
        rows = sorted(
            (
                [
                    str(rng.choice([rng.randint(10**14, 10**15 - 1), rng.randint(1, 200)])),
                    rng.choice(
                        ["a", "bootstrap", f"stsct-71e034-main-cli-create-{i}", "x y z " * rng.randint(0, 3) + "n"]
                    ),
                    rng.choice(["", "2026-12-05"]),
                    rng.choice(["[stackstate-admin]", "[a b]", "[]", "-", "[stackstate-guest stackstate-power-user]"]),
                    rng.choice(["-", "svc-" + "s" * rng.randint(0, 30)]),
                ]
                for i in range(rng.randint(1, 6))
            ),
            key=lambda row: row[1],
        )
        text = "\n".join(render_table(header, rows, width))
        assert [list(r.values()) for r in parse_table(text).rows] == rows, text
