"""Deliberate, named defects the reference server can be started with.

Each fault is a small, plausible bug of the kind a code review lets through, switched on
at one decision point in the server's code (``if faults.on("name"):``). The faithful server
runs with no faults; the conformance suite's own tests start broken variants to prove that
the suite notices each defect.

To add a fault: add an entry to ``FAULTS`` (name: one line saying what goes wrong) and
consult it where the faithful behaviour is decided.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

FAULTS: dict[str, str] = {
    "x-api-key-ignored": "the X-API-Key header is not read; only Authorization: ApiKey works",
    "expiry-seconds-as-ms": (
        "expiryDate is compared as epoch seconds, so past dates are accepted and "
        "tokens never expire (the value is still echoed and listed as sent)"
    ),
    "delete-not-revoking": ("DELETE removes the token from the list but a cached copy keeps authenticating"),
    "list-leaks-secret": "list items carry the secret of tokens this process knows",
    "expiry-inclusive": "a token is still accepted at the exact instant it expires",
}


class FaultSet:
    """An immutable set of fault names, checked against ``FAULTS`` when built."""

    __slots__ = ("_names",)

    def __init__(self, names: Iterable[str] = ()) -> None:
        if isinstance(names, str):
            names = (names,)  # FaultSet("x") would otherwise mean {"x"} split into letters
        chosen = frozenset(names)
        unknown = sorted(chosen - FAULTS.keys())
        if unknown:
            raise ValueError(f"unknown fault(s): {', '.join(unknown)}; known faults: {', '.join(FAULTS)}")
        self._names = chosen

    def on(self, name: str) -> bool:
        """Whether fault ``name`` is switched on. Asking about a name that is not in the
        catalogue is a bug in the server's code, so it raises rather than answers False."""
        if name not in FAULTS:
            raise KeyError(f"no fault named {name!r} in the catalogue")
        return name in self._names

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._names))

    def __len__(self) -> int:
        return len(self._names)

    def __bool__(self) -> bool:
        return bool(self._names)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FaultSet) and other._names == self._names

    def __hash__(self) -> int:
        return hash(self._names)

    def __repr__(self) -> str:
        return f"FaultSet({sorted(self._names)!r})"
