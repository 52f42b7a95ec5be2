"""Expiration: epoch-millisecond expiry dates, refused expiries, and tokens that run out.

Every "now" here is the server's clock, read from its Date header. That header has a
resolution of one second, and in a real deployment it may be written by a proxy or by
another replica than the one that judges the token, whose clock can differ a little. So
each judgement keeps CLOCK_MARGIN_MS to spare: a value counts as "in the past" only when
it lies that margin before the server's reading, and a token counts as "expired" only
once the reading has passed its expiry by that margin.

The short-lived tokens were made at the start of the run (``prepare.py``) and tried at
once, so their expiry runs out while other checks run: by the time these checks look, the
wait is usually over.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

import pytest

from sts_conformance.checking.checks import (
    CLOCK_MARGIN_MS,
    FORM_REQUIREMENT,
    block_if_creates_fail,
    expect_accepted_before,
    expect_refused,
    expect_status,
    expiring_sample,
    form_param,
    json_body,
    listed,
    validate,
)
from sts_conformance.core import preconditions as pre
from sts_conformance.plugin import planned
from sts_conformance.target.client import AuthForm
from sts_conformance.tokens.premade import Premade, case_of, own
from sts_conformance.tokens.prepare import (
    EXPIRED_MANAGER,
    EXPIRED_UNPRIVILEGED,
    EXPIRED_UNUSED,
    SHORT_LIFE_MS,
    VALID_UNPRIVILEGED,
)

DAY_MS = 86_400_000
#: 2100-01-01T00:00:00Z: read as seconds, this would be a date some 130,000 years ahead
YEAR_2100_MS = 4_102_444_800_000

# every check here creates tokens and reads them back from the list
# the checks are independent of each other: they run at once with the
# other modules' (checking/ahead.py; hence this module's fixtures are of session scope)
pytestmark = [pytest.mark.precondition(pre.CREATE, pre.LIST, pre.LISTED), pytest.mark.together]

FORMS = [form_param(AuthForm.AUTHORIZATION, "authorization-apikey"), form_param(AuthForm.X_API_KEY, "x-api-key")]


def _utc(ms: int | float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


def _shown(ms: int) -> str:
    """An epoch-ms value with its UTC date, for messages."""
    try:
        return f"{ms} ({_utc(ms).isoformat(timespec='milliseconds').replace('+00:00', 'Z')})"
    except (OverflowError, OSError, ValueError):
        return str(ms)


def _midnight_utc(ms: int) -> int:
    return ms // DAY_MS * DAY_MS


def _expect_same_ms(got: Any, sent: int, where: str) -> None:
    """``got`` is the integer ``sent``, to the millisecond."""
    hint = ""
    if isinstance(got, int | float) and not isinstance(got, bool):
        if got * 1000 == sent:
            hint = " (that is the value in seconds, not milliseconds)"
        elif got != sent and got // 1000 == sent // 1000:
            hint = " (the milliseconds were lost)"
    assert type(got) is int and got == sent, (
        f"{where}: expected expiration {_shown(sent)} as a JSON integer, got {got!r}{hint}"
    )


def _no_expiration(container: dict[str, Any], where: str) -> None:
    value = container.get("expiration")
    assert value is None, f"{where}: a token created without expiryDate shows expiration {value!r}"


def _nothing_created(ledger, name: str, what: str) -> None:
    left = [i for i in ledger.list_items() if i.get("name") == name]
    assert not left, f"{what} was refused, yet {len(left)} token(s) named {name!r} were created"


# -- round trip ------------------------------------------------------------------------------

_FUTURE = {
    "tomorrow-at-an-odd-millisecond": lambda now: now + DAY_MS + 457,
    "a-year-ahead": lambda now: now + 365 * DAY_MS + 1,
    "year-2100": lambda now: YEAR_2100_MS + 999,
}


@pytest.fixture(scope="session")
def server_now(target) -> int:
    """The server's clock when the module's first check needs a token: the expiries of the module's tokens,
    all sent together right then (``premade``), count from it."""
    return target.server_now_ms()


def _wants(item, profile, ledger, now: int) -> dict:
    """The creates a check of this module takes (see ``premade``): the expiryDate each sends, from ``now``."""
    name, case = item.originalname, case_of(item)
    roles = [profile.unprivileged_role]
    if name in _SHARED_FUTURE:
        which = case["which"]
        return {("future", which): ledger.body(f"exp-{which}", roles=roles, expiry_ms=_FUTURE[which](now))}
    future = now + 2 * DAY_MS + 123  # (a future instant, not at a whole second)
    made = {
        "test_midnight_utc_expiry_as_the_cli_sends_it_round_trips": lambda: ("exp-cli", case["day"](now)),
        "test_past_expiry_refused_with_invalid_expiry_error": lambda: ("exp-past", case["past"](now)),
        "test_non_integer_expiry_refused": lambda: ("exp-type", case["make"](future)),
        "test_numeric_string_expiry_refused_or_read_as_the_same_ms": lambda: ("exp-digits", str(future)),
    }.get(name)
    if made is None:
        return {}
    label, expiry = made()
    return {own(item)[0]: {**ledger.body(label, roles=roles), "expiryDate": expiry}}


@pytest.fixture(scope="session")
def premade(request, target, ledger, server_now) -> Premade:
    """The tokens of this module's checks, made together when the first check needs one."""
    items, known = planned(request, __file__)
    wants = functools.partial(_wants, profile=target.profile, ledger=ledger, now=server_now)
    return Premade.for_items(ledger, items, wants, together=known)


@pytest.fixture
def future_tokens(premade) -> Any:
    """One token per future expiry, shared by the three checks that read it: (expiry sent, token)."""

    def get(which: str) -> tuple[int, Any]:
        key = ("future", which)
        (tok,) = premade.take(key)
        return premade.body(key)["expiryDate"], tok

    return get


_SHARED_FUTURE = (
    "test_create_response_echoes_expiry_to_the_millisecond",
    "test_list_shows_expiry_to_the_millisecond",
    "test_token_with_future_expiry_authenticates",
)


@pytest.mark.requirement("ST-EXP-001")
@pytest.mark.parametrize("which", _FUTURE)
def test_create_response_echoes_expiry_to_the_millisecond(future_tokens, which):
    """The create response carries the expiryDate sent, unchanged, as its expiration."""
    expiry, tok = future_tokens(which)
    validate(tok.response, "CreatedToken")
    _expect_same_ms(tok.response.get("expiration"), expiry, "create response")


@pytest.mark.requirement("ST-EXP-002")
@pytest.mark.parametrize("which", _FUTURE)
def test_list_shows_expiry_to_the_millisecond(ledger, future_tokens, which):
    """The list shows the token's expiration as the epoch-ms value it was created with."""
    expiry, tok = future_tokens(which)
    entry = listed(ledger.list_items(), tok.id)
    assert entry is not None, f"token {tok.id} is not listed"
    _expect_same_ms(entry.get("expiration"), expiry, f"list entry of token {tok.id}")


@pytest.mark.requirement("ST-EXP-006")
@pytest.mark.parametrize("which", _FUTURE)
def test_token_with_future_expiry_authenticates(target, future_tokens, which):
    """A token whose expiry lies ahead is accepted (its expiry is not misread as already past)."""
    expiry, tok = future_tokens(which)
    resp = target.probe(tok.secret, target.admin_form)
    assert resp.is_success, f"a token expiring at {_shown(expiry)} was refused with {resp.status_code}"


_CLI_DAYS = [
    pytest.param(lambda now: _midnight_utc(now) + 2 * DAY_MS, id="day-after-tomorrow"),
    pytest.param(lambda now: _midnight_utc(now) + 400 * DAY_MS, id="in-400-days"),
    pytest.param(lambda now: YEAR_2100_MS, id="2100-01-01"),
]


@pytest.mark.requirement("ST-EXP-007")
@pytest.mark.precondition(pre.EXPIRY_ECHOED, pre.EXPIRY_LISTED)  # the round trip of any expiry, first
@pytest.mark.parametrize("day", _CLI_DAYS)
def test_midnight_utc_expiry_as_the_cli_sends_it_round_trips(request, ledger, premade, day):
    """00:00 UTC of a future day, as the CLI sends `--expiration yyyy-MM-dd`, is accepted and kept exactly."""
    (key,) = own(request.node)
    expiry = premade.body(key)["expiryDate"]
    assert expiry % DAY_MS == 0
    (tok,) = premade.take(key)
    _expect_same_ms(tok.response.get("expiration"), expiry, "create response")
    entry = listed(ledger.list_items(), tok.id)
    assert entry is not None, f"token {tok.id} is not listed"
    _expect_same_ms(entry.get("expiration"), expiry, f"list entry of token {tok.id}")


# -- refused expiries ------------------------------------------------------------------------

_PAST = [
    # one millisecond beyond the margin: the latest value surely in the past on every clock involved
    pytest.param(lambda now: now - CLOCK_MARGIN_MS - 1, id="just-past"),
    pytest.param(lambda now: now - DAY_MS, id="a-day-ago"),
    pytest.param(lambda now: 0, id="zero-the-epoch"),
    pytest.param(lambda now: -1, id="negative"),
]


@pytest.mark.requirement("ST-EXP-004")
@pytest.mark.parametrize("past", _PAST)
def test_past_expiry_refused_with_invalid_expiry_error(request, target, ledger, premade, server_now, past):
    """An expiryDate in the past is answered 400 ServiceTokenInvalidExpiryError and creates nothing."""
    (key,) = own(request.node)
    now, sent = server_now, premade.body(key)  # (sent with the module's other creates, at that clock)
    name, expiry = sent["name"], sent["expiryDate"]
    resp, _ = premade.take_raw(key)
    block_if_creates_fail(ledger, resp, [target.profile.unprivileged_role], f"a create with expiryDate {expiry}")
    expect_status(resp, 400, f"create with expiryDate {_shown(expiry)}, server clock {_shown(now)}")
    validate(json_body(resp, "refusal of a past expiryDate"), "InvalidExpiryError")
    _nothing_created(ledger, name, "a create with a past expiryDate")


_NOT_AN_INTEGER: list[Any] = [
    pytest.param(lambda f: _utc(f).strftime("%Y-%m-%d"), id="date-string-yyyy-mm-dd"),
    pytest.param(lambda f: _utc(f).isoformat(timespec="milliseconds").replace("+00:00", "Z"), id="iso-8601-string"),
    pytest.param(lambda f: f + 1.5, id="fraction-of-a-millisecond"),
    pytest.param(lambda f: True, id="boolean-true"),
]


@pytest.mark.requirement("ST-EXP-005")
@pytest.mark.parametrize("make", _NOT_AN_INTEGER)
def test_non_integer_expiry_refused(request, target, ledger, premade, observe, make):
    """An expiryDate that is not a JSON integer, even a future instant, is refused with a 4xx and creates nothing."""
    (key,) = own(request.node)
    name, value = premade.body(key)["name"], premade.body(key)["expiryDate"]
    resp, _ = premade.take_raw(key)
    block_if_creates_fail(ledger, resp, [target.profile.unprivileged_role], f"a create with expiryDate {value!r}")
    observe("non_integer_expiry_status", resp.status_code)
    assert 400 <= resp.status_code < 500, f"expiryDate {value!r} was answered {resp.status_code}, expected a 4xx"
    _nothing_created(ledger, name, f"a create with expiryDate {value!r}")


@pytest.mark.requirement("ST-EXP-005")
def test_numeric_string_expiry_refused_or_read_as_the_same_ms(request, ledger, premade, observe):
    """An expiryDate of digits in a JSON string is refused, or, if coerced, kept as exactly that integer.

    The spec types expiryDate as an integer, but common JSON readers (Jackson's default)
    accept a string of digits for a number. Unlike a fraction, which would have to be cut
    to fit, such a string still names a whole number of milliseconds; the public material
    does not say which a deployment does, so both are accepted and the choice is reported.
    """
    (key,) = own(request.node)
    name, expiry = premade.body(key)["name"], int(premade.body(key)["expiryDate"])
    resp, tok = premade.take_raw(key)
    if resp.is_success:
        observe("numeric_string_expiry", "coerced")
        body = json_body(resp, "create response")
        validate(body, "CreatedToken")
        _expect_same_ms(body.get("expiration"), expiry, "create response to a numeric-string expiryDate")
        assert tok is not None and tok.id is not None, f"the created token {name!r} is not listed"
        entry = listed(ledger.list_items(), tok.id)
        assert entry is not None
        _expect_same_ms(entry.get("expiration"), expiry, f"list entry of token {tok.id}")
    else:
        observe("numeric_string_expiry", "refused")
        assert 400 <= resp.status_code < 500, (
            f"expiryDate {str(expiry)!r} was answered {resp.status_code}, expected 200 or a 4xx"
        )
        _nothing_created(ledger, name, "a create with a numeric-string expiryDate")


# -- tokens that run out ---------------------------------------------------------------------


@pytest.mark.requirement("ST-EXP-006")
@pytest.mark.parametrize("form", FORMS)
def test_token_accepted_until_its_expiry(target, ledger, form):
    """A token expiring seconds ahead was accepted right after its creation, before its expiry.

    The token was made at the start of the run and tried at once; that it is refused once the
    server's clock has passed its expiry, on every call, is the authorization matrix's check.
    """
    cred = target.credential(EXPIRED_UNPRIVILEGED)
    assert cred.expiration is not None
    expect_accepted_before(
        cred.samples[f"probe/{form.name}"],
        cred.expiration,
        f"a token in form {form.value}",
        functools.partial(expiring_sample, target, ledger, cred.roles, call="probe", form=form),
    )


@pytest.mark.requirement("ST-EXP-006")
def test_manager_token_manages_until_its_expiry(target, ledger):
    """A manager token expiring seconds ahead listed tokens right after its creation, before its expiry."""
    cred = target.credential(EXPIRED_MANAGER)
    assert cred.expiration is not None
    expect_accepted_before(
        cred.samples["list"],
        cred.expiration,
        "listing tokens with a manager token",
        functools.partial(expiring_sample, target, ledger, cred.roles, call="list", form=target.admin_form),
    )


def _wait_until_expired(target) -> None:
    """Until the server's clock is past the expiring credentials' expiry by the margin (usually: already)."""
    expiry = target.prepared.expiry_ms
    if expiry is None:
        pre.block(pre.CREATE, "no expiring token could be prepared at the start of the run")
    target.wait_until_server_time(expiry + CLOCK_MARGIN_MS)


@pytest.mark.requirement("ST-EXP-012")
@pytest.mark.parametrize("form", FORMS)
def test_token_first_presented_after_its_expiry_is_refused(target, form):
    """A token never presented before its expiry is refused the first time it is: the expiration counts from
    when it was set, not from first use (a token used at once expires alike: the matrix's expired rows)."""
    _wait_until_expired(target)
    cred = target.credential(EXPIRED_UNUSED)
    assert cred.expiration is not None and not cred.samples, "the never-used token was presented before its expiry"
    resp = target.probe(cred.secret, form)
    expect_refused(
        resp,
        target.expect.unauthenticated_status,
        f"a token expiring at {_shown(cred.expiration)}, presented for the first time after it, as {form.value}",
    )


@pytest.mark.requirement("ST-EXP-003")
@pytest.mark.precondition(pre.LIST, pre.LISTED)
def test_token_without_expiry_has_none_and_keeps_working(target, ledger):
    """A token created without expiryDate shows no expiration and still works after the short-lived ones expired."""
    cred = target.credential(VALID_UNPRIVILEGED)
    _no_expiration(cred.response, "create response")
    entry = listed(ledger.list_items(), cred.id)
    assert entry is not None, f"token {cred.id} is not listed"
    _no_expiration(entry, f"list entry of token {cred.id}")
    _wait_until_expired(target)
    for form in (AuthForm.AUTHORIZATION, AuthForm.X_API_KEY):
        if target.prepared.blocked(FORM_REQUIREMENT[form]) is not None:
            continue  # a form that is accepted nowhere says nothing about expiry
        resp = target.probe(cred.secret, form)
        assert resp.is_success, (
            f"a token without expiry was refused with {resp.status_code} in form {form.value}, "
            f"{SHORT_LIFE_MS + CLOCK_MARGIN_MS} ms or more after the expiring tokens made with it"
        )


@pytest.mark.requirement("ST-EXP-008")
@pytest.mark.precondition(pre.LIST, pre.LISTED, pre.EXPIRY_ECHOED, pre.EXPIRY_LISTED)
def test_expired_token_kept_unchanged_or_removed_from_list(target, ledger, observe):
    """An expired token either stays listed with its expiration unchanged or leaves the list, as the profile pins."""
    _wait_until_expired(target)
    expiring = [target.credential(state) for state in (EXPIRED_MANAGER, EXPIRED_UNPRIVILEGED)]
    items = ledger.list_items()
    kept = {}
    for cred in expiring:
        entry = listed(items, cred.id)
        if entry is None:
            continue  # its id is kept: the cleanup at the end deletes it by id all the same
        kept[cred.id] = entry
        assert entry.get("name") == cred.name, f"expired token {cred.id} is listed as {entry.get('name')!r}"
        assert cred.expiration is not None
        _expect_same_ms(entry.get("expiration"), cred.expiration, f"list entry of expired token {cred.id}")
    choice = "kept" if len(kept) == len(expiring) else "removed" if not kept else "mixed"
    observe("expired_in_list", choice)
    pinned = target.expect.expired_in_list
    if pinned != "either":
        assert choice == pinned, f"profile pins expired_in_list: {pinned}, but expired tokens were {choice}"
