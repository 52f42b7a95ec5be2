"""Checks of a module marked ``together`` run at once (issue 25): the same outcomes, each with its own evidence."""

from __future__ import annotations

import json

import pytest

pytest_plugins = ["pytester"]

CONFTEST = 'pytest_plugins = ["sts_conformance.plugin"]\n'

MODULE = """
import threading

import pytest

from sts_conformance.target.client import EXCHANGES, Exchange

pytestmark = pytest.mark.together

#: three checks that pass only when they run at the same time
MEET = threading.Barrier(3, timeout=20)
STARTED = []


def seen(tag, status=200):
    exchange = Exchange("GET", f"http://target.test/{tag}", {}, "", status, "")
    EXCHANGES.add(exchange)
    EXCHANGES.note_server_error(exchange)


@pytest.fixture(scope="module")
def shared():
    STARTED.append("shared")
    return object()


@pytest.fixture
def mine(request):
    return request.node.name


@pytest.fixture
def torn_down():
    yield "t"


def test_first():
    seen("first")


@pytest.mark.parametrize("n", [0, 1, 2])
def test_meets(shared, mine, n, request):
    assert mine == request.node.name
    seen(f"meet-{n}")
    MEET.wait()
    assert n != 1, "cell 1 fails on its own"


def test_skips():
    seen("skip")
    pytest.skip("a reason of its own")


@pytest.mark.requirement("ST-LIFE-002")
def test_server_error_unnoticed():
    seen("five-hundred", 500)


@pytest.mark.alone
def test_alone_runs_in_its_turn():
    assert threading.current_thread() is threading.main_thread()


def test_with_teardown_fixture_runs_in_its_turn(torn_down):
    assert threading.current_thread() is threading.main_thread()


def test_threads_ran():
    assert threading.current_thread() is not threading.main_thread()
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST)
    pytester.makeini("[pytest]\nmarkers =\n    requirement(id): the requirement a check traces to\n")
    pytester.makepyfile(test_mod=MODULE)
    return pytester


def _reports(result: pytest.RunResult) -> dict[str, pytest.TestReport]:
    return {
        r.nodeid.split("::", 1)[1]: r for r in result.reprec.getreports("pytest_runtest_logreport") if r.when == "call"
    }


def test_checks_run_together_and_each_keeps_its_own_outcome(suite: pytest.Pytester):
    result = suite.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    reports = _reports(result)
    assert reports["test_meets[0]"].passed and reports["test_meets[2]"].passed  # they met: run at once
    assert reports["test_meets[1]"].failed
    assert "cell 1 fails on its own" in str(reports["test_meets[1]"].longrepr)
    assert reports["test_skips"].skipped and "a reason of its own" in str(reports["test_skips"].longrepr)
    assert reports["test_alone_runs_in_its_turn"].passed
    assert reports["test_with_teardown_fixture_runs_in_its_turn"].passed
    assert reports["test_threads_ran"].passed


def test_a_failure_shows_its_own_exchanges_only(suite: pytest.Pytester):
    result = suite.runpytest_inprocess("-p", "no:cacheprovider")
    failed = _reports(result)["test_meets[1]"]
    shown = json.loads(dict(failed.user_properties)["exchanges"])
    assert [e["url"] for e in shown] == ["http://target.test/meet-1"]


def test_a_server_error_counts_for_the_check_that_got_it(suite: pytest.Pytester):
    """ST-ERR-001 judges each check's own 5xx: the one that received it, not the one that started the group."""
    result = suite.runpytest_inprocess("-p", "no:cacheprovider")
    reports = _reports(result)
    assert reports["test_server_error_unnoticed"].failed
    assert "ST-ERR-001" in str(reports["test_server_error_unnoticed"].longrepr)
    assert reports["test_first"].passed


def test_concurrency_one_runs_every_check_in_its_turn(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    from sts_conformance.target import together

    monkeypatch.setattr(together, "LIMIT", 1)
    result = suite.runpytest_inprocess("-p", "no:cacheprovider", "-k", "threads_ran or first")
    reports = _reports(result)
    assert reports["test_first"].passed
    assert reports["test_threads_ran"].failed  # in the main thread: nothing ran ahead
