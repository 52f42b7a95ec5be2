"""Expiration: epoch-millisecond expiry dates, refused expiries, and tokens that run out.

Every "now" here is the server's clock, read from its Date header. That header has a
resolution of one second, and in a real deployment it may be written by a proxy or by
another replica than the one that judges the token, whose clock can differ a little. So
each judgement keeps CLOCK_MARGIN_MS to spare: a value counts as "in the past" only when
it lies that margin before the server's reading, and a token counts as "expired" only
once the reading has passed its expiry by that margin.

The short-lived tokens are all made by one module fixture and waited for once, so the
module costs a single wait of a few seconds whatever the order its tests run in.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pytest

from sts_conformance.checks import expect_refused, expect_status, json_body, listed, validate
from sts_conformance.client import AuthForm, server_time_ms
from sts_conformance.tokens import OwnedToken

DAY_MS = 86_400_000
#: what the server's clock may differ from its Date header by (resolution, a proxy's or replica's clock)
CLOCK_MARGIN_MS = 1_000
#: how far ahead of the server's clock the short-lived tokens expire
SHORT_LIFE_MS = 3_000
#: 2100-01-01T00:00:00Z: read as seconds, this would be a date some 130,000 years ahead
YEAR_2100_MS = 4_102_444_800_000

FORMS = [
    pytest.param(AuthForm.AUTHORIZATION, id="authorization-apikey"),
    pytest.param(AuthForm.X_API_KEY, id="x-api-key"),
]


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

_FUTURE = [
    pytest.param(lambda now: now + DAY_MS + 457, id="tomorrow-at-an-odd-millisecond"),
    pytest.param(lambda now: now + 365 * DAY_MS + 1, id="a-year-ahead"),
    pytest.param(lambda now: YEAR_2100_MS + 999, id="year-2100"),
]


@pytest.mark.requirement("ST-EXP-001")
@pytest.mark.parametrize("future", _FUTURE)
def test_create_response_echoes_expiry_to_the_millisecond(target, ledger, future):
    """The create response carries the expiryDate sent, unchanged, as its expiration."""
    expiry = future(target.server_now_ms())
    tok = ledger.create("exp-echo", expiry_ms=expiry)
    validate(tok.response, "CreatedToken")
    _expect_same_ms(tok.response.get("expiration"), expiry, "create response")


@pytest.mark.requirement("ST-EXP-002")
@pytest.mark.parametrize("future", _FUTURE)
def test_list_shows_expiry_to_the_millisecond(target, ledger, future):
    """The list shows the token's expiration as the epoch-ms value it was created with."""
    expiry = future(target.server_now_ms())
    tok = ledger.create("exp-listed", expiry_ms=expiry)
    entry = listed(ledger.list_items(), tok.id)
    assert entry is not None, f"token {tok.id} is not listed"
    validate(entry, "ListedToken")
    _expect_same_ms(entry.get("expiration"), expiry, f"list entry of token {tok.id}")


@pytest.mark.requirement("ST-EXP-006")
@pytest.mark.parametrize("future", _FUTURE)
def test_token_with_future_expiry_authenticates(target, ledger, future):
    """A token whose expiry lies ahead is accepted (its expiry is not misread as already past)."""
    expiry = future(target.server_now_ms())
    tok = ledger.create("exp-works", expiry_ms=expiry)
    resp = target.probe(tok.secret, AuthForm.X_API_KEY)
    assert resp.is_success, f"a token expiring at {_shown(expiry)} was refused with {resp.status_code}"


_CLI_DAYS = [
    pytest.param(lambda now: _midnight_utc(now) + 2 * DAY_MS, id="day-after-tomorrow"),
    pytest.param(lambda now: _midnight_utc(now) + 400 * DAY_MS, id="in-400-days"),
    pytest.param(lambda now: YEAR_2100_MS, id="2100-01-01"),
]


@pytest.mark.requirement("ST-EXP-007")
@pytest.mark.parametrize("day", _CLI_DAYS)
def test_midnight_utc_expiry_as_the_cli_sends_it_round_trips(target, ledger, day):
    """00:00 UTC of a future day, as the CLI sends `--expiration yyyy-MM-dd`, is accepted and kept exactly."""
    expiry = day(target.server_now_ms())
    assert expiry % DAY_MS == 0
    tok = ledger.create("exp-cli", expiry_ms=expiry)
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
def test_past_expiry_refused_with_invalid_expiry_error(target, ledger, past):
    """An expiryDate in the past is answered 400 ServiceTokenInvalidExpiryError and creates nothing."""
    now = target.server_now_ms()
    expiry = past(now)
    name = ledger.name("exp-past")
    resp, _ = ledger.create_raw({"name": name, "roles": [target.profile.unprivileged_role], "expiryDate": expiry})
    expect_status(resp, 400, f"create with expiryDate {_shown(expiry)}, server clock {_shown(now)}")
    validate(json_body(resp, "refusal of a past expiryDate"), "InvalidExpiryError")
    _nothing_created(ledger, name, "a create with a past expiryDate")


_NOT_AN_INTEGER: list[Any] = [
    pytest.param(lambda f: _utc(f).strftime("%Y-%m-%d"), id="date-string-yyyy-mm-dd"),
    pytest.param(lambda f: _utc(f).isoformat(timespec="milliseconds").replace("+00:00", "Z"), id="iso-8601-string"),
    pytest.param(lambda f: f + 1.5, id="fraction-of-a-millisecond"),
    pytest.param(lambda f: True, id="boolean-true"),
]


def _future_ms(target) -> int:
    return target.server_now_ms() + 2 * DAY_MS + 123


@pytest.mark.requirement("ST-EXP-005")
@pytest.mark.parametrize("make", _NOT_AN_INTEGER)
def test_non_integer_expiry_refused(target, ledger, observe, make):
    """An expiryDate that is not a JSON integer, even a future instant, is refused with a 4xx and creates nothing."""
    value = make(_future_ms(target))
    name = ledger.name("exp-type")
    resp, _ = ledger.create_raw({"name": name, "roles": [target.profile.unprivileged_role], "expiryDate": value})
    observe("non_integer_expiry_status", resp.status_code)
    assert 400 <= resp.status_code < 500, f"expiryDate {value!r} was answered {resp.status_code}, expected a 4xx"
    _nothing_created(ledger, name, f"a create with expiryDate {value!r}")


@pytest.mark.requirement("ST-EXP-005")
def test_numeric_string_expiry_refused_or_read_as_the_same_ms(target, ledger, observe):
    """An expiryDate of digits in a JSON string is refused, or, if coerced, kept as exactly that integer.

    The spec types expiryDate as an integer, but common JSON readers (Jackson's default)
    accept a string of digits for a number. Unlike a fraction, which would have to be cut
    to fit, such a string still names a whole number of milliseconds; the public material
    does not say which a deployment does, so both are accepted and the choice is reported.
    """
    expiry = _future_ms(target)
    name = ledger.name("exp-digits")
    resp, tok = ledger.create_raw(
        {"name": name, "roles": [target.profile.unprivileged_role], "expiryDate": str(expiry)}
    )
    if resp.status_code == 200:
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


@dataclass
class Sample:
    """One probe: its status, and the server's clock from its Date header."""

    status: int
    server_ms: int | None

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class ShortLived:
    """Tokens expiring a few seconds ahead, probed at once; a manager token expiring with them,
    which listed tokens at once; and a token without expiry."""

    expiry_ms: int
    tokens: dict[AuthForm, OwnedToken]
    before: dict[AuthForm, Sample]
    manager: OwnedToken
    manager_before: Sample
    forever: OwnedToken
    waited_until: int | None = field(default=None)

    def wait_until_expired(self, target) -> int:
        """Wait (once per module) until the server's clock is past the expiry by the margin."""
        if self.waited_until is None:
            self.waited_until = target.wait_until_server_time(self.expiry_ms + CLOCK_MARGIN_MS)
        return self.waited_until


def _sample(target, secret: str, form: AuthForm) -> Sample:
    resp = target.probe(secret, form)
    return Sample(resp.status_code, server_time_ms(resp))


@pytest.fixture(scope="module")
def short_lived(target, ledger) -> ShortLived:
    """One token per header form expiring SHORT_LIFE_MS after the server's clock, each probed at once."""
    expiry = target.server_now_ms() + SHORT_LIFE_MS
    tokens = {
        form: ledger.create(f"exp-short-{form.name.lower()}", expiry_ms=expiry)
        for form in (AuthForm.AUTHORIZATION, AuthForm.X_API_KEY)
    }
    before = {form: _sample(target, tok.secret, form) for form, tok in tokens.items()}
    manager = ledger.create("exp-short-manager", roles=[target.profile.manager_role], expiry_ms=expiry)
    listing = target.client.list_tokens(manager.secret, form=target.admin_form)
    manager_before = Sample(listing.status_code, server_time_ms(listing))
    forever = ledger.create("exp-none")
    return ShortLived(expiry, tokens, before, manager, manager_before, forever)


def _expect_accepted_before_expiry(before: Sample, expiry: int, what: str) -> None:
    """A call made right after the create was accepted; if refused, fail only when it surely came before the expiry."""
    if before.accepted:
        return
    surely_before = before.server_ms is not None and before.server_ms + 1000 + CLOCK_MARGIN_MS <= expiry
    if not surely_before:
        pytest.skip(
            f"inconclusive: the first call with the token was answered at server time "
            f"{before.server_ms}, too close to its expiry {expiry} to tell before from after"
        )
    raise AssertionError(
        f"{what} expiring at {_shown(expiry)} was refused with {before.status} at server time "
        f"{_shown(before.server_ms or 0)}, before its expiry"
    )


@pytest.mark.requirement("ST-EXP-006")
@pytest.mark.parametrize("form", FORMS)
def test_token_works_until_its_expiry_then_is_refused(target, short_lived, form):
    """A token expiring seconds ahead is accepted before its expiry and refused once the server's clock passed it."""
    expiry = short_lived.expiry_ms
    _expect_accepted_before_expiry(short_lived.before[form], expiry, f"a token in form {form.value}")
    short_lived.wait_until_expired(target)
    resp = target.probe(short_lived.tokens[form].secret, form)
    expect_refused(
        resp,
        target.expect.unauthenticated_status,
        f"a token that expired at {_shown(expiry)}, presented as {form.value} at server time "
        f"{_shown(server_time_ms(resp) or 0)}",
    )


@pytest.mark.requirement("ST-EXP-006")
@pytest.mark.parametrize("operation", ["list", "create"])
def test_expired_manager_token_refused_token_management(target, manage_as, short_lived, operation):
    """A manager token that listed tokens before its expiry is refused token management once it has passed."""
    expiry = short_lived.expiry_ms
    what = f"{operation} with a manager token that expired at {_shown(expiry)}"
    _expect_accepted_before_expiry(short_lived.manager_before, expiry, "listing with a manager token")
    short_lived.wait_until_expired(target)
    form = target.admin_form
    if operation == "list":
        resp = manage_as.list_tokens(short_lived.manager.secret, form)
        expect_refused(resp, target.expect.unauthenticated_status, f"{what}, at server time {server_time_ms(resp)}")
    else:
        resp, name = manage_as.create(short_lived.manager.secret, form, label="by-expired-manager")
        expect_refused(resp, target.expect.unauthenticated_status, f"{what}, at server time {server_time_ms(resp)}")
        assert not manage_as.entries_named(name), f"{what} was refused, yet a token named {name!r} was created"


@pytest.mark.requirement("ST-EXP-003")
def test_token_without_expiry_has_none_and_keeps_working(target, ledger, short_lived):
    """A token created without expiryDate shows no expiration and still works after the short-lived ones expired."""
    tok = short_lived.forever
    _no_expiration(tok.response, "create response")
    entry = listed(ledger.list_items(), tok.id)
    assert entry is not None, f"token {tok.id} is not listed"
    _no_expiration(entry, f"list entry of token {tok.id}")
    short_lived.wait_until_expired(target)
    for form in (AuthForm.AUTHORIZATION, AuthForm.X_API_KEY):
        resp = target.probe(tok.secret, form)
        assert resp.is_success, (
            f"a token without expiry was refused with {resp.status_code} in form {form.value}, "
            f"{SHORT_LIFE_MS + CLOCK_MARGIN_MS} ms or more after its creation"
        )


@pytest.mark.requirement("ST-EXP-008")
def test_expired_token_kept_unchanged_or_removed_from_list(target, ledger, short_lived, observe):
    """An expired token either stays listed with its expiration unchanged or leaves the list, as the profile pins."""
    short_lived.wait_until_expired(target)
    items = ledger.list_items()
    kept = {}
    for tok in short_lived.tokens.values():
        entry = listed(items, tok.id)
        if entry is None:
            ledger.forget(tok)
            continue
        kept[tok.id] = entry
        assert entry.get("name") == tok.name, f"expired token {tok.id} is listed as {entry.get('name')!r}"
        _expect_same_ms(entry.get("expiration"), short_lived.expiry_ms, f"list entry of expired token {tok.id}")
    choice = "kept" if len(kept) == len(short_lived.tokens) else "removed" if not kept else "mixed"
    observe("expired_in_list", choice)
    pinned = target.expect.expired_in_list
    if pinned != "either":
        assert choice == pinned, f"profile pins expired_in_list: {pinned}, but expired tokens were {choice}"
