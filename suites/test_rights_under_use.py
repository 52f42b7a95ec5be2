"""What a credential may do once it has been used, nearly matched or doubled up.

Next to the documented calls live the defects a plain walk through them misses:

- a token used shortly before its expiry is refused after it, like one left alone (no renewal
  on use: the controller makes both calls in the background, ``late_use.py``);
- a token *used* on a call before it is deleted must be refused after the delete on that call
  (an authentication cache filled on first use must not outlive the delete);
- a near miss of a manager token's secret (one character short, one too many, another case,
  one changed) is refused on the token calls too, not only on the probe;
- two credentials in one request (both header forms at once, a repeated header) never add up
  to more than the more capable of them has alone.

The tokens presented are the ones prepared at the start of the run (``prepare.py``), plus one
manager token made here and deleted after it was used on every call.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
import pytest

from sts_conformance.checking import foundations, late_use
from sts_conformance.checking.checks import CLOCK_MARGIN_MS, FORM_REQUIREMENT, FORMS, expect_refused, listed
from sts_conformance.checking.usage import CALL_KINDS, NEAR_MISSES, call_as, near_miss, refused_now
from sts_conformance.core import preconditions as pre
from sts_conformance.core.redact import REDACTOR
from sts_conformance.target import settle
from sts_conformance.target.client import AuthForm
from sts_conformance.tokens import prepare as prep

# the checks are independent of each other: they run at once with the
# other modules' (checking/ahead.py; hence this module's fixtures are of session scope)
pytestmark = pytest.mark.together

#: the requirement that says a valid manager token is accepted on each call: a check whose
#: token was refused before its delete stands on it
ACCEPTED_BY = {"server-info": "ST-AUTH-011", "list": "ST-AUTH-004", "create": "ST-AUTH-004", "delete": "ST-AUTH-004"}


def _gone_id(target) -> int:
    """The id of a token the run deleted at its start: a delete aimed at it changes nothing."""
    cred = target.credential(prep.DELETED_UNPRIVILEGED)
    if cred.id is None:
        pre.block(pre.LISTED, "the deleted token prepared at the start has no known id")
    return cred.id


def _used(call: str, resp: httpx.Response, refusals: tuple[int, ...]) -> bool:
    """Whether a call was let through: 2xx, or (a delete aimed at a gone id) any answer but a refusal."""
    if call == "delete":
        return resp.status_code < 500 and resp.status_code not in refusals
    return resp.is_success


# -- used shortly before its expiry -------------------------------------------------------------------


@pytest.mark.requirement("ST-EXP-011")
@pytest.mark.parametrize("form", FORMS)
def test_token_used_shortly_before_its_expiry_is_refused_after_it(target, run_state, form):
    """The expiring manager token, used about a second before its expiry, is refused about a second after it."""
    foundations.require_expiry_enforced(target)  # a token left alone is refused at its expiry
    cred = target.credential(prep.EXPIRED_MANAGER)
    assert cred.expiration is not None
    timeout = 10 + 4 * target.profile.request_timeout + late_use.RETRY_BOUND_S
    record = late_use.read(run_state.run_dir, timeout)
    if record is None:
        pre.inconclusive(f"the late use of the expiring token was not recorded within {timeout:g}s")
    why = record.unsure(form.name)
    if why is not None:
        pre.inconclusive(why + record.tried())
    before, after = record.before[form.name], record.after[form.name]
    assert after.status in target.expect.unauthenticated_status, (
        f"a manager token expiring at {record.expiry_ms} was used at server time {before.server_ms} "
        f"({before.status}), then accepted ({after.status}) at server time {after.server_ms}, after its expiry, "
        f"in the {form.value} form: its expiry moved on use{record.tried()}"
    )


# -- used, then deleted ---------------------------------------------------------------------------


@dataclass
class UsedThenDeleted:
    """A manager token used once on every call, then deleted by the admin."""

    secret: str = field(repr=False)
    form: AuthForm
    gone_id: int
    #: call -> the status it got before the delete
    before: dict[str, int] = field(default_factory=dict)


@pytest.fixture(scope="session")
def used_then_deleted(target, ledger) -> UsedThenDeleted:
    form = target.admin_form
    gone_id = _gone_id(target)
    tok = ledger.create("used-then-deleted", roles=[target.profile.manager_role])
    used = UsedThenDeleted(tok.secret, form, gone_id)
    for call in CALL_KINDS:
        resp = call_as(target, ledger, call, token=tok.secret, form=form, delete_id=gone_id, label="used-before")
        used.before[call] = resp.status_code
    ledger.remove(tok)
    # what is judged is a deleted token: one the delete left listed (a delete that removed another token
    # than it named, found by ST-LIFE-005 and ST-LIFE-006) says nothing about revocation
    if listed(ledger.list_without(tok.id, tok.name), tok.id, tok.name) is not None:
        pre.block(pre.DELETED_GONE, f"token {tok.id} was deleted (2xx) but is still listed" + settle.note(settle.LIST))
    return used


@pytest.mark.requirement("ST-AUTH-014")
@pytest.mark.precondition(pre.CREATE, pre.LIST, pre.LISTED, pre.DELETE, pre.DELETED_GONE, pre.REVOKED)
@pytest.mark.parametrize("call", CALL_KINDS)
def test_token_used_before_its_delete_is_refused_after_it(target, ledger, used_then_deleted, call):
    """A manager token used on this call before it was deleted is refused on it after the delete."""
    foundations.require_anonymous_refused(target, call)  # a call that answers anyone refuses no deleted token
    u = used_then_deleted
    refusals = (*target.expect.unauthenticated_status, *target.expect.forbidden_status)
    if not _used(call, httpx.Response(u.before[call]), refusals):
        requirement = ACCEPTED_BY.get(call, FORM_REQUIREMENT[u.form])
        pre.block(requirement, f"a valid manager token was refused ({u.before[call]}) on {call} before its delete")
    resp = refused_now(target, ledger, call, token=u.secret, form=u.form, delete_id=u.gone_id, label="after-delete")
    expect_refused(
        resp,
        target.expect.unauthenticated_status,
        f"{call} with a manager token deleted after it was used on {call} ({u.before[call]})",
    )


# -- near misses on the token calls -------------------------------------------------------------------


@pytest.mark.requirement("ST-AUTH-006")
@pytest.mark.parametrize("how", NEAR_MISSES)
def test_near_miss_of_a_manager_secret_refused_on_token_calls(target, ledger, how):
    """A truncated, extended, case-altered or one-character-changed manager secret cannot list tokens.

    (The list stands for the token calls: they share one lookup of the presented secret.)"""
    presented = near_miss(target.credential(prep.VALID_MANAGER).secret, how)
    if presented is None:
        pytest.skip(f"the target's secrets have no {how} form (no letters to change the case of)")
    resp = call_as(target, ledger, "list", token=presented, form=target.admin_form)
    expect_refused(resp, target.expect.unauthenticated_status, f"list with a {how} manager token")


# -- two credentials in one request -------------------------------------------------------------------

#: pairs of credentials, and the call that would show more rights than the more capable one has alone
PAIRS = {
    # a live token without the manager role, beside a manager token that no longer works: no management
    "unprivileged+deleted-manager": (prep.VALID_UNPRIVILEGED, prep.DELETED_MANAGER, "list"),
    "unprivileged+expired-manager": (prep.VALID_UNPRIVILEGED, prep.EXPIRED_MANAGER, "list"),
    # two tokens that no longer work: nothing at all
    "deleted-manager+expired-manager": (prep.DELETED_MANAGER, prep.EXPIRED_MANAGER, "probe"),
}


def _lines(shape: str, first: str, second: str) -> list[tuple[str, str]]:
    """The header lines presenting two secrets in one request."""
    return {
        "x-api-key-then-authorization": [("X-API-Key", first), ("Authorization", f"ApiKey {second}")],
        "authorization-then-x-api-key": [("Authorization", f"ApiKey {first}"), ("X-API-Key", second)],
        "x-api-key-twice": [("X-API-Key", first), ("X-API-Key", second)],
        "authorization-twice": [("Authorization", f"ApiKey {first}"), ("Authorization", f"ApiKey {second}")],
    }[shape]


ALL_SHAPES = ("x-api-key-then-authorization", "authorization-then-x-api-key", "x-api-key-twice", "authorization-twice")
#: every way of sending two for the pair that shows a union of rights; one way for the others
TWO_CREDENTIALS = [
    *(("unprivileged+expired-manager", shape) for shape in ALL_SHAPES),
    ("unprivileged+deleted-manager", "x-api-key-then-authorization"),
    ("deleted-manager+expired-manager", "x-api-key-twice"),
]


class Secrets:
    """The prepared credentials' secrets, the expiring ones once the server's clock is past their expiry."""

    def __init__(self, target):
        self.target = target
        self._waited = False

    def __call__(self, state: str) -> str:
        cred = self.target.credential(state)
        if state.startswith("expired") and not self._waited:
            assert cred.expiration is not None
            self.target.wait_until_server_time(cred.expiration + CLOCK_MARGIN_MS)  # (the matrix waits for it too)
            self._waited = True
        return cred.secret


@pytest.fixture(scope="session")
def secret_of(target) -> Secrets:
    return Secrets(target)


@pytest.mark.requirement("ST-AUTH-015")
@pytest.mark.precondition(pre.ANONYMOUS_REFUSED)
@pytest.mark.parametrize(("pair", "shape"), [pytest.param(p, s, id=f"{p}/{s}") for p, s in TWO_CREDENTIALS])
def test_two_credentials_grant_no_more_than_the_more_capable_one(target, ledger, secret_of, pair, shape):
    """Two credentials in one request get no right that neither of them has alone."""
    first_state, second_state, call = PAIRS[pair]
    foundations.require_anonymous_refused(target, call)
    if prep.EXPIRED_MANAGER in (first_state, second_state):
        foundations.require_expiry_enforced(target)  # an expired token alone is refused
    first, second = secret_of(first_state), secret_of(second_state)
    resp = call_as(target, ledger, call, headers={}, repeated=_lines(shape, first, second))
    most = "the probe" if call == "probe" else "no token management"
    what = (
        f"{call} presenting a {first_state} and a {second_state} token ({shape}), where {most} is the most either has"
    )
    # refused in any way: a target may refuse two credentials as a malformed request (400)
    assert 400 <= resp.status_code < 500, (
        f"{what}: expected a refusal (4xx), but the target "
        f"{'accepted it' if resp.is_success else 'answered'} with {resp.status_code}: "
        f"{REDACTOR.mask(resp.text[:200])!r}"
    )
