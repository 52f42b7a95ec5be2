"""HOCON-style duration strings, as the product's configuration reads them.

The Helm chart renders the bootstrap ``ttl`` into HOCON, so the accepted spellings are
HOCON's: a number, optional whitespace, then a lower-case unit (``24h``, ``30 minutes``,
``1.5s``). A bare number means milliseconds, as in HOCON.
"""

from __future__ import annotations

import re
from decimal import Decimal

_NS_PER_UNIT: dict[str, int] = {}
for _names, _ns in (
    (("ns", "nano", "nanos", "nanosecond", "nanoseconds"), 1),
    (("us", "micro", "micros", "microsecond", "microseconds"), 1_000),
    (("", "ms", "milli", "millis", "millisecond", "milliseconds"), 1_000_000),
    (("s", "second", "seconds"), 1_000_000_000),
    (("m", "minute", "minutes"), 60 * 1_000_000_000),
    (("h", "hour", "hours"), 3_600 * 1_000_000_000),
    (("d", "day", "days"), 86_400 * 1_000_000_000),
):
    for _name in _names:
        _NS_PER_UNIT[_name] = _ns

UNITS: tuple[str, ...] = tuple(u for u in _NS_PER_UNIT if u)

# HOCON stores durations as a Java long of nanoseconds; anything longer is out of range there.
MAX_DURATION_MS = (2**63 - 1) // 1_000_000

_DURATION = re.compile(r"\s*(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*(?P<unit>[A-Za-z]*)\s*", re.ASCII)


def parse_duration(text: str) -> int:
    """Return the duration ``text`` denotes, in whole milliseconds (sub-millisecond parts
    are dropped). Raise ValueError for anything that is not a positive duration of at least
    one millisecond."""
    if not isinstance(text, str):
        raise ValueError(f"a duration must be a string such as '24h', got {type(text).__name__}")
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(
            f"invalid duration {text!r}: expected a number followed by a unit, such as '24h', "
            "'30m', '90s', '500ms', '7d' or '2 minutes'"
        )
    unit = match["unit"]
    if unit not in _NS_PER_UNIT:
        raise ValueError(
            f"invalid duration {text!r}: unknown unit {unit!r} (units are case-sensitive; known: {', '.join(UNITS)})"
        )
    nanoseconds = Decimal(match["number"]) * _NS_PER_UNIT[unit]
    if nanoseconds <= 0:
        raise ValueError(f"invalid duration {text!r}: must be greater than zero")
    milliseconds = int(nanoseconds // 1_000_000)
    if milliseconds < 1:
        raise ValueError(f"invalid duration {text!r}: must be at least one millisecond")
    if milliseconds > MAX_DURATION_MS:
        raise ValueError(f"invalid duration {text!r}: longer than the maximum of about 292 years")
    return milliseconds
