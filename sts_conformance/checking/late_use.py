"""The expiring manager token, used once more shortly before its expiry and once right after it.

A target that renews a token on use (a sliding expiry: each use moves the expiry out) passes
every check that waits out an expiry without touching the token meanwhile. So, in the
background of the run, the controller presents the expiring manager token prepared at the
start (``prepare.py``) about a second before its expiry, in both header forms, and again
about a second after the expiry, using it every 0.4 s in between (so that a renewal on use
cannot run out before the judged call, however late the thread wakes): that last call must be
refused (ST-EXP-011). No check
waits for this; the record is written to the run's directory and judged by any worker.

When to call is read from the Date headers of the calls made right after the token's create
(whole seconds): at client time ``at`` the server's clock read at least ``server_ms``, so it
reads at least ``server_ms + (t - at)`` at a later client time ``t``. The use is made when that
lower bound reaches the expiry less a second, the second call two seconds later: surely
after the expiry on the server's clock, and sooner than a renewal by the token's lifetime
(about three seconds) would run out.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from sts_conformance.target.client import EXCHANGES, ApiClient, AuthForm
from sts_conformance.target.profile import TargetProfile
from sts_conformance.tokens.prepare import EXPIRED_MANAGER, Prepared, Sample

#: how long before its expiry the token is used once more, and how long after it it is presented again
LEAD_MS = 1_000
AFTER_MS = 1_000
#: between the two, the token is presented this often (a use a sliding expiry would renew it on)
KEEP_USING_S = 0.4
_FILE = "late-use.json"


@dataclass
class LateUse:
    """What the two calls got, per header form (AuthForm name)."""

    expiry_ms: int
    before: dict[str, Sample] = field(default_factory=dict)
    after: dict[str, Sample] = field(default_factory=dict)
    error: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> LateUse:
        def samples(key: str) -> dict[str, Sample]:
            raw = data.get(key) or {}
            assert isinstance(raw, dict)
            return {k: Sample(**v) for k, v in raw.items()}

        expiry = data["expiry_ms"]
        error = data.get("error")
        assert isinstance(expiry, int)
        return cls(expiry, samples("before"), samples("after"), error if isinstance(error, str) else None)


def _when(prepared_samples: list[Sample], server_ms: int) -> float | None:
    """The earliest client time (epoch s) at which the server's clock surely reads ``server_ms``."""
    known = [s for s in prepared_samples if s.server_ms is not None]
    if not known:
        return None
    return min(s.at + (server_ms - (s.server_ms or 0)) / 1000 for s in known)


def start(profile: TargetProfile, url: str, prepared: Prepared, run_dir: Path) -> Callable[[], None]:
    """Start the two calls in the background (when the expiring manager token was made); returns a closer."""
    cred = prepared.credentials.get(EXPIRED_MANAGER)
    if cred is None or cred.expiration is None:
        return lambda: None
    use_at = _when(list(cred.samples.values()), cred.expiration - LEAD_MS)
    if use_at is None:
        _publish(run_dir, LateUse(cred.expiration, error="the target sent no usable Date header"))
        return lambda: None
    stop = threading.Event()
    expiry, secret = cred.expiration, cred.secret

    probe_path = prepared.probe_path or profile.probe_path
    forms = (AuthForm.X_API_KEY, AuthForm.AUTHORIZATION)

    def run() -> None:
        record = LateUse(expiry)
        after_at = use_at + (LEAD_MS + AFTER_MS) / 1000
        try:
            with EXCHANGES.muted(), ApiClient.for_profile(profile, url) as client:
                if stop.wait(max(0.0, use_at - time.time())):
                    return
                for form in forms:
                    record.before[form.name] = Sample.of(client.probe(probe_path, secret, form))
                # keep using it until the judged call: a renewal on use (a sliding expiry) then never
                # runs out before that call, however late a loaded machine wakes this thread
                while (left := after_at - time.time()) > 0:
                    if stop.wait(min(KEEP_USING_S, left)):
                        return
                    client.probe(probe_path, secret, forms[0])
                for form in forms:
                    record.after[form.name] = Sample.of(client.probe(probe_path, secret, form))
        except httpx.HTTPError as exc:
            record.error = f"a call got no answer: {type(exc).__name__}"
        _publish(run_dir, record)

    threading.Thread(target=run, name="late use of the expiring token", daemon=True).start()
    return stop.set


def _publish(run_dir: Path, record: LateUse) -> None:
    path = run_dir / _FILE
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(asdict(record), fh)
    os.replace(tmp, path)


def read(run_dir: Path, timeout: float) -> LateUse | None:
    """The record, once written (None when it is not there within ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError, ValueError):
            return LateUse.from_dict(json.loads((run_dir / _FILE).read_text(encoding="utf-8")))
        if time.monotonic() > deadline:
            return None
        time.sleep(0.05)
