"""The faults the suite's model of the documented behaviour catches (issue 23).

Each class or function here is one fault's decision, consulted from ``app.py``, ``auth.py``
or ``token_calls.py`` where the faithful server decides the same thing, and only while that
fault is on (``faults.py`` has the one-line descriptions). Kept apart so that the faithful
code path reads as before: one ``if`` per fault there, the defect itself here.
"""

from __future__ import annotations

from .rights_faults import SlidingExpiry
from .store import TokenRecord


class FirstUseExpiry(SlidingExpiry):
    """expiry-from-first-use: a token's lifetime (its expiration less its creation) is counted from
    the first time it is presented, not from its creation. Kept in memory beside the stored record,
    so the create's echo and the list still show the expiration as sent."""

    def __init__(self) -> None:
        super().__init__()
        self._from_first_use: dict[int, int] = {}

    def expiration(self, record: TokenRecord) -> int | None:
        """The expiration the faulty server judges by; None (not yet running) before the first use."""
        if record.expiration is None:
            return None
        return self._from_first_use.get(record.id)

    def used(self, record: TokenRecord, now_ms: int) -> None:
        if record.expiration is None or record.id in self._from_first_use:
            return
        self._from_first_use[record.id] = now_ms + max(0, record.expiration - record.last_update)
