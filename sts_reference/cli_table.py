"""The ``list`` table of the reference CLI, laid out the way the real ``sts`` CLI lays it out.

The real CLI renders tables with go-pretty (v6) in its printer (``internal/printer``): no
border, no header separator, no cell padding, columns joined by ``" | "``, the header
upper-cased and every cell left-aligned and padded to its column's width. Each column is
given a maximum width, computed from the printer's ``MaxWidth`` (the terminal's width; 80
when stdout is no terminal):

- the average width is ``(MaxWidth - 3 * (columns - 1)) / columns`` (integer division);
- a column's natural width is the longest of its header (in bytes) and its values (in
  terminal columns);
- a column narrower than the average keeps its natural width, and what it leaves of the
  average is shared out (integer division) among the others, which get the average plus
  that share.

A cell longer than its column's maximum is cut into lines of that many characters (runes,
whatever their display width), go-pretty's ``text.WrapText``; the row then takes as many
lines as its longest cell, shorter cells padded with empty lines below. The header wraps
the same way. This module is written from the behaviour (and the CLI's own table tests),
not from the Go code.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

SEPARATOR = " | "
#: the width the real CLI assumes when stdout is not a terminal (pterm's fallback)
FALLBACK_WIDTH = 80
_VARIATION_SELECTORS = str.maketrans("", "", "\ufe0e\ufe0f")


def display_width(text: str) -> int:
    """Terminal columns ``text`` takes: East Asian wide characters two, combining marks none."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 0 if unicodedata.combining(ch) else 1 for ch in text)


def _go_div(a: int, b: int) -> int:
    """Go's integer division: truncates toward zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def column_max_widths(header: Sequence[str], rows: Sequence[Sequence[str]], max_width: int) -> list[int]:
    """Each column's maximum width, as the real CLI's printer computes it from ``max_width``."""
    count = len(header)
    overhead = (count - 1) * len(SEPARATOR)
    average = _go_div(max_width - overhead, count)
    natural = [len(h.encode("utf-8")) for h in header]
    for row in rows:
        for i, value in enumerate(row):
            natural[i] = max(natural[i], display_width(value.translate(_VARIATION_SELECTORS)))
    spare = sum(average - width for width in natural if width < average)
    wider = sum(1 for width in natural if width >= average)
    return [width if width < average else average + spare // wider for width in natural]


def wrap_text(text: str, width: int) -> str:
    """go-pretty's ``text.WrapText`` on text without escape codes: a new line every ``width`` characters."""
    if width <= 0:
        return ""
    out: list[str] = []
    line_length = 0
    for ch in text:
        if ch == "\n" or line_length == width:
            out.append("\n")
            line_length = 0
        if ch != "\n":
            out.append(ch)
            line_length += 1
    return "".join(out)


def _cell_text(value: str) -> str:
    value = value.translate(_VARIATION_SELECTORS).replace("\t", "    ").replace("\r\n", "\n")
    return value.replace("\r", "")


def _pad(line: str, width: int) -> str:
    line = line.rstrip(" ")
    return line + " " * max(0, width - display_width(line))


def render_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], max_width: int, *, paint_header: str | None = None
) -> list[str]:
    """The table's lines (trailing blanks kept, as the real CLI prints them).

    ``paint_header`` is an SGR code (e.g. ``"36"``) each header cell is coloured with.
    """
    limits = column_max_widths(header, rows, max_width)
    cells = [[_cell_text(h) for h in header], *([_cell_text(v) for v in row] for row in rows)]
    wrapped = [
        [wrap_text(cell, limit) if limit > 0 else cell for cell, limit in zip(row, limits, strict=True)]
        for row in cells
    ]
    widths = [0] * len(header)
    for row in cells:
        for i, cell in enumerate(row):
            longest = max((display_width(line) for line in cell.split("\n")), default=0)
            widths[i] = max(widths[i], min(longest, limits[i]) if limits[i] > 0 else longest)
    lines: list[str] = []
    for index, row in enumerate(wrapped):
        split = [cell.split("\n") for cell in row]
        height = max(len(parts) for parts in split)
        for number in range(height):
            parts = []
            for i, cell_lines in enumerate(split):
                text = cell_lines[number] if number < len(cell_lines) else ""
                if index == 0:
                    text = _pad(text.upper(), widths[i])
                    parts.append(f"\x1b[{paint_header}m{text}\x1b[0m" if paint_header else text)
                else:
                    parts.append(_pad(text, widths[i]))
            lines.append(SEPARATOR.join(parts))
    return lines
