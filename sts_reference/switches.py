"""Immutable sets of names chosen from a catalogue: the server's faults and variants.

A catalogue is a dict of name -> one-line description. A set is checked against its
catalogue when built, so a misspelt name is an error rather than a silently faithful server,
and asking about a name the catalogue does not have is a bug in the server's code.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import ClassVar


class NameSet:
    """An immutable set of names from ``CATALOGUE``; subclasses name the catalogue and what
    one entry is called (``KIND``, e.g. ``"fault"``) for the error messages."""

    CATALOGUE: ClassVar[Mapping[str, str]] = {}
    KIND: ClassVar[str] = "name"

    __slots__ = ("_names",)

    def __init__(self, names: Iterable[str] = ()) -> None:
        if isinstance(names, str):
            names = (names,)  # NameSet("x") would otherwise mean {"x"} split into letters
        chosen = frozenset(names)
        unknown = sorted(chosen - self.CATALOGUE.keys())
        if unknown:
            raise ValueError(
                f"unknown {self.KIND}(s): {', '.join(unknown)}; known {self.KIND}s: {', '.join(self.CATALOGUE)}"
            )
        self._names = chosen

    def on(self, name: str) -> bool:
        """Whether ``name`` is switched on. Asking about a name that is not in the catalogue
        is a bug in the server's code, so it raises rather than answers False."""
        if name not in self.CATALOGUE:
            raise KeyError(f"no {self.KIND} named {name!r} in the catalogue")
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
        return type(other) is type(self) and isinstance(other, NameSet) and other._names == self._names

    def __hash__(self) -> int:
        return hash((type(self), self._names))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({sorted(self._names)!r})"
