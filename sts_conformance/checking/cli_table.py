"""Reading the ``sts service-token list`` table as a person reads it.

The real CLI prints a go-pretty table without border: cells padded to their column's
width, columns joined by ``" | "``, the header upper-cased. A cell longer than its column's
maximum width (which follows the terminal's width: 80 columns when stdout is no terminal)
is cut into pieces of that width, printed on continuation lines below, where every column
that did not wrap is blank; the header wraps the same way (``DEDICATED_SUB`` / ``JECT``).

:func:`parse_table` finds the header (first line naming ID and NAME), takes the columns'
positions from it, joins continuation lines back onto the line they continue, and reads
each row by column name, so a 15-digit id split over two lines is one id again. Tables
whose lines are not aligned on the header's separators (another CLI, a bordered layout) are
read line by line, split on ``|``.

A line continues the row above when each of its non-blank cells stands under a cell that
filled its column (it may have been cut there) and those cells' columns are all of one width
(go-pretty gives every column that wraps the same maximum width), unless it looks like a row
of its own: an ID that is a number as wide as its column, and every cell the CLI never leaves
blank (ID, NAME, ROLES, DEDICATED_SUBJECT: a missing value is ``-``) filled. Where the table
gives no way to tell, the line is read as a row of its own.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
#: the column the real CLI's newer versions add to the ``list`` table
OPTIONAL_COLUMNS = ("DEDICATED_SUBJECT",)
REQUIRED_COLUMNS = ("ID", "NAME", "EXPIRATION", "ROLES")
NO_TOKENS = "No service tokens found."
SEPARATOR = " | "
_RULE = re.compile(r"^[\s\-+=|:─━│┃┼┬┴├┤┌┐└┘╋]*$")


class TableError(ValueError):
    """The ``list`` output is not a table this module can read."""


@dataclass(frozen=True)
class CliTable:
    """The ``list`` table: upper-cased header names, and each row as a mapping from them."""

    columns: tuple[str, ...]
    rows: tuple[dict[str, str], ...]
    #: lines below the header whose cell count does not match it (e.g. a name containing '|')
    unreadable: tuple[str, ...] = ()
    #: how many rows were joined from more than one line (wrapped cells)
    wrapped_rows: int = 0

    def named(self, name: str) -> list[dict[str, str]]:
        return [r for r in self.rows if r.get("NAME") == name]

    def with_id(self, token_id: int | str) -> list[dict[str, str]]:
        return [r for r in self.rows if r.get("ID") == str(token_id)]


def _width(ch: str) -> int:
    return 2 if unicodedata.east_asian_width(ch) in "WF" else 0 if unicodedata.combining(ch) else 1


def _text_width(text: str) -> int:
    return sum(_width(ch) for ch in text)


def _bordered(line: str) -> bool:
    return line.strip().startswith(("|", "│"))


def _split_cells(line: str, bordered: bool) -> list[str]:
    cells = [c.strip() for c in line.replace("│", "|").split("|")]
    if bordered:  # | a | b |: an empty cell at either end that is no column
        cells = cells[1:-1] if len(cells) > 1 and cells[-1] == "" else cells[1:]
    return cells


@dataclass(frozen=True)
class _Layout:
    """Where each column starts and how wide it is (terminal columns), from the header line."""

    starts: tuple[int, ...]
    widths: tuple[int, ...]

    @classmethod
    def of(cls, header_line: str) -> _Layout:
        starts, widths, at = [], [], 0
        for cell in header_line.split(SEPARATOR):
            starts.append(at)
            widths.append(_text_width(cell))
            at += _text_width(cell) + len(SEPARATOR)
        return cls(tuple(starts), tuple(widths))

    def slice(self, line: str) -> list[str] | None:
        """The raw (unstripped) cells of ``line``, or None when it is not aligned on the separators."""
        placed, column = [], 0
        for ch in line:
            placed.append((column, ch))
            column += _width(ch)
        ends: list[int | None] = [start - len(SEPARATOR) for start in self.starts[1:]] + [None]
        cells = []
        for i, begin in enumerate(self.starts):
            end = ends[i]
            cells.append("".join(ch for col, ch in placed if col >= begin and (end is None or col < end)))
            if end is not None:
                found = "".join(ch for col, ch in placed if end <= col < end + len(SEPARATOR))
                if found and not SEPARATOR.startswith(found):
                    return None
        if column <= self.starts[-1] and "|" in cells[max(i for i, c in enumerate(cells) if c)]:
            return None  # ends before the last column with a bar in its last cell: not this layout
        return cells

    def widened(self, lines: list[str]) -> _Layout:
        """The last column's width is that of its widest cell (the header's may be trimmed)."""
        last = max((_text_width(c[-1]) for c in map(self.slice, lines) if c is not None), default=0)
        return _Layout(self.starts, (*self.widths[:-1], max(self.widths[-1], last)))


def _filled(raw: str, width: int) -> bool:
    """Whether a cell reaches the end of its column (so it may continue below).

    A piece cut just after a space loses that space to the padding: a cell that stops one
    column short counts as filled too.
    """
    return _text_width(raw.rstrip()) >= width - 1


#: cells the real CLI never leaves blank in a row: a missing value is printed as ``-``
_ALWAYS_FILLED = ("ID", "NAME", "ROLES", "DEDICATED_SUBJECT")


def _unclosed(pieces: list[list[str]], layout: _Layout, header: list[str]) -> bool:
    """Whether the row so far has a list cell (``[a b``) whose closing bracket is still to come."""
    joined = dict(zip(header, _join(pieces, layout), strict=True))
    roles = joined.get("ROLES", "")
    return roles.startswith("[") and not roles.endswith("]")


def _is_row_of_its_own(cells: list[str], layout: _Layout, header: list[str]) -> bool:
    """A full-width numeric ID with every always-filled cell filled starts a row (a wrapped id's
    next piece comes with a blank cell beside it)."""
    if "ID" not in header:
        return False
    id_column = header.index("ID")
    ident = cells[id_column].strip()
    filled = all(cells[i].strip() for i, name in enumerate(header) if name in _ALWAYS_FILLED)
    return filled and ident.isdigit() and _text_width(ident) == layout.widths[id_column]


def _join(pieces: list[list[str]], layout: _Layout) -> list[str]:
    """Cells of one row from its lines: each piece but the last keeps its full width (a cut space included)."""
    joined = []
    for i, width in enumerate(layout.widths):
        column = [p[i] for p in pieces]
        last = max((n for n, piece in enumerate(column) if piece.strip()), default=0)
        text = "".join(piece + " " * max(0, width - _text_width(piece)) for piece in column[:last])
        joined.append((text + column[last]).strip())
    return joined


def parse_table(
    text: str, *, finds: tuple[str, ...] = ("ID", "NAME"), required: tuple[str, ...] = REQUIRED_COLUMNS
) -> CliTable:
    """Read the ``list`` table, finding its columns by the header line.

    Accepts the documented layout ``ID | NAME | EXPIRATION | ROLES`` and the newer one with
    ``DEDICATED_SUBJECT`` (or any further column), in any column order, with or without a
    border, separator lines, colour or wrapped cells. ``No service tokens found.`` is an
    empty table. Raises :class:`TableError` when there is no header naming every required column.
    ``finds`` are the columns the header line is found by, ``required`` those it must have.
    """
    lines = [_ANSI.sub("", ln).rstrip("\r\n") for ln in text.splitlines()]
    meaningful = [ln for ln in lines if ln.strip() and not _RULE.match(ln)]
    if any(ln.strip() == NO_TOKENS for ln in meaningful) and not any("|" in ln for ln in meaningful):
        return CliTable((), ())
    for start, line in enumerate(meaningful):
        bordered = _bordered(line)
        if bordered or SEPARATOR not in line:
            header = [c.upper() for c in _split_cells(line, bordered)]
            if set(finds) <= set(header):
                _check_header(header, required)
                return _read_split(header, meaningful[start + 1 :], bordered)
            continue
        layout = _Layout.of(line).widened(meaningful[start:])
        header, body = _wrapped_header(line, meaningful[start + 1 :], layout)
        if set(finds) <= set(header):
            _check_header(header, required)
            return _read_aligned(header, body, layout)
    raise TableError(f"no header line with {' and '.join(finds)} columns")


def _wrapped_header(line: str, below: list[str], layout: _Layout) -> tuple[list[str], list[str]]:
    """The header, its wrapped names joined back (``DEDICATED_SUB`` + ``JECT``), and the lines below it."""
    pieces = [layout.slice(line) or []]
    while below:
        cells = layout.slice(below[0])
        if cells is None or not _continues(pieces[-1], cells, layout):
            break
        pieces.append(cells)
        below = below[1:]
    return [c.upper() for c in _join(pieces, layout)], below


def _check_header(header: list[str], required: tuple[str, ...]) -> None:
    missing = [c for c in required if c not in header]
    if missing:
        raise TableError(f"the header {' | '.join(header)} lacks {', '.join(missing)}")
    if len(set(header)) != len(header):
        raise TableError(f"the header {' | '.join(header)} names a column twice")


def _continues(above: list[str], cells: list[str], layout: _Layout) -> bool:
    blank = [not c.strip() for c in cells]
    if all(blank):
        return False
    # a cell wraps at its column's maximum width, which is the same for every column that wraps
    widths = {layout.widths[i] for i, b in enumerate(blank) if not b}
    return len(widths) == 1 and all(b or _filled(above[i], layout.widths[i]) for i, b in enumerate(blank))


def _read_aligned(header: list[str], body: list[str], layout: _Layout) -> CliTable:
    rows: list[dict[str, str]] = []
    unreadable: list[str] = []
    wrapped = 0
    pieces: list[list[str]] = []

    def flush() -> None:
        nonlocal wrapped
        if pieces:
            rows.append(dict(zip(header, _join(pieces, layout), strict=True)))
            wrapped += len(pieces) > 1
            pieces.clear()

    for line in body:
        cells = layout.slice(line)
        if cells is None:
            split = _split_cells(line, False)
            if 1 < len(split) < len(header):
                split += [""] * (len(header) - len(split))
            if len(split) == len(header):
                flush()
                rows.append(dict(zip(header, split, strict=True)))
            else:
                unreadable.append(line)
            continue
        if (
            pieces
            and _continues(pieces[-1], cells, layout)
            and (_unclosed(pieces, layout, header) or not _is_row_of_its_own(cells, layout, header))
        ):
            pieces.append(cells)
        else:
            flush()
            pieces.append(cells)
    flush()
    return CliTable(tuple(header), tuple(rows), tuple(unreadable), wrapped)


def _read_split(header: list[str], body: list[str], bordered: bool) -> CliTable:
    rows, unreadable = [], []
    for line in body:
        cells = _split_cells(line, bordered)
        if not bordered and 1 < len(cells) < len(header):
            cells += [""] * (len(header) - len(cells))  # trailing empty cells trimmed with the line's end
        if len(cells) == len(header):
            rows.append(dict(zip(header, cells, strict=True)))
        else:
            unreadable.append(line)
    return CliTable(tuple(header), tuple(rows), tuple(unreadable))


def parse_roles(cell: str) -> list[str]:
    """A ROLES cell as a list: ``[a b]`` (how Go prints a list), ``a, b`` or ``a b``."""
    inner = cell.strip()
    if inner.startswith("[") and inner.endswith("]"):
        inner = inner[1:-1]
    return [r for r in re.split(r"[\s,]+", inner) if r]


_ISO_DATE = re.compile(r"\b(\d{4}-\d{2}-\d{2})\b")


def cell_date(cell: str) -> str | None:
    """The ``yyyy-MM-dd`` date in an EXPIRATION cell, or None when the cell shows none."""
    m = _ISO_DATE.search(cell)
    return m.group(1) if m else None
