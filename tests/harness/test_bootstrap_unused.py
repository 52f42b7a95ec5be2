"""A bootstrap token first presented only after its ttl (ST-BOOT-007): planned, timed and recorded.

The instance is faked with respx and a clock of the test's own: nothing is waited for, and every
request is seen, so a presentation of the bootstrap token before its ttl surely ran out shows.
"""

from __future__ import annotations

import dataclasses
import email.utils
import json
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import respx

from sts_conformance.checking import fleet
from sts_conformance.checking.fleet import UNUSED, Instance, plan, run_unused, unused_due_ms
from sts_conformance.target import servertime
from sts_conformance.target.client import ApiClient, AuthForm
from sts_conformance.target.profile import TargetProfile, load_profile
from sts_conformance.target.settle import Consistency
from sts_conformance.tokens.prepare import Sample

ROOT = Path(__file__).resolve().parents[2]
URL = "http://instance.test"
SECRET = "0123456789abcdef0123456789abcdef"
#: the instance's clock runs this far ahead of the suite's (epoch ms): only the instance's counts
AHEAD_MS = 7_300
WINDOW_S = 2.0


def _profile(**changes) -> TargetProfile:
    profile = load_profile(ROOT / "fixtures" / "targets" / "reference.yaml")
    profile = dataclasses.replace(profile, consistency=Consistency(bootstrap_within=WINDOW_S))
    return dataclasses.replace(profile, **changes)


def test_planned_on_a_managed_target_only_with_the_shortest_spelling_and_the_manager_role():
    profile = _profile()
    (unused,) = [i for i in plan(profile) if i.label == UNUSED]
    assert unused.ttl == "3s" and unused.roles == [profile.manager_role] and unused.labels == [UNUSED]
    # (appended last: the matrix row's configuration stays the first)
    assert plan(profile)[-1].label == UNUSED and fleet.matrix_label(profile) == fleet.ttl_label("3s")
    external = dataclasses.replace(
        profile, launch=None, bootstrap=dataclasses.replace(profile.bootstrap, reconfigure="true")
    )
    assert UNUSED not in [i.label for i in plan(external)]
    none_waitable = dataclasses.replace(
        profile, bootstrap=dataclasses.replace(profile.bootstrap, ttl_spellings=("1h",))
    )
    assert UNUSED not in [i.label for i in plan(none_waitable)]


def test_due_counts_ttl_window_date_second_and_margin_from_the_anonymous_answer():
    read = Sample(401, 1_000_000, 50.0)
    assert unused_due_ms(read, 3_000, 5_000) == 1_000_000 + 1_000 + 5_000 + 3_000 + fleet.CLOCK_MARGIN_MS
    # no clock on the instance: the suite's own, with the local margin besides
    blind = Sample(401, None, 50.0)
    assert unused_due_ms(blind, 3_000, 5_000) == 50_000 + servertime.LOCAL_MARGIN_MS + 5_000 + 3_000 + 1_000


def test_round_trip_keeps_what_the_scenario_recorded():
    inst = Instance(UNUSED, ["admin"], ttl="3s", token=SECRET, due_ms=9, past_ms=10)
    inst.anonymous = Sample(401, 1, 2.0)
    inst.late = {"probe/X_API_KEY": Sample(401, 11, 3.0), "list/AUTHORIZATION": Sample(200, 12, 4.0)}
    back = Instance.from_dict(json.loads(json.dumps(inst.as_dict())))
    assert back == inst and list(back.late) == ["probe/X_API_KEY", "list/AUTHORIZATION"]


class _FakeTime:
    """The suite's clock for fleet.py: sleeping moves it on at once."""

    def __init__(self, start: float) -> None:
        self.now = start

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


@pytest.fixture
def clock(monkeypatch) -> _FakeTime:
    fake = _FakeTime(1_800_000_000.0)
    monkeypatch.setattr(fleet, "time", SimpleNamespace(time=fake.time, monotonic=fake.monotonic, sleep=fake.sleep))
    monkeypatch.setattr("sts_conformance.tokens.prepare.time", SimpleNamespace(time=fake.time))
    return fake


def _instance(tmp_path: Path, *, date: bool = True, frozen: bool = False, ttl: str = "3s"):
    """Fake the instance and run the scenario; (its record, every request with the time the instance saw it).

    ``frozen``: the instance's clock stands still after its first reading (a Date header a cache in
    front of it keeps serving): it never gets to the due time.
    """
    inst = Instance(UNUSED, ["stackstate-admin"], ttl=ttl, token=SECRET)
    seen: list[tuple[int, httpx.Request]] = []
    # a ttl counted from the first use: whatever presents the token before the due time is an error
    presented_at: list[int] = []

    first: list[int] = []

    def instance_ms() -> int:
        now = int(fleet.time.time() * 1000) + AHEAD_MS
        first.append(now)
        return first[0] if frozen else now

    def answer(request: httpx.Request) -> httpx.Response:
        now = instance_ms()
        seen.append((now, request))
        # (without a clock: no Date header, and no serverTimestamp either)
        headers = {"Date": email.utils.formatdate(now / 1000, usegmt=True)} if date else {}
        presents = SECRET in request.headers.get("x-api-key", "") + request.headers.get("authorization", "")
        if presents:
            presented_at.append(now)
        # a server that counts the ttl from the first use: the token works on its first presentation
        body = {"serverTimestamp": now} if date else {}
        return httpx.Response(200 if presents else 401, headers=headers, json=body)

    (tmp_path / "instances").mkdir(exist_ok=True)
    with respx.mock(assert_all_mocked=True) as mock, ApiClient(URL) as client:
        mock.route(host="instance.test").mock(side_effect=answer)
        run_unused(inst, client, _profile(), tmp_path, AuthForm.X_API_KEY)
    return inst, seen, presented_at


def test_the_token_is_first_presented_once_the_instance_clock_shows_the_ttl_surely_past(tmp_path, clock):
    inst, seen, presented_at = _instance(tmp_path)
    assert inst.error is None and inst.anonymous is not None and inst.anonymous.status == 401
    assert inst.shown_past_due
    ttl_and_slack = 3_000 + WINDOW_S * 1000 + fleet.CLOCK_MARGIN_MS
    assert inst.due_ms >= inst.anonymous.server_ms + ttl_and_slack
    # every request before the first presentation was anonymous, and the first came past the due time
    assert presented_at and min(presented_at) >= inst.due_ms
    first = next(i for i, (_, r) in enumerate(seen) if SECRET in str(r.headers))
    assert all("x-api-key" not in r.headers and "authorization" not in r.headers for _, r in seen[:first])
    assert list(inst.late) == [f"{c}/{f}" for c in fleet.UNUSED_CALLS for f in ("X_API_KEY", "AUTHORIZATION")]
    assert [s.status for s in inst.late.values()] == [200] * 6
    stored = fleet.wait_for(tmp_path, UNUSED, 1, fleet.DONE)
    assert stored.late == inst.late and stored.stage == fleet.DONE


def test_a_clock_that_does_not_get_there_is_recorded_as_not_shown_past(tmp_path, clock):
    inst, _seen, presented_at = _instance(tmp_path, frozen=True)
    assert inst.due_ms is not None and inst.past_ms is not None and inst.past_ms < inst.due_ms
    assert not inst.shown_past_due
    assert presented_at, "the presentations go ahead: a refusal still shows, an accept is judged inconclusive"


def test_without_a_clock_on_the_instance_the_suites_is_waited_out_with_the_local_margin(tmp_path, clock):
    started = clock.now
    inst, _seen, presented_at = _instance(tmp_path, date=False)
    assert inst.anonymous is not None and inst.anonymous.server_ms is None
    assert inst.due_ms == int(started * 1000) + servertime.LOCAL_MARGIN_MS + 3_000 + 2_000 + fleet.CLOCK_MARGIN_MS
    assert inst.past_ms is not None and inst.past_ms >= inst.due_ms
    assert presented_at and min(presented_at) - AHEAD_MS >= inst.due_ms
