"""The list stays complete at the sizes where servers commonly cap or page (ST-LIFE-020).

The product page lists "all created service tokens" and the vendor spec's list call is an
array with no paging parameters, so a list that stops at a default page size (100), at a
first page of 1,000, or after a sort and a cut, hides tokens that still authenticate. Such a
defect never shows with the handful of tokens the other checks keep alive: this check brings
the deployment past 100 and then past 1,000 live tokens (:data:`SIZES`, counting the tokens
already there), reads the list at each size, and asks that every token it made is listed
once; then it deletes them again.

Cost: on a managed target (the suite's own throw-away deployment) it always runs, creating
and deleting about 1,000 tokens concurrently, a wave at a time with the whole wave in flight
(:data:`MANAGED_WAVE`, after a first wave of :data:`WAVE`), so a target whose creates are
slow costs about one create's time a wave; it is left out of the run's request budget there.
On an external deployment it runs only when the profile says ``scale_on_external: true``,
and is skipped, saying so, otherwise; there it keeps the profile's bound (``concurrency``)
on the requests in flight. Every token is journalled before its create, like all of the
run's tokens, so an interrupted run still sweeps them up.
"""

from __future__ import annotations

import contextlib
import functools
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from sts_conformance.core import preconditions as pre
from sts_conformance.core.redact import REDACTOR
from sts_conformance.target import settle, together
from sts_conformance.tokens.journal import duplicate_ids
from sts_conformance.tokens.ledger import LedgerError, OwnedToken, TokenLedger

#: the live-token counts the list is read at: past a page of 100, and past 1,000 and 1,024
SIZES = (110, 1_030)
#: creates of the first wave, sent before any answer is looked at: a target that refuses (or breaks on)
#: creates is sent this many, not a thousand
WAVE = 64
#: on a managed target, once a wave was taken in full: the creates of each later wave, and the requests
#: in flight at once (the whole wave; below the HTTP client's pool of 100 connections)
MANAGED_WAVE = 96


def _bound(managed: bool) -> int:
    """Requests in flight at once: a wave on the suite's own deployment, the profile's bound on any other."""
    return MANAGED_WAVE if managed else together.LIMIT


#: a call that failed with one of these never reached the target (no connection was made): it is sent again
#: as it was; after any other transport error (a read timed out, the connection dropped before the answer)
#: the target may have acted on it
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def _each(calls: list[Any], bound: int, again: Callable[[int, httpx.TransportError], Any | None]) -> list[Any]:
    """The calls, ``bound`` at a time (``together.run_together``: their exchanges logged in the order given).
    Interrupted (Ctrl-C, a cancelled job), the calls not yet started are dropped at once, so the run's
    cleanup has only the tokens already made to sweep.

    A call that got no answer (a server with a small listen backlog cannot take a wide wave at once: real
    infrastructure, not a finding) is replaced by ``again(i, error)``, made with the profile's bound; it
    returns None to leave the call unanswered (its answer is then the error). A second failure propagates."""
    answers = together.run_together([_answer_or_error(call) for call in calls], limit=bound)
    retries = {
        i: call
        for i, answer in enumerate(answers)
        if isinstance(answer, httpx.TransportError) and (call := again(i, answer)) is not None
    }
    if retries:
        redone = together.run_together(list(retries.values()), limit=min(bound, together.LIMIT))
        for i, answer in zip(retries, redone, strict=True):
            answers[i] = answer
    return answers


def _answer_or_error(call: Any) -> Any:
    def run() -> Any:
        try:
            return call()
        except httpx.TransportError as exc:
            return exc

    return run


def _create_many(ledger: TokenLedger, roles: list[str], count: int, managed: bool) -> list[OwnedToken]:
    """``count`` new tokens, made concurrently; a create the target does not take blocks the check.

    A create that got no answer is made again under a new name: the target may have made the first
    one (its answer lost, or late past the timeout), and the same name twice would read as a token
    listed twice. The first name's intent is journalled, so the end-of-run sweep removes it if it exists."""

    def create(name: str) -> tuple[Any, OwnedToken | None]:
        return ledger.create_raw({"name": name, "roles": roles}, attribute=False, resend=False)

    def anew(_i: int, _error: httpx.TransportError) -> Any:
        return functools.partial(create, ledger.name("scale"))

    made: list[OwnedToken] = []
    refused = None
    start, wave = 0, WAVE
    # in waves: a target that refuses (or breaks on) creates is sent one wave, not a thousand creates
    while start < count and refused is None:
        names = [ledger.name("scale") for _ in range(min(wave, count - start))]
        for resp, tok in _each([functools.partial(create, name) for name in names], _bound(managed), anew):
            if tok is None:
                refused = refused or resp
            else:
                made.append(tok)
        start += len(names)
        wave = MANAGED_WAVE if managed else WAVE
    if refused is not None:
        # the tokens made so far are in the ledger: deleted below, or swept up at the end of the run
        _delete_all(ledger, made, None, managed)
        pre.block(
            pre.CREATE,
            f"creating {count} tokens: a create answered {refused.status_code}: " + REDACTOR.mask(refused.text[:200]),
        )
    return made


def _delete_all(ledger: TokenLedger, made: list[OwnedToken], items: list[dict[str, Any]] | None, managed: bool) -> None:
    """Delete the tokens the check made (those the list showed an id for; the rest are left to the sweep)."""
    unknown = [tok for tok in made if tok.id is None]
    if unknown:
        with contextlib.suppress(LedgerError):  # unread: the end-of-run sweep finds them by name
            ledger.attribute_all(unknown, items, fresh=False)
    doomed = [tok for tok in made if tok.id is not None and not tok.deleted]
    calls = [functools.partial(ledger.delete, tok) for tok in doomed]

    def resend_if_unsent(i: int, error: httpx.TransportError) -> Any | None:
        # a delete the target may have done is not sent again: on a target that hands a freed id to the
        # next token made, it could remove another's token; the end-of-run sweep lists and removes it
        return calls[i] if isinstance(error, NOT_SENT) else None

    _each(calls, _bound(managed), resend_if_unsent)


@pytest.mark.requirement("ST-LIFE-020")
# it makes, lists and deletes a thousand tokens: on a target where that does not work for a few, it would
# only make a thousand tokens the cleanup cannot find
@pytest.mark.precondition(pre.CREATE, pre.LIST, pre.LISTED, pre.DELETE, pre.DELETED_GONE, pre.UNIQUE_IDS)
def test_list_complete_past_common_caps_and_pages(target, ledger, observe):
    """Past 100 and past 1,000 live tokens, the list shows each token the run made, once."""
    if not target.managed and not target.profile.scale_on_external:
        pytest.skip(
            "the list past 100 and 1,000 live tokens is not checked on an external target: it creates about "
            "1,000 tokens (about 2,100 requests); profile setting 'scale_on_external: true' allows it"
        )
    roles = [target.profile.unprivileged_role]
    before = ledger.list_items()
    made: list[OwnedToken] = []
    items: list[dict[str, Any]] | None = None
    try:
        for size in SIZES:
            made += _create_many(ledger, roles, max(0, size - len(before) - len(made)), target.managed)
            wanted = {tok.name for tok in made}

            def shows_all(listed: list[dict[str, Any]], wanted: set[str] = wanted) -> bool:
                return wanted <= {i.get("name") for i in listed}

            items = settle.until(settle.LIST, ledger.list_items, shows_all)
            observe("list_at_scale", {"live_at_least": len(before) + len(made), "entries": len(items)})
            counts = Counter(i.get("name") for i in items)
            missing = [tok for tok in made if counts[tok.name] == 0]
            twice = [tok for tok in made if counts[tok.name] > 1]
            doubled_ids = duplicate_ids(items)
            assert not (missing or twice or doubled_ids), (
                f"with at least {len(before) + len(made)} live tokens ({len(before)} listed before the check, "
                f"{len(made)} made by it), the list answered {len(items)} entries: "
                + "; ".join(
                    part
                    for part in (
                        f"{len(missing)} of the tokens made are missing" if missing else "",
                        f"{len(twice)} are listed more than once" if twice else "",
                        f"ids listed twice: {doubled_ids[:5]}" if doubled_ids else "",
                    )
                    if part
                )
                + " (the list has no paging: every token must be in the one answer)"
                + settle.note(settle.LIST)
            )
    finally:
        _delete_all(ledger, made, items, target.managed)
