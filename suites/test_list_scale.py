"""The list stays complete at the sizes where servers commonly cap or page (ST-LIFE-020).

The product page lists "all created service tokens" and the vendor spec's list call is an
array with no paging parameters, so a list that stops at a default page size (100), at a
first page of 1,000, or after a sort and a cut, hides tokens that still authenticate. Such a
defect never shows with the handful of tokens the other checks keep alive: this check brings
the deployment past 100 and then past 1,000 live tokens (:data:`SIZES`, counting the tokens
already there), reads the list at each size, and asks that every token it made is listed
once; then it deletes them again.

Cost: on a managed target (the suite's own throw-away deployment) it always runs, creating
and deleting about 1,000 tokens concurrently (:data:`WORKERS` requests at a time); it is
left out of the run's request budget there. On an external deployment it runs only when the
profile says ``scale_on_external: true``, and is skipped, saying so, otherwise. Every token is
journalled before its create, like all of the run's tokens, so an interrupted run still
sweeps them up.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest

from sts_conformance.core import preconditions as pre
from sts_conformance.core.redact import REDACTOR
from sts_conformance.target import settle
from sts_conformance.tokens.journal import duplicate_ids
from sts_conformance.tokens.ledger import LedgerError, OwnedToken, TokenLedger

#: the live-token counts the list is read at: past a page of 100, and past 1,000 and 1,024
SIZES = (110, 1_030)
#: requests in flight at once while the tokens are made and deleted
WORKERS = 16
#: creates sent before the answers are looked at: one refused stops the rest
WAVE = 64

T = TypeVar("T")
R = TypeVar("R")


def _each(work: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """``work`` on each item, :data:`WORKERS` at a time. Interrupted (Ctrl-C, a cancelled job), the calls
    not yet started are dropped at once, so the run's cleanup has only the tokens already made to sweep."""
    pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="scale")
    try:
        return list(pool.map(work, items))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _create_many(ledger: TokenLedger, roles: list[str], count: int) -> list[OwnedToken]:
    """``count`` new tokens, made concurrently; a create the target does not take blocks the check."""

    def create(name: str) -> tuple[Any, OwnedToken | None]:
        return ledger.create_raw({"name": name, "roles": roles}, attribute=False)

    made: list[OwnedToken] = []
    refused = None
    # in waves: a target that refuses (or breaks on) creates is sent one wave, not a thousand creates
    for start in range(0, count, WAVE):
        for resp, tok in _each(create, [ledger.name("scale") for _ in range(min(WAVE, count - start))]):
            if tok is None:
                refused = refused or resp
            else:
                made.append(tok)
        if refused is not None:
            break
    if refused is not None:
        # the tokens made so far are in the ledger: deleted below, or swept up at the end of the run
        _delete_all(ledger, made, None)
        pre.block(
            pre.CREATE,
            f"creating {count} tokens: a create answered {refused.status_code}: " + REDACTOR.mask(refused.text[:200]),
        )
    return made


def _delete_all(ledger: TokenLedger, made: list[OwnedToken], items: list[dict[str, Any]] | None) -> None:
    """Delete the tokens the check made (those the list showed an id for; the rest are left to the sweep)."""
    unknown = [tok for tok in made if tok.id is None]
    if unknown:
        with contextlib.suppress(LedgerError):  # unread: the end-of-run sweep finds them by name
            ledger.attribute_all(unknown, items, fresh=False)
    _each(ledger.delete, [tok for tok in made if tok.id is not None and not tok.deleted])


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
            made += _create_many(ledger, roles, max(0, size - len(before) - len(made)))
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
        _delete_all(ledger, made, items)
