"""Authorization on every call, for every state a credential can be in: one matrix.

Rows are credential states: a valid manager token, a valid unprivileged one, each of those
deleted, each expired, an unknown token shaped like an issued one, a malformed value, no
credential at all, and (on a managed target) a bootstrap token past its ttl. Columns are the
calls: the profile's probe (``GET /api/server/status`` by default), ``GET /api/server/info``,
list, create, and delete (of a token the run owns, so a wrongly accepted delete shows). Every
cell is checked in both header forms.

No public source says what ``server/status`` answers without a credential. When the profile's
probe answered an anonymous request at the start of the run, that is one finding (the
no-credential cell, ST-AUTH-012, a SHOULD), and the other refusal cells of that column are
skipped: a public call refuses no one, and the same refusals are judged on server/info and
the token calls (``sts_conformance/target/probe.py``).

What each cell expects comes from the documented behaviour: a valid manager token is accepted
everywhere; an unprivileged one passes the probe and server info and is refused token
management; every other state is refused everywhere. Refusal statuses follow the profile's
``expect`` settings (401 or 403 unless pinned). A refused create or delete changes nothing
(the admin's list says so). Separately, no response of the matrix — success or error, any
status — may carry in its body or any header a secret presented in that request or issued
during the run.

Cost: the credentials were prepared once at the start of the run (``prepare.py``; the
expiring ones were made first, so their expiry ran out while other checks ran). The calls of
one row in one header form are made once, and each cell is judged from them. The rows this
process runs are made together when the first cell needs one: all their reads in one wave,
the deletes one after another, all their creates in one wave, then one list (``Matrix``).
"""

from __future__ import annotations

import contextlib
import functools
import secrets
import string
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from sts_conformance.checking import fleet, foundations, server_errors
from sts_conformance.checking.checks import (
    CLOCK_MARGIN_MS,
    FORM_REQUIREMENT,
    block_if_creates_fail,
    expect_accepted_before,
    listed,
)
from sts_conformance.core import preconditions as pre
from sts_conformance.core.redact import REDACTOR
from sts_conformance.plugin import planned
from sts_conformance.target import probe as probes
from sts_conformance.target.client import EXCHANGES, TOKENS_PATH, AuthForm, Exchange, exchange_of, recorded_response
from sts_conformance.target.together import run_together
from sts_conformance.tokens import prepare as prep
from sts_conformance.tokens.ledger import LedgerError

# the checks run at once with the other modules' (checking/ahead.py; hence the table's fixture is of
# session scope): they share one table, made by the first of them while the others wait for it
pytestmark = pytest.mark.together

UNKNOWN = "unknown"
MALFORMED = "malformed"
NONE = "none"
BOOTSTRAP_EXPIRED = "bootstrap-expired"

#: the rows, in the order the matrix is read
STATES = (
    prep.VALID_MANAGER,
    prep.VALID_UNPRIVILEGED,
    prep.DELETED_MANAGER,
    prep.DELETED_UNPRIVILEGED,
    prep.EXPIRED_MANAGER,
    prep.EXPIRED_UNPRIVILEGED,
    UNKNOWN,
    MALFORMED,
    NONE,
    BOOTSTRAP_EXPIRED,
)
#: the columns
CALLS = ("probe", "server-info", "list", "create", "delete")
MANAGEMENT = ("list", "create", "delete")
FORM_IDS = {AuthForm.AUTHORIZATION: "Authorization-ApiKey", AuthForm.X_API_KEY: "X-API-Key"}

ACCEPTED, FORBIDDEN, UNAUTHENTICATED = "accepted", "forbidden", "unauthenticated"


def expected(state: str, call: str) -> str:
    """What the documentation says a call with a credential in ``state`` gets."""
    if state == prep.VALID_MANAGER:
        return ACCEPTED
    if state == prep.VALID_UNPRIVILEGED:
        return FORBIDDEN if call in MANAGEMENT else ACCEPTED
    return UNAUTHENTICATED


def requirement(state: str, call: str, form: AuthForm) -> str:
    """The catalogue requirement a cell traces to."""
    if state == prep.VALID_MANAGER:
        return {"probe": FORM_REQUIREMENT[form], "server-info": "ST-AUTH-011"}.get(call, "ST-AUTH-004")
    if state == prep.VALID_UNPRIVILEGED:
        return "ST-ROLE-002" if call in MANAGEMENT else "ST-ROLE-003"
    if state in (prep.DELETED_MANAGER, prep.DELETED_UNPRIVILEGED):
        return "ST-AUTH-007"
    if state in (prep.EXPIRED_MANAGER, prep.EXPIRED_UNPRIVILEGED):
        return "ST-EXP-006"
    if state == BOOTSTRAP_EXPIRED:
        return "ST-BOOT-003"
    if state == NONE:
        return {"probe": "ST-AUTH-012", "server-info": "ST-AUTH-011"}.get(call, "ST-AUTH-006")
    return "ST-AUTH-006"


def _preconditions(state: str, call: str, form: AuthForm) -> list[str]:
    needs = [FORM_REQUIREMENT[form]]
    if expected(state, call) == ACCEPTED:
        needs.append(pre.ANONYMOUS_REFUSED)  # acceptance on a call that accepts anyone proves nothing
    if call in ("create", "delete") and state != BOOTSTRAP_EXPIRED:
        needs += [pre.CREATE, pre.LIST, pre.LISTED]  # the victim, and the list that shows what changed
    if call == "delete" and expected(state, call) == ACCEPTED:
        needs.append(pre.DELETED_GONE)  # an accepted delete must remove the token it names, not another
    return needs


def _cell_param(state: str, call: str, form: AuthForm) -> Any:
    return pytest.param(
        state,
        call,
        form,
        id=f"{state}/{call}/{FORM_IDS[form]}",
        marks=[
            pytest.mark.requirement(requirement(state, call, form)),
            pytest.mark.precondition(*_preconditions(state, call, form)),
        ],
    )


CELLS = [_cell_param(state, call, form) for state in STATES for call in CALLS for form in FORM_IDS]
ROWS = [
    pytest.param(state, form, id=f"{state}/{FORM_IDS[form]}", marks=pytest.mark.precondition(FORM_REQUIREMENT[form]))
    for state in STATES
    for form in FORM_IDS
]


# -- making the calls of one row ------------------------------------------------------------------


@dataclass
class Call:
    """One call of a row, and what the admin's list showed of its effect."""

    status: int | None
    body: str = field(default="", repr=False)
    headers: list[tuple[str, str]] = field(default_factory=list, repr=False)
    error: str | None = None
    #: the secrets known before the call (issued during the run), and the one it presented
    known_before: frozenset[str] = field(default=frozenset(), repr=False)
    presented: str | None = field(default=None, repr=False)
    #: create: the name sent and whether the list shows it; delete: whether the victim is still listed
    name: str | None = None
    created: bool | None = None
    victim_kept: bool | None = None
    #: the request and response as a failure report shows them (masked)
    exchange: Exchange | None = field(default=None, repr=False)
    #: for a recorded call: which secrets the answer carried, judged when it came (see fleet.carried)
    leaks: list[str] | None = None

    @property
    def accepted(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @classmethod
    def of(cls, resp: httpx.Response, known: frozenset[str], presented: str | None) -> Call:
        # the body as the server meant it (decoded from any content coding), the headers as it sent them
        return cls(
            resp.status_code,
            resp.text,
            list(resp.headers.multi_items()),
            None,
            known,
            presented,
            exchange=exchange_of(resp),
        )


@dataclass
class Row:
    state: str
    form: AuthForm
    calls: dict[str, Call]


@dataclass
class Presented:
    """What a row presents: the headers, and the secret in them (None: no credential)."""

    headers: dict[str, str]
    secret: str | None


def _same_shape_unknown(secret: str, peer: str) -> str:
    """A never-issued token shaped like ``secret``: the prefix it shares with ``peer``, then random
    characters of the same kind (digit, lower, upper) wherever ``secret`` has a letter or digit."""
    keep = next((i for i, (x, y) in enumerate(zip(secret, peer, strict=False)) if x != y), min(len(secret), len(peer)))
    pools = (string.digits, string.ascii_lowercase, string.ascii_uppercase)
    chars = list(secret[:keep])
    for ch in secret[keep:]:
        pool = next((p for p in pools if ch in p), None)
        chars.append(secrets.choice(pool) if pool else ch)
    candidate = "".join(chars)
    return candidate if candidate != secret else secrets.token_hex(max(16, len(secret)))


#: what ends one row's calls early (its cell, run again alone, ends the same way)
_ROW_ENDS = (Exception, pytest.skip.Exception, pytest.fail.Exception)


class Matrix:
    """The rows of the matrix this worker runs: all made together on first use (see :meth:`_run_rows`)."""

    def __init__(self, target: Any, ledger: Any, planned: Sequence[tuple[str, AuthForm]] = ()):
        self.target = target
        self.ledger = ledger
        self.rows: dict[tuple[str, AuthForm], Row] = {}
        #: the rows this process runs, known ahead (the bootstrap-expired one is recorded by the fleet)
        self._planned = [key for key in dict.fromkeys(planned) if key[0] != BOOTSTRAP_EXPIRED]
        self._tried: set[tuple[str, AuthForm]] = set()
        self._victim_token: Any = None
        #: a token made ahead to aim deletes at, with the rows' reads
        self._spare_victims: list[Any] = []
        self._unknown: str | None = None
        self._malformed = f"{secrets.token_hex(5)} ,;{secrets.token_hex(5)}"
        REDACTOR.register(self._malformed)
        self._lock = threading.Lock()  # checks run together (checking/ahead.py) wait for the first to make it

    def row(self, state: str, form: AuthForm) -> Row:
        with self._lock:
            return self._row(state, form)

    def _row(self, state: str, form: AuthForm) -> Row:
        key = (state, form)
        if key not in self.rows:
            if state == BOOTSTRAP_EXPIRED:
                self.rows[key] = self._bootstrap_expired(form)
            else:
                if key not in self._tried:
                    batch = [key, *(k for k in self._planned if k not in self._tried and k != key)]
                    self._tried.update(batch)
                    self._run_rows(batch)
                if key not in self.rows:  # (its calls ended early: made again alone, in this cell)
                    self.rows[key] = self._run(state, form)
            server_errors.judged()  # every cell judges its own call's status, a 5xx included
        return self.rows[key]

    # -- the credential of a row --------------------------------------------------------------

    def _presented(self, state: str, form: AuthForm) -> Presented:
        t = self.target
        secret: str | None
        if state == NONE:
            headers = {} if form is AuthForm.X_API_KEY else {"Authorization": "ApiKey"}
            return Presented(headers, None)
        if state == UNKNOWN:
            if self._unknown is None:
                a = t.credential(prep.VALID_UNPRIVILEGED).secret
                b = t.credential(prep.VALID_MANAGER).secret
                self._unknown = _same_shape_unknown(a, b)
                REDACTOR.register(self._unknown)
            secret = self._unknown
        elif state == MALFORMED:
            secret = self._malformed
        else:
            cred = t.credential(state)
            if state.startswith("expired"):
                assert cred.expiration is not None
                expect_accepted_before(cred.samples[f"probe/{form.name}"], cred.expiration, f"the {state} token")
                t.wait_until_server_time(cred.expiration + CLOCK_MARGIN_MS)
            secret = cred.secret
        return Presented(form.headers(secret), secret)

    def _bootstrap_expired(self, form: AuthForm) -> Row:
        """The row as the bootstrap scenario recorded it, once the token's ttl had passed (fleet.py)."""
        t = self.target
        label = fleet.matrix_label(t.profile)
        if label is None:
            pytest.skip(
                "the bootstrap-expired row needs a bootstrap token with a ttl the suite waits out: profile "
                "setting 'bootstrap.ttl_spellings'"
            )
        inst = t.instance(label, fleet.DONE)
        first = inst.first.get(form.name)
        if first is None:
            raise AssertionError(f"the deployment with bootstrap {label} is not usable: {inst.error}")
        if not first.accepted:
            ttl_ms = fleet.duration_ms(inst.ttl or "") or 0
            elapsed_ms = (first.at - inst.launched_at) * 1000
            if elapsed_ms >= ttl_ms:
                pre.inconclusive(f"it first answered {elapsed_ms:.0f} ms after its start, past its ttl")
            raise AssertionError(
                f"the bootstrap token with ttl {inst.ttl!r} was refused ({first.status}) in form {form.value} "
                f"{elapsed_ms:.0f} ms after the deployment was started, before its ttl"
            )
        if inst.error is not None:
            raise AssertionError(f"the bootstrap token with ttl {inst.ttl!r}: {inst.error}")
        recorded = {call: inst.expired.get(f"{call}/{form.name}") for call in fleet.ROW_CALLS}
        if recorded["probe"] is None:
            late_ms = inst.observer_refused_after_ms
            if late_ms is not None and late_ms >= (fleet.duration_ms(inst.ttl or "") or 0):
                # a busy machine: the create came after the ttl, when a refusal is right
                pre.inconclusive(
                    f"the bootstrap token's create of a token to look on with came back {late_ms:.0f} ms after its "
                    f"start, past its ttl {inst.ttl!r}"
                )
            pre.block(pre.CREATE, "no token could be made with the bootstrap token before its ttl, to look on with")
        calls = {}
        for call, rec in recorded.items():
            if rec is None:
                continue
            exchange = Exchange(**rec.exchange) if rec.exchange else None
            calls[call] = Call(rec.status, created=rec.created, victim_kept=rec.victim_kept, exchange=exchange)
            calls[call].leaks = rec.leaks
            calls[call].name = "the token named in the create"
        return Row(BOOTSTRAP_EXPIRED, form, calls)

    def _victim(self) -> Any:
        """A token of the run to aim the delete at; a new one once one is gone."""
        if self._victim_token is None or self._victim_token.deleted:
            spare = next((t for t in self._spare_victims if t.id is not None and not t.deleted), None)
            if spare is not None:
                self._spare_victims.remove(spare)
                self._victim_token = spare
            else:
                self._victim_token = self.ledger.create("mx-victim", roles=[self.target.profile.unprivileged_role])
        return self._victim_token

    def _send(self, presented: Presented, method: str, path: str, *, api: bool = True) -> Call:
        known = REDACTOR.secrets()
        resp = self.target.client.request(method, path, headers=presented.headers, api=api)
        return Call.of(resp, known, presented.secret)

    def _reads(self, presented: Presented) -> dict[str, Callable[[], Call]]:
        """The row's three reads: independent of each other and of every other call, sent together."""
        return {
            "probe": functools.partial(self._send, presented, "GET", self.target.profile.probe_path, api=False),
            "server-info": functools.partial(self._send, presented, "GET", "/server/info"),
            "list": functools.partial(self._send, presented, "GET", TOKENS_PATH),
        }

    def _delete(self, presented: Presented, calls: dict[str, Call]) -> None:
        """The row's delete of the run's victim token, and whether the list still shows that token."""
        victim = self._victim()
        calls["delete"] = self._send(presented, "DELETE", f"{TOKENS_PATH}/{victim.id}")
        self._victim_token = None  # taken back below once the list shows it survived

        def removed(items: list[dict[str, Any]]) -> bool:
            entry = listed(items, victim.id)
            return not calls["delete"].accepted or entry is None or entry.get("name") != victim.name

        items = self.ledger.list_until(removed)
        entry = listed(items, victim.id)
        # a spare no longer listed was taken by a delete that named another token (ST-LIFE-006's to judge):
        # not aimed at (the sweep at the end of the run deletes it, should it be there after all)
        self._spare_victims = [t for t in self._spare_victims if listed(items, t.id, t.name) is not None]
        # (by id and name: a target may give a freed id to a token made since)
        calls["delete"].victim_kept = entry is not None and entry.get("name") == victim.name
        if calls["delete"].victim_kept:
            self._victim_token = victim
        else:
            self.ledger.forget(victim)

    def _create(self, state: str, presented: Presented) -> tuple[Call, Any]:
        """The row's create, presenting its credential: the answer, and the token when one was made."""
        name = self.ledger.name(f"mx-{state}")
        known = REDACTOR.secrets()
        resp, created = self.ledger.create_raw(
            {"name": name, "roles": [self.target.profile.unprivileged_role]}, headers=presented.headers, attribute=False
        )
        call = Call.of(resp, known, presented.secret)
        call.name = name
        return call, created

    def _run_rows(self, keys: list[tuple[str, AuthForm]]) -> None:
        """The calls of several rows, so that a slow target's latency counts once, not once per row: every
        row's reads together (with the tokens the deletes aim at made beside them), each row's delete in
        turn (one victim token at a time, a list after each), then every row's create together and one
        list for all. Within a row the order stays: reads, delete, create (a delete that removes another
        token than the one it names cannot take the row's own, which shows in ST-LIFE-006, not here).

        A row whose calls end early (a credential that cannot be presented, a block) is left out; its
        cell makes it again alone (:meth:`_run`) and ends the same way there."""
        presented: dict[tuple[str, AuthForm], Presented] = {}
        for key in keys:
            try:
                presented[key] = self._presented(*key)
            except _ROW_ENDS:
                continue
        if not presented:
            return
        # the first token to aim the deletes at is made beside the reads; one that a delete takes is
        # replaced when the next delete needs one, so that each is the newest token when it is deleted
        # (a delete that removes the next token instead shows in ST-LIFE-006 alone, not in this matrix)
        unprivileged = [self.target.profile.unprivileged_role]
        victims = [self.ledger.body("mx-victim", roles=unprivileged)] if self._victim_token is None else []
        reads = [call for p in presented.values() for call in self._reads(p).values()]
        made = [functools.partial(self.ledger.create_raw, body, attribute=False) for body in victims]
        answers = run_together([*reads, *made])
        read_calls, victim_answers = answers[: len(reads)], answers[len(reads) :]
        spares = [tok for _resp, tok in victim_answers if tok is not None]
        if spares:
            with contextlib.suppress(LedgerError):
                self.ledger.attribute_all(spares)
            self._spare_victims += spares
        calls: dict[tuple[str, AuthForm], dict[str, Call]] = {}
        for i, key in enumerate(presented):
            calls[key] = dict(zip(("probe", "server-info", "list"), read_calls[3 * i : 3 * i + 3], strict=True))
        for key in list(presented):
            try:
                self._delete(presented[key], calls[key])
            except _ROW_ENDS:
                del presented[key]
        if not presented:
            return

        def create(key: tuple[str, AuthForm]) -> tuple[Call, Any] | BaseException:
            try:
                return self._create(key[0], presented[key])
            except _ROW_ENDS as exc:
                return exc

        created = dict(zip(presented, run_together(functools.partial(create, key) for key in presented), strict=True))
        for key, got in created.items():
            # a target that cannot take creates at the same moment gets the verdict it gets one at a time
            if not isinstance(got, BaseException) and (got[0].status or 0) >= 500 and len(created) > 1:
                created[key] = create(key)
        made_here = {key: got for key, got in created.items() if not isinstance(got, BaseException)}

        def shows_effects(items: list[dict[str, Any]]) -> bool:
            # what the answers said was done, as the list shows it (a list may show it late)
            return all(not c.accepted or any(i.get("name") == c.name for i in items) for c, _tok in made_here.values())

        try:
            items = self.ledger.list_until(shows_effects)
        except _ROW_ENDS:
            return
        toks = [tok for _call, tok in made_here.values() if tok is not None]
        if toks:
            self.ledger.attribute_all(toks, items)
        for key, (call, _tok) in made_here.items():
            call.created = any(i.get("name") == call.name for i in items)
            self.rows[key] = Row(key[0], key[1], {**calls[key], "create": call})

    # -- the calls ----------------------------------------------------------------------------

    def _run(self, state: str, form: AuthForm) -> Row:
        """One row's calls by themselves (a row that ended early among the others ends here, in its cell)."""
        presented = self._presented(state, form)
        reads = self._reads(presented)
        calls = dict(zip(reads, run_together(reads.values()), strict=True))
        self._delete(presented, calls)
        call, created = self._create(state, presented)
        items = self.ledger.list_until(lambda seen: not call.accepted or any(i.get("name") == call.name for i in seen))
        call.created = any(i.get("name") == call.name for i in items)
        if created is not None:
            self.ledger.attribute_all([created], items)
        calls["create"] = call
        return Row(state, form, calls)


@pytest.fixture(scope="session")
def matrix(request, target, ledger) -> Matrix:
    items, _known = planned(request, __file__)  # (a table: under xdist, all its cells go to one worker)
    rows = [(i.callspec.params["state"], i.callspec.params["form"]) for i in items if hasattr(i, "callspec")]
    return Matrix(target, ledger, rows)


# -- the checks ---------------------------------------------------------------------------------------


def _what(state: str, call: str, form: AuthForm) -> str:
    credential = {NONE: "no credential", MALFORMED: "a malformed credential", UNKNOWN: "an unknown token"}.get(
        state, f"a {state.replace('-', ' ')} token"
    )
    return f"{call} with {credential} in the {form.value} form"


@pytest.mark.parametrize(("state", "call", "form"), CELLS)
def test_authorization(target, matrix, state, call, form):
    """Each call answers each credential state as documented, in each header form; a refusal changes nothing."""
    what = _what(state, call, form)
    want = expected(state, call)
    if want != ACCEPTED and state != NONE:
        # a call that answers anyone shows no refusal of this credential: ST-AUTH-006/011's own finding
        foundations.require_anonymous_refused(target, call)
    if state in (prep.EXPIRED_MANAGER, prep.EXPIRED_UNPRIVILEGED):
        foundations.require_expiry_round_trip(target)  # refused at the expiry sent only if it was kept
    row = matrix.row(state, form)
    if call not in row.calls:
        why = f"no token of the run to aim a delete at on the target of the {state} row"
        if state == BOOTSTRAP_EXPIRED:
            pre.inconclusive(why + " (made before the bootstrap token's ttl ran out)")
        pytest.skip(why)
    got = row.calls[call]
    if call == "probe" and want != ACCEPTED and state != NONE and _probe_public(target):
        pytest.skip(
            f"not applicable: GET {target.profile.probe_path} answered a request without any credential "
            f"({target.prepared.anonymous[target.profile.probe_path]}; ST-AUTH-012), so no refusal can be seen "
            "there: this credential's refusal is judged on server/info and the token calls"
        )
    if call == "create" and want == ACCEPTED and (got.status or 0) >= 500 and state != BOOTSTRAP_EXPIRED:
        # a create that fails whatever is sent is ST-LIFE-001's failure, not this cell's
        block_if_creates_fail(
            matrix.ledger, httpx.Response(got.status or 500), [target.profile.unprivileged_role], what
        )
    problem = _judge(target, got, want, what, state)
    if problem is not None:
        # the row's calls were made together: a failure report shows this cell's own exchange
        EXCHANGES.clear()
        if got.exchange is not None:
            EXCHANGES.add(got.exchange)
        raise AssertionError(problem)


def _probe_public(target) -> bool:
    """Whether the profile's probe answered an anonymous request at the start of the run."""
    return probes.public(target.prepared.anonymous, target.profile.probe_path)


def _judge(target, got: Call, want: str, what: str, state: str = "") -> str | None:
    """What is wrong with a cell's outcome, or None."""
    if want == ACCEPTED:
        if not got.accepted:
            return f"{what}: expected it to be accepted (2xx), got {got.status}"
        if got.created is False:
            return f"{what}: answered {got.status}, but no token named {got.name!r} is listed"
        if got.victim_kept:
            return f"{what}: answered {got.status}, but the token is still listed"
        return None
    if want == FORBIDDEN:
        allowed = target.expect.forbidden_status
    elif state in (NONE, MALFORMED):
        allowed = target.expect.malformed_statuses()  # a header it cannot parse may be a bad request (400)
    else:
        allowed = target.expect.unauthenticated_status
    if got.status not in allowed:
        verdict = "accepted it" if got.accepted else "answered"
        wanted = " or ".join(map(str, allowed))
        return f"{what}: expected refusal with {wanted}, but the target {verdict} with {got.status}"
    if got.created:
        return f"{what}: refused with {got.status}, yet a token named {got.name!r} was created"
    if got.victim_kept is False:
        return f"{what}: refused with {got.status}, yet the token it named is gone from the list"
    return None


def _carried(got: Call) -> list[str]:
    """Which secrets (as labels) a response carries in its body or headers."""
    if got.leaks is not None:
        return got.leaks
    return fleet.carried(
        recorded_response(got.status or 599, got.headers, got.body.encode("utf-8", "surrogatepass")),
        got.presented,
        got.known_before,
    )


@pytest.mark.requirement("ST-ONCE-006")
@pytest.mark.parametrize(("state", "form"), ROWS)
def test_no_response_echoes_a_secret(target, matrix, state, form):
    """No response of the row, success or error, carries a secret presented in it or issued during the run."""
    try:
        row = matrix.row(state, form)
    except AssertionError as exc:  # the row could not be made: its cells fail for it, on their own requirement
        pre.block(requirement(state, "probe", form), str(exc).splitlines()[0])
    leaks = {call: carried for call, got in row.calls.items() if (carried := _carried(got))}
    assert not leaks, "responses carry secrets (masked in this report): " + "; ".join(
        f"{call} ({row.calls[call].status}): {', '.join(labels)}" for call, labels in leaks.items()
    )
