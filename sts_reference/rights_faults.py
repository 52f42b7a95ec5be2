"""The faults of what a token may do off the happy path (issue 19: roles, use, bootstrap).

Each function here is one fault's decision, called from ``app.py`` at the point where the
faithful server decides the same thing, and only while that fault is on (see ``faults.py``
for the one-line descriptions). Kept apart from ``app.py`` so that the faithful code path
reads as it did: one ``if`` per fault there, the defect itself here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from .store import TokenRecord

ROLE_COMMA = ","


def role_substring_manages(roles: Iterable[str], manager_roles: Iterable[str]) -> bool:
    """role-substring-manages: a role that merely contains a manager role's name grants management."""
    managers = tuple(manager_roles)
    return any(manager in role for role in roles for manager in managers)


def roles_split_at_commas(roles: list[str]) -> list[str]:
    """role-comma-split: each role holding a comma is stored as the roles between its commas."""
    return [part for role in roles for part in (role.split(ROLE_COMMA) if ROLE_COMMA in role else [role])]


class SlidingExpiry:
    """sliding-expiry-on-use: each accepted use of a token with an expiry moves its expiry to that
    moment plus the token's original lifetime (an idle timeout). Kept in memory, beside the stored
    record, so the list still shows the original expiration."""

    def __init__(self) -> None:
        self._moved: dict[int, int] = {}

    def expiration(self, record: TokenRecord) -> int | None:
        return self._moved.get(record.id, record.expiration)

    def used(self, record: TokenRecord, now_ms: int) -> None:
        if record.expiration is None:
            return
        lifetime = record.expiration - record.last_update
        if lifetime > 0:
            self._moved[record.id] = max(self.expiration(record) or 0, now_ms + lifetime)


def union_of_roles(records: Iterable[TokenRecord]) -> TokenRecord:
    """two-credentials-union: the first record, holding the roles of all of them."""
    found = list(records)
    roles = tuple(dict.fromkeys(role for record in found for role in record.roles))
    return dataclasses.replace(found[0], roles=roles)


def near_miss_candidates(presented: bytes) -> list[bytes]:
    """near-miss-secret-on-token-calls: the secrets a sloppy lookup also tries, one character shorter."""
    return [presented[:-1]] if len(presented) > 1 else []
