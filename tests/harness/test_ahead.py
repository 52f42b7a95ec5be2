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

from across import ACROSS

#: three cells and the check that gets a server error meet when they run at the same time (so both failing
#: checks fail only once the others have started: after a failure, checks not started run in their turn)
MEET = threading.Barrier(4, timeout=20)
MET = []
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
    ACROSS.wait()  # meets the check of the other module


def test_threads_ran():
    assert threading.current_thread() is not threading.main_thread()


@pytest.mark.parametrize("n", [0, 1, 2])
def test_meets(shared, mine, n, request):
    assert mine == request.node.name
    seen(f"meet-{n}")
    if threading.current_thread() is not threading.main_thread():
        MEET.wait()  # (in its turn, were it left to it, it would meet no one)
        MET.append(n)
    assert n != 1, "cell 1 fails on its own"


def test_skips():
    seen("skip")
    pytest.skip("a reason of its own")


@pytest.mark.requirement("ST-LIFE-002")
def test_server_error_unnoticed():
    if threading.current_thread() is not threading.main_thread():
        MEET.wait()
    seen("five-hundred", 500)


@pytest.mark.alone
def test_alone_runs_in_its_turn():
    assert threading.current_thread() is threading.main_thread()


def test_with_teardown_fixture_runs_in_its_turn(torn_down):
    assert threading.current_thread() is threading.main_thread()


@pytest.mark.alone
def test_cells_met_ahead_of_their_turn():
    assert sorted(MET) == [0, 1, 2]
"""


OTHER_MODULE = """
import pytest

from across import ACROSS

pytestmark = pytest.mark.together


@pytest.fixture(scope="session")
def of_this_module():
    return "mine"


def test_meets_a_check_of_another_module(of_this_module):
    assert of_this_module == "mine"
    ACROSS.wait()
"""


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    from sts_conformance.checking import ahead

    monkeypatch.setattr(ahead, "ENABLED", True)  # (the profile's checks_together)
    pytester.makepyfile(across="import threading\n\nACROSS = threading.Barrier(2, timeout=20)\n")
    pytester.makepyfile(test_other=OTHER_MODULE)
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
    assert reports["test_meets[0]"].passed and reports["test_meets[2]"].passed
    assert reports["test_cells_met_ahead_of_their_turn"].passed  # all three ran at once
    assert reports["test_meets[1]"].failed
    assert "cell 1 fails on its own" in str(reports["test_meets[1]"].longrepr)
    assert reports["test_skips"].skipped and "a reason of its own" in str(reports["test_skips"].longrepr)
    assert reports["test_alone_runs_in_its_turn"].passed
    assert reports["test_with_teardown_fixture_runs_in_its_turn"].passed
    assert reports["test_threads_ran"].passed
    # a check of another module, with a fixture of session scope defined there, ran at the same time
    assert reports["test_meets_a_check_of_another_module"].passed
    assert not result.parseoutcomes().get("warnings")


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
    result = suite.runpytest_inprocess("-p", "no:cacheprovider", "-k", "threads_ran or skips")
    reports = _reports(result)
    assert reports["test_skips"].skipped
    assert reports["test_threads_ran"].failed  # in the main thread: nothing ran ahead


def test_under_xdist_every_module_marked_together_goes_to_one_worker_whole():
    """The xdist scheduler's list (the controller collects no checks) names exactly the modules marked together."""
    import importlib
    from pathlib import Path

    from sts_conformance.plugin import TOGETHER_MODULES

    suites = Path(__file__).resolve().parents[2] / "suites"
    marked = set()
    for path in suites.rglob("test_*.py"):
        module = importlib.import_module(".".join(path.relative_to(suites.parent).with_suffix("").parts))
        marks = getattr(module, "pytestmark", [])
        marks = marks if isinstance(marks, list) else [marks]
        if any(m.name == "together" for m in marks):
            marked.add(path.name)
    assert marked == set(TOGETHER_MODULES)


def test_off_unless_the_profile_asks_every_check_runs_in_its_turn(suite: pytest.Pytester, monkeypatch):
    from sts_conformance.checking import ahead

    monkeypatch.setattr(ahead, "ENABLED", False)
    result = suite.runpytest_inprocess("-p", "no:cacheprovider", "-k", "threads_ran or skips")
    assert _reports(result)["test_threads_ran"].failed


def test_the_profile_setting_is_read_and_off_by_default(tmp_path):
    from sts_conformance.target.profile import load_profile

    path = tmp_path / "p.yaml"
    path.write_text("name: x\nurl: http://127.0.0.1:1\nadmin_token: t\n", encoding="utf-8")
    assert load_profile(path).checks_together is False
    path.write_text("name: x\nurl: http://127.0.0.1:1\nadmin_token: t\nchecks_together: true\n", encoding="utf-8")
    assert load_profile(path).checks_together is True


def test_with_checks_together_a_marked_module_goes_to_one_xdist_worker_whole(monkeypatch):
    from sts_conformance.checking import ahead
    from sts_conformance.plugin import work_unit

    check = "suites/test_lifecycle.py::test_deleted_token_gone_from_list"
    monkeypatch.setattr(ahead, "ENABLED", True)
    assert work_unit(check) == "suites/test_lifecycle.py"
    monkeypatch.setattr(ahead, "ENABLED", False)
    assert work_unit(check) == check


HALTING = """
import threading

import pytest

pytestmark = pytest.mark.together


def test_first():
    pass


def test_fails():
    assert False, "the target misbehaves"


def test_after_the_failure_in_its_turn():
    assert threading.current_thread() is threading.main_thread()


def test_also_in_its_turn():
    assert threading.current_thread() is threading.main_thread()
"""


def test_once_a_check_fails_the_checks_not_started_run_in_their_turn(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
):
    """A target that fails something may fail more under checks at once (a race, more tokens alive than it
    lists): once a check ran ahead and did not pass, the rest run one after another, as with the setting off."""
    from sts_conformance.checking import ahead

    monkeypatch.setattr(ahead, "ENABLED", True)
    monkeypatch.setattr(ahead, "CHECKS_PER_REQUEST", 0)  # one thread (the least): the checks start in their order
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_halting=HALTING)
    reports = _reports(pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:randomly"))
    assert reports["test_first"].passed
    assert reports["test_fails"].failed and "the target misbehaves" in str(reports["test_fails"].longrepr)
    assert reports["test_after_the_failure_in_its_turn"].passed
    assert reports["test_also_in_its_turn"].passed


def test_after_a_failed_check_no_check_runs_ahead(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    from sts_conformance.checking import ahead

    monkeypatch.setattr(ahead, "ENABLED", True)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_a_plain="def test_fails_before():\n    assert False\n")
    pytester.makepyfile(test_b_together=HALTING.replace("assert False, ", "assert True, "))
    reports = _reports(pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:randomly"))
    assert reports["test_fails_before"].failed
    assert reports["test_after_the_failure_in_its_turn"].passed  # in the main thread: nothing ran ahead


IN_FLIGHT = """
import threading

import pytest

pytestmark = pytest.mark.together

MEET = threading.Barrier(2, timeout=10)


def ahead():
    return threading.current_thread() is not threading.main_thread()


def test_first():
    pass


def test_fails_ahead_a():
    if ahead():
        MEET.wait()
        assert False, "met under checks at once"


def test_fails_ahead_b():
    if ahead():
        MEET.wait()
        assert False, "met under checks at once"
"""


def test_a_failure_met_ahead_of_its_turn_is_kept_never_judged_again(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
):
    """Two checks that fail only when they run at the same moment keep their failures: a check may judge what
    only its first try sees (a token presented for the first time after its expiry), so none is run again
    to be judged a second time (the checks not started yet run in their turn)."""
    from sts_conformance.checking import ahead

    monkeypatch.setattr(ahead, "ENABLED", True)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_in_flight=IN_FLIGHT)
    reports = _reports(pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:randomly"))
    for name in ("test_fails_ahead_a", "test_fails_ahead_b"):
        assert reports[name].failed and "met under checks at once" in str(reports[name].longrepr)


#: a module whose checks note how many of them are running at once
BUSY = """
import threading
import time

import pytest

pytestmark = pytest.mark.together

LOCK = threading.Lock()
RUNNING = [0]
MOST = []


def busy(seconds=0.2):
    with LOCK:
        RUNNING[0] += 1
        MOST.append(RUNNING[0])
    time.sleep(seconds)
    with LOCK:
        RUNNING[0] -= 1
"""

SLOW = (
    BUSY
    + """

def test_first_fails():
    busy(0.5)
    assert False, "the first thing the target meets"


def test_b():
    busy()
    assert threading.current_thread() is threading.main_thread(), "ran beside the failing check"


def test_c():
    busy()
    assert threading.current_thread() is threading.main_thread(), "ran beside the failing check"


def test_most_at_once():
    assert max(MOST) == 1
"""
)


def test_a_batch_starts_slowly_so_a_first_failure_has_no_check_beside_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
):
    """With one place at the start (``SLOW_START``), a check that fails first ran alone: the others run in
    their turn, none met the target's misbehaviour beside it (they would, all started at once)."""
    from sts_conformance.checking import ahead

    monkeypatch.setattr(ahead, "ENABLED", True)
    monkeypatch.setattr(ahead, "SLOW_START", 1)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_slow=SLOW)
    reports = _reports(pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:randomly"))
    assert reports["test_first_fails"].failed
    assert reports["test_b"].passed and reports["test_c"].passed
    assert reports["test_most_at_once"].passed


WIDENING = (
    BUSY
    + """

@pytest.mark.parametrize("n", range(6))
def test_busy(n):
    busy()
    assert threading.current_thread() is not threading.main_thread()


@pytest.mark.alone
def test_zz_most_at_once():
    assert MOST[0] == 1 and max(MOST) >= 2, MOST
"""
)


def test_each_check_that_passes_ahead_opens_one_more_place(pytester: pytest.Pytester, monkeypatch):
    """Passing checks widen the batch: with one place at the start, later checks still run at once."""
    from sts_conformance.checking import ahead

    monkeypatch.setattr(ahead, "ENABLED", True)
    monkeypatch.setattr(ahead, "SLOW_START", 1)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_widening=WIDENING)
    reports = _reports(pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:randomly"))
    assert len(reports) == 7
    assert all(r.passed for r in reports.values()), {k: str(r.longrepr)[-300:] for k, r in reports.items() if r.failed}
