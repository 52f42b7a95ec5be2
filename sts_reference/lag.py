"""Correct variants in which the server shows the effect of a change a little late, as real deployments do.

- ``list-lag``: the list is read from a replica that is :data:`LIST_LAG_MS` behind: a new token
  is listed that long after its create, a deleted one stays listed that long after its delete.
- ``revocation-lag``: the authentication cache keeps a deleted token's entry up to
  :data:`REVOCATION_LAG_MS`, so the token still works that long after its delete.
- ``late-bootstrap-token``: the bootstrap token is written :data:`BOOTSTRAP_DELAY_MS` after the
  API starts answering (an init job that runs beside the server): the first request after that
  writes it, dated as of that instant (when the init job ran), so its ttl counts from then.
- ``bootstrap-stored-when-presented``: the bootstrap token is stored only when it is first
  presented, dated as of the start: its expiry is the start plus its ttl all the same (only a
  list read with another credential before that first use could tell).

(``no-date-header`` is a single switch in ``app.create_app``.) Each is bounded, so a client that
reads an effect within a settle window sees it: none is a defect. The lags run on the server's
(injectable) clock, so a test moves them on with a fake one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from .clock import Clock
from .store import TokenRecord
from .variants import VariantSet

#: how far behind the store the list-lag replica is
LIST_LAG_MS = 500
#: how long a deleted token's cache entry lingers under revocation-lag
REVOCATION_LAG_MS = 1_000
#: how long after the API answers the late-bootstrap-token variant writes the bootstrap token
BOOTSTRAP_DELAY_MS = 1_000


class Lag:
    """The lag variants of one server; every method is a no-op for a variant that is off."""

    def __init__(self, variants: VariantSet, clock: Clock) -> None:
        self.clock = clock
        self.list_lag = variants.on("list-lag")
        self.revocation_lag = variants.on("revocation-lag")
        self.late_bootstrap = variants.on("late-bootstrap-token")
        self.bootstrap_when_presented = variants.on("bootstrap-stored-when-presented")
        self._mutex = threading.Lock()
        # list-lag: every record the list has shown, and those deleted since (id -> (when, record))
        self._seen: dict[int, TokenRecord] = {}
        self._gone: dict[int, tuple[int, TokenRecord]] = {}
        # revocation-lag: cache key of a deleted token -> until when (server clock, ms) it still works
        self._lingering: dict[bytes, int] = {}
        # late-bootstrap-token: when (server clock) the bootstrap token is written; None once it is
        self._bootstrap_at: int | None = None

    # -- late-bootstrap-token ----------------------------------------------------------------

    def start(self, create_bootstrap_token: Callable[[], None]) -> None:
        """At start-up: write the bootstrap token now, or (late-bootstrap-token,
        bootstrap-stored-when-presented) schedule it."""
        if self.late_bootstrap:
            self._bootstrap_at = self.clock.now_ms() + BOOTSTRAP_DELAY_MS
        elif self.bootstrap_when_presented:
            self._bootstrap_at = self.clock.now_ms()
        else:
            create_bootstrap_token()

    def bootstrap_due(self, presented_bootstrap: bool) -> int | None:
        """When (server clock) the bootstrap token is dated, if it is to be written now (once); else None.

        ``presented_bootstrap``: whether the request presents the bootstrap token (all that
        bootstrap-stored-when-presented waits for).
        """
        with self._mutex:
            at = self._bootstrap_at
            if at is None or self.clock.now_ms() < at or (self.bootstrap_when_presented and not presented_bootstrap):
                return None
            self._bootstrap_at = None
        return at

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
            self._lingering[digest] = self.clock.now_ms() + REVOCATION_LAG_MS
        return True

    def evicted(self, digest: bytes) -> bool:
        """revocation-lag: whether a cache entry belongs to a deleted token whose time is up (drop it then)."""
        if not self._lingering:
            return False
        with self._mutex:
            until = self._lingering.get(digest)
            if until is None or self.clock.now_ms() < until:
                return False
            del self._lingering[digest]
        return True
