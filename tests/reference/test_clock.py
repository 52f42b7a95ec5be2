"""The injected clock that every time-dependent rule of the server reads."""

from __future__ import annotations

import threading
import time

import pytest

from sts_reference.clock import Clock, FakeClock, SystemClock


def test_system_clock_reads_wall_time_in_milliseconds() -> None:
    """SystemClock is epoch milliseconds, within a second of time.time()."""
    assert abs(SystemClock().now_ms() - time.time() * 1000) < 1000


def test_fake_clock_moves_only_when_told() -> None:
    """FakeClock stays put until advanced or set, and both clocks satisfy the protocol."""
    clock = FakeClock(1_000)
    assert clock.now_ms() == 1_000
    assert clock.advance(500) == 1_500
    clock.set(200)
    assert clock.now_ms() == 200
    assert isinstance(clock, Clock)
    assert isinstance(SystemClock(), Clock)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "10"], ids=repr)
def test_fake_clock_refuses_non_millisecond_values(bad: object) -> None:
    """Only non-negative ints are times or steps; anything else is a test bug."""
    with pytest.raises(ValueError):
        FakeClock(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        FakeClock(0).advance(bad)  # type: ignore[arg-type]


def test_fake_clock_advances_atomically_across_threads() -> None:
    """Concurrent advances from several threads all count."""
    clock = FakeClock(0)

    def bump() -> None:
        for _ in range(1000):
            clock.advance(1)

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert clock.now_ms() == 4000
