"""Open behaviours held for the whole run: the first answer a target gives is the one it must keep.

Where the documentation leaves a choice to the implementation (whether two live tokens may share
a name, whether a deleted token's name may be given again), any answer is correct, but one
target gives one answer. The first observation of such a choice in a run (in any check of this
process) fixes it; a later, different observation is a failure of the check that makes it.
Under xdist each worker holds its own observations.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

#: the left-open choices that must stay the same for the whole run (``observe`` keys)
HELD_KEYS = frozenset({"duplicate_names", "name_of_deleted_token"})


@dataclass(frozen=True)
class Held:
    value: Any
    where: str


class HeldChoices:
    """The first answer to each left-open question, where it was seen, and every later different answer."""

    def __init__(self) -> None:
        self._held: dict[str, Held] = {}
        #: (key, the first answer, a later different one)
        self.conflicts: list[tuple[str, Held, Held]] = []
        self._lock = threading.Lock()

    def hold(self, key: str, value: Any, where: str) -> str | None:
        """Record ``value`` for ``key``; when it differs from the first answer, record and describe the change."""
        if key not in HELD_KEYS:
            return None
        with self._lock:
            first = self._held.setdefault(key, Held(value, where))
            if first.value == value:
                return None
            self.conflicts.append((key, first, Held(value, where)))
        return describe(key, first, Held(value, where))

    def get(self, key: str) -> Any:
        held = self._held.get(key)
        return None if held is None else held.value

    def as_dict(self) -> dict[str, Any]:
        return {key: held.value for key, held in self._held.items()}


def describe(key: str, first: Held, later: Held) -> str:
    return (
        f"the target changed its mind on {key!r} (left open by the documentation, but one target resolves it "
        f"one way): earlier in this run ({first.where}) it was {first.value!r}, later ({later.where}) {later.value!r}"
    )


_ATTRIBUTE = "_sts_held_choices"
_LOCK = threading.Lock()


def held(run: object) -> HeldChoices:
    """The held choices of one run, kept on an object that lives as long as it (the plugin's run state)."""
    with _LOCK:
        choices = getattr(run, _ATTRIBUTE, None)
        if choices is None:
            choices = HeldChoices()
            setattr(run, _ATTRIBUTE, choices)
        return choices
