"""Role names are matched exactly: a name that merely resembles the manager role grants nothing.

The manager role is the profile's ``roles.manager``. Each near miss of it — one character
short, an extension (``-readonly``), a role that contains it, a part of it, padded with
spaces, another case, or joined with another role by a comma into one role string — is given
to a token of its own, and that token must not be let into token management. A target may
refuse such a role when the token is created: then it grants nothing either.

A role string holding a comma is one role: it is listed as that one string (the CLI splits
``--roles`` at commas before sending; the API takes an array, each item one role).

Cost: the tokens are made together, their ids found with one list, and each is presented on
one call (the list) — what decides who may manage is the role check every token call shares;
that it is made on each call is the authorization matrix's question.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest

from sts_conformance.checking import foundations
from sts_conformance.checking.checks import block_if_creates_fail, expect_refused, listed
from sts_conformance.core import preconditions as pre
from sts_conformance.plugin import planned
from sts_conformance.tokens.journal import token_id
from sts_conformance.tokens.ledger import OwnedToken
from sts_conformance.tokens.premade import Premade, case_of

# the checks run at once with the other modules' (checking/ahead.py; hence the table's fixture is of
# session scope): they share one table, made by the first of them while the others wait for it
pytestmark = [pytest.mark.precondition(pre.CREATE, pre.LIST, pre.LISTED), pytest.mark.together]


def _near(how: str, manager: str, other: str) -> str:
    """The near miss ``how`` of the manager role name (``other`` is the unprivileged role)."""
    part = manager.rsplit("-", 1)[-1] if "-" in manager else manager[1:]
    return {
        "prefix": manager[:-1],
        "extension": f"{manager}-readonly",
        "containing": f"read-{manager}",
        "part": part,
        "padded": f" {manager} ",
        "other-case": manager[:1].swapcase() + manager[1:],
        "comma-joined": f"{manager},{other}",
    }[how]


NEAR_MISS_ROLES = [
    "prefix",
    "extension",
    "containing",
    "part",
    "padded",
    "other-case",
    "comma-joined",
]


@dataclass
class Made:
    """A token created with one near-miss role: the create's status, the token, and its list entry."""

    role: str
    status: int
    tok: OwnedToken | None = None
    entry: dict[str, Any] | None = field(default=None)


class NearMisses:
    """The module's tokens, one per near miss, all made together on first use, with one list to find them."""

    def __init__(self, target, ledger, premade: Premade):
        self.target, self.ledger, self.premade = target, ledger, premade
        self._entries: dict[int, dict[str, Any]] | None = None
        self._lock = threading.Lock()  # checks run together (checking/ahead.py) wait for the first to make it

    def made(self, how: str) -> Made:
        p = self.target.profile
        role = _near(how, p.manager_role, p.unprivileged_role)
        resp, tok = self.premade.take_raw(how)
        block_if_creates_fail(self.ledger, resp, [p.unprivileged_role], f"a create with role {role!r}")
        with self._lock:
            if self._entries is None:
                # a list that shows a create late (a replica) is read again, within the settle window
                ids = {t.id for _resp, t in self.premade.sent().values() if t is not None and t.id is not None}
                items = self.ledger.list_until(lambda items: ids <= {token_id(i.get("id")) for i in items})
                self._entries = {tid: entry for tid in ids if (entry := listed(items, tid)) is not None}
            entries = self._entries
        entry = entries.get(tok.id) if tok is not None and tok.id is not None else None
        return Made(role, resp.status_code, tok, entry)


def _wants(item, profile, ledger) -> dict:
    """The near miss a check of this module presents (see ``premade``)."""
    how = case_of(item).get("how", "comma-joined") if item.originalname in _CHECKS else None
    if how is None:
        return {}
    role = _near(how, profile.manager_role, profile.unprivileged_role)
    return {how: ledger.body(f"role-{how}", roles=[role])}


@pytest.fixture(scope="session")
def near_misses(request, target, ledger) -> NearMisses:
    items, known = planned(request, __file__)
    wants = functools.partial(_wants, profile=target.profile, ledger=ledger)
    return NearMisses(target, ledger, Premade.for_items(ledger, items, wants, together=known))


def _accepted(made: Made, ledger, observe) -> OwnedToken | None:
    """The token made with the role; None when the target refused the role at creation (granting nothing)."""
    observe("near_miss_role", {"role": made.role, "create_status": made.status})
    if not 200 <= made.status < 300:
        assert 400 <= made.status < 500, f"creating a token with role {made.role!r} answered {made.status}"
        return None
    tok = made.tok
    assert tok is not None, f"creating a token with role {made.role!r} answered {made.status} but carried no token"
    ledger.block_unlisted(tok, f"token {tok.name!r} with role {made.role!r} was created ({made.status}) but")
    return tok


#: each near miss is ST-ROLE-007's, but the name in another case: whether role names are compared
#: case-sensitively no public text states, so that one is the SHOULD ST-ROLE-005's
NEAR_MISS_CASES = [
    *(pytest.param(how, id=how, marks=pytest.mark.requirement("ST-ROLE-007")) for how in NEAR_MISS_ROLES[:5]),
    pytest.param("other-case", id="other-case", marks=pytest.mark.requirement("ST-ROLE-005")),
    pytest.param("comma-joined", id="comma-joined", marks=pytest.mark.requirement("ST-ROLE-007")),
]


_CHECKS = ("test_near_miss_of_the_manager_role_grants_no_management", "test_role_holding_a_comma_is_one_role")


@pytest.mark.parametrize("how", NEAR_MISS_CASES)
def test_near_miss_of_the_manager_role_grants_no_management(target, ledger, near_misses, observe, how):
    """A token whose only role resembles the manager role, without being it, cannot list tokens."""
    made = near_misses.made(how)
    if made.role == target.profile.manager_role:
        pytest.skip(f"the manager role {made.role!r} (profile setting 'roles.manager') has no {how} form")
    tok = _accepted(made, ledger, observe)
    if tok is None:
        return
    foundations.require_role_refused(target, "list")  # a list that lets anyone, or any role, in refuses no role
    resp = target.client.list_tokens(tok.secret, form=target.admin_form)
    allowed = tuple(dict.fromkeys((*target.expect.forbidden_status, *target.expect.unauthenticated_status)))
    expect_refused(resp, allowed, f"list by a token whose only role is {made.role!r} ({how})")


@pytest.mark.requirement("ST-ROLE-008")
def test_role_holding_a_comma_is_one_role(target, ledger, near_misses, observe):
    """A role string with a comma is listed as that one role (or refused at creation), never split."""
    made = near_misses.made("comma-joined")
    tok = _accepted(made, ledger, observe)
    if tok is None:
        return
    assert made.entry is not None, f"token {tok.id} is not listed"
    got = made.entry.get("roles")
    assert isinstance(got, list) and [str(r) for r in got] == [made.role], (
        f"created with the one role {made.role!r}, listed with roles {got!r}"
    )
