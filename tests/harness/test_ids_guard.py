"""A freed id sent again (a second delete) never meets a create of the run (``inflight.IDS``).

A correct target may hand a deleted token's id to the next token it makes; a create of another
check between a delete and the second delete of that id would lose its token. Creates share the
guard, the window that sends a freed id again holds it alone: in one process, and through a lock
file in every process of the run (xdist workers).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import respx

from sts_conformance.target import inflight
from sts_conformance.target.client import ApiClient
from sts_conformance.target.inflight import IdGuard
from sts_conformance.target.together import run_together

BASE = "http://target.test"


def _started(fn) -> threading.Thread:
    thread = threading.Thread(target=fn, daemon=True)
    thread.start()
    return thread


def test_a_create_waits_while_a_freed_id_is_sent_again_and_goes_after_it():
    guard = IdGuard()
    order: list[str] = []
    inside = threading.Event()
    release = threading.Event()

    def window() -> None:
        with guard.freeing():
            inside.set()
            order.append("window")
            release.wait(5)
            order.append("window ends")

    def create() -> None:
        with guard.creating():
            order.append("create")

    first = _started(window)
    assert inside.wait(5)
    second = _started(create)
    time.sleep(0.2)
    assert order == ["window"], "a create went into the window"
    release.set()
    first.join(5)
    second.join(5)
    assert order == ["window", "window ends", "create"]


def test_the_window_waits_for_creates_in_flight_and_goes_before_creates_that_come_after_it():
    guard = IdGuard()
    order: list[str] = []
    creating = threading.Event()
    release = threading.Event()

    def slow_create() -> None:
        with guard.creating():
            creating.set()
            release.wait(5)
            order.append("slow create")

    def window() -> None:
        with guard.freeing():
            order.append("window")

    def later_create() -> None:
        with guard.creating():
            order.append("later create")

    threads = [_started(slow_create)]
    assert creating.wait(5)
    threads.append(_started(window))
    time.sleep(0.1)
    threads.append(_started(later_create))
    time.sleep(0.1)
    assert order == []
    release.set()
    for thread in threads:
        thread.join(5)
    assert order == ["slow create", "window", "later create"]


def test_the_windows_own_calls_sent_together_pass_it(monkeypatch):
    guard = IdGuard()
    monkeypatch.setattr(inflight, "IDS", guard)
    seen: list[str] = []

    def call(label: str) -> str:
        with guard.creating():  # (as a request of the window would, were it a POST)
            seen.append(label)
        return label

    done = threading.Event()

    def window() -> None:
        with guard.freeing():
            run_together([lambda: call("a"), lambda: call("b")])
        done.set()

    _started(window)
    assert done.wait(5), "the window's own calls waited on the window"
    assert sorted(seen) == ["a", "b"]


@respx.mock(base_url=BASE)
def test_the_client_sends_a_post_under_the_guard_and_a_delete_or_list_beside_the_window(respx_mock, monkeypatch):
    guard = IdGuard()
    monkeypatch.setattr("sts_conformance.target.client.IDS", guard)
    respx_mock.post("/api/security/tokens").mock(return_value=httpx.Response(200, json={"name": "n", "token": "t"}))
    respx_mock.get("/api/security/tokens").mock(return_value=httpx.Response(200, json=[]))
    respx_mock.delete("/api/security/tokens/7").mock(return_value=httpx.Response(204))
    client = ApiClient(BASE)
    inside = threading.Event()
    release = threading.Event()
    answers: list[int] = []

    def window() -> None:
        with guard.freeing():
            inside.set()
            release.wait(5)

    holder = _started(window)
    assert inside.wait(5)
    assert client.delete_token("admin", 7).status_code == 204  # a delete or a list never waits
    assert client.list_tokens("admin").status_code == 200
    poster = _started(lambda: answers.append(client.create_token("admin", {"name": "n", "roles": []}).status_code))
    time.sleep(0.2)
    assert answers == [] and respx_mock.calls.call_count == 2, "the create was sent inside the window"
    release.set()
    holder.join(5)
    poster.join(5)
    assert answers == [200]
    client.close()


HOLD = """
import sys, time
from pathlib import Path
from sts_conformance.target.inflight import IdGuard
guard = IdGuard()
guard.configure(Path(sys.argv[1]))
with guard.freeing():
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
    Path(sys.argv[3]).write_text("the window ends")
"""


def test_a_window_of_another_process_of_the_run_holds_this_ones_creates(tmp_path: Path):
    lock = tmp_path / inflight.IDS_LOCK
    other = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock), "0.5", str(tmp_path / "ended")],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "held"
        guard = IdGuard()
        guard.configure(lock)
        with guard.creating():
            assert (tmp_path / "ended").exists(), "the create went in while the other process's window was open"
    finally:
        other.kill()
        other.wait()


@pytest.mark.parametrize("args", [("service-token", "delete", "7"), ("service-token", "list")])
def test_a_cli_command_that_makes_no_token_is_not_a_create(args):
    from sts_conformance.checking.cli_runner import _creating

    assert not isinstance(_creating(args), type(IdGuard().creating()))


def test_a_cli_create_named_like_another_verb_is_still_a_create():
    from sts_conformance.checking.cli_runner import _creating

    args = ("service-token", "create", "--name", "list", "--roles", "delete")
    assert isinstance(_creating(args), type(IdGuard().creating()))
