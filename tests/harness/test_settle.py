"""Settle windows: an effect that shows late is waited for within a bound, a defect still fails, and
a target that never settles does not cost a full window on every check; the report says how late.

Also the clock (servertime.py): without a Date header the status body's serverTimestamp is read,
without either the suite's own clock with a wider margin, and a Date that disagrees widens it too.
"""

from __future__ import annotations

import dataclasses
import email.utils
import threading
from pathlib import Path

import httpx
import pytest
import respx

from sts_conformance.target import servertime, settle
from sts_conformance.target.client import ApiClient, AuthForm
from sts_conformance.target.profile import parse_profile
from sts_conformance.target.settle import GIVE_UP_AFTER, MIN_WINDOW_S, Consistency, Settler
from sts_conformance.tokens.ledger import TokenLedger

API = "http://target.test/api/security/tokens"
STATUS = "http://target.test/api/server/status"
ADMIN = "settle-admin-0123456789abcdef"
#: short, so that a wait that runs out ends soon; nothing here asserts how long anything took
WINDOW = Consistency(0.3, 0.3, 0.3)


class Reads:
    """A read that shows the effect from its ``ok_from``-th call on (None: never)."""

    def __init__(self, ok_from: int | None) -> None:
        self.calls = 0
        self.ok_from = ok_from

    def __call__(self) -> bool:
        self.calls += 1
        return self.ok_from is not None and self.calls >= self.ok_from


def _settler(tmp_path: Path, consistency: Consistency = WINDOW) -> Settler:
    s = Settler()
    s.configure(consistency, tmp_path)
    return s


def test_an_effect_shown_at_once_costs_one_read_and_leaves_no_record(tmp_path):
    s = _settler(tmp_path)
    read = Reads(1)
    assert s.until(settle.LIST, read, bool) is True
    assert read.calls == 1
    assert not (tmp_path / settle.LOG_NAME).exists()
    assert s.note(settle.LIST) == ""


def test_an_effect_shown_late_is_read_again_until_it_shows_and_the_lag_is_recorded(tmp_path):
    s = _settler(tmp_path, Consistency(30, 30, 30))
    read = Reads(3)
    assert s.until(settle.LIST, read, bool) is True
    assert read.calls == 3
    facts = settle.summary(tmp_path, s.consistency)
    assert facts[settle.LIST]["lagged"] == 1 and facts[settle.LIST]["not_settled"] == 0
    assert facts[settle.LIST]["max_lag_s"] > 0
    assert any("list" in line and "late 1 time" in line for line in settle.describe(facts))


def test_an_effect_that_never_shows_returns_the_last_reading_and_names_the_wait(tmp_path):
    s = _settler(tmp_path)
    read = Reads(None)
    assert s.until(settle.REVOCATION, read, bool) is False
    assert read.calls > 1
    assert "consistency.revocation_within" in s.note(settle.REVOCATION)
    assert "waiting" in s.note(settle.REVOCATION)
    facts = settle.summary(tmp_path, s.consistency)
    assert facts[settle.REVOCATION]["not_settled"] == 1


def test_a_window_of_zero_demands_the_effect_at_once(tmp_path):
    s = _settler(tmp_path, Consistency(0, 0, 0))
    read = Reads(2)
    assert s.until(settle.LIST, read, bool) is False
    assert read.calls == 1
    assert "is 0" in s.note(settle.LIST)


def test_after_repeated_misses_a_kind_gets_a_short_window_in_every_process_of_the_run(tmp_path):
    """A defect costs a few windows per run, not one per check; other kinds keep theirs."""
    s = _settler(tmp_path, Consistency(30, 30, 30))
    s.consistency = Consistency(0.2, 30, 30)  # the misses come quickly here
    for _ in range(GIVE_UP_AFTER):
        s.until(settle.LIST, Reads(None), bool)
    s.consistency = Consistency(30, 30, 30)
    assert s.window(settle.LIST) == MIN_WINDOW_S
    assert s.window(settle.REVOCATION) == 30
    other_worker = _settler(tmp_path, Consistency(30, 30, 30))
    assert other_worker.window(settle.LIST) == MIN_WINDOW_S, "the run's log tells the other processes"


def test_the_short_window_still_covers_twice_the_longest_lag_seen(tmp_path):
    settle.write_event(tmp_path / settle.LOG_NAME, {"k": settle.LIST, "ok": True, "s": 1.5})
    for _ in range(GIVE_UP_AFTER):
        settle.write_event(tmp_path / settle.LOG_NAME, {"k": settle.LIST, "ok": False, "s": 30})
    assert _settler(tmp_path, Consistency(30, 30, 30)).window(settle.LIST) == 3.0


def test_a_miss_of_an_optional_behaviour_does_not_shorten_the_window(tmp_path):
    s = _settler(tmp_path)
    for _ in range(GIVE_UP_AFTER):
        s.until(settle.BOOTSTRAP, Reads(None), bool, may_not=True)
    assert s.window(settle.BOOTSTRAP) == WINDOW.bootstrap_within
    assert settle.summary(tmp_path, WINDOW)[settle.BOOTSTRAP]["not_settled"] == 0


# -- the profile ------------------------------------------------------------------------------------


def test_profile_reads_the_windows_and_defaults_to_a_few_seconds():
    base = {"name": "t", "url": "http://t.test", "admin_token": "x"}
    assert parse_profile(base).consistency == Consistency()
    assert 1 <= Consistency().list_within <= 10 and 1 <= Consistency().revocation_within <= 10
    pinned = parse_profile({**base, "consistency": {"list_within": 0, "revocation_within": 1.5}})
    assert pinned.consistency == Consistency(0.0, 1.5, Consistency().bootstrap_within)
    assert pinned.redacted()["consistency"]["revocation_within"] == 1.5


# -- the ledger on a lagging list ------------------------------------------------------------------


def _listing(items):
    return httpx.Response(200, json=items)


@pytest.fixture
def windows(tmp_path):
    saved = (settle.SETTLE.consistency, settle.SETTLE.log)
    settle.SETTLE.configure(Consistency(30, 30, 30), tmp_path)
    yield tmp_path
    settle.SETTLE.configure(*saved)


def test_a_create_the_list_shows_late_is_found_and_does_not_count_as_unlisted(windows):
    entry = {"id": 5, "name": "stsct-r1-gw0-t-1", "roles": []}
    with respx.mock(assert_all_mocked=True) as mock:
        mock.post(API).mock(return_value=httpx.Response(200, json={"name": entry["name"], "token": "svctok-lagging1"}))
        listing = mock.get(API).mock(side_effect=[_listing([]), _listing([]), _listing([entry])])
        with ApiClient("http://target.test") as c:
            led = TokenLedger(c, ADMIN, AuthForm.X_API_KEY, prefix="stsct-r1-gw0")
            tok = led.create("t")
    assert tok.id == 5 and listing.call_count == 3
    assert led._unlisted_streak == 0
    assert settle.summary(windows, settle.SETTLE.consistency)[settle.LIST]["lagged"] == 1


def test_a_deleted_token_a_lagging_list_still_shows_is_not_taken_for_a_new_one(windows):
    """The stale entry of a token just deleted is not the new token, not even as "the one new entry"
    that a target storing names altered would show."""
    settle.SETTLE.configure(WINDOW, windows)
    old = {"id": 5, "name": "  padded  ", "roles": []}
    new = {"id": 6, "name": "  fresh  ", "roles": []}
    with respx.mock(assert_all_mocked=True) as mock:
        mock.post(API).mock(
            side_effect=[
                httpx.Response(200, json={"name": old["name"], "token": "svctok-oldoldold"}),
                httpx.Response(200, json={"name": new["name"], "token": "svctok-newnewnew"}),
            ]
        )
        mock.delete(f"{API}/5").mock(return_value=httpx.Response(204))
        mock.get(API).mock(return_value=_listing([old]))  # the new token is not shown within the window
        with ApiClient("http://target.test") as c:
            led = TokenLedger(c, ADMIN, AuthForm.X_API_KEY, prefix="stsct-r1-gw0")
            first = led.create_raw({"name": old["name"], "roles": []})[1]
            assert first is not None and first.id == 5
            led.delete(first)
            second = led.create_raw({"name": new["name"], "roles": []})[1]
    assert second is not None and second.id is None, "the stale entry of the deleted token is not the new one"


# -- the clock ------------------------------------------------------------------------------------


def _date(ms: int) -> str:
    return email.utils.formatdate(ms / 1000, usegmt=True)


NOW = 1_800_000_000_000


@pytest.mark.parametrize(
    ("anonymous", "authenticated", "source", "margin", "expected_now"),
    [
        pytest.param({"date": _date(NOW)}, ({"date": _date(NOW)}, NOW + 300), servertime.DATE, 0, NOW, id="agrees"),
        pytest.param({}, ({}, NOW), servertime.BODY, 0, NOW, id="no-date-but-body"),
        pytest.param({}, ({}, None), servertime.LOCAL, servertime.LOCAL_MARGIN_MS, None, id="no-clock-at-all"),
        # a Date from another clock than the service's: the service's serverTimestamp decides expiry
        pytest.param(
            {"date": _date(NOW)},
            ({"date": _date(NOW)}, NOW + 7_200),
            servertime.BODY,
            1_000,
            NOW + 7_200,
            id="disagrees-7s",
        ),
        pytest.param(
            {"date": _date(NOW + 20_000)},
            ({"date": _date(NOW + 20_000)}, NOW),
            servertime.BODY,
            1_000,
            NOW,
            id="proxy-date-20s-ahead",
        ),
    ],
)
def test_the_clock_is_read_as_well_as_the_target_allows(anonymous, authenticated, source, margin, expected_now):
    headers, stamp = authenticated
    body = {"status": "OK"} if stamp is None else {"status": "OK", "serverTimestamp": stamp}
    with respx.mock(assert_all_mocked=True) as mock:
        mock.get(STATUS).mock(
            side_effect=lambda request: (
                httpx.Response(200, headers=headers, json=body)
                if request.headers.get("x-api-key")
                else httpx.Response(401, headers=anonymous)
            )
        )
        with ApiClient("http://target.test") as c:
            first = c.probe("/api/server/status")
            facts = servertime.assess(c, "/api/server/status", first, ADMIN, AuthForm.X_API_KEY)
            now = servertime.now_ms(c, "/api/server/status", facts, ADMIN, AuthForm.X_API_KEY)
            # an answer with a Date and no serverTimestamp (an anonymous refusal) reads as the service's clock
            anonymous_reading = servertime.reading_ms(first, facts)
    assert (facts.source, facts.margin_ms) == (source, margin)
    assert bool(facts.note) == (source != servertime.DATE or margin > 0), "anything but a sound Date is stated"
    assert now is not None
    if expected_now is not None:
        assert now == expected_now
    if anonymous.get("date") and stamp is not None:
        assert anonymous_reading is not None and abs(anonymous_reading - stamp) <= 1_000, (
            "a Date read alone is corrected by the disagreement measured at the start"
        )


def test_waits_are_counted_per_thread_note():
    """``note`` speaks of the calling thread's last wait only (checks run side by side in threads)."""
    s = Settler(Consistency(0.05, 0.05, 0.05))
    s.until(settle.LIST, Reads(None), bool)
    assert s.note(settle.LIST)
    seen: list[str] = []
    t = threading.Thread(target=lambda: seen.append(s.note(settle.LIST)))
    t.start()
    t.join()
    assert seen == [""]


# -- tokens made on launched instances ---------------------------------------------------------------


def test_tokens_of_the_run_on_a_launched_instance_are_deleted_before_it_stops_observer_last():
    """Everything named with the run's prefix goes, with the observer (itself last); nothing else is touched."""
    from sts_conformance.checking.fleet import Instance, _leave_nothing

    items = [
        {"id": 1, "name": "bootstrap", "roles": []},
        {"id": 2, "name": "stsct-r1-matrix-observer", "roles": []},
        {"id": 3, "name": "stsct-r1-matrix-victim-1", "roles": []},
        {"id": 4, "name": "stsct-r1-boot-ttl-3s-99", "roles": []},
        {"id": 5, "name": "stsct-r2-matrix-victim-1", "roles": []},
    ]
    deleted: list[int] = []

    def delete(request):
        deleted.append(int(request.url.path.rsplit("/", 1)[1]))
        return httpx.Response(204)

    with respx.mock(assert_all_mocked=True) as mock:
        mock.get("http://instance.test/api/security/tokens").mock(return_value=_listing(items))
        mock.delete(url__regex=r"http://instance.test/api/security/tokens/\d+").mock(side_effect=delete)
        with ApiClient("http://instance.test") as c:
            inst = Instance("ttl-3s", ["stackstate-admin"], token="svctok-bootstrap-of-instance")
            _leave_nothing(c, inst, ("svctok-observer-secret", AuthForm.X_API_KEY), "stsct-r1-", AuthForm.X_API_KEY)
    assert sorted(deleted[:-1]) == [3, 4] and deleted[-1] == 2


# -- a check that cannot conclude tries again wider (issue 24) ---------------------------------------


def _sample(status: int, server_ms: int | None):
    from sts_conformance.tokens.prepare import Sample

    return Sample(status, server_ms, 0.0)


def test_a_first_call_too_close_to_its_expiry_is_tried_again_with_a_longer_life():
    from sts_conformance.checking.checks import WIDER_LIVES_MS, expect_accepted_before
    from sts_conformance.core.preconditions import Inconclusive

    lives: list[int] = []

    def accepted_later(life_ms: int):
        lives.append(life_ms)
        return _sample(200, NOW), NOW + life_ms

    expect_accepted_before(_sample(401, NOW), NOW + 500, "a token", accepted_later)
    assert lives == [WIDER_LIVES_MS[0]]

    def refused_surely_before(life_ms: int):
        return _sample(401, NOW), NOW + life_ms

    with pytest.raises(AssertionError, match="before its expiry"):
        expect_accepted_before(_sample(401, NOW), NOW + 500, "a token", refused_surely_before)

    def always_too_close(life_ms: int):
        return _sample(401, NOW + life_ms), NOW + life_ms

    with pytest.raises(Inconclusive, match="too close to its expiry") as ended:
        expect_accepted_before(_sample(401, NOW), NOW + 500, "a token", always_too_close)
    assert str(ended.value.msg).startswith("inconclusive: ")
    with pytest.raises(Inconclusive):
        expect_accepted_before(_sample(401, NOW), NOW + 500, "a token")  # nothing to try again with


def test_the_late_use_says_when_a_try_cannot_conclude():
    from sts_conformance.checking.late_use import LateUse

    expiry = NOW + 3_000
    concluded = LateUse(expiry, {"X_API_KEY": _sample(200, NOW + 2_000)}, {"X_API_KEY": _sample(401, expiry + 1_000)})
    assert concluded.unsure("X_API_KEY") is None and concluded.tried() == ""
    too_late = LateUse(expiry, {"X_API_KEY": _sample(401, expiry)}, {"X_API_KEY": _sample(401, expiry + 1_000)})
    assert "was refused" in (too_late.unsure("X_API_KEY") or "")
    too_early = LateUse(expiry, {"X_API_KEY": _sample(200, NOW)}, {"X_API_KEY": _sample(200, expiry - 1)})
    assert "before it" in (too_early.unsure("X_API_KEY") or "")
    assert "run ended" in (LateUse(expiry).unsure("X_API_KEY") or "")
    again = LateUse.from_dict({**dataclasses.asdict(concluded), "tries": 2, "earlier": ["the use came too late"]})
    assert again.unsure("X_API_KEY") is None and "2 tries" in again.tried()
