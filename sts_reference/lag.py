"""Correct variants in which the server shows the effect of a change a little late, as real deployments do.

- ``list-lag``: the list is read from a replica that is :data:`LIST_LAG_MS` behind: a new token
  is listed that long after its create, a deleted one stays listed that long after its delete.
- ``revocation-lag``: the authentication cache keeps a deleted token's entry up to
  :data:`REVOCATION_LAG_S`, so the token still works that long after its delete.
- ``late-bootstrap-token``: the bootstrap token is written :data:`BOOTSTRAP_DELAY_S` after the
  API starts answering (an init job that runs beside the server).

(``no-date-header`` is a single switch in ``app.create_app``.) Each is bounded, so a client that
reads an effect within a settle window sees it: none is a defect.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

from .clock import Clock
from .store import TokenRecord
from .variants import VariantSet

#: how far behind the store the list-lag replica is
LIST_LAG_MS = 500
#: how long a deleted token's cache entry lingers under revocation-lag
REVOCATION_LAG_S = 1.0
#: how long after the API answers the late-bootstrap-token variant writes the bootstrap token
BOOTSTRAP_DELAY_S = 1.0


class Lag:
    """The lag variants of one server; every method is a no-op for a variant that is off."""

    def __init__(self, variants: VariantSet, clock: Clock) -> None:
        self.clock = clock
        self.list_lag = variants.on("list-lag")
        self.revocation_lag = variants.on("revocation-lag")
        self.late_bootstrap = variants.on("late-bootstrap-token")
        self._mutex = threading.Lock()
        # list-lag: every record the list has shown, and those deleted since (id -> (when, record))
        self._seen: dict[int, TokenRecord] = {}
        self._gone: dict[int, tuple[int, TokenRecord]] = {}
        # revocation-lag: cache key of a deleted token -> until when (monotonic) it still works
        self._lingering: dict[bytes, float] = {}

    # -- list-lag ----------------------------------------------------------------------------

    def listed(self, records: list[TokenRecord]) -> list[TokenRecord]:
        """The store's list as the replica shows it: without what is newer than the lag, with what
        was deleted more recently than that."""
        if not self.list_lag:
            return records
        now = self.clock.now_ms()
        with self._mutex:
            self._seen.update((r.id, r) for r in records)
            self._gone = {tid: (at, r) for tid, (at, r) in self._gone.items() if now - at < LIST_LAG_MS}
            shown = [r for r in records if now - r.last_update >= LIST_LAG_MS]
            present = {r.id for r in records}
            shown += [r for tid, (_at, r) in self._gone.items() if tid not in present]
        return shown

    def deleted(self, ids: Iterable[int]) -> None:
        """list-lag: deleted tokens the replica still shows for a while."""
        if not self.list_lag:
            return
        now = self.clock.now_ms()
        with self._mutex:
            for tid in ids:
                record = self._seen.pop(tid, None)
                if record is not None:
                    self._gone[tid] = (now, record)

    # -- revocation-lag ----------------------------------------------------------------------

    def linger(self, digest: bytes) -> bool:
        """revocation-lag: keep a deleted token's cache entry for a while; whether it is kept."""
        if not self.revocation_lag:
            return False
        with self._mutex:
            self._lingering[digest] = time.monotonic() + REVOCATION_LAG_S
        return True

    def evicted(self, digest: bytes) -> bool:
        """revocation-lag: whether a cache entry belongs to a deleted token whose time is up (drop it then)."""
        if not self._lingering:
            return False
        with self._mutex:
            until = self._lingering.get(digest)
            if until is None or time.monotonic() < until:
                return False
            del self._lingering[digest]
        return True
