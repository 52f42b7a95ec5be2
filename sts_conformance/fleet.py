"""Further instances of a managed target, each with its own bootstrap settings, started at session start.

The bootstrap checks need deployments configured in other ways than the main one: a
bootstrap token with only the unprivileged role, one under the seed document's
``servicetoken`` key, and one per short ttl spelling. A ttl is a wait on real time, so these
instances are launched by the controller as soon as the main target answers, in background
threads; their ttls run out while the other checks run. Each instance is called once in
each header form as soon as it answers (the "before" of the ttl check), and the instance
used by the authorization matrix gets a token to delete later. What is known of an instance
is written, when it is ready, to a file in the run's private directory; the checks (in any
xdist worker) wait for that file. Every instance is stopped at the end of the run, also
when the run is interrupted while they are still starting.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .client import ApiClient, AuthForm, server_time_ms
from .errors import HarnessError
from .journal import token_id
from .prepare import Sample
from .profile import TargetProfile
from .redact import REDACTOR
from .target import ManagedProcess

UNPRIVILEGED = "unprivileged-role"
LOWER_CASE_KEY = "lower-case-key"
#: longest ttl the suite waits out on an instance it launched: waits stay a few seconds
MAX_TTL_MS = 10_000

_UNIT_MS = {
    **dict.fromkeys(("ns", "nano", "nanos", "nanosecond", "nanoseconds"), 1e-6),
    **dict.fromkeys(("us", "micro", "micros", "microsecond", "microseconds"), 1e-3),
    **dict.fromkeys(("", "ms", "milli", "millis", "millisecond", "milliseconds"), 1),
    **dict.fromkeys(("s", "second", "seconds"), 1_000),
    **dict.fromkeys(("m", "minute", "minutes"), 60_000),
    **dict.fromkeys(("h", "hour", "hours"), 3_600_000),
    **dict.fromkeys(("d", "day", "days"), 86_400_000),
}
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*")


def duration_ms(text: str) -> int | None:
    """A HOCON duration (``3s``, ``3000ms``, ``3 seconds``; a bare number is ms) in ms, or None."""
    match = _DURATION.fullmatch(text)
    if match is None or match[2] not in _UNIT_MS:
        return None
    return int(float(match[1]) * _UNIT_MS[match[2]])


def ttl_label(spelling: str) -> str:
    return f"ttl {spelling}"


def waitable_ttl(spelling: str) -> bool:
    """Whether an instance with this ttl is launched (a duration the suite waits out)."""
    ms = duration_ms(spelling)
    return ms is not None and 0 < ms <= MAX_TTL_MS


@dataclass
class Instance:
    """One launched instance, as the checks see it. The token never shows in its repr."""

    label: str
    roles: list[str]
    ttl: str | None = None
    key: str | None = None
    url: str = ""
    token: str = field(default="", repr=False)
    #: epoch seconds just before its launch command started
    launched_at: float = 0.0
    #: one probe per header form (AuthForm name), made as soon as it answered
    first: dict[str, Sample] = field(default_factory=dict)
    #: a token made on the instance with its bootstrap token right after start (matrix instance only)
    victim_id: int | None = None
    #: a manager token without expiry made the same way, to look at the instance once the bootstrap token expired
    observer: str = field(default="", repr=False)
    #: the header form (AuthForm name) the observer and the victim were made in: one the instance accepts
    observer_form: str = "X_API_KEY"
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Instance:
        inst = cls(**{**data, "first": {k: Sample(**v) for k, v in (data.get("first") or {}).items()}})
        REDACTOR.register(inst.token, inst.observer)
        return inst


def plan(profile: TargetProfile) -> list[Instance]:
    """The instances the bootstrap checks need, ttl ones first (their time runs from the start)."""
    manager, unprivileged = [profile.manager_role], [profile.unprivileged_role]
    ttl = [Instance(ttl_label(s), manager, ttl=s) for s in profile.bootstrap.ttl_spellings if waitable_ttl(s)]
    return [
        *ttl,
        Instance(UNPRIVILEGED, unprivileged),
        Instance(LOWER_CASE_KEY, manager, key="servicetoken"),
    ]


def matrix_label(profile: TargetProfile) -> str | None:
    """The instance whose bootstrap token the authorization matrix presents once its ttl is past."""
    spellings = [s for s in profile.bootstrap.ttl_spellings if waitable_ttl(s)]
    if not spellings:
        return None
    return ttl_label(min(spellings, key=lambda s: duration_ms(s) or 0))


def _path(run_dir: Path, label: str) -> Path:
    return run_dir / "instances" / (hashlib.sha256(label.encode()).hexdigest()[:16] + ".json")


class Fleet:
    """The instances of one run, launched in background threads by the controller."""

    def __init__(self, profile: TargetProfile, run_dir: Path):
        self.profile = profile
        self.run_dir = run_dir
        (run_dir / "instances").mkdir(mode=0o700, exist_ok=True)
        self._lock = threading.Lock()
        self._processes: list[ManagedProcess] = []
        self._closed = False
        self._threads: list[threading.Thread] = []

    def start(self, instances: list[Instance]) -> None:
        victim_label = matrix_label(self.profile)
        for inst in instances:
            thread = threading.Thread(
                target=self._launch, args=(inst, inst.label == victim_label), name=f"launch {inst.label}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def _launch(self, inst: Instance, make_victim: bool) -> None:
        proc = ManagedProcess(self.profile, roles=inst.roles, ttl=inst.ttl, key=inst.key)
        with self._lock:
            if self._closed:
                return
            self._processes.append(proc)
        inst.launched_at = time.time()
        try:
            proc.start()
        except HarnessError as exc:
            inst.error = f"it did not start: {exc}"
        except Exception as exc:  # a thread must always say what became of its instance
            inst.error = f"it did not start: {type(exc).__name__}: {exc}"
        with self._lock:
            closed = self._closed
        if closed:  # the run ended while it started: a process started after close() is stopped here
            proc.stop()
            return
        if inst.error is None:
            inst.url, inst.token = proc.url, proc.token
            self._first_calls(inst, make_victim)
            if proc.proc is not None and proc.proc.poll() is not None:
                # something else answered on its port, and the instance itself could not start
                inst.error = (
                    f"it exited with status {proc.proc.returncode} right after something answered at {proc.url}"
                )
        self._publish(inst)

    def _first_calls(self, inst: Instance, make_victim: bool) -> None:
        p = self.profile
        try:
            with ApiClient.for_profile(p, inst.url) as client:
                for form in (AuthForm.X_API_KEY, AuthForm.AUTHORIZATION):
                    inst.first[form.name] = Sample.of(client.probe(p.probe_path, inst.token, form))
                accepted = [AuthForm[name] for name, sample in inst.first.items() if sample.accepted]
                for works in accepted if make_victim else []:
                    # the first form in which the bootstrap token manages tokens too
                    _, inst.observer = _make_token(client, inst.token, works, "stsct-matrix-observer", [p.manager_role])
                    if inst.observer:
                        victim = ("stsct-matrix-victim", [p.unprivileged_role])
                        inst.victim_id, _ = _make_token(client, inst.token, works, *victim)
                        inst.observer_form = works.name
                        break
        except httpx.HTTPError as exc:
            inst.error = f"it started, but the first call with its bootstrap token failed: {type(exc).__name__}"

    def _publish(self, inst: Instance) -> None:
        path = _path(self.run_dir, inst.label)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(inst.as_dict(), fh)
        os.replace(tmp, path)

    def close(self) -> None:
        """Stop every instance (and any still starting); later launches are not started."""
        with self._lock:
            self._closed = True
            procs = list(self._processes)
        for proc in procs:
            with contextlib.suppress(Exception):
                proc.stop()


def _make_token(client: ApiClient, token: str, form: AuthForm, name: str, roles: list[str]) -> tuple[int | None, str]:
    """A token on the instance, made with its bootstrap token: (its id, its secret), or (None, "")."""
    resp = client.create_token(token, {"name": name, "roles": roles}, form=form)
    secret = ""
    with contextlib.suppress(ValueError, AttributeError, TypeError):
        secret = str(resp.json().get("token") or "")
    if not resp.is_success or not secret:
        return None, ""
    REDACTOR.register(secret)
    listing = client.list_tokens(token, form=form)
    try:
        items = listing.json() if listing.is_success else []
    except ValueError:
        return None, secret
    ids = [token_id(i.get("id")) for i in items if isinstance(i, dict) and i.get("name") == name]
    return next((i for i in ids if i is not None), None), secret


def wait_for(run_dir: Path, label: str, timeout: float) -> Instance:
    """The instance ``label`` once its launching thread has published it (raises HarnessError after ``timeout``)."""
    path = _path(run_dir, label)
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise HarnessError(f"the instance with bootstrap {label} was not ready within {timeout:g}s")
        time.sleep(0.05)
    return Instance.from_dict(json.loads(path.read_text(encoding="utf-8")))


#: slack after the ttl, measured from the first accepted call, before "after" is judged
AFTER_SLACK_MS = 250


def wait_past_ttl(client: ApiClient, inst: Instance, ttl_ms: int, probe_path: str) -> None:
    """Wait until the instance's bootstrap token's ttl has surely run out on the instance.

    The token exists by the time it was first accepted, so it was created at the latest when
    that call returned and at the latest within one Date-header second of that call's server
    time. Both bounds must be passed: the elapsed time since that call needs no clock to agree,
    and the instance's own clock must show the ttl gone as well. Raises AssertionError when the
    instance's clock cannot be read or does not get there.
    """
    accepted = [s for s in inst.first.values() if s.accepted]
    if not accepted:
        raise AssertionError(f"the bootstrap token of the instance {inst.label} was never accepted")
    received = min(s.at for s in accepted)
    time.sleep(max(0.0, received + (ttl_ms + AFTER_SLACK_MS) / 1000 - time.time()))
    server_times = [s.server_ms for s in accepted if s.server_ms is not None]
    if not server_times:
        raise AssertionError(f"the instance {inst.label} sent no usable Date header; its clock cannot be read")
    when = min(server_times) + 1000 + ttl_ms
    deadline = time.monotonic() + 5
    while True:
        now = server_time_ms(client.probe(probe_path))
        if now is not None and now >= when:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the instance's clock did not reach {when} within 5 s of the ttl (reads {now})")
        time.sleep(0.1)
