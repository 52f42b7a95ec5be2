"""The final sweep: whatever a run may have left on the target is deleted, and what stays is reported.

Every token a run creates is named ``stsct-<run id>-…`` (:func:`run_prefix`) and journalled
before its create is sent; at the end the controller hands every outstanding journal entry
to :func:`sweep`, which deletes by id, looks up by name what was never attributed (also under
a name the target trimmed or normalised), and believes a delete only once the list no longer
shows the token. A token is reported as a :class:`Leftover` only when the final list still
shows it, or when it was created and never listed (but not once its expiry is past: a list may
leave expired tokens out). Tokens the run did not create are never touched.
"""

from __future__ import annotations

import functools
import time
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from sts_conformance.core.redact import REDACTOR
from sts_conformance.target import settle
from sts_conformance.target.client import ApiClient, AuthForm
from sts_conformance.target.throttle import TargetThrottled
from sts_conformance.target.together import run_together
from sts_conformance.tokens.journal import (
    Journal,
    Pending,
    token_id,
)

#: Every token name the suite makes starts with this, then the run id: ``stsct-1a2b3c-gw0-auth-7``.
NAME_PREFIX = "stsct-"
#: How long the cleanup at the end of a run may take before it reports what is left.
CLEANUP_SECONDS = 25.0
#: A token whose expiry is this long past (client clock against the server's: they may differ) and that the
#: list does not show is gone as far as anyone can tell: not reported as left behind
EXPIRED_MARGIN_MS = 5_000
#: why a token whose delete answered success is reported: the final list still shows it
STILL_SHOWN = "its delete answered success, yet the list still shows it"
#: At most this many rounds of "list, delete what is found" (a list cut short shows more each round).
_SWEEP_ROUNDS = 50


def run_prefix(run_id: str) -> str:
    """The name prefix shared by every token one run creates (all its workers)."""
    return f"{NAME_PREFIX}{run_id}-"


@dataclass(frozen=True)
class Leftover:
    """A token the run created and could not delete: reported, never silent."""

    name: str
    id: int | None
    why: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": REDACTOR.mask(self.name), "id": self.id, "why": REDACTOR.mask(self.why)}

    def __str__(self) -> str:
        return f"{self.name!r} (id {self.id if self.id is not None else 'unknown'}): {self.why}"


def _altered(sent: str, stored: str) -> bool:
    """Whether ``stored`` is ``sent`` as a target may have altered it: trimmed, NFC-normalised, or cut short."""
    loose = unicodedata.normalize("NFC", sent).strip()
    if stored in (loose, sent.strip()):
        return True
    return len(stored) >= 16 and (sent.startswith(stored) or loose.startswith(stored))


def sweep(
    client: ApiClient,
    admin_token: str,
    admin_form: AuthForm,
    pending: list[Pending],
    *,
    baseline: Iterable[int] = (),
    journal: Journal | None = None,
    deadline: float,
    progress: Callable[[str], None] | None = None,
    verify_prefix: str | None = None,
    deleted: Iterable[tuple[int, str]] = (),
) -> list[Leftover]:
    """Delete what ``pending`` says the run may have left; return what could not be removed.

    A token with a known id is deleted by that id (404 counts as gone). A token whose id was
    never learnt (its create answer was lost, a 5xx, or the list did not show it) is looked
    for by name: a name with the run's prefix belongs to the run; any other name only when
    its id did not exist before the run (``baseline``). The list is read again after each
    round of deletes, since a list that stops short shows further entries once others are gone.

    With ``verify_prefix`` (the run's own name prefix) the list is read once more at the end:
    a delete that answered success but removed nothing (or another token) leaves an entry of
    the run listed; it is deleted again, and reported when it stays.
    """
    known_before = frozenset(baseline)
    left: dict[str, Leftover] = {}
    #: deleted with a success answer: believed only once the list no longer shows them (a delete that
    #: removes another token than the one named answers success too)
    believed: list[Leftover] = [Leftover(name, token, STILL_SHOWN) for token, name in deleted]
    say = progress or (lambda _text: None)

    def gone(token: int) -> None:
        if journal is not None:
            journal.gone(token)

    def settle(p: Pending) -> None:
        if journal is not None:
            journal.settled(p.key)

    def delete(token: int) -> str | None:
        try:
            resp = client.delete_token(admin_token, token, form=admin_form)
        except httpx.HTTPError as exc:
            return f"delete got no answer ({type(exc).__name__})"
        except TargetThrottled:
            return "delete still throttled (429/503) at the cleanup's deadline"
        if resp.is_success or resp.status_code == 404:
            gone(token)
            return None
        return f"delete answered {resp.status_code}"

    def delete_in_time(token: int) -> str | None:
        return "the cleanup ran out of time" if time.monotonic() > deadline else delete(token)

    by_id = [p for p in pending if p.ids]
    by_name = [p for p in pending if not p.ids]
    # an id is a name, not an identity: a target may give a deleted token's id to a new token, which
    # may be nobody's of this run. An id the list shows under a name that is not the run's is not
    # deleted (the run's token under it is gone); an id not listed is deleted as before (404 is gone).
    owner: dict[int, str] = {}
    if by_id:
        items, _problem = _read_list(client, admin_token, admin_form)
        for item in items or []:
            if isinstance(item, dict) and (tid := token_id(item.get("id"))) is not None:
                owner[tid] = str(item.get("name", ""))

    def foreign(p: Pending, token: int) -> bool:
        name = owner.get(token)
        if name is None or name == p.name or _altered(p.name, name):
            return False
        return not (verify_prefix and name.startswith(verify_prefix))

    for p in by_id:
        for token in [t for t in p.ids if foreign(p, t)]:
            gone(token)
            say(f"token id {token} of {p.name!r} is now listed under another name: not ours, not deleted")
    # the deletes by id are independent: sent together (the profile's concurrency)
    jobs = [(p, token) for p in by_id for token in sorted(p.ids) if not foreign(p, token)]
    for (p, token), problem in zip(
        jobs, run_together(functools.partial(delete_in_time, t) for _p, t in jobs), strict=True
    ):
        if problem is not None and p.key not in left:
            left[p.key] = Leftover(p.name, token, problem)
        elif problem is None:
            believed.append(Leftover(p.name, token, STILL_SHOWN))
    for p in by_id:
        if p.key not in left:
            settle(p)

    if by_name:
        say(f"looking for {len(by_name)} token(s) of this run whose id is not known")
    deleted_ids: set[int] = set()
    list_problem: str | None = None
    for _round in range(_SWEEP_ROUNDS):
        if not by_name or time.monotonic() > deadline:
            break
        items, list_problem = _read_list(client, admin_token, admin_form)
        if items is None:
            break
        progress_made = False
        for p in list(by_name):
            fresh = [
                (i.get("name"), tid)
                for i in items
                if isinstance(i, dict)
                and (tid := token_id(i.get("id"))) is not None
                and (p.name.startswith(NAME_PREFIX) or tid not in known_before)
            ]
            named = [tid for name, tid in fresh if name == p.name]
            if named and all(tid in deleted_ids for tid in named):
                settle(p)  # listed under an id this sweep already deleted (ids shared by several tokens)
                by_name.remove(p)
                continue
            matches = [tid for tid in named if tid not in deleted_ids]
            if not matches and p.created and not p.name.startswith(NAME_PREFIX):
                # a target that stores names altered (trimmed, normalised, cut) lists it under another
                # name: the one new entry whose name is the sent one so altered, and no one else's
                matches = [
                    tid
                    for name, tid in fresh
                    if isinstance(name, str) and tid not in deleted_ids and _altered(p.name, name)
                ][:1]
            problems = []
            for tid in matches:
                problem = delete(tid)
                if problem is None:
                    deleted_ids.add(tid)
                    progress_made = True
                    believed.append(Leftover(p.name, tid, STILL_SHOWN))
                else:
                    problems.append(Leftover(p.name, tid, problem))
            if problems:
                left[p.key] = problems[0]
                by_name.remove(p)
            elif matches:
                settle(p)
                by_name.remove(p)
        if not progress_made:
            break
    for p in by_name:
        if not p.created and p.status is not None and 400 <= p.status < 500 and p.status not in (408, 429):
            # the target refused the create: no token was made, so none is left, even when the
            # list cannot be read to confirm it (a credential that may not manage tokens)
            settle(p)
        elif list_problem is not None:
            left[p.key] = Leftover(p.name, None, f"id never learnt, and {list_problem}")
        elif not p.created:
            settle(p)  # a refused or unanswered create that left nothing under its name
        elif p.expiry_ms is not None and p.expiry_ms < time.time() * 1000 - EXPIRED_MARGIN_MS:
            # expired long ago, and a list may leave expired tokens out (a correct choice): nothing that
            # authenticates is left, and there is no id to delete
            settle(p)
        else:
            left[p.key] = Leftover(p.name, None, f"created ({p.status}), but never shown by the list under its name")
    if verify_prefix is not None and list_problem is None:
        left.update(_verify_gone(client, admin_token, admin_form, verify_prefix, known_before, delete, deadline))
    reported = _still_listed(client, admin_token, admin_form, list(left.values()))
    reported_ids = {x.id for x in reported}
    return reported + _still_shown(client, admin_token, admin_form, [x for x in believed if x.id not in reported_ids])


def _still_listed(client: ApiClient, admin_token: str, admin_form: AuthForm, left: list[Leftover]) -> list[Leftover]:
    """Of the tokens with a known id that could not be deleted, those the final list really still shows.

    A delete that was throttled or answered an error may still have removed the token, and a list
    may show a delete late: the list is read (within the settle window) until it no longer shows
    them; what it still shows is left, what it does not is gone. Tokens whose id was never learnt,
    and every token when the list cannot be read, are reported as they are.
    """
    ids = {x.id for x in left if x.id is not None}
    if not ids:
        return left

    def read() -> set[int] | None:
        items, _problem = _read_list(client, admin_token, admin_form)
        if items is None:
            return None
        return {tid for i in items if isinstance(i, dict) and (tid := token_id(i.get("id"))) is not None}

    shown = settle.until(settle.LIST, read, lambda listed: listed is None or not ids & listed)
    if shown is None:
        return left
    return [x for x in left if x.id is None or x.id in shown]


def _still_shown(client: ApiClient, admin_token: str, admin_form: AuthForm, believed: list[Leftover]) -> list[Leftover]:
    """Of the tokens whose delete answered success, those the list still shows under the same id and name.

    Read within the settle window (a list may show a delete late); the name is compared too, since a
    target may give a freed id to a new token. When the list cannot be read, none is reported: their
    deletes were answered with success."""
    wanted = {(x.id, x.name) for x in believed}
    if not wanted:
        return []

    def read() -> set[tuple[int, str]] | None:
        items, _problem = _read_list(client, admin_token, admin_form)
        if items is None:
            return None
        return {
            (tid, str(i.get("name")))
            for i in items
            if isinstance(i, dict) and (tid := token_id(i.get("id"))) is not None
        }

    shown = settle.until(settle.LIST, read, lambda listed: listed is None or not wanted & listed)
    if shown is None:
        return []
    seen: set[tuple[int | None, str]] = set()
    still = []
    for x in believed:
        if (x.id, x.name) in shown and (x.id, x.name) not in seen:
            seen.add((x.id, x.name))
            still.append(x)
    return still


def _read_list(client: ApiClient, admin_token: str, admin_form: AuthForm) -> tuple[list[Any] | None, str | None]:
    """The list as the cleanup reads it: the items, or None and why they could not be read."""
    try:
        resp = client.list_tokens(admin_token, form=admin_form)
        items = resp.json() if resp.is_success else None
    except (httpx.HTTPError, ValueError) as exc:
        return None, f"the list could not be read ({type(exc).__name__})"
    except TargetThrottled:
        return None, "the list was still throttled (429/503) at the cleanup's deadline"
    if not isinstance(items, list):
        return None, f"the list answered {resp.status_code}"
    return items, None


def _verify_gone(
    client: ApiClient,
    admin_token: str,
    admin_form: AuthForm,
    prefix: str,
    known_before: frozenset[int],
    delete: Callable[[int], str | None],
    deadline: float,
) -> dict[str, Leftover]:
    """Entries of the run still listed after everything was deleted: deleted again, or reported."""
    stuck: dict[int, str] = {}  # id -> why it is still there
    names: dict[int, str] = {}
    for _round in range(_SWEEP_ROUNDS):
        if time.monotonic() > deadline:
            break
        items, _problem = _read_list(client, admin_token, admin_form)
        if items is None:
            break  # the list that worked a moment ago does not now: nothing more can be told
        ours = {
            tid: name
            for i in items
            if isinstance(i, dict)
            and isinstance(name := i.get("name"), str)
            and name.startswith(prefix)
            and (tid := token_id(i.get("id"))) is not None
            and tid not in known_before
        }
        names.update(ours)
        stuck = {tid: why for tid, why in stuck.items() if tid in ours}
        todo = [tid for tid in ours if tid not in stuck]
        if not todo:
            break
        for tid, problem in zip(todo, run_together(functools.partial(delete, tid) for tid in todo), strict=True):
            # a success is believed only once the next list no longer shows it
            stuck[tid] = problem or STILL_SHOWN
    return {f"verify-{tid}": Leftover(names[tid], tid, why) for tid, why in stuck.items()}
