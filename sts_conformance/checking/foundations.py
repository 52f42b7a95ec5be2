"""Foundations a check asks for while it runs: the expiry round trip and anonymous refusal per call.

Issue 24 (one defect, one verdict). A target that stores an expiry other than the one sent
(a thousand times later, an hour late) cannot be judged on what it does *at* that expiry: every
check that waits for the expiry sent would fail with it, each under its own requirement. A call
that answers a request without any credential cannot be seen refusing a deleted, expired or
unknown token either. Such checks stand on a foundation and are blocked by it — the foundation's
own requirement fails, once:

- the expiry is echoed and listed as sent (ST-EXP-001, ST-EXP-002): probed at the start of the
  run on the expiring credentials (``prepare._check_expiry_round_trip``), at no extra request;
- a token is refused once the server's clock has passed its expiry (ST-EXP-006): probed here, the
  first time a process needs it, once the expiring credentials ran out — one or two requests;
- each documented call refuses an anonymous request (ST-AUTH-011 for server info, ST-AUTH-006
  for the token calls): one request each at the start (``prepare._check_anonymous_calls``).

A check names only the foundations it truly stands on: a check *of* an expiry or of a refusal on
a call is the foundation's own, and judges it in full.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

import httpx

from sts_conformance.checking.checks import CLOCK_MARGIN_MS, working_forms
from sts_conformance.core import preconditions as pre
from sts_conformance.tokens import prepare as prep

#: the calls whose anonymous refusal is a foundation (the probe's is ``pre.ANONYMOUS_REFUSED``)
CALLS = tuple(pre.ANONYMOUS_REFUSED_ON)
#: how often the expired manager token is tried, each time the clock further past its expiry (ms)
ENFORCEMENT_WAITS_MS = (CLOCK_MARGIN_MS, 3 * CLOCK_MARGIN_MS)

_lock = threading.Lock()
#: each run's verdict on EXPIRY_ENFORCED (by its target): absent until probed, then None (it held) or why not
_enforced: weakref.WeakKeyDictionary[Any, str | None] = weakref.WeakKeyDictionary()


def anonymous_accepted(target: Any, call: str) -> str | None:
    """Why ``call`` is no place to see a refusal: it answered an anonymous request at the start; else None."""
    status = target.prepared.anonymous_calls.get(call)
    if status is None or not 200 <= status < 300:
        return None
    return (
        f"{call} answered a request without any credential with {status} at the start of the run, "
        "so no refusal of a credential can be seen there"
    )


def require_anonymous_refused(target: Any, call: str) -> None:
    """Block the running check when ``call`` answers anonymous requests (the probe is ST-AUTH-001's)."""
    if call not in pre.ANONYMOUS_REFUSED_ON:
        return
    why = anonymous_accepted(target, call)
    if why is not None:
        pre.block(pre.ANONYMOUS_REFUSED_ON[call], why)


def require_expiry_round_trip(target: Any) -> None:
    """Block the running check when an expiry did not come back as sent (echoed, then listed)."""
    for requirement in (pre.EXPIRY_ECHOED, pre.EXPIRY_LISTED):
        why = target.prepared.blocked(requirement)
        if why is not None:
            pre.block(requirement, why)


def require_expiry_enforced(target: Any) -> None:
    """Block the running check unless a token is refused once the clock passed the expiry sent.

    Stands on the round trip. Probed once per run and process: the expiring *unprivileged* token
    prepared at the start (used only right after its create, so a target that renews a token on
    use has not moved its expiry: that is ST-EXP-011's to judge, on the manager token), tried on
    the probe when the server's clock is past its expiry by the margin, and once more further on
    when it was still accepted (an answer cached for a moment is no defect). A probe that cannot
    be made (no clock, no answer) leaves the foundation unjudged: the checks then judge alone.
    """
    require_expiry_round_trip(target)
    with _lock:
        if target not in _enforced:
            _enforced[target] = _probe_enforcement(target)
    why = _enforced[target]
    if why is not None:
        pre.block(pre.EXPIRY_ENFORCED, why)


def _probe_enforcement(target: Any) -> str | None:
    if target.prepared.blocked(pre.ANONYMOUS_REFUSED) is not None:
        return None  # a probe that accepts anyone shows no refusal: ST-AUTH-001 is the finding
    cred = target.credential(prep.EXPIRED_UNPRIVILEGED)
    if cred.expiration is None:
        return None
    form = working_forms(target)[0]
    status = now = 0
    for wait_ms in ENFORCEMENT_WAITS_MS:
        try:
            now = target.wait_until_server_time(cred.expiration + wait_ms)
            resp = target.probe(cred.secret, form)
        except (AssertionError, httpx.HTTPError):
            return None
        status = resp.status_code
        if not resp.is_success:
            return None
    return (
        f"a token created with expiryDate {cred.expiration} was still accepted ({status}) on {target.probe_path} "
        f"in the {form.value} form at server time {now}, past that expiry"
    )
