"""A pytest plugin that interrupts a conformance run at a chosen moment, as a cancelled CI job would.

Loaded with ``-p tests.harness.interrupt_probe``; it does nothing unless ``STS_INTERRUPT_AT``
names a moment. Then, at that moment, it sends SIGTERM (``STS_INTERRUPT_SIGNAL=INT`` for
Ctrl-C) to the run's whole process group — pytest, any xdist workers — and writes the
wall-clock time it did so to ``STS_INTERRUPT_MARK``, so the test can tell how long the run
took to end afterwards. A signal meant to land while a request is in flight is sent from a
thread a moment after the request starts (the target answers slowly: ``--delay-ms``).

Moments: ``launch`` (the embedded target started, not yet answering), ``create-in-flight``
(the run's first create), ``fleet`` (further instances starting), ``matrix`` (a request of the
authorization matrix in flight), ``hypothesis`` (a generated create in flight), ``shrinking``
(a generated example failed: Hypothesis is shrinking it), ``cleanup`` (the end-of-run cleanup
has begun: the signal must not cut it short).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import pytest

AT = os.environ.get("STS_INTERRUPT_AT", "")
MARK = os.environ.get("STS_INTERRUPT_MARK", "")
SIGNAL = signal.SIGINT if os.environ.get("STS_INTERRUPT_SIGNAL") == "INT" else signal.SIGTERM
_fired = threading.Event()


def fire(delay: float = 0.0) -> None:
    """Signal the run's process group, once (after ``delay`` seconds, from a thread)."""
    if _fired.is_set():
        return
    _fired.set()

    def send() -> None:
        time.sleep(delay)
        if MARK:
            with open(MARK, "a", encoding="utf-8") as fh:
                fh.write(f"{time.time()}\n")
        os.killpg(os.getpgrp(), SIGNAL)

    if delay:
        threading.Thread(target=send, daemon=True).start()
    else:
        send()


def _wrap(owner: Any, name: str, before: Any) -> None:
    original = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        before(*args, **kwargs)
        return original(*args, **kwargs)

    setattr(owner, name, wrapper)


def _arm() -> None:
    """Wrap what the moment needs; at import, before the conformance plugin launches anything."""
    if not AT:
        return
    from sts_conformance.checking import fleet
    from sts_conformance.target import client
    from sts_conformance.target import connect as target
    from sts_conformance.tokens import ledger as tokens

    if AT == "launch":
        _wrap(target, "wait_until_answers", lambda *a, **k: fire())
    elif AT == "fleet":
        _wrap(fleet.Fleet, "start", lambda *a, **k: fire(0.2))
    elif AT in ("create-in-flight", "hypothesis"):
        posts = {"n": 0}

        def on_request(self: Any, method: str, path: str, **kw: Any) -> None:
            if method == "POST" and path == client.TOKENS_PATH:
                posts["n"] += 1
                wanted = 1 if AT == "create-in-flight" else 5
                in_fuzz = AT != "hypothesis" or os.environ.get("PYTEST_CURRENT_TEST", "").find("fuzz") >= 0
                if in_fuzz and posts["n"] >= wanted:
                    fire(0.05)

        _wrap(client.ApiClient, "request", on_request)
    elif AT == "cleanup":
        _wrap(tokens, "sweep", lambda *a, **k: fire())


_arm()


def pytest_runtest_call(item: pytest.Item) -> None:
    if AT == "matrix" and "test_authorization[" in item.nodeid:
        fire(0.05)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if AT != "shrinking":
        return
    import suites.test_fuzz_names_roles as fuzz

    original = fuzz._judge_accepted

    def judged(*args: Any, **kwargs: Any) -> Any:
        try:
            return original(*args, **kwargs)
        except AssertionError:
            fire(0.5)  # Hypothesis goes on to shrink the failing example meanwhile
            raise

    fuzz._judge_accepted = judged
