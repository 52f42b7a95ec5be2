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
(go-pretty gives every column that wraps the same maximum width), unless its ID is a number
as wide as its column (a row of its own). Where the table gives no way to tell, the line is
read as a row of its own.
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
        bounds = [*self.starts[1:], None]
        cells = []
        for i, begin in enumerate(self.starts):
            end = None if bounds[i] is None else bounds[i] - len(SEPARATOR)
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

    A piece cut just after a space loses that space to the padding: a cell holding a space
    that stops one column short counts as filled too.
    """
    text = raw.rstrip()
    used = _text_width(text)
    return used >= width or (used == width - 1 and " " in text.strip())


def _is_row_of_its_own(cells: list[str], layout: _Layout, id_column: int) -> bool:
    ident = cells[id_column].strip()
    return ident.isdigit() and _text_width(ident) == layout.widths[id_column]


def _join(pieces: list[list[str]], layout: _Layout) -> list[str]:
    """Cells of one row from its lines: each piece but the last keeps its full width (a cut space included)."""
    joined = []
    for i, width in enumerate(layout.widths):
        column = [p[i] for p in pieces]
        last = max((n for n, piece in enumerate(column) if piece.strip()), default=0)
        text = "".join(piece + " " * max(0, width - _text_width(piece)) for piece in column[:last])
        joined.append((text + column[last]).strip())
    return joined


def parse_table(text: str) -> CliTable:
    """Read the ``list`` table, finding its columns by the header line.

    Accepts the documented layout ``ID | NAME | EXPIRATION | ROLES`` and the newer one with
    ``DEDICATED_SUBJECT`` (or any further column), in any column order, with or without a
    border, separator lines, colour or wrapped cells. ``No service tokens found.`` is an
    empty table. Raises :class:`TableError` when there is no header naming every required column.
    """
    lines = [_ANSI.sub("", ln).rstrip("\r\n") for ln in text.splitlines()]
    meaningful = [ln for ln in lines if ln.strip() and not _RULE.match(ln)]
    if any(ln.strip() == NO_TOKENS for ln in meaningful) and not any("|" in ln for ln in meaningful):
        return CliTable((), ())
    start = next(
        (
            i
            for i, ln in enumerate(meaningful)
            if {"ID", "NAME"} <= {c.upper() for c in _split_cells(ln, _bordered(ln))}
        ),
        None,
    )
    if start is None:
        raise TableError("no header line with ID and NAME columns")
    bordered = _bordered(meaningful[start])
    body = meaningful[start + 1 :]
    layout = None if bordered else _Layout.of(meaningful[start]).widened(meaningful[start:])
    if layout is None:
        header = [c.upper() for c in _split_cells(meaningful[start], bordered)]
        return _check_header(header) or _read_split(header, body, bordered)
    # the header may wrap too: its continuation lines stand only under header cells that filled their column
    header_pieces = [layout.slice(meaningful[start]) or []]
    while body:
        cells = layout.slice(body[0])
        if cells is None or not _continues(header_pieces[-1], cells, layout):
            break
        header_pieces.append(cells)
        body = body[1:]
    header = [c.upper() for c in _join(header_pieces, layout)]
    _check_header(header)
    return _read_aligned(header, body, layout)


def _check_header(header: list[str]) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
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
    id_column = header.index("ID")
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
        if pieces and _continues(pieces[-1], cells, layout) and not _is_row_of_its_own(cells, layout, id_column):
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
