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


class BootstrapFirstUseExpiry(FirstUseExpiry):
    """bootstrap-ttl-from-first-use: the bootstrap token, stored at start with its expiry (and listed
    so), is judged by its ttl counted from its first use; every other token expires as set."""

    def expiration(self, record: TokenRecord) -> int | None:
        return super().expiration(record) if record.bootstrap else record.expiration

    def used(self, record: TokenRecord, now_ms: int) -> None:
        if record.bootstrap:
            super().used(record, now_ms)


#: 9999-12-31T23:59:59.999Z: the last instant a four-digit-year date type holds
LAST_DATE_MS = 253_402_300_799_999


def far_expiry_wraps(expiration: int) -> bool:
    """far-expiry-wraps: an expiration past year 9999 wraps in the date type it is judged through, to a
    moment long past: the token is refused as expired from its creation on."""
    return expiration > LAST_DATE_MS


class Makers:
    """Which token made which (tokens-die-with-their-maker, list-shows-only-own-tokens): kept in memory."""

    def __init__(self) -> None:
        self._maker: dict[int, int] = {}

    def made(self, token_id: int, maker_id: int) -> None:
        self._maker[token_id] = maker_id

    def made_by(self, maker_id: int) -> set[int]:
        """Every token made by ``maker_id``, by tokens it made, and so on."""
        found: set[int] = set()
        frontier = {maker_id}
        while frontier:
            frontier = {t for t, m in self._maker.items() if m in frontier and t not in found}
            found |= frontier
        return found


class FirstDuplicateOnly:
    """duplicate-names-refused-after-first: a name a live token holds is accepted once more, the first
    time it happens; from then on such a create is refused (a uniqueness rule switched on by its first
    violation)."""

    def __init__(self) -> None:
        self.seen = False

    def refuses(self, duplicate: bool) -> bool:
        if not duplicate:
            return False
        if not self.seen:
            self.seen = True
            return False
        return True


class DeferredMakers:
    """deleted-maker-manages-in-authorization: a token (not the bootstrap token) that made tokens keeps,
    once deleted, the grant they were made under, looked up by its secret's digest; only the
    Authorization header's path of the token calls consults it (X-API-Key and the other calls see the
    token gone)."""

    def __init__(self) -> None:
        self._deleted: dict[bytes, TokenRecord] = {}

    def deleted(self, digest: bytes, record: TokenRecord, made: set[int]) -> None:
        if made and not record.bootstrap:
            self._deleted[digest] = record

    def granted(self, digest: bytes) -> TokenRecord | None:
        return self._deleted.get(digest)


#: roles-capped-at-32: how many roles the faulty role column holds
ROLES_KEPT = 32


def roles_capped(roles: list[str]) -> list[str]:
    """roles-capped-at-32: the roles kept of a list (the first ROLES_KEPT); the rest dropped silently."""
    return roles[:ROLES_KEPT]
