"""Independent requests in flight together (issue 25): bounded, in order, nothing of the diagnosis lost."""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator

import httpx
import pytest
import respx

from sts_conformance.core.redact import REDACTOR
from sts_conformance.target import client as client_module
from sts_conformance.target import inflight, together
from sts_conformance.target.client import EXCHANGES, ApiClient
from sts_conformance.target.throttle import THROTTLE, Throttle
from sts_conformance.target.together import run_together

BASE = "http://target.test"
SECRET = "svctok-togetherTOGETHER0123456789abcdef"


@pytest.fixture(autouse=True)
def own_throttle(monkeypatch: pytest.MonkeyPatch) -> Throttle:
    mine = Throttle(budget_s=30.0)
    monkeypatch.setattr(client_module, "THROTTLE", mine)
    return mine


@pytest.fixture(autouse=True)
def clean_log() -> Iterator[None]:
    EXCHANGES.clear()
    yield
    EXCHANGES.clear()


class Gate:
    """Holds each request until ``width`` of them are in flight at once (or a generous timeout passes),
    and counts the most that ever were: proves overlap without measuring time."""

    def __init__(self, width: int) -> None:
        self.barrier = threading.Barrier(width)
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0
        self.met = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            self.barrier.wait(timeout=10)
            with self.lock:
                self.met += 1
        except threading.BrokenBarrierError:
            pass
        finally:
            with self.lock:
                self.now -= 1
        return httpx.Response(200, json={"path": request.url.path})


def test_calls_go_together_at_most_the_limit_in_flight_results_in_order():
    gate = Gate(3)
    with respx.mock(assert_all_mocked=True) as mock, ApiClient(BASE) as client:
        mock.get(url__startswith=f"{BASE}/api/n/").mock(side_effect=gate)
        calls = [lambda i=i: client.request("GET", f"/n/{i}").json()["path"] for i in range(6)]
        got = run_together(calls, limit=3)
    assert got == [f"/api/n/{i}" for i in range(6)]
    assert gate.most == 3  # never more than the bound
    assert gate.met == 6  # every request met two others in flight


def test_exchanges_are_logged_in_the_order_given_not_the_order_answered():
    released = threading.Event()

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/0"):
            released.wait(timeout=10)  # the first call answers last
        else:
            released.set()
        return httpx.Response(200, text=f"answer {SECRET}")

    with respx.mock(assert_all_mocked=True) as mock, ApiClient(BASE) as client:
        mock.get(url__startswith=f"{BASE}/api/o/").mock(side_effect=answer)
        REDACTOR.register(SECRET, issued=True)
        run_together([functools.partial(client.request, "GET", f"/o/{i}", token=SECRET) for i in range(4)], limit=4)
    logged = EXCHANGES.snapshot()
    assert [e.url.rsplit("/", 1)[1] for e in logged] == ["0", "1", "2", "3"]
    assert all(SECRET not in e.render() for e in logged)  # masked as ever


def test_limit_one_runs_each_call_in_the_calling_thread_one_after_another():
    me = threading.get_ident()
    seen = run_together([threading.get_ident for _ in range(4)], limit=1)
    assert seen == [me] * 4


def test_every_call_runs_and_the_first_failure_in_order_is_raised():
    ran: list[int] = []
    lock = threading.Lock()

    def call(i: int) -> int:
        with lock:
            ran.append(i)
        if i in (1, 3):
            raise ValueError(f"call {i}")
        return i

    with pytest.raises(ValueError, match="call 1"):
        run_together([functools.partial(call, i) for i in range(5)], limit=4)
    assert sorted(ran) == [0, 1, 2, 3, 4]


def test_a_skip_or_block_raised_by_a_call_reaches_the_check():
    def skips() -> None:
        pytest.skip("inconclusive: as a check would")

    with pytest.raises(pytest.skip.Exception, match="inconclusive"):
        run_together([lambda: 1, skips], limit=2)


@contextlib.contextmanager
def bounded(monkeypatch: pytest.MonkeyPatch, limit: int, gate: Gate, prefix: str) -> Iterator[ApiClient]:
    """A client whose GETs below ``prefix`` meet at ``gate``, with the process's bound set to ``limit``."""
    monkeypatch.setattr(together, "LIMIT", together.LIMIT)
    together.configure(limit)
    try:
        with respx.mock(assert_all_mocked=True) as mock, ApiClient(BASE) as client:
            mock.get(url__startswith=f"{BASE}/api/{prefix}/").mock(side_effect=gate)
            yield client
    finally:
        together.configure(inflight.DEFAULT_LIMIT)


def test_nested_calls_go_together_too_and_the_bound_holds_per_request(monkeypatch):
    """A check run ahead sends calls together in turn: they overlap, and the process's bound is on requests."""
    gate = Gate(4)
    with bounded(monkeypatch, 4, gate, "n") as client:

        def outer(i: int) -> list[str]:
            paths = [
                functools.partial(lambda j: client.request("GET", f"/n/{i}/{j}").json()["path"], j) for j in range(4)
            ]
            return run_together(paths)

        got = run_together([functools.partial(outer, i) for i in range(2)])
    assert got == [[f"/api/n/{i}/{j}" for j in range(4)] for i in range(2)]
    assert gate.most == 4  # eight requests, never more than the bound on the wire
    assert gate.met == 8  # each met three others in flight


def test_a_wider_bound_asked_for_on_purpose_is_the_calls_own(monkeypatch):
    gate = Gate(5)
    with bounded(monkeypatch, 2, gate, "w") as client:
        run_together([functools.partial(client.request, "GET", f"/w/{i}") for i in range(5)], limit=5)
    assert gate.most == 5 and gate.met == 5


def test_a_muted_caller_stays_muted_and_the_cleanup_deadline_reaches_the_calls():
    deadlines: list[float | None] = []

    def call() -> None:
        deadlines.append(THROTTLE.deadline())
        EXCHANGES.add(client_module.Exchange("GET", "http://x/", {}, "", 200, ""))

    with EXCHANGES.muted(), THROTTLE.until(123.0):
        run_together([call, call], limit=2)
    assert EXCHANGES.snapshot() == []
    assert deadlines == [123.0, 123.0]


def test_the_process_bound_comes_from_the_profile(monkeypatch):
    monkeypatch.setattr(together, "LIMIT", together.LIMIT)
    together.configure(1)
    assert together.LIMIT == 1
    me = threading.get_ident()
    assert run_together([threading.get_ident, threading.get_ident]) == [me, me]
    together.configure(0)
    assert together.LIMIT == 1
    assert inflight.GATE.limit == 1
    together.configure(inflight.DEFAULT_LIMIT)


def test_under_xdist_a_tables_cells_go_to_one_worker_and_other_checks_each_where_a_worker_is_free():
    from sts_conformance.plugin import work_unit

    cell = "suites/test_authorization_matrix.py::test_authorization[none/list/X-API-Key]"
    assert work_unit(cell) == "suites/test_authorization_matrix.py"
    assert work_unit("suites/test_path_variants.py::test_variant_answers_carry_no_secret[none]") == (
        "suites/test_path_variants.py"
    )
    assert work_unit("suites/test_server_errors.py::test_read_only_fields_never_bind[create]") == (
        "suites/test_server_errors.py"
    )
    lifecycle = "suites/test_lifecycle.py::test_deleted_token_gone_from_list"
    assert work_unit(lifecycle) == lifecycle  # one check at a time, unless checks_together
    single = "suites/test_bootstrap.py::test_bootstrap_token_accepted"
    assert work_unit(single) == single


def test_once_the_run_is_interrupted_a_check_running_ahead_sends_nothing_more():
    """The stop the checks run ahead carry (checking/ahead.py) reaches the calls they send together too."""
    stop = threading.Event()
    with respx.mock(assert_all_mocked=True) as mock, ApiClient(BASE) as client:
        route = mock.get(url__startswith=f"{BASE}/api/s/").mock(return_value=httpx.Response(200))
        token = inflight.STOP_WHEN.set(stop)
        try:
            client.request("GET", "/s/before")
            stop.set()
            with pytest.raises(inflight.Stopped):
                run_together([functools.partial(client.request, "GET", f"/s/{i}") for i in range(3)], limit=3)
        finally:
            inflight.STOP_WHEN.reset(token)
        client.request("GET", "/s/cleanup")  # (the cleanup, in a thread without the stop, still sends)
    assert [c.request.url.path for c in route.calls] == ["/api/s/before", "/api/s/cleanup"]
