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
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from sts_conformance.checking import records
from sts_conformance.core import preconditions as pre
from sts_conformance.target.client import EXCHANGES, ApiClient, AuthForm
from sts_conformance.target.profile import TargetProfile
from sts_conformance.tokens.prepare import EXPIRED_UNPRIVILEGED, Prepared, Sample

#: the calls whose anonymous refusal is a foundation (the probe's is ``pre.ANONYMOUS_REFUSED``)
CALLS = tuple(pre.ANONYMOUS_REFUSED_ON)


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


def role_ignored(target: Any, call: str) -> str | None:
    """Why ``call`` is no place to judge which roles manage: it let the unprivileged token in at the start."""
    status = target.prepared.unprivileged_calls.get(call)
    if status is None or not 200 <= status < 300:
        return None
    return (
        f"{call} answered a valid token without the manager role with {status} at the start of the run, "
        "so no role can be seen refused there"
    )


def require_role_refused(target: Any, call: str) -> None:
    """Block the running check when ``call`` lets any token in (anonymous) or a token without the manager
    role (ST-ROLE-002): no role, near-miss or otherwise, can be seen refused there."""
    require_anonymous_refused(target, call)
    why = role_ignored(target, call)
    if why is not None:
        pre.block(pre.UNPRIVILEGED_REFUSED, why)


def require_expiry_round_trip(target: Any) -> None:
    """Block the running check when an expiry did not come back as sent (echoed, then listed)."""
    for requirement in (pre.EXPIRY_ECHOED, pre.EXPIRY_LISTED):
        why = target.prepared.blocked(requirement)
        if why is not None:
            pre.block(requirement, why)


def require_expiry_enforced(target: Any) -> None:
    """Block the running check when a token left alone was accepted after the expiry it was created with.

    Stands on the round trip. Judged from the record of :func:`start` (no request here); a record
    that is missing, or whose calls were not surely after the expiry, leaves the foundation
    unjudged: the checks then judge on their own.
    """
    require_expiry_round_trip(target)
    timeout = 10 + 4 * target.profile.request_timeout
    record = read(target.state.run_dir, timeout)
    if record is not None and record.failed is not None:
        pre.block(pre.EXPIRY_ENFORCED, record.failed)


# -- the enforcement probe, in the background of the controller ------------------------------------

#: how long after the expiry (on the server's clock, surely) the token left alone is tried, and tried again
AFTER_MS = 1_000
AGAIN_S = 2.0
_FILE = "expiry-enforced.json"


@dataclass
class Enforcement:
    """What trying the expiring unprivileged token after its expiry showed: why the foundation failed, or None."""

    expiry_ms: int
    failed: str | None = None
    samples: list[dict[str, Any]] = field(default_factory=list)


def start(profile: TargetProfile, url: str, prepared: Prepared, run_dir: Path) -> Callable[[], None]:
    """Try the expiring *unprivileged* token once the server's clock is surely past its expiry, in the
    background (when it was made); returns a closer. That token is used only right after its create, so
    a target that renews a token on use has not moved its expiry (that is ST-EXP-011's, judged on the
    manager token). Still accepted then, and once more two seconds later, the foundation failed. One
    request on a correct target, two on a faulty one.
    """
    cred = prepared.credentials.get(EXPIRED_UNPRIVILEGED)
    if cred is None or cred.expiration is None:
        # unjudged, said at once: the checks read this record and would otherwise wait for it in vain
        _publish(run_dir, Enforcement(0))
        return lambda: None
    accepted = [name.removeprefix("probe/") for name, s in cred.samples.items() if s.accepted]
    at = _surely_at(list(cred.samples.values()), cred.expiration + AFTER_MS)
    if at is None or not accepted or prepared.blocked(pre.ANONYMOUS_REFUSED) is not None:
        _publish(run_dir, Enforcement(cred.expiration or 0))  # unjudged: no clock, no form, no refusing probe
        return lambda: None
    stop = threading.Event()
    expiry, secret, form = cred.expiration, cred.secret, AuthForm[accepted[0]]
    probe_path = prepared.probe_path or profile.probe_path

    def run() -> None:
        record = Enforcement(expiry)
        try:
            with EXCHANGES.muted(), ApiClient.for_profile(profile, url) as client:
                if stop.wait(max(0.0, at - time.time())):
                    return
                for _ in range(2):
                    sample = Sample.of(client.probe(probe_path, secret, form))
                    record.samples.append(asdict(sample))
                    if not sample.accepted or sample.server_ms is None or sample.server_ms < expiry:
                        break  # refused, or not surely after the expiry: nothing against the target
                    if len(record.samples) == 2:
                        record.failed = (
                            f"a token created with expiryDate {expiry}, left unused since, was still accepted "
                            f"({sample.status}) on {probe_path} in the {form.value} form at server time "
                            f"{sample.server_ms}, past that expiry"
                        )
                    elif stop.wait(AGAIN_S):
                        return
        except httpx.HTTPError:
            pass  # unjudged: the checks judge on their own
        _publish(run_dir, record)

    threading.Thread(target=run, name="expiry enforcement probe", daemon=True).start()
    return stop.set


def _surely_at(samples: list[Sample], server_ms: int) -> float | None:
    """The earliest client time (epoch s) at which the server's clock surely reads ``server_ms``: at client
    time ``at`` a call read ``s.server_ms`` (whole seconds, truncated), so later it reads at least that
    plus the time gone by (as ``late_use`` reckons it)."""
    known = [s for s in samples if s.server_ms is not None]
    if not known:
        return None
    return min(s.at + (server_ms - (s.server_ms or 0)) / 1000 for s in known)


def _publish(run_dir: Path, record: Enforcement) -> None:
    records.publish(run_dir / _FILE, asdict(record))


def read(run_dir: Path, timeout: float) -> Enforcement | None:
    """The record, once written (None when it is not there within ``timeout`` seconds)."""
    return records.wait_for(run_dir / _FILE, lambda data: Enforcement(**data), timeout)
