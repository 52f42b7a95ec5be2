"""What a run prepares once, at its start, before any check: foundations and credentials.

The controller (the only process of a serial run, or the xdist controller before it starts
its workers) does this once and hands the result to every worker:

- the ids listed before the run (``baseline``): never the run's own, never touched;
- the *foundations* every check stands on (:mod:`.preconditions`): the probe refuses an
  anonymous call, a create works, the list shows the new token, each header form is
  accepted, a delete works — each probed once, each failure named by its requirement;
- *credentials* in every state a check needs: a valid manager token, a valid unprivileged
  one, both again deleted, and both again with an expiry a few seconds ahead (created
  first, and tried at once, so their expiry runs while everything else happens). Checks
  present them; they never delete them.

Ids of the new tokens are found with one list, not one list per token.
"""

from __future__ import annotations

import contextlib
import functools
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from sts_conformance.core import preconditions as pre
from sts_conformance.core.redact import REDACTOR
from sts_conformance.target import probe as probes
from sts_conformance.target import servertime, settle, together
from sts_conformance.target.client import EXCHANGES, TOKENS_PATH, ApiClient, AuthForm
from sts_conformance.target.profile import TargetProfile
from sts_conformance.target.together import run_together
from sts_conformance.tokens.journal import token_id
from sts_conformance.tokens.ledger import LedgerError, OwnedToken, TokenLedger, elapsed_s

#: how far ahead of the server's clock the expiring credentials expire
SHORT_LIFE_MS = 3_000
#: how many of the exchanges before a foundation's failure are kept as its evidence
EVIDENCE_EXCHANGES = 3

VALID_MANAGER = "valid-manager"
VALID_UNPRIVILEGED = "valid-unprivileged"
DELETED_MANAGER = "deleted-manager"
DELETED_UNPRIVILEGED = "deleted-unprivileged"
EXPIRED_MANAGER = "expired-manager"
EXPIRED_UNPRIVILEGED = "expired-unprivileged"
#: expiring like the two above, but never presented before its expiry: its first use comes after it
EXPIRED_UNUSED = "expired-unused"
#: every prepared credential, in the order they are made (the expiring ones first)
STATES = (
    EXPIRED_MANAGER,
    EXPIRED_UNPRIVILEGED,
    EXPIRED_UNUSED,
    VALID_MANAGER,
    VALID_UNPRIVILEGED,
    DELETED_MANAGER,
    DELETED_UNPRIVILEGED,
)


@dataclass
class Sample:
    """One call made with a credential: its status, the server's clock, and when it returned (epoch s)."""

    status: int
    server_ms: int | None
    at: float
    #: the serverTimestamp its body carried (the service's own clock), if any
    stamped_ms: int | None = None
    #: what the answer handed back on its own that could stand for the credential (``issued_credentials``):
    #: header name -> value, each a secret (masked wherever shown)
    issued: dict[str, str] = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300

    @classmethod
    def of(cls, resp: httpx.Response, facts: servertime.ClockFacts | None = None) -> Sample:
        """The sample of one answer, the server's clock read as ``facts`` (the run's clock) say."""
        return cls(
            resp.status_code,
            servertime.reading_ms(resp, facts),
            time.time(),
            stamped_ms=servertime.body_time_ms(resp),
            issued=issued_credentials(resp),
        )


#: answer headers that hand back a credential beside Set-Cookie (a session or access token)
ISSUED_HEADERS = ("x-auth-token", "x-session-token", "x-access-token", "x-api-key", "authorization")


def issued_credentials(resp: httpx.Response) -> dict[str, str]:
    """What ``resp`` hands back that a later request could present instead of the token: its
    cookies as one ``Cookie`` header, and any credential-like answer header, each registered as a secret.

    The suite's client never sends these on its own (it keeps no cookies); a check presents them
    deliberately, alone, to see that they die with the token they were issued for."""
    found: dict[str, str] = {}
    cookies = [c.split(";", 1)[0].strip() for c in resp.headers.get_list("set-cookie")]
    cookies = [c for c in cookies if "=" in c and c.split("=", 1)[1]]
    if cookies:
        found["Cookie"] = "; ".join(cookies)
        REDACTOR.register(*(c.split("=", 1)[1] for c in cookies))
    for name in ISSUED_HEADERS:
        value = resp.headers.get(name)
        if value:
            found[name] = value
            REDACTOR.register(value.partition(" ")[2] or value)
    return found


@dataclass
class Credential:
    """A token prepared for the run, in one state. The secret never shows in its repr."""

    state: str
    name: str
    secret: str = field(repr=False)
    roles: list[str]
    id: int | None = None
    expiration: int | None = None
    #: calls made right after the create, before any expiry: ``probe/<form>`` and, for managers, ``list``
    samples: dict[str, Sample] = field(default_factory=dict)
    #: the create response's body, without the secret
    response: dict[str, Any] = field(default_factory=dict)

    @property
    def manager(self) -> bool:
        return self.state.endswith("manager")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Credential:
        samples = {k: Sample(**v) for k, v in (data.get("samples") or {}).items()}
        return cls(**{**data, "samples": samples})


@dataclass
class Prepared:
    """Everything prepared at the start of the run; plain data, handed to xdist workers."""

    baseline: list[int] = field(default_factory=list)
    #: the names listed before the run (only counted when small: what a fresh deployment holds)
    names_before: list[str] = field(default_factory=list)
    #: foundation requirement -> why it failed (absent: it held)
    failed: dict[str, str] = field(default_factory=dict)
    #: credential state -> [the foundation that kept it from being made, why]
    missing: dict[str, list[str]] = field(default_factory=dict)
    credentials: dict[str, Credential] = field(default_factory=dict)
    #: the expiry of the expiring credentials (epoch ms, server clock)
    expiry_ms: int | None = None
    anonymous_status: int | None = None
    #: the call the run presents credentials to (``probe.choose``): the profile's probe_path, or
    #: server/info when that answers anonymous requests; empty before the run is prepared
    probe_path: str = ""
    #: each candidate probe -> the status an anonymous GET got there
    anonymous: dict[str, int] = field(default_factory=dict)
    #: the target's latency: the median time of the requests made here, in seconds
    latency_s: float = 0.0
    #: foundation requirement -> the last exchanges (masked) before its failure was seen: the
    #: evidence a report shows for that requirement's own check
    evidence: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: how the target's clock is read (``servertime.ClockFacts``)
    clock: dict[str, Any] = field(default_factory=dict)
    #: each documented call (server-info, list, create, delete) -> the status it answered a request
    #: without any credential at the start of the run (``pre.ANONYMOUS_REFUSED_ON``)
    anonymous_calls: dict[str, int] = field(default_factory=dict)
    #: each token call (list, create, delete) -> the status it answered the valid unprivileged token
    #: at the start of the run (``pre.UNPRIVILEGED_REFUSED``)
    unprivileged_calls: dict[str, int] = field(default_factory=dict)

    @property
    def clock_facts(self) -> servertime.ClockFacts:
        return servertime.ClockFacts(**self.clock) if self.clock else servertime.ClockFacts()

    #: the requests of the preparation the target answered with a 5xx (masked; ST-ERR-001 judges them)
    server_errors: list[dict[str, Any]] = field(default_factory=list)

    def blocked(self, requirement: str) -> str | None:
        """Why the foundation ``requirement`` failed, or None when it held (or was not probed)."""
        return self.failed.get(requirement)

    def credential(self, state: str) -> Credential:
        """The prepared credential in ``state``; blocks the check when it could not be made."""
        cred = self.credentials.get(state)
        if cred is None:
            if state in self.missing:
                requirement, why = self.missing[state]
                pre.block(requirement, f"no {state} token could be prepared: {why}")
            requirement, why = self._why_missing()
            pre.block(requirement, f"no {state} token could be prepared: {why}")
        return cred

    def _why_missing(self) -> tuple[str, str]:
        for requirement in (pre.CREATE, pre.LIST, pre.UNIQUE_IDS, pre.LISTED, pre.DELETE):
            if requirement in self.failed:
                return requirement, self.failed[requirement]
        return pre.CREATE, "it was not made"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["credentials"] = {k: v.as_dict() for k, v in self.credentials.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Prepared:
        creds = {k: Credential.from_dict(v) for k, v in (data.get("credentials") or {}).items()}
        prepared = cls(**{**data, "credentials": creds})
        for cred in creds.values():
            REDACTOR.register(cred.secret, issued=True)
            for sample in cred.samples.values():
                for name, value in sample.issued.items():
                    parts = [c.split("=", 1)[1] for c in value.split("; ")] if name == "Cookie" else [value]
                    REDACTOR.register(*parts)
        return prepared


def _fail(prepared: Prepared, requirement: str, why: str) -> None:
    if requirement not in prepared.failed:
        prepared.failed[requirement] = why
        prepared.evidence[requirement] = [e.as_dict() for e in EXCHANGES.snapshot()[-EVIDENCE_EXCHANGES:]]


def _unmade(prepared: Prepared, made: dict[str, Any], state: str, requirement: str, why: str) -> None:
    """``state``'s credential cannot be used: ``requirement`` failed, and checks asking for it are blocked."""
    _fail(prepared, requirement, why)
    prepared.missing[state] = [requirement, why]
    del made[state]


def prepare(
    client: ApiClient, profile: TargetProfile, ledger: TokenLedger, *, states: Sequence[str] = STATES
) -> Prepared:
    """Probe the foundations and make the credentials; never raises for a target's misbehaviour.

    A foundation that fails is recorded under its requirement and what depends on it is
    not attempted: the checks standing on it are then blocked, and the requirement's own
    check fails on its own.
    """
    prepared = Prepared()
    EXCHANGES.clear_server_errors()
    try:
        _prepare(client, profile, ledger, prepared, states)
    finally:
        prepared.server_errors = [e.as_dict() for e in EXCHANGES.server_errors()]
    return prepared


def _prepare(
    client: ApiClient, profile: TargetProfile, ledger: TokenLedger, prepared: Prepared, states: Sequence[str]
) -> None:
    form = ledger.admin_form

    choice = probes.choose(client, profile)
    anonymous = choice.first
    assert anonymous is not None
    answered_at = time.monotonic()  # (about when the anonymous answer's clock reading was made)
    prepared.anonymous_status = anonymous.status_code
    prepared.anonymous = dict(choice.anonymous)
    prepared.probe_path = probe_path = choice.path
    if not choice.refuses_anonymous:
        tried = ", ".join(f"GET {path} {status}" for path, status in choice.anonymous.items())
        _fail(
            prepared,
            pre.ANONYMOUS_REFUSED,
            f"no documented call refuses an anonymous request ({tried}), so acceptance of a credential "
            "proves nothing and no refusal can be seen (profile setting 'probe_path')",
        )

    try:
        before = ledger._list()
    except LedgerError as exc:
        _fail(prepared, pre.LIST, str(exc))
        return
    prepared.baseline = sorted({tid for i in before if (tid := token_id(i.get("id"))) is not None})
    if len(before) <= 20:
        prepared.names_before = [str(i.get("name")) for i in before]
    ledger.baseline = frozenset(prepared.baseline)

    facts = servertime.assess(client, profile.probe_path, anonymous, ledger.admin_token, form)
    prepared.clock = facts.as_dict()
    if facts.note:
        settle.write_event(settle.SETTLE.log, {"k": "clock", "note": facts.note})
    now = servertime.reading_ms(anonymous, facts)
    if now is None:
        now = servertime.now_ms(client, profile.probe_path, facts, ledger.admin_token, form)
        answered_at = time.monotonic()
    if now is None:
        now = int(time.time() * 1000)
    prepared.expiry_ms = now + _short_life_ms(time.monotonic() - answered_at, anonymous)
    roles = {True: [profile.manager_role], False: [profile.unprivileged_role]}
    made: dict[str, Any] = {}
    bodies = []
    for state in states:
        body: dict[str, Any] = {"name": ledger.name(state), "roles": roles[state.endswith("manager")]}
        if state.startswith("expired"):
            body["expiryDate"] = prepared.expiry_ms
        bodies.append(body)
    # two waves: the credentials kept, together, then those to be deleted, together -- the newest, as when
    # made one by one (a delete that also removes the next token then takes none that is kept). The
    # outcomes are read in order, as if made one by one.
    waves: list[Any] = []
    for to_delete in (False, True):
        wave = [(s, b) for s, b in zip(states, bodies, strict=True) if s.startswith("deleted") is to_delete]
        made_now = run_together(functools.partial(_make, client, ledger, probe_path, s, b, facts) for s, b in wave)
        if len(wave) > 1 and together.LIMIT > 1:
            # a create that got a server error beside others is made once more alone (as create_raw_together)
            made_now = [
                _make(client, ledger, probe_path, s, b, facts) if m[0] is not None and m[0].status_code >= 500 else m
                for (s, b), m in zip(wave, made_now, strict=True)
            ]
        waves += made_now
    order = [s for s in states if not s.startswith("deleted")] + [s for s in states if s.startswith("deleted")]
    waves = [waves[order.index(s)] for s in states]
    for state, body, (resp, tok, cred, error) in zip(states, bodies, waves, strict=True):
        if error is not None:
            _fail(prepared, pre.CREATE, f"creating a token got no answer ({type(error).__name__})")
            break
        assert resp is not None
        if tok is None:
            _fail(
                prepared,
                pre.CREATE,
                f"creating a token {body['name']!r} with the admin credential answered {resp.status_code}"
                + ("" if resp.is_success else f": {REDACTOR.mask(resp.text[:200])}")
                + ("; the answer carried no token" if resp.is_success else ""),
            )
            break
        made[state] = (cred, tok)
    if not made:
        return
    prepared.latency_s = _median_latency(anonymous, *(tok.elapsed for _cred, tok in made.values()))

    try:
        items = ledger._list()
        found = ledger.attribute_all([tok for _cred, tok in made.values()], items)
    except LedgerError as exc:
        _fail(prepared, pre.LIST, str(exc))
        return
    unlisted = []
    for state, (cred, tok) in list(made.items()):
        cred.id = found.get(tok.name)
        if cred.id is None and tok.clash is not None:
            why = f"token {tok.name!r} is listed under id {tok.clash}, which another token has as well"
            _unmade(prepared, made, state, pre.UNIQUE_IDS, why)  # not a listing defect: the id is another's
        elif cred.id is None and cred.expiration is not None and profile.expect.expired_in_list != "kept":
            # its short life may be over already (a slow target), and a list may leave expired tokens
            # out: the checks that use it present its secret, and find no id for it in a list
            continue
        elif cred.id is None:
            unlisted.append(f"token {tok.name!r} was created ({tok.status}) but is not listed")
            del made[state]  # a check that needs it is blocked when it asks for it, saying why
            prepared.missing[state] = [pre.LISTED, unlisted[-1]]
    if not made:
        # none of them is listed under an id of its own: nothing that needs the list can go on
        if unlisted:
            _fail(prepared, pre.LISTED, unlisted[0])
        return
    _check_expiry_round_trip(prepared, made, items)

    # the header forms: a manager token surely passes the probe, in each documented form
    made_manager = made.get(VALID_MANAGER)
    if made_manager is not None:
        manager_secret = made_manager[0].secret
        forms = ((AuthForm.X_API_KEY, pre.X_API_KEY_FORM), (AuthForm.AUTHORIZATION, pre.AUTHORIZATION_FORM))
        # both probes and the list together; the list is judged only when the X-API-Key probe passed
        *probed, listing = run_together(
            [
                *(functools.partial(client.probe, probe_path, manager_secret, f) for f, _ in forms),
                functools.partial(client.list_tokens, manager_secret, form=AuthForm.X_API_KEY),
            ]
        )
        for (f, requirement), resp in zip(forms, probed, strict=True):
            if not resp.is_success:
                _fail(
                    prepared,
                    requirement,
                    f"a valid manager token presented as {f.value} was refused ({resp.status_code}) on {probe_path}",
                )
        if pre.X_API_KEY_FORM not in prepared.failed and not listing.is_success:
            _fail(
                prepared,
                pre.X_API_KEY_MANAGEMENT,
                f"a valid manager token presented as X-API-Key may not list tokens ({listing.status_code}), "
                "though it passes the probe",
            )

    _check_anonymous_calls(client, profile, ledger, prepared, made)
    deleted = []
    doomed = [state for state in (DELETED_MANAGER, DELETED_UNPRIVILEGED) if state in made]
    if DELETED_UNPRIVILEGED in made:
        # used once before its delete: what the answer hands back must die with it (ST-AUTH-021)
        cred, tok = made[DELETED_UNPRIVILEGED]
        cred.samples["probe/X_API_KEY"] = Sample.of(client.probe(probe_path, tok.secret, AuthForm.X_API_KEY))
    deletes = run_together(functools.partial(_delete, ledger, made[state][1].id) for state in doomed)
    for state, answer in zip(doomed, deletes, strict=True):
        tok = made[state][1]
        if isinstance(answer, httpx.HTTPError):
            _unmade(prepared, made, state, pre.DELETE, f"deleting a token got no answer ({type(answer).__name__})")
            continue
        # 404 is judged by the list below: a delete aimed at another token may already have removed this one
        if not answer.is_success and answer.status_code != 404:
            why = f"deleting token {tok.id} with the admin credential answered {answer.status_code}"
            _unmade(prepared, made, state, pre.DELETE, why)
            continue
        deleted.append(state)
    if deleted:
        _check_deletes(client, profile, ledger, prepared, made, deleted)
    # together, each noting its findings apart; taken over in this order, as if made one after the other
    apart = [Prepared(), Prepared()]
    run_together(
        [
            functools.partial(_check_past_expiry, ledger, profile, apart[0], now),
            functools.partial(_check_empty_dedicated_subject, ledger, profile, apart[1]),
        ]
    )
    for noted in apart:
        for requirement, why in noted.failed.items():
            if requirement not in prepared.failed:
                prepared.failed[requirement] = why
                prepared.evidence[requirement] = noted.evidence[requirement]

    prepared.credentials = {state: cred for state, (cred, _tok) in made.items()}


def _short_life_ms(since_reading_s: float, answer: httpx.Response) -> int:
    """How far ahead of a clock reading the expiring credentials expire: :data:`SHORT_LIFE_MS` after their
    creates reach the target. The reading is as old as the calls made since it (``since_reading_s``), and a
    create takes about a round trip (``answer``'s) to arrive: on a slow or distant target a fixed 3 s could
    run out before the create does, and the target rightly refuses an expiry in the past."""
    try:
        round_trip_s = answer.elapsed.total_seconds()
    except RuntimeError:  # (an answer not read through a client has no elapsed time)
        round_trip_s = 0.0
    return SHORT_LIFE_MS + int(1000 * (since_reading_s + 2 * round_trip_s))


def _delete(ledger: TokenLedger, token: int | None) -> httpx.Response | httpx.HTTPError:
    try:
        return ledger.client.delete_token(ledger.admin_token, token, form=ledger.admin_form)  # type: ignore[arg-type]
    except httpx.HTTPError as exc:
        return exc


def _make(
    client: ApiClient,
    ledger: TokenLedger,
    probe_path: str,
    state: str,
    body: dict[str, Any],
    facts: servertime.ClockFacts | None = None,
) -> tuple[httpx.Response | None, OwnedToken | None, Credential | None, httpx.HTTPError | None]:
    """Create the credential of ``state``; one with an expiry is tried at once, surely before it expires."""
    try:
        resp, tok = ledger.create_raw(body, attribute=False)
    except httpx.HTTPError as exc:
        return None, None, None, exc
    if tok is None:
        return resp, None, None, None
    shown = {k: v for k, v in tok.response.items() if k != "token"}
    expiry = body.get("expiryDate")
    cred = Credential(state, tok.name, tok.secret, list(body["roles"]), expiration=expiry, response=shown)
    if expiry is not None and state != EXPIRED_UNUSED:
        # in both forms (and a list for the manager); the unused one is first presented after its expiry
        for f in AuthForm:
            cred.samples[f"probe/{f.name}"] = Sample.of(client.probe(probe_path, tok.secret, f), facts)
        if cred.manager:
            cred.samples["list"] = Sample.of(client.list_tokens(tok.secret, form=ledger.admin_form), facts)
    return resp, tok, cred, None


def _check_deletes(
    client: ApiClient,
    profile: TargetProfile,
    ledger: TokenLedger,
    prepared: Prepared,
    made: dict[str, Any],
    deleted: list[str],
) -> None:
    """The deleted tokens are gone from the list (and the others are not), and a deleted one is refused.

    Both within the settle windows: a list or an authentication cache may show a delete late.
    """
    gone = {made[state][1].id for state in deleted}

    def ids() -> set[int | None]:
        return {token_id(i.get("id")) for i in ledger._list()}

    try:
        listed = settle.until(settle.LIST, ids, lambda now: not gone & now)
    except LedgerError as exc:
        _fail(prepared, pre.LIST, str(exc))
        return
    for state in list(made):
        tok = made[state][1]
        if state in deleted:
            if tok.id in listed:
                why = f"token {tok.id} is still listed after its delete answered success" + settle.note(settle.LIST)
                _unmade(prepared, made, state, pre.DELETED_GONE, why)
            else:
                ledger.forget(tok)
        elif tok.id not in listed:
            if made[state][0].expiration is not None and profile.expect.expired_in_list != "kept":
                # its short life may have ended meanwhile (a busy machine, a slow target), and a list
                # may leave expired tokens out: that is ST-EXP's question, not a delete's
                continue
            _fail(prepared, pre.DELETED_GONE, f"token {tok.id}, never deleted, left the list when others were deleted")
    for state in (DELETED_UNPRIVILEGED, DELETED_MANAGER):
        if state not in made:
            continue
        secret: str = made[state][0].secret
        resp = settle.refused(functools.partial(client.probe, prepared.probe_path, secret, ledger.admin_form))
        if resp.is_success:
            why = f"a deleted token was accepted ({resp.status_code}) on {prepared.probe_path}"
            _fail(prepared, pre.REVOKED, why + settle.note(settle.REVOCATION))
            break


def _check_expiry_round_trip(prepared: Prepared, made: dict[str, Any], items: list[dict[str, Any]]) -> None:
    """The expiring credentials' expiry came back as sent, to the millisecond: in the create's answer
    (ST-EXP-001) and in the list read to find their ids (ST-EXP-002; not judged when that list did
    not show them yet). Every check that judges what a target does at an expiry stands on this."""
    for state in (EXPIRED_MANAGER, EXPIRED_UNPRIVILEGED):
        if state not in made:
            continue
        cred = made[state][0]
        sent = cred.expiration
        echoed = cred.response.get("expiration")
        if not _same_ms(echoed, sent):
            why = f"a create with expiryDate {sent} answered expiration {echoed!r}"
            _fail(prepared, pre.EXPIRY_ECHOED, why)
        entry = next((i for i in items if token_id(i.get("id")) == cred.id and i.get("name") == cred.name), None)
        if entry is not None and not _same_ms(entry.get("expiration"), sent):
            shown = entry.get("expiration")
            why = f"token {cred.id}, created with expiryDate {sent}, is listed with expiration {shown!r}"
            _fail(prepared, pre.EXPIRY_LISTED, why)


def _same_ms(got: Any, sent: int | None) -> bool:
    return type(got) is int and got == sent


def _check_anonymous_calls(
    client: ApiClient, profile: TargetProfile, ledger: TokenLedger, prepared: Prepared, made: dict[str, Any]
) -> None:
    """Each documented call, sent without any credential: server info, the list, a create (journalled:
    whatever it makes is swept at the end) and a delete aimed at the token about to be deleted (so an
    accepted one removes nothing the run still needs). One request each; only a 2xx is an acceptance."""
    none: dict[str, str] = {}
    victim = made.get(DELETED_UNPRIVILEGED)
    try:
        prepared.anonymous_calls["server-info"] = client.request("GET", "/server/info", headers=none).status_code
        prepared.anonymous_calls["list"] = client.request("GET", TOKENS_PATH, headers=none).status_code
        body = {"name": ledger.name("anonymous-create"), "roles": [profile.unprivileged_role]}
        resp, _ = ledger.create_raw(body, headers=none, attribute=False)
        prepared.anonymous_calls["create"] = resp.status_code
        if victim is not None and victim[1].id is not None:
            status = client.request("DELETE", f"{TOKENS_PATH}/{victim[1].id}", headers=none).status_code
            prepared.anonymous_calls["delete"] = status
    except (httpx.HTTPError, pre.Blocked):
        return  # no answer (judged by the checks themselves), or the run creates no more tokens here
    _check_unprivileged_calls(client, profile, ledger, prepared, made)


def _check_unprivileged_calls(
    client: ApiClient, profile: TargetProfile, ledger: TokenLedger, prepared: Prepared, made: dict[str, Any]
) -> None:
    """Each token call made with the valid unprivileged token, in the admin's form: the list, a create
    (journalled) and a delete aimed at the deleted manager token's (about to be deleted anyway). One
    request each; only a 2xx is an acceptance. Every check of which roles may manage stands on these."""
    if VALID_UNPRIVILEGED not in made:
        return
    secret, form = made[VALID_UNPRIVILEGED][0].secret, ledger.admin_form
    victim = made.get(DELETED_MANAGER)
    try:
        prepared.unprivileged_calls["list"] = client.list_tokens(secret, form=form).status_code
        body = {"name": ledger.name("unprivileged-create"), "roles": [profile.unprivileged_role]}
        resp, _ = ledger.create_raw(body, token=secret, form=form, attribute=False)
        prepared.unprivileged_calls["create"] = resp.status_code
        if victim is not None and victim[1].id is not None:
            status = client.delete_token(secret, victim[1].id, form=form).status_code
            prepared.unprivileged_calls["delete"] = status
    except (httpx.HTTPError, pre.Blocked):
        return


def _check_past_expiry(ledger: TokenLedger, profile: TargetProfile, prepared: Prepared, now: int) -> None:
    """A create with an expiry a day in the past is refused (what the CLI's --expiration relies on)."""
    body = {"name": ledger.name("past-expiry"), "roles": [profile.unprivileged_role], "expiryDate": now - 86_400_000}
    try:
        resp, _ = ledger.create_raw(body, attribute=False)  # journalled: a token made anyway is cleaned up
    except pre.Blocked:
        return  # the run creates no more tokens on this target: nothing to learn here
    if resp.is_success:
        why = f"a create with an expiry a day in the past answered {resp.status_code}"
        _fail(prepared, pre.PAST_EXPIRY_REFUSED, why)


def _check_empty_dedicated_subject(ledger: TokenLedger, profile: TargetProfile, prepared: Prepared) -> None:
    """A create carrying "dedicatedSubject": "" works: every create of the real sts CLI sends it."""
    body = {"name": ledger.name("dedicated-empty"), "roles": [profile.unprivileged_role], "dedicatedSubject": ""}
    try:
        resp, tok = ledger.create_raw(body, attribute=False)  # journalled: the final sweep deletes it
    except pre.Blocked:
        return
    if tok is None:
        why = f'a create carrying "dedicatedSubject": "" answered {resp.status_code}'
        _fail(
            prepared,
            pre.EMPTY_DEDICATED_SUBJECT,
            why + ("" if resp.is_success else f": {REDACTOR.mask(resp.text[:200])}"),
        )
        return
    # its id learnt now, while it is surely listed: on a target that gives a freed id to the next token,
    # a later check's delete of a deleted token's id may remove this one, and the sweep then finds it gone
    # by its id (not "never listed" by its name)
    with contextlib.suppress(LedgerError, pre.Blocked):
        ledger.attribute_all([tok], fresh=False)


def _median_latency(anonymous: httpx.Response, *more: float | None) -> float:
    """The median time of the requests made while preparing: what one round trip to the target costs."""
    times = [t for t in (elapsed_s(anonymous), *more) if t is not None]
    return statistics.median(times) if times else 0.0
