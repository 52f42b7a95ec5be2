"""Bootstrap tokens configured in other ways than the run's own: the scenario each one goes through.

The bootstrap checks need deployments configured otherwise than the main one: a bootstrap
token with only the unprivileged role, one under the seed document's ``servicetoken`` key,
one per ttl spelling. Each such configuration is an :class:`Instance`, and the controller
takes every instance through the same recorded *scenario* (:func:`run_scenario`): call it in
both header forms as soon as it answers, try token management with its bootstrap token, and,
once its ttl has passed on the server's clock, call it again — for the instance the
authorization matrix uses, every call of the matrix's bootstrap-expired row. What happened
is written to a file in the run's private directory, first when the instance is ready and
again when its ttl is over; the checks (in any xdist worker) read it and judge.

One launched instance is taken through another scenario (:func:`run_unused`): its bootstrap
token is never presented until its ttl has surely run out on the instance's clock, and is then
presented for the first time (ST-BOOT-007: the ttl counts from the start, not from first use).

Where the instances come from depends on the target:

- a managed target: further instances of it, launched by :class:`Fleet` as soon as the main
  one answers, each in a background thread, so their ttls run out while other checks run;
- an external target with ``bootstrap.reconfigure``: the deployment itself, reconfigured
  once per configuration before the checks start (``reconfigure.py``).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from sts_conformance.checking.checks import CLOCK_MARGIN_MS
from sts_conformance.core import disguise
from sts_conformance.core.errors import HarnessError
from sts_conformance.core.redact import REDACTOR
from sts_conformance.target import servertime, settle
from sts_conformance.target.client import EXCHANGES, TOKENS_PATH, ApiClient, AuthForm, exchange_of, server_time_ms
from sts_conformance.target.connect import ManagedProcess
from sts_conformance.target.probe import choose as choose_probe
from sts_conformance.target.profile import TargetProfile
from sts_conformance.tokens.journal import Journal, token_id
from sts_conformance.tokens.prepare import Sample

UNPRIVILEGED = "unprivileged-role"
LOWER_CASE_KEY = "lower-case-key"
#: a manager bootstrap token with a ttl too long to wait out: its listed expiration is compared
#: with start + ttl (wrong units show without waiting), then it is deleted (and must be refused)
LONG_TTL = "7d"
LONG = f"long ttl {LONG_TTL}"
#: a bootstrap token first presented only once its ttl has surely run out (a launched instance only)
UNUSED = "unused until past its ttl"
#: the calls its bootstrap token is first presented to, in this order, each in both header forms
UNUSED_CALLS = ("probe", "server-info", "list")
#: longest ttl the suite waits out on an instance it launched: waits stay a few seconds
MAX_TTL_MS = 10_000
#: longest ttl it waits out on a deployment it reconfigures (a real rollout takes minutes)
MAX_RECONFIGURED_TTL_MS = 30 * 60_000
#: the calls of the matrix's bootstrap-expired row, in order
ROW_CALLS = ("probe", "server-info", "list", "create", "delete")
READY, DONE = "ready", "done"

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


def max_ttl_ms(profile: TargetProfile) -> int:
    """The longest ttl the suite waits out on this target."""
    return MAX_RECONFIGURED_TTL_MS if profile.bootstrap.reconfigure else MAX_TTL_MS


def waitable_ttl(spelling: str, limit: int = MAX_TTL_MS) -> bool:
    """Whether a ttl spelling is a duration the suite waits out (and so checks)."""
    ms = duration_ms(spelling)
    return ms is not None and 0 < ms <= limit


@dataclass
class RowCall:
    """One call of the matrix's bootstrap-expired row, as the scenario made it."""

    status: int | None
    created: bool | None = None
    victim_kept: bool | None = None
    #: which secrets the answer carried (labels, never the secrets): see ``_carried``
    leaks: list[str] = field(default_factory=list)
    #: the masked exchange, for a failure report
    exchange: dict[str, Any] | None = None


@dataclass
class Instance:
    """One bootstrap configuration and what its scenario recorded. The token never shows in its repr."""

    label: str
    roles: list[str]
    ttl: str | None = None
    key: str | None = None
    #: every label it answers to (one configuration may serve a ttl spelling and a role check)
    labels: list[str] = field(default_factory=list)
    url: str = ""
    token: str = field(default="", repr=False)
    #: epoch seconds just before it was launched (or reconfigured)
    launched_at: float = 0.0
    #: the call its bootstrap token is presented to (``probe.choose``, made as soon as it answered)
    probe_path: str = ""
    #: one probe per header form (AuthForm name), made as soon as it answered
    first: dict[str, Sample] = field(default_factory=dict)
    #: token management with its bootstrap token, before the ttl: "list", "create", "delete" -> what came back
    manage: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: one probe per header form once the ttl has passed on the instance's clock
    after: dict[str, Sample] = field(default_factory=dict)
    #: the matrix's bootstrap-expired row (matrix instance only), call -> RowCall
    expired: dict[str, RowCall] = field(default_factory=dict)
    #: ms after the launch at which the bootstrap token's create of the row's observer came back
    #: without a token (matrix instance only): past the ttl, the row could not be made in time
    observer_refused_after_ms: float | None = None
    #: (the UNUSED configuration) the anonymous call its clock was read from once it answered
    anonymous: Sample | None = None
    #: (UNUSED) when, on its clock (epoch ms), its ttl has surely run out counted from its start
    due_ms: int | None = None
    #: (UNUSED) its bootstrap token's first presentations once past ``due_ms``, in the order made:
    #: "call/FORM" -> what came back
    late: dict[str, Sample] = field(default_factory=dict)
    #: (UNUSED) the clock reading, on the clock ``due_ms`` is on, that showed it past before the first
    #: presentation (below ``due_ms``: it did not get there, and an accept says nothing)
    past_ms: int | None = None
    stage: str = ""
    error: str | None = None

    def __post_init__(self) -> None:
        if not self.labels:
            self.labels = [self.label]

    @property
    def shown_past_due(self) -> bool:
        """(UNUSED) Whether its clock showed the ttl surely past before its token was first presented."""
        return self.due_ms is not None and self.past_ms is not None and self.past_ms >= self.due_ms

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Instance:
        inst = cls(
            **{
                **data,
                "first": {k: Sample(**v) for k, v in (data.get("first") or {}).items()},
                "after": {k: Sample(**v) for k, v in (data.get("after") or {}).items()},
                "expired": {k: RowCall(**v) for k, v in (data.get("expired") or {}).items()},
                "anonymous": Sample(**data["anonymous"]) if data.get("anonymous") else None,
                "late": {k: Sample(**v) for k, v in (data.get("late") or {}).items()},
            }
        )
        REDACTOR.register(inst.token)
        return inst


MANAGER = "manager-role"


def plan(profile: TargetProfile) -> list[Instance]:
    """The bootstrap configurations the checks need, each serving as many checks as it can.

    One per ttl spelling (shortest first), the first with the manager role (the matrix's row and
    the manager checks), the second with only the unprivileged role, any further one with the
    manager role; a role left without a spelling gets a configuration of its own, and so do
    the seed document's ``servicetoken`` key and a manager token with a ttl too long to wait
    out (``LONG_TTL``: its listed expiration is judged, then it is deleted). On a managed target one
    more, with the shortest spelling, is never presented until that ttl has passed (``UNUSED``; a
    reconfigured deployment would need one more rollout, and knows it is up only by its token).
    Fewer configurations mean fewer processes on a managed target, and fewer rollouts of a
    reconfigured one.
    """
    limit = max_ttl_ms(profile)
    spellings = sorted(
        (s for s in profile.bootstrap.ttl_spellings if waitable_ttl(s, limit)), key=lambda s: duration_ms(s) or 0
    )
    manager, unprivileged = [profile.manager_role], [profile.unprivileged_role]
    # the key spelling has a configuration of its own: a key that is not read (a SHOULD) must not
    # keep a ttl spelling (a MUST) from being checked
    roles_for: list[tuple[str, list[str]]] = [(MANAGER, manager), (UNPRIVILEGED, unprivileged)]
    configs = []
    # the manager's checks (list, create, delete with it) go to the long ttl's configuration: a few
    # seconds' ttl may run out while a slow target answers them, and a refusal then says nothing
    for i, spelling in enumerate(spellings):
        label, roles = roles_for[i] if i < len(roles_for) else (ttl_label(spelling), manager)
        labels = [ttl_label(spelling)] + ([label] if label != MANAGER else [])
        configs.append(Instance(ttl_label(spelling), roles, ttl=spelling, labels=labels))
    configs += [Instance(label, roles) for label, roles in roles_for[len(spellings) :] if label != MANAGER]
    if "servicetoken" in profile.bootstrap.key_spellings:
        # (not against a chart deployment unless the profile asks: current charts read only serviceToken)
        configs.append(Instance(LOWER_CASE_KEY, manager, key="servicetoken"))
    configs.append(Instance(LONG, manager, ttl=LONG_TTL, labels=[LONG, MANAGER]))
    if profile.managed and spellings:
        # (the manager role: a wrong accept on the list shows as 200, plainly accepted)
        configs.append(Instance(UNUSED, manager, ttl=spellings[0]))
    return configs


def matrix_label(profile: TargetProfile) -> str | None:
    """The configuration whose bootstrap token the authorization matrix presents once its ttl is past."""
    first = plan(profile)[0]
    return first.label if first.ttl is not None else None


def _path(run_dir: Path, label: str) -> Path:
    return run_dir / "instances" / (hashlib.sha256(label.encode()).hexdigest()[:16] + ".json")


def publish(run_dir: Path, inst: Instance, stage: str) -> None:
    """Write what is known of ``inst`` under each of its labels (private to the run: 0600)."""
    inst.stage = stage
    (run_dir / "instances").mkdir(mode=0o700, exist_ok=True)
    for label in inst.labels:
        path = _path(run_dir, label)
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(inst.as_dict(), fh)
        os.replace(tmp, path)


def wait_for(run_dir: Path, label: str, timeout: float, stage: str = READY) -> Instance:
    """The instance ``label`` once it has reached ``stage`` (raises HarnessError after ``timeout``)."""
    path = _path(run_dir, label)
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError, ValueError):
            inst = Instance.from_dict(json.loads(path.read_text(encoding="utf-8")))
            if inst.error is not None or inst.stage == DONE or inst.stage == stage:
                return inst
        if time.monotonic() > deadline:
            raise HarnessError(f"the instance with bootstrap {label} was not {stage} within {timeout:g}s")
        time.sleep(0.05)


# -- the scenario ---------------------------------------------------------------------------------


@dataclass
class ScenarioTools:
    """What a scenario needs besides the instance: where to look, and how to keep the target clean.

    ``observer`` is a manager credential that outlives the bootstrap token (to see what a call
    changed); ``victim`` makes a token the expired bootstrap token's delete is aimed at;
    ``journal`` records tokens made on the shared target, so the run's cleanup removes them.
    """

    profile: TargetProfile
    client: ApiClient
    observer: Callable[[], tuple[str, AuthForm] | None]
    victim: Callable[[], int | None]
    journal: Journal | None = None
    name_prefix: str = "stsct-boot"
    #: the header form the run's admin credential manages tokens in: tried first for management too
    manage_form: AuthForm = AuthForm.X_API_KEY
    #: ids listed before this configuration was applied (a reconfigured deployment): not its bootstrap token
    known_ids: frozenset[int] = frozenset()


def run_scenario(inst: Instance, tools: ScenarioTools, run_dir: Path, *, row: bool) -> None:
    """Take ``inst`` through the scenario, publishing it when ready and when its ttl is over."""
    p, client = tools.profile, tools.client
    try:
        # a status endpoint that answers anyone would accept an expired bootstrap token too
        inst.probe_path = choose_probe(client, p).path
        inst.first = _first_probes(inst, tools)
        works = _management_form(inst, tools)
        forms = (AuthForm.X_API_KEY, AuthForm.AUTHORIZATION)
        # the row's tokens are made first, while the bootstrap token (a ttl of seconds) may still make them
        observer = tools.observer() if row else None
        victims = {form: tools.victim() for form in forms} if row and works is not None else {}
        # token management is judged on the configurations that carry a role's checks or the key's
        if works is not None and {MANAGER, UNPRIVILEGED, LOWER_CASE_KEY} & set(inst.labels):
            _manage(inst, tools, works)
        if works is not None and inst.label == LONG:
            _delete_own(inst, tools, works)
        publish(run_dir, inst, READY)
        ttl_ms = duration_ms(inst.ttl or "")
        if ttl_ms is None or works is None or not waitable_ttl(inst.ttl or "", max_ttl_ms(p)):
            publish(run_dir, inst, DONE)
            return
        wait_past_ttl(client, inst, ttl_ms, inst.probe_path)
        for form in (AuthForm.X_API_KEY, AuthForm.AUTHORIZATION):
            inst.after[form.name] = Sample.of(client.probe(inst.probe_path, inst.token, form))
        if row and observer is not None:
            for form in forms:
                inst.expired.update(_expired_row(inst, tools, form, observer, victims.get(form)))
    except (httpx.HTTPError, AssertionError, HarnessError) as exc:
        inst.error = f"the scenario with its bootstrap token broke off: {type(exc).__name__}: {exc}"
    publish(run_dir, inst, DONE)


def _first_probes(inst: Instance, tools: ScenarioTools) -> dict[str, Sample]:
    """One probe per header form with the bootstrap token, as soon as the instance answers; again within the
    settle window while neither is accepted (a deployment may write its bootstrap token a moment late)."""

    def probes(forms: tuple[AuthForm, ...] = (AuthForm.X_API_KEY, AuthForm.AUTHORIZATION)) -> dict[str, Sample]:
        return {f.name: Sample.of(tools.client.probe(inst.probe_path, inst.token, f)) for f in forms}

    # the seed document's key spelling is a SHOULD: a correct target may never read it
    optional = inst.key is not None and inst.key != tools.profile.bootstrap.key
    first = settle.until(settle.BOOTSTRAP, probes, lambda s: any(x.accepted for x in s.values()), may_not=optional)
    refused = tuple(AuthForm[name] for name, sample in first.items() if not sample.accepted)
    if refused and len(refused) < len(first):
        # the token came into being between the two probes: the form refused before it existed is tried again
        first.update(probes(refused))
    return first


def _management_form(inst: Instance, tools: ScenarioTools) -> AuthForm | None:
    """The form to manage tokens in: the run's admin form when the bootstrap token passed the probe in it,
    else any form it passed in (None: it passed in none)."""
    accepted = [AuthForm[name] for name, sample in inst.first.items() if sample.accepted]
    if tools.manage_form in accepted:
        return tools.manage_form
    return accepted[0] if accepted else None


def _manage(inst: Instance, tools: ScenarioTools, form: AuthForm) -> None:
    """List, create and delete with the bootstrap token (a manager's should work, an unprivileged one's not)."""
    client, token = tools.client, inst.token
    listing = client.list_tokens(token, form=form)
    items = _items(listing)
    inst.manage["list"] = {
        "status": listing.status_code,
        "array": items is not None,
        "manager": tools.profile.manager_role in inst.roles,
        "form": form.name,
        "at": time.time(),  # (a refusal after the token's ttl says nothing of its roles)
    }
    name = f"{tools.name_prefix}-{inst.label.replace(' ', '-')}-{os.getpid()}"
    key = tools.journal.intent(name, [tools.profile.unprivileged_role]) if tools.journal else None
    created = client.create_token(token, {"name": name, "roles": [tools.profile.unprivileged_role]}, form=form)
    created_at = time.time()
    with contextlib.suppress(ValueError, AttributeError, TypeError):
        REDACTOR.register(created.json().get("token"), issued=True)
    if key is not None and tools.journal is not None:
        tools.journal.answered(key, created.status_code)
    ids_named = functools.partial(_ids_named, client, tools, name)
    found = settle.until(settle.LIST, ids_named, bool) if created.is_success else ids_named()
    if key is not None and tools.journal is not None:
        for tid in found:
            tools.journal.found(key, tid)
    inst.manage["create"] = {"status": created.status_code, "listed": bool(found), "at": created_at}
    if not inst.manage["list"]["manager"]:
        _delete_as_unprivileged(inst, tools, form)
    if found and inst.manage["list"]["manager"]:
        deleted = client.delete_token(token, found[0], form=form)
        gone_from = (lambda ids: found[0] not in ids) if deleted.is_success else (lambda ids: True)
        gone = found[0] not in settle.until(settle.LIST, ids_named, gone_from)
        if gone and tools.journal is not None:
            tools.journal.gone(found[0])
        inst.manage["delete"] = {"status": deleted.status_code, "gone": gone}


def _delete_as_unprivileged(inst: Instance, tools: ScenarioTools, form: AuthForm) -> None:
    """Aim a delete with a bootstrap token without the manager role at a token the observer made.

    Only where another credential can make that token (a reconfigured deployment, with the run's
    admin); on a launched instance nobody but its bootstrap token can, and nothing is tried.
    """
    victim = tools.victim()
    seen = tools.observer()
    if victim is None or seen is None:
        return
    deleted = tools.client.delete_token(inst.token, victim, form=form)
    items = _items(tools.client.list_tokens(seen[0], form=seen[1])) or []
    kept = any(token_id(i.get("id")) == victim for i in items)
    inst.manage["delete-as-unprivileged"] = {"status": deleted.status_code, "kept": kept, "id": victim}


def _delete_own(inst: Instance, tools: ScenarioTools, form: AuthForm) -> None:
    """Find the bootstrap token in the list (its expiration), delete it with itself, and present it again.

    It is told apart as the one entry neither made by a run of this suite nor listed before the
    configuration was applied: on a launched instance the only entry not made by the suite.
    When it cannot be told, nothing is deleted.
    """
    client = tools.client
    listing = client.list_tokens(inst.token, form=form)
    items = _items(listing) or []
    others = [
        i
        for i in items
        if not str(i.get("name", "")).startswith("stsct-") and token_id(i.get("id")) not in tools.known_ids
    ]
    entry, by = pick_bootstrap(others, inst.roles, expiry_window(inst))
    found: dict[str, Any] = {"candidates": len(others), "list": listing.status_code, "by": by}
    if entry is not None:
        found["id"] = token_id(entry.get("id"))
        found["expiration"] = entry.get("expiration")
    inst.manage["bootstrap"] = found
    if found.get("id") is None:
        return
    deleted = client.delete_token(inst.token, found["id"], form=form)
    present = functools.partial(client.probe, inst.probe_path, inst.token, form)
    # a deployment may take a moment to forget a deleted token (an authentication cache)
    after = Sample.of(settle.refused(present) if deleted.is_success else present())
    inst.manage["delete-bootstrap"] = {"status": deleted.status_code, "after": asdict(after), "form": form.name}


#: how a bootstrap token was told apart in the list (``pick_bootstrap``)
BY_ONLY, BY_ROLES, BY_EXPIRY = "the only entry", "its roles", "its roles and its expiration"


def expiry_window(inst: Instance) -> tuple[int, int] | None:
    """The expirations (epoch ms, server clock) the instance's bootstrap token may be listed with.

    Created between the start (launch or reconfiguration) and its first accepted call, plus the
    ttl, widened by the clock margin: None when its ttl is not a duration or no accepted call
    read the server's clock.
    """
    ttl_ms = duration_ms(inst.ttl or "")
    first = [s for s in inst.first.values() if s.accepted and s.server_ms is not None]
    if ttl_ms is None or not first:
        return None
    answered = min(first, key=lambda s: s.at)
    server_ms = answered.server_ms or 0
    latest = server_ms + 1000 + CLOCK_MARGIN_MS
    earliest = server_ms - int((answered.at - inst.launched_at) * 1000) - CLOCK_MARGIN_MS
    return earliest + ttl_ms, latest + ttl_ms


def pick_bootstrap(
    others: list[dict[str, Any]], roles: list[str], window: tuple[int, int] | None
) -> tuple[dict[str, Any] | None, str]:
    """The list entry that is the bootstrap token, told apart by what its configuration says, and how.

    ``others`` are the entries neither made by the suite nor listed before the configuration was
    applied. The only one of them is the bootstrap token; among several, the one entry with the
    configured roles; among several of those, the one listed as expiring at start plus ttl
    (``window``). None when no such single entry exists (then nothing is deleted).
    """
    if len(others) == 1:
        return others[0], BY_ONLY
    wanted = set(roles)
    same_roles = [i for i in others if isinstance(i.get("roles"), list) and set(i["roles"]) == wanted]
    if len(same_roles) == 1:
        return same_roles[0], BY_ROLES
    if window is not None:
        low, high = window
        timed = [i for i in same_roles if type(i.get("expiration")) is int and low <= i["expiration"] <= high]
        if len(timed) == 1:
            return timed[0], BY_EXPIRY
    return None, ""


def _items(resp: httpx.Response) -> list[dict[str, Any]] | None:
    try:
        items = resp.json() if resp.is_success else None
    except ValueError:
        return None
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else None


def _ids_named(client: ApiClient, tools: ScenarioTools, name: str) -> list[int]:
    """Ids listed under ``name``, seen by the observer (or, on a launched instance, by the bootstrap token)."""
    seen = tools.observer()
    if seen is None:
        return []
    secret, form = seen
    items = _items(client.list_tokens(secret, form=form)) or []
    return [tid for i in items if i.get("name") == name and (tid := token_id(i.get("id"))) is not None]


def _expired_row(
    inst: Instance, tools: ScenarioTools, form: AuthForm, observer: tuple[str, AuthForm], victim: int | None
) -> dict[str, RowCall]:
    """Every call of the matrix's row, presenting the expired bootstrap token in ``form``."""
    client, p = tools.client, tools.profile
    headers = form.headers(inst.token)
    suffix = "X-API-Key" if form is AuthForm.X_API_KEY else "Authorization-ApiKey"
    name = f"{tools.name_prefix}-expired-{suffix}-{os.getpid()}"
    key = tools.journal.intent(name, [p.unprivileged_role]) if tools.journal else None
    made: dict[str, httpx.Response] = {}
    known: dict[str, frozenset[str]] = {}

    def call(which: str, method: str, path: str, **kw: Any) -> None:
        known[which] = REDACTOR.secrets()
        made[which] = client.request(method, path, headers=headers, **kw)

    call("probe", "GET", p.probe_path, api=False)
    call("server-info", "GET", "/server/info")
    call("list", "GET", TOKENS_PATH)
    call("create", "POST", TOKENS_PATH, json_body={"name": name, "roles": [p.unprivileged_role]})
    with contextlib.suppress(ValueError, AttributeError, TypeError):
        REDACTOR.register(made["create"].json().get("token"), issued=True)
    if key is not None and tools.journal is not None:
        tools.journal.answered(key, made["create"].status_code)
    if victim is not None:
        call("delete", "DELETE", f"{TOKENS_PATH}/{victim}")
    secret, observer_form = observer
    items = _items(client.list_tokens(secret, form=observer_form)) or []
    ids = {token_id(i.get("id")) for i in items}
    created = [tid for i in items if i.get("name") == name and (tid := token_id(i.get("id"))) is not None]
    if key is not None and tools.journal is not None:
        for tid in created:
            tools.journal.found(key, tid)
    records = {}
    for which, resp in made.items():
        ex = exchange_of(resp)
        records[f"{which}/{form.name}"] = RowCall(
            resp.status_code,
            created=bool(created) if which == "create" else None,
            victim_kept=(victim in ids) if which == "delete" else None,
            leaks=carried(resp, inst.token, known[which]),
            exchange=ex.as_dict() if ex is not None else None,
        )
    return records


def carried(resp: httpx.Response, presented: str | None, known: frozenset[str]) -> list[str]:
    """Which secrets (as labels) an answer carries in its body or its headers.

    ``presented`` is the credential the request presented; ``known`` the secrets issued during
    the run before the request was sent (so a create may rightly carry its own new secret).
    """
    texts = [resp.text, *(f"{k}: {v}" for k, v in resp.headers.multi_items())]
    with contextlib.suppress(ValueError):
        # a secret may hide behind JSON escapes (\\u002f for /) in the raw body
        texts.append(json.dumps(resp.json(), ensure_ascii=False))
    # in clear or in disguise: base64, percent-encoded, a fragment of an issued secret (disguise.py)
    found = disguise.carried(texts, {*known, *([presented] if presented else [])}, REDACTOR.issued())
    labels = []
    if presented and presented in found:
        labels.append(f"the credential presented in that request ({found.pop(presented)})")
    if found:
        kinds = ", ".join(sorted(set(found.values())))
        labels.append(f"{len(found)} secret(s) issued earlier in the run ({kinds})")
    return labels


#: slack after the ttl, measured from the first accepted call, before "after" is judged
AFTER_SLACK_MS = 250
#: further slack when the instance's clock cannot be read anonymously (no Date header)
NO_CLOCK_SLACK_MS = 1_000


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
    now = server_time_ms(client.probe(probe_path))
    if not server_times or now is None:
        # no clock to read anonymously (no Date header): the elapsed time alone says the ttl is over on
        # any clock that runs at the right rate; one second more stands for the reading that is missing
        time.sleep(NO_CLOCK_SLACK_MS / 1000)
        return
    when = min(server_times) + 1000 + ttl_ms
    deadline = time.monotonic() + 5
    while now is None or now < when:
        if time.monotonic() > deadline:
            raise AssertionError(f"the instance's clock did not reach {when} within 5 s of the ttl (reads {now})")
        time.sleep(0.1)
        now = server_time_ms(client.probe(probe_path))


# -- a bootstrap token first presented after its ttl ----------------------------------------------

#: how long past its due time the instance's clock may take to show it (then the presentations go ahead,
#: and an accept among them is inconclusive)
DUE_GRACE_S = 5.0


def unused_due_ms(anonymous: Sample, ttl_ms: int, window_ms: int) -> int:
    """When the ttl of a bootstrap token created at start has surely run out (epoch ms).

    On the instance's clock when ``anonymous`` read it (a Date header truncates to the second: one
    more), else on the suite's clock (a few seconds more, ``servertime.LOCAL_MARGIN_MS``). The token
    exists by the time the instance answered, or within the bootstrap settle window after (a
    deployment that writes it a moment late); its ttl counts from then.
    """
    slack = window_ms + ttl_ms + CLOCK_MARGIN_MS
    if anonymous.server_ms is not None:
        return anonymous.server_ms + 1000 + slack
    return int(anonymous.at * 1000) + servertime.LOCAL_MARGIN_MS + slack


def run_unused(inst: Instance, client: ApiClient, profile: TargetProfile, run_dir: Path, form: AuthForm) -> None:
    """Present the bootstrap token for the first time only once its ttl has surely run out (ST-BOOT-007).

    Nothing presents it before: the launch saw the instance answer an anonymous call, and the
    probe is chosen and the clock read anonymously too. Once the instance's clock is past
    :func:`unused_due_ms`, each call of ``UNUSED_CALLS`` in both header forms (``form``, the run's
    management form, first): the first of them is the token's first use.
    """
    try:
        ttl_ms = duration_ms(inst.ttl or "")
        if ttl_ms is None:
            raise HarnessError(f"the ttl {inst.ttl!r} is not a duration")
        inst.probe_path = choose_probe(client, profile).path
        inst.anonymous = anonymous = Sample.of(client.probe(inst.probe_path))
        window_ms = int(profile.consistency.window(settle.BOOTSTRAP) * 1000)
        inst.due_ms = due = unused_due_ms(anonymous, ttl_ms, window_ms)
        publish(run_dir, inst, READY)
        inst.past_ms = _wait_until(client, inst.probe_path, anonymous, due)
        forms = (form, *(f for f in (AuthForm.X_API_KEY, AuthForm.AUTHORIZATION) if f is not form))
        for call in UNUSED_CALLS:
            for how in forms:
                inst.late[f"{call}/{how.name}"] = Sample.of(_present(client, inst, call, how))
    except (httpx.HTTPError, HarnessError) as exc:
        inst.error = f"the scenario with its never-used bootstrap token broke off: {type(exc).__name__}: {exc}"
    publish(run_dir, inst, DONE)


def _wait_until(client: ApiClient, probe_path: str, anonymous: Sample, due: int) -> int | None:
    """Wait until the clock ``due`` is on (the instance's; the suite's when ``anonymous`` read none) reads
    ``due``; the reading that showed it, or the last one when it did not get there within ``DUE_GRACE_S``."""
    if anonymous.server_ms is None:
        time.sleep(max(0.0, due / 1000 - time.time()))
        return int(time.time() * 1000)
    # a Date truncates: the instance's clock was at least that far on when anonymous returned
    time.sleep(max(0.0, anonymous.at + (due - anonymous.server_ms) / 1000 - time.time()))
    deadline = time.monotonic() + DUE_GRACE_S
    now = Sample.of(client.probe(probe_path)).server_ms
    while (now is None or now < due) and time.monotonic() < deadline:
        time.sleep(0.1)
        now = Sample.of(client.probe(probe_path)).server_ms
    return now


def _present(client: ApiClient, inst: Instance, call: str, form: AuthForm) -> httpx.Response:
    if call == "probe":
        return client.probe(inst.probe_path, inst.token, form)
    if call == "server-info":
        return client.server_info(inst.token, form=form)
    return client.list_tokens(inst.token, form=form)


# -- a managed target's further instances --------------------------------------------------------


class Fleet:
    """The instances of one managed run, launched and taken through their scenarios in background threads."""

    def __init__(
        self,
        profile: TargetProfile,
        run_dir: Path,
        manage_form: AuthForm = AuthForm.X_API_KEY,
        *,
        name_prefix: str = "stsct-",
    ):
        self.profile = profile
        self.run_dir = run_dir
        self.manage_form = manage_form
        #: every token made on an instance is named with this (the run's ``stsct-<run>-``), and deleted
        #: before the instance stops
        self.name_prefix = name_prefix
        (run_dir / "instances").mkdir(mode=0o700, exist_ok=True)
        self._lock = threading.Lock()
        #: notified when a launch leaves its start-up: close() waits for those under way
        self._started = threading.Condition(self._lock)
        self._starting = 0
        self._processes: list[ManagedProcess] = []
        self._closed = False

    def start(self, instances: list[Instance]) -> None:
        row_label = matrix_label(self.profile)
        for inst in instances:
            thread = threading.Thread(
                target=self._launch, args=(inst, inst.label == row_label), name=f"launch {inst.label}", daemon=True
            )
            thread.start()

    def _launch(self, inst: Instance, row: bool) -> None:
        proc = ManagedProcess(self.profile, roles=inst.roles, ttl=inst.ttl, key=inst.key)
        with self._lock:
            if self._closed:
                return
            self._processes.append(proc)
            self._starting += 1
        inst.launched_at = time.time()
        closed = True
        try:
            proc.start()
        except HarnessError as exc:
            inst.error = f"it did not start: {exc}"
        except Exception as exc:  # a thread must always say what became of its instance
            inst.error = f"it did not start: {type(exc).__name__}: {exc}"
        finally:
            with self._lock:
                closed = self._closed
            if closed:  # the run ended while it started: a process started after close() is stopped here
                with contextlib.suppress(Exception):
                    proc.stop()
            with self._started:
                self._starting -= 1
                self._started.notify_all()
        if closed:
            return
        if inst.error is not None:
            publish(self.run_dir, inst, DONE)
            return
        inst.url, inst.token = proc.url, proc.token
        with EXCHANGES.muted(), ApiClient.for_profile(self.profile, inst.url) as client:
            if inst.label == UNUSED:
                run_unused(inst, client, self.profile, self.run_dir, self.manage_form)
            else:
                made: dict[str, Any] = {}
                run_scenario(inst, self._tools(inst, client, made), self.run_dir, row=row)
                with contextlib.suppress(httpx.HTTPError):
                    _leave_nothing(client, inst, made.get("observer"), self.name_prefix, self.manage_form)
        if proc.proc is not None and proc.proc.poll() is not None:
            # something else answered on its port, and the instance itself could not start
            inst.error = f"it exited with status {proc.proc.returncode} right after something answered at {proc.url}"
            publish(self.run_dir, inst, DONE)

    def _tools(self, inst: Instance, client: ApiClient, made: dict[str, Any]) -> ScenarioTools:
        """On its own instance the bootstrap token makes the observer (a manager token without expiry) and
        the victim itself, right after it answered; they go away with the instance."""
        p = self.profile

        def works() -> AuthForm | None:
            accepted = [AuthForm[n] for n, s in inst.first.items() if s.accepted]
            return self.manage_form if self.manage_form in accepted else next(iter(accepted), None)

        def observer() -> tuple[str, AuthForm] | None:
            if "observer" not in made:
                form = works()
                made["observer"] = None
                if form is not None and p.manager_role in inst.roles:
                    name = f"{self.name_prefix}matrix-observer"
                    secret = _make_token(client, inst.token, form, name, [p.manager_role])
                    made["observer"] = (secret, form) if secret else None
                    if not secret:
                        inst.observer_refused_after_ms = (time.time() - inst.launched_at) * 1000
            return made["observer"]

        def victim() -> int | None:
            seen = observer()
            form = works()
            if seen is None or form is None:
                return None
            name = f"{self.name_prefix}matrix-victim-{len(made)}"
            # made by the observer (a manager token without expiry): the bootstrap token's ttl of seconds
            # may run out on a slow target before a victim is made, and who made it does not matter
            made[name] = _make_token(client, seen[0], seen[1], name, [p.unprivileged_role])

            def named() -> list[int]:
                items = _items(client.list_tokens(seen[0], form=seen[1])) or []
                return [tid for i in items if i.get("name") == name and (tid := token_id(i.get("id"))) is not None]

            ids = settle.until(settle.LIST, named, bool) if made[name] else named()
            return ids[0] if ids else None

        prefix = f"{self.name_prefix}boot"
        return ScenarioTools(p, client, observer, victim, name_prefix=prefix, manage_form=self.manage_form)

    def close(self) -> None:
        """Stop every instance (and any still starting); later launches are not started."""
        with self._lock:
            self._closed = True
            procs = list(self._processes)
        for proc in procs:
            with contextlib.suppress(Exception):
                proc.stop()
        # a launch still starting stops its own process once it is up; wait for those (bounded), or the
        # run could end, and its daemon threads with it, leaving a process that came up just after
        with self._started:
            self._started.wait_for(lambda: self._starting == 0, timeout=self.profile.launch_timeout + 5)


def _leave_nothing(
    client: ApiClient, inst: Instance, observer: tuple[str, AuthForm] | None, prefix: str, form: AuthForm
) -> None:
    """Delete every token of the run on a launched instance, before it stops (a launch command may keep its
    data): with the observer, else with the bootstrap token while it still manages; the observer last."""
    for secret, how in [*([observer] if observer else []), (inst.token, form)]:
        items = _items(client.list_tokens(secret, form=how))
        if items is None:
            continue
        ours = [
            (tid, name)
            for i in items
            if isinstance(name := i.get("name"), str) and name.startswith(prefix) and (tid := token_id(i.get("id")))
        ]
        for tid, _name in sorted(ours, key=lambda t: t[1].endswith("matrix-observer")):
            client.delete_token(secret, tid, form=how)
        return


def _make_token(client: ApiClient, token: str, form: AuthForm, name: str, roles: list[str]) -> str:
    """A token made with a bootstrap token; its secret, or "" when the create did not give one."""
    resp = client.create_token(token, {"name": name, "roles": roles}, form=form)
    secret = ""
    with contextlib.suppress(ValueError, AttributeError, TypeError):
        secret = str(resp.json().get("token") or "")
    if not resp.is_success:
        return ""
    REDACTOR.register(secret, issued=True)
    return secret
