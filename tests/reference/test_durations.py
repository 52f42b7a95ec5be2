"""HOCON-style duration strings, as the bootstrap token's ttl is written."""

from __future__ import annotations

import pytest

from sts_reference.durations import parse_duration

SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR


@pytest.mark.parametrize(
    ("text", "expected_ms"),
    [
        ("24h", 24 * HOUR),
        ("30m", 30 * MINUTE),
        ("90s", 90 * SECOND),
        ("500ms", 500),
        ("7d", 7 * DAY),
        ("2 minutes", 2 * MINUTE),
        ("1 minute", MINUTE),
        ("1.5s", 1500),
        ("0.5 hours", 30 * MINUTE),
        (".25d", 6 * HOUR),
        ("250", 250),
        (" 10 s ", 10 * SECOND),
        ("3 millis", 3),
        ("2000000ns", 2),
        ("1500us", 1),
        ("3 days", 3 * DAY),
        ("1 second", SECOND),
    ],
    ids=lambda value: repr(value) if isinstance(value, str) else None,
)
def test_duration_parses_to_milliseconds(text: str, expected_ms: int) -> None:
    """Every HOCON unit spelling is accepted; a bare number means milliseconds."""
    assert parse_duration(text) == expected_ms


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "expected a number"),
        ("h", "expected a number"),
        ("24 hrs", "unknown unit 'hrs'"),
        ("24H", "unknown unit 'H'"),
        ("1 fortnight", "unknown unit"),
        ("1e3s", "expected a number"),
        ("1 2s", "expected a number"),
        ("0s", "greater than zero"),
        ("0", "greater than zero"),
        ("-5m", "greater than zero"),
        ("500us", "at least one millisecond"),
        ("99999999999d", "maximum"),
        ("٢٤h", "expected a number"),
    ],
    ids=lambda value: repr(value),
)
def test_duration_refused_with_reason(text: str, complaint: str) -> None:
    """A malformed, zero, negative or out-of-range duration is a ValueError naming the text."""
    with pytest.raises(ValueError, match="invalid duration") as caught:
        parse_duration(text)
    assert complaint in str(caught.value)
    assert repr(text) in str(caught.value)


def test_duration_refuses_non_string() -> None:
    """A number that YAML did not leave as text is not silently reinterpreted."""
    with pytest.raises(ValueError, match="must be a string"):
        parse_duration(24)  # type: ignore[arg-type]
