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

That first try can fail to conclude on a busy machine or a slow target (the thread wakes after
the expiry, or creates take so long that the token is nearly spent when the run is prepared).
Then it is tried again, up to :data:`WIDER`'s bound, with a fresh manager token of a longer
life (journalled like every token of the run): read the clock right after its create, the use
before the expiry is made while the server's clock is *surely* ``lead`` before it (the Date's
second and the round trip counted against it), the call after it once the clock is surely
``after`` past it. The record says how many tries it took and why the earlier ones could not
conclude; one that still cannot is inconclusive, never passed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
from _pytest.outcomes import Skipped

from sts_conformance.checking import records
from sts_conformance.core import preconditions as pre
from sts_conformance.target import servertime, settle
from sts_conformance.target.client import EXCHANGES, ApiClient, AuthForm
from sts_conformance.target.profile import TargetProfile
from sts_conformance.tokens.ledger import TokenLedger
from sts_conformance.tokens.prepare import EXPIRED_MANAGER, Prepared, Sample

#: how long before its expiry the token is used once more, and how long after it it is presented again
LEAD_MS = 1_000
AFTER_MS = 1_000
#: between the two, the token is presented this often (a use a sliding expiry would renew it on)
KEEP_USING_S = 0.4
#: when a try cannot conclude, the next one: a fresh token living this long (ms), used this long
#: before its expiry (surely, on the server's clock) and presented again this long after it
WIDER = ((6_000, 2_500, 1_500), (15_000, 6_000, 3_000))
#: how much longer than one try all the tries may take, for a reader waiting on the record (s)
RETRY_BOUND_S = sum(life + after for life, _lead, after in WIDER) / 1000 + 5
_FILE = "late-use.json"
#: the foundation each header form stands on (a form accepted nowhere cannot conclude anything)
_FORM_FOUNDATION = {AuthForm.X_API_KEY: pre.X_API_KEY_FORM, AuthForm.AUTHORIZATION: pre.AUTHORIZATION_FORM}


@dataclass
class LateUse:
    """What the two calls got, per header form (AuthForm name), on the last try made."""

    expiry_ms: int
    before: dict[str, Sample] = field(default_factory=dict)
    after: dict[str, Sample] = field(default_factory=dict)
    error: str | None = None
    #: how many tries were made (1: the token prepared at the start only)
    tries: int = 1
    #: why each earlier try could not conclude
    earlier: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> LateUse:
        def samples(key: str) -> dict[str, Sample]:
            raw = data.get(key) or {}
            assert isinstance(raw, dict)
            return {k: Sample(**v) for k, v in raw.items()}

        expiry = data["expiry_ms"]
        error = data.get("error")
        tries = data.get("tries", 1)
        earlier = data.get("earlier") or []
        assert isinstance(expiry, int) and isinstance(tries, int) and isinstance(earlier, list)
        return cls(
            expiry,
            samples("before"),
            samples("after"),
            error if isinstance(error, str) else None,
            tries,
            [str(e) for e in earlier],
        )

    def unsure(self, form: str) -> str | None:
        """Why this try says nothing about the token in ``form`` (None: it concludes, one way or the other)."""
        if self.error is not None:
            return self.error
        before, after = self.before.get(form), self.after.get(form)
        if before is None or after is None:
            return "the run ended before the late use of the expiring token was made"
        if not before.accepted:
            return (
                f"the use meant to come shortly before the expiry {self.expiry_ms} was refused ({before.status}, "
                f"server time {before.server_ms}); whether in time is ST-EXP-006's question"
            )
        if after.server_ms is not None and after.server_ms < self.expiry_ms:
            return f"the call after the expiry came at server time {after.server_ms}, before it"
        return None

    def tried(self) -> str:
        """How the tries went, for a message ("" when the first one concluded)."""
        if self.tries <= 1:
            return ""
        return f" ({self.tries} tries, each with a wider window; the earlier ones: {'; '.join(self.earlier)})"


def _when(prepared_samples: list[Sample], server_ms: int) -> float | None:
    """The earliest client time (epoch s) at which the server's clock surely reads ``server_ms``."""
    known = [s for s in prepared_samples if s.server_ms is not None]
    if not known:
        return None
    return min(s.at + (server_ms - (s.server_ms or 0)) / 1000 for s in known)


def start(
    profile: TargetProfile, url: str, prepared: Prepared, run_dir: Path, ledger: TokenLedger | None = None
) -> Callable[[], None]:
    """Start the two calls in the background (when the expiring manager token was made); returns a closer.

    ``ledger`` makes the fresh tokens of the wider tries (none are tried without one).
    """
    cred = prepared.credentials.get(EXPIRED_MANAGER)
    if cred is None or cred.expiration is None:
        return lambda: None
    use_at = _when(list(cred.samples.values()), cred.expiration - LEAD_MS)
    if use_at is None:
        _publish(run_dir, LateUse(cred.expiration, error="the target sent no usable Date header"))
        return lambda: None
    stop = threading.Event()
    expiry, secret = cred.expiration, cred.secret
    facts = prepared.clock_facts
    probe_path = prepared.probe_path or profile.probe_path
    forms = (AuthForm.X_API_KEY, AuthForm.AUTHORIZATION)
    judged = [f.name for f in forms if prepared.blocked(_FORM_FOUNDATION[f]) is None]

    def attempt(client: ApiClient, secret: str, expiry: int, use_at: float, after_at: float) -> LateUse | None:
        """One try: the use before the expiry, the keeping on using, the call after it (None: the run ended)."""
        record = LateUse(expiry)
        if stop.wait(max(0.0, use_at - time.time())):
            return None
        for form in forms:
            record.before[form.name] = Sample.of(client.probe(probe_path, secret, form), facts)
        # keep using it until the judged call: a renewal on use (a sliding expiry) then never
        # runs out before that call, however late a loaded machine wakes this thread
        while (left := after_at - time.time()) > 0:
            if stop.wait(min(KEEP_USING_S, left)):
                return None
            client.probe(probe_path, secret, forms[0])
        for form in forms:
            record.after[form.name] = Sample.of(client.probe(probe_path, secret, form), facts)
        return record

    def fresh(client: ApiClient, life_ms: int, lead_ms: int, after_ms: int) -> LateUse | None:
        """A try with a fresh manager token living ``life_ms``, its calls timed surely before and after."""
        assert ledger is not None
        now = servertime.now_ms(client, probe_path, facts, ledger.admin_token, ledger.admin_form)
        if now is None:
            return LateUse(0, error="the server's clock could not be read for a wider try")
        expiry = now + life_ms
        body = {"name": ledger.name("late-use"), "roles": [profile.manager_role], "expiryDate": expiry}
        if stop.is_set():
            return None  # the run is ending: no token is made once its final sweep may have begun
        try:
            resp, tok = ledger.create_raw(body, attribute=False)
        except Skipped as exc:  # the ledger stopped creating (the target lists nothing it creates)
            return LateUse(expiry, error=f"no token could be made for a wider try: {exc.msg}")
        if tok is None:
            return LateUse(expiry, error=f"the create of a token for a wider try answered {resp.status_code}")
        sent = time.time()
        read = servertime.reading_ms(client.probe(probe_path, tok.secret, forms[0]), facts)
        got = time.time()
        if read is None:
            return LateUse(expiry, error="the target sent no usable Date header")
        # the server's clock at client time t lies in [read + (t - got), read + 1 s + (t - sent))
        use_at = sent + (expiry - lead_ms - read - 1000) / 1000
        after_at = got + (expiry + after_ms + facts.margin_ms - read) / 1000
        if use_at < time.time():
            return LateUse(expiry, error=f"the token made for a wider try lived less than {lead_ms} ms when read")
        return attempt(client, tok.secret, expiry, use_at, after_at)

    def run() -> None:
        record: LateUse | None = None
        earlier: list[str] = []
        try:
            with EXCHANGES.muted(), ApiClient.for_profile(profile, url) as client:
                record = attempt(client, secret, expiry, use_at, use_at + (LEAD_MS + AFTER_MS) / 1000)
                for wider in WIDER if ledger is not None else ():
                    if record is None:
                        return
                    why = next((w for f in judged if (w := record.unsure(f)) is not None), None)
                    if why is None:
                        break
                    earlier.append(why)
                    record = fresh(client, *wider)
        except httpx.HTTPError as exc:
            record = LateUse(expiry, error=f"a call got no answer: {type(exc).__name__}")
        except Exception as exc:  # a check waits for the record: it always gets one, saying why
            record = LateUse(expiry, error=f"the late use broke off: {type(exc).__name__}: {exc}")
        if record is None:
            if stop.is_set():
                return  # the run is ending: nobody waits for it
            record = LateUse(expiry, error="the late use ended without a record")
        record.tries, record.earlier = len(earlier) + 1, earlier
        if earlier:
            concluded = "concluded" if all(record.unsure(f) is None for f in judged) else "still could not conclude"
            note = f"clock: the late use of an expiring token (ST-EXP-011) {concluded} on try {record.tries}: "
            settle.write_event(settle.SETTLE.log, {"k": "clock", "note": note + "; ".join(earlier)})
        _publish(run_dir, record)

    thread = threading.Thread(target=run, name="late use of the expiring token", daemon=True)
    thread.start()

    def close() -> None:
        """Stop the late use and wait for a call under way (at most one request's time)."""
        stop.set()
        if thread is not threading.current_thread():
            thread.join(timeout=profile.request_timeout + 1.0)

    return close


def _publish(run_dir: Path, record: LateUse) -> None:
    records.publish(run_dir / _FILE, asdict(record))


def read(run_dir: Path, timeout: float) -> LateUse | None:
    """The record, once written (None when it is not there within ``timeout`` seconds)."""
    return records.wait_for(run_dir / _FILE, LateUse.from_dict, timeout)
