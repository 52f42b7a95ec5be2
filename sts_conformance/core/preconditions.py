"""Preconditions: a check that cannot run because a foundation failed says so, and by which requirement.

Many checks stand on a few foundational behaviours: the probe refuses an anonymous call,
a create works, the list shows what was just created, a header form is accepted at all,
a delete works. When one of those fails, the checks standing on it have nothing to judge:
they are *blocked by* the requirement that names the foundation, which fails on its own.
A blocked check never fails its own requirement, so one defect gives one failed
requirement, not forty.

A check declares what it stands on with ``@pytest.mark.precondition("ST-AUTH-003", ...)``
(also on a ``pytest.param``); the plugin looks each one up in the foundations probed at the
start of the run (:mod:`.prepare`) and blocks the check before it sends anything. The
harness's own bookkeeping (the token ledger) blocks a check at run time when a foundation
fails under it — a create refused, a new token missing from the list.

A blocked check is reported as a skip whose reason starts ``blocked by ST-…:``, so JUnit
shows it as skipped with the reason; the suite's reports give it its own status, and a
blocked MUST requirement fails the run: nothing passes by being blocked.
"""

from __future__ import annotations

import re
from typing import NoReturn

import pytest
from _pytest.outcomes import Skipped

#: a skip reason that starts like this is a blocked check (see :func:`blocked_by`)
BLOCKED_PREFIX = "blocked by "
_BLOCKED = re.compile(r"^(?:[\w.]+: )?blocked by (ST-[A-Z]+-\d{3}):\s*(.*)$", re.DOTALL)

#: a skip reason that starts like this is a check that could not conclude (see :func:`inconclusive`)
INCONCLUSIVE_PREFIX = "inconclusive: "
_INCONCLUSIVE = re.compile(r"^(?:[\w.]+: )?inconclusive: ", re.DOTALL)

#: the marker a check declares its foundations with
MARKER = "precondition"

# The foundations probed at the start of every run, and the requirement each one is.
ANONYMOUS_REFUSED = "ST-AUTH-001"
AUTHORIZATION_FORM = "ST-AUTH-002"
X_API_KEY_FORM = "ST-AUTH-003"
#: as a foundation: a manager token presented as X-API-Key manages tokens (all the sts CLI sends)
X_API_KEY_MANAGEMENT = "ST-AUTH-004"
CREATE = "ST-LIFE-001"
LIST = "ST-LIFE-002"
LISTED = "ST-LIFE-003"
DELETE = "ST-LIFE-004"
DELETED_GONE = "ST-LIFE-005"
UNIQUE_IDS = "ST-LIFE-007"
REVOKED = "ST-AUTH-007"
PAST_EXPIRY_REFUSED = "ST-EXP-004"
#: a create carrying "dedicatedSubject": "" works (every real `sts service-token create` sends it)
EMPTY_DEDICATED_SUBJECT = "ST-LIFE-012"
# issue 24 (one defect, one verdict): the expiry round trip, and anonymous refusal on every call
#: an expiryDate is echoed by the create as sent, to the millisecond
EXPIRY_ECHOED = "ST-EXP-001"
#: an expiryDate is listed as sent, to the millisecond
EXPIRY_LISTED = "ST-EXP-002"
#: a token is refused once the server's clock has passed the expiry it was created with (probed
#: once a process first needs it, after the prepared expiring tokens ran out: ``checking.foundations``)
EXPIRY_ENFORCED = "ST-EXP-006"
#: each documented call refuses a request without any credential: the requirement that says so,
#: per call (the probe's own is ANONYMOUS_REFUSED); probed at the start (``Prepared.anonymous_calls``)
ANONYMOUS_REFUSED_ON: dict[str, str] = {
    "server-info": "ST-AUTH-011",
    "list": "ST-AUTH-006",
    "create": "ST-AUTH-006",
    "delete": "ST-AUTH-006",
}
#: each token call refuses a valid token without the manager role; probed at the start, per call
#: (``Prepared.unprivileged_calls``): a check of *which* roles manage stands on it
UNPRIVILEGED_REFUSED = "ST-ROLE-002"

#: what each foundation means, for messages
FOUNDATIONS: dict[str, str] = {
    ANONYMOUS_REFUSED: "the probe refuses an anonymous call",
    AUTHORIZATION_FORM: "a valid token is accepted as 'Authorization: ApiKey <token>'",
    X_API_KEY_FORM: "a valid token is accepted as 'X-API-Key: <token>'",
    X_API_KEY_MANAGEMENT: "a manager token presented as 'X-API-Key: <token>' may list tokens",
    CREATE: "creating a token with the admin credential works",
    LIST: "listing tokens answers a JSON array",
    LISTED: "a created token is listed under its name",
    DELETE: "deleting a token by its id works",
    DELETED_GONE: "a deleted token is gone from the list (and no other one)",
    UNIQUE_IDS: "new tokens get ids of their own",
    REVOKED: "a deleted token is refused",
    PAST_EXPIRY_REFUSED: "a create with an expiry in the past is refused",
    EMPTY_DEDICATED_SUBJECT: 'a create carrying "dedicatedSubject": "" (as the sts CLI sends it) works',
    EXPIRY_ECHOED: "a create echoes the expiryDate sent as its expiration, to the millisecond",
    EXPIRY_LISTED: "the list shows a token's expiration as the expiryDate sent, to the millisecond",
    EXPIRY_ENFORCED: "a token is refused once the server's clock has passed the expiry it was created with",
}


class Blocked(Skipped):
    """A check cannot be judged because the foundation ``requirement`` failed under it.

    A skip to pytest (and to Hypothesis, which lets skips through), so it ends the check
    from anywhere: a fixture, a helper, a thread the check waits on. It shows as pytest's
    own skips do (``Skipped: blocked by ST-…: why``), so every report and JUnit reads the
    reason the same way.
    """

    # pytest reads a skip's reason from the exception's one-line form, "<qualified name>: <msg>"
    # and takes off a leading "Skipped: ": look like its own Skipped there, as Skipped does
    __module__ = "builtins"
    __qualname__ = "Skipped"

    def __init__(self, requirement: str, reason: str) -> None:
        super().__init__(f"{BLOCKED_PREFIX}{requirement}: {reason}", allow_module_level=True)
        self.requirement = requirement
        self.reason = reason


def block(requirement: str, reason: str) -> NoReturn:
    """End the running check as blocked by ``requirement`` (a failed foundation)."""
    raise Blocked(requirement, reason)


class Inconclusive(Skipped):
    """A check ran but could not conclude, for reasons of timing it tried to widen and could not.

    Not a pass and not a failure: the requirement is left unjudged by this check, and the run's
    reports say so as their own outcome (reason ``inconclusive: why``). A check raises it only
    after it has tried again with a wider window up to its bound (see :func:`inconclusive`).
    A skip to pytest, shown as pytest's own skips are, like :class:`Blocked`.
    """

    __module__ = "builtins"
    __qualname__ = "Skipped"

    def __init__(self, reason: str) -> None:
        super().__init__(f"{INCONCLUSIVE_PREFIX}{reason}", allow_module_level=True)
        self.reason = reason


def inconclusive(reason: str) -> NoReturn:
    """End the running check as inconclusive: it could not conclude, even with its widest window."""
    raise Inconclusive(reason.removeprefix(INCONCLUSIVE_PREFIX))


def is_inconclusive(reason: str | None) -> bool:
    """Whether a skip reason says the check ended inconclusive (with or without a qualified-name prefix)."""
    return bool(reason) and _INCONCLUSIVE.match(str(reason).removeprefix("Skipped: ").strip()) is not None


def blocked_by(reason: str | None) -> tuple[str, str] | None:
    """``(requirement, why)`` when a skip reason says the check was blocked, else None."""
    if not reason:
        return None
    match = _BLOCKED.match(reason.removeprefix("Skipped: ").strip())
    return (match[1], match[2]) if match else None


def declared(item: pytest.Item) -> list[str]:
    """The requirements ``item`` declares as its preconditions, in order, each once."""
    found = [str(arg) for mark in item.iter_markers(MARKER) for arg in mark.args]
    return list(dict.fromkeys(found))
