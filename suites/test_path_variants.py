"""Beside the documented calls: path and method variants of the token calls, and undocumented calls.

Servers grow routes the documentation does not show — a trailing-slash twin of the list, a
framework's method override, a ``GET`` of one token — and a guard added to the documented
route is easily missing from its twin. One table (:data:`VARIANTS`) declares each variant
once: its method, its path (below the target's url, ``{api}`` for the API root, ``{id}`` for a
token of the run's own, the *victim*), and which credential rows send it:

- a token **without the manager role** sends every variant (a route that skips
  authentication or the role check lets it through alike);
- **no credential** and a **deleted manager token** send the variants of the list and of one
  token most often left unguarded (auth checked on some routes, revocation cached on some);
- the **manager token** sends only safe methods (it could really delete through an alias).

What each cell must do: a refused credential is never answered 2xx (ST-PATH-001; a redirect
is fine, and OPTIONS may answer 2xx when it shows no token data, as a CORS preflight does);
nothing a refused request or a safe method sends creates, deletes or alters a token, as the
admin's list shows (ST-PATH-002); and no answer, whatever the credential and status, carries
a secret, in clear or in disguise (ST-ONCE-007). What the manager's variants got (an alias
answering 2xx is allowed) is recorded as an observation.

So that one defect gives one verdict, each refused row first makes the documented call it
varies (list, create, delete): when the documented call already accepts the credential, its
own requirement fails in the authorization matrix, and the variants of that call are
blocked by it here.

Cost: the credentials were prepared at the start of the run; each row's calls are made once,
together, then followed by one list (about 50 requests for the whole table, no waits).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from sts_conformance.checking import fleet, foundations
from sts_conformance.checking.checks import listed
from sts_conformance.core import preconditions as pre
from sts_conformance.core.redact import REDACTOR
from sts_conformance.target.client import EXCHANGES, Exchange, exchange_of
from sts_conformance.target.together import run_together
from sts_conformance.tokens import prepare as prep

# the checks run at once with the other modules' (checking/ahead.py; hence the table's fixture is of
# session scope): they share one table, made by the first of them while the others wait for it
pytestmark = pytest.mark.together

NONE = "none"
UNPRIVILEGED = prep.VALID_UNPRIVILEGED
DELETED = prep.DELETED_MANAGER
MANAGER = prep.VALID_MANAGER
#: the credential rows, in the order they are run
ROWS = (UNPRIVILEGED, NONE, DELETED, MANAGER)
REFUSED = (UNPRIVILEGED, NONE, DELETED)
#: the requirement that fails in the authorization matrix when a row's documented call accepts it
DOCUMENTED_CALL_REQUIREMENT = {UNPRIVILEGED: "ST-ROLE-002", NONE: "ST-AUTH-006", DELETED: "ST-AUTH-007"}

#: what each kind of variant stands in for: the documented call made first as a control
LIST, CREATE, DELETE = "list", "create", "delete"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
OVERRIDE = "X-HTTP-Method-Override"


@dataclass(frozen=True)
class Variant:
    """One way beside the documented one to make a token call."""

    id: str
    method: str
    path: str
    #: the documented call it varies (its control)
    of: str
    rows: tuple[str, ...]
    headers: dict[str, str] = field(default_factory=dict)
    #: the body sent: a create's (a fresh name), an update's (the victim made a manager), or none
    body: str | None = None
    #: sent only to a target the suite launched: a defect there could remove tokens it does not own
    managed_only: bool = False

    @property
    def safe(self) -> bool:
        """A safe method (RFC 9110 §9.2.1), also under a method-override header that asks for another."""
        return self.method in SAFE_METHODS

    @property
    def changes(self) -> bool:
        """Whether a wrongly accepted request of this variant could create, delete or alter a token."""
        return not self.safe or OVERRIDE in self.headers


COMMON = (UNPRIVILEGED, NONE, DELETED)
ONE = "{api}/security/tokens/{id}"

VARIANTS: tuple[Variant, ...] = (
    # the list
    Variant("list-trailing-slash", "GET", "{api}/security/tokens/", LIST, COMMON),
    Variant("list-doubled-slash", "GET", "{api}/security//tokens", LIST, (UNPRIVILEGED,)),
    Variant("list-other-case", "GET", "{API}/Security/Tokens", LIST, (UNPRIVILEGED,)),
    Variant("list-percent-encoded", "GET", "{api}/security/%74okens", LIST, (UNPRIVILEGED,)),
    Variant("list-matrix-parameter", "GET", "{api}/security/tokens;x=1", LIST, (UNPRIVILEGED,)),
    Variant("list-head", "HEAD", "{api}/security/tokens", LIST, (UNPRIVILEGED, NONE, DELETED, MANAGER)),
    Variant("list-options", "OPTIONS", "{api}/security/tokens", LIST, (UNPRIVILEGED,)),
    # the create
    Variant("create-trailing-slash", "POST", "{api}/security/tokens/", CREATE, (UNPRIVILEGED,), body=CREATE),
    Variant("create-percent-encoded", "POST", "{api}/security/%74okens", CREATE, (UNPRIVILEGED,), body=CREATE),
    Variant("create-matrix-parameter", "POST", "{api}/security/tokens;x=1", CREATE, (UNPRIVILEGED,), body=CREATE),
    # the delete, aimed at the victim
    Variant("delete-trailing-slash", "DELETE", ONE + "/", DELETE, (UNPRIVILEGED,)),
    Variant("delete-encoded-slash", "DELETE", "{api}/security/tokens%2F{id}", DELETE, (UNPRIVILEGED,)),
    Variant("delete-matrix-parameter", "DELETE", ONE + ";x=1", DELETE, (UNPRIVILEGED,)),
    Variant("delete-x-http-method-override", "POST", ONE, DELETE, (UNPRIVILEGED, DELETED), {OVERRIDE: "DELETE"}),
    Variant("delete-x-method-override", "POST", ONE, DELETE, (UNPRIVILEGED,), {"X-Method-Override": "DELETE"}),
    Variant("delete-method-parameter", "POST", ONE + "?_method=DELETE", DELETE, (UNPRIVILEGED,)),
    Variant("get-overridden-to-delete", "GET", ONE, DELETE, (UNPRIVILEGED, MANAGER), {OVERRIDE: "DELETE"}),
    # undocumented calls on the token paths
    Variant("get-one-token", "GET", ONE, LIST, (UNPRIVILEGED, MANAGER)),
    Variant("put-one-token", "PUT", ONE, DELETE, (UNPRIVILEGED,), body="update"),
    Variant("patch-one-token", "PATCH", ONE, DELETE, (UNPRIVILEGED,), body="update"),
    Variant("post-one-token", "POST", ONE, DELETE, (UNPRIVILEGED,), body="update"),
    Variant("delete-the-collection", "DELETE", "{api}/security/tokens", DELETE, (UNPRIVILEGED,), managed_only=True),
)
BY_ID = {v.id: v for v in VARIANTS}


#: what a row needs: the victim and the list that shows what changed; a refusal that means something
_ROW_NEEDS = pytest.mark.precondition(pre.CREATE, pre.LIST, pre.LISTED, pre.ANONYMOUS_REFUSED)
_REFUSED = pytest.mark.requirement("ST-PATH-001")
_UNCHANGED = pytest.mark.requirement("ST-PATH-002")


def _cell(state: str, variant: Variant, requirement: Any) -> Any:
    return pytest.param(state, variant.id, id=f"{state}/{variant.id}", marks=[requirement, _ROW_NEEDS])


REFUSAL_CELLS = [_cell(s, v, _REFUSED) for s in REFUSED for v in VARIANTS if s in v.rows]
STATE_CELLS = [
    _cell(s, v, _UNCHANGED)
    for s in ROWS
    for v in VARIANTS
    if s in v.rows and (v.changes or v.body == CREATE or s == MANAGER)
]
LEAK_ROWS = [pytest.param(s, id=s, marks=[pytest.mark.requirement("ST-ONCE-007"), _ROW_NEEDS]) for s in ROWS]


# -- making the calls of one row ------------------------------------------------------------------


@dataclass
class Cell:
    """What one variant got in one row, and what the admin's list showed after the row."""

    status: int | None
    response: httpx.Response | None = field(default=None, repr=False)
    exchange: Exchange | None = field(default=None, repr=False)
    #: create variants: the name sent and whether the list shows it
    name: str | None = None
    created: bool = False
    #: variants that could delete or alter the victim: whether it is still listed as it was
    victim_kept: bool | None = None
    #: which secrets the answer carried (labels), judged when it came
    leaks: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class Table:
    """Every row's cells, what the list showed after them all, and what is blocked."""

    cells: dict[tuple[str, str], Cell]
    #: (state, documented call) -> (requirement, why): that call itself accepted the credential
    blocked: dict[tuple[str, str], tuple[str, str]]
    #: names of the run's tokens, which an OPTIONS answer must not show
    names: list[str]
    #: state -> (requirement, why): its credential could not be prepared
    missing: dict[str, tuple[str, str]] = field(default_factory=dict)


class Variants:
    """The whole table, run once on first use: every row's calls, then one list."""

    def __init__(self, target: Any, ledger: Any):
        self.target = target
        self.ledger = ledger
        self._table: Table | None = None
        self._lock = threading.Lock()  # checks run together (checking/ahead.py) wait for the first to make it

    def table(self) -> Table:
        with self._lock:
            if self._table is None:
                self._table = self._run()
            return self._table

    def _headers(self, state: str) -> tuple[dict[str, str], str | None]:
        if state == NONE:
            return {}, None
        secret = self.target.credential(state).secret
        return self.target.admin_form.headers(secret), secret

    def _path(self, template: str, victim_id: int) -> str:
        api = self.target.profile.api_path
        return template.format(api=api, API=api.upper(), id=victim_id)

    def _body(self, kind: str | None, name: str | None, victim: Any) -> Any:
        p = self.target.profile
        if kind == CREATE:
            return {"name": name, "roles": [p.unprivileged_role]}
        if kind == "update":
            return {"id": victim.id, "name": victim.name, "roles": [p.manager_role, p.unprivileged_role]}
        return None

    def _send(self, method: str, path: str, headers: dict[str, str], body: Any, presented: str | None) -> Cell:
        known = REDACTOR.secrets()
        send_headers = dict(headers)
        content = None
        if body is not None:
            content = json.dumps(body).encode()
            send_headers["Content-Type"] = "application/json"
        try:
            resp = self.target.client.request(method, path, headers=send_headers, content=content, api=False)
        except httpx.HTTPError:  # a variant that kills the connection is judged as no answer
            made = EXCHANGES.snapshot()
            return Cell(None, exchange=made[-1] if made else None)
        return Cell(resp.status_code, resp, exchange_of(resp), leaks=fleet.carried(resp, presented, known))

    def _cell(self, v: Variant, headers: dict[str, str], presented: str | None, victim: Any) -> Cell:
        led, p = self.ledger, self.target.profile
        name = led.name(f"pv-{v.id}") if v.body == CREATE else None
        key = led.intend(name, [p.unprivileged_role]) if name else None
        path = self._path(v.path, victim.id)
        body = self._body(v.body, name, victim)
        cell = self._send(v.method, path, {**headers, **v.headers}, body, presented)
        if key is not None and cell.status is not None:
            led.journal.answered(key, cell.status)
        cell.name = name
        return cell

    def _run(self) -> Table:
        led, p = self.ledger, self.target.profile
        victim = led.create("pv-victim", roles=[p.unprivileged_role])
        cells: dict[tuple[str, str], Cell] = {}
        missing: dict[str, tuple[str, str]] = {}
        # the table in order, each cell a call; a cell that may change a token is sent alone, in its place,
        # and the cells between two such go together: what each sees of the others is as if sent one by one
        todo: list[tuple[tuple[str, str], Variant, Callable[[], Cell]]] = []
        for state in ROWS:
            try:
                headers, presented = self._headers(state)
            except pre.Blocked as unmade:  # that row's cells are blocked, not the others
                missing[state] = (unmade.requirement, unmade.reason)
                continue
            for v in VARIANTS:
                if state not in v.rows or (v.managed_only and not self.target.managed):
                    continue
                call = functools.partial(self._cell, v, headers, presented, victim)
                todo.append(((state, v.id), v, call))
        for _alone, group in itertools.groupby(todo, key=lambda item: id(item) if item[1].changes else 0):
            batch = list(group)
            cells.update(zip((key for key, _v, _call in batch), run_together(c for _k, _v, c in batch), strict=True))
        items = led.list_items()
        entry = listed(items, victim.id)
        kept = (
            entry is not None
            and entry.get("name") == victim.name
            and sorted(entry.get("roles") or []) == sorted(victim.roles)
        )
        for cell in cells.values():
            if cell.name is not None:
                cell.created = any(i.get("name") == cell.name for i in items)
                if cell.created:
                    with contextlib.suppress(Exception):
                        led.adopt(cell.name, roles=[p.unprivileged_role])
        _blame(cells, kept)
        if not kept:
            led.forget(victim)  # gone or altered: the cleanup finds it by name
        blocked = self._controls(cells)
        return Table(cells, blocked, [t.name for t in led.owned if not t.deleted], missing)

    def _controls(self, cells: dict[tuple[str, str], Cell]) -> dict[tuple[str, str], tuple[str, str]]:
        """For each refused row and documented call whose variants did what they may not, make that documented
        call itself: when it accepts the credential too, its own requirement fails (in the authorization
        matrix) and the variants of it are blocked by that here. Nothing is sent when all is well."""
        c, p, led = self.target.client, self.target.profile, self.ledger
        suspect = {
            (state, BY_ID[vid].of)
            for (state, vid), cell in cells.items()
            if state in REFUSED and (cell.accepted or cell.created or cell.victim_kept is False)
        }
        blocked = {}
        for state, call in sorted(suspect):
            headers, _ = self._headers(state)  # (made before: it cannot block now)
            if call == LIST:
                resp = c.request("GET", "/security/tokens", headers=headers)
            elif call == CREATE:
                resp, tok = led.create_raw(
                    {"name": led.name("pv-control"), "roles": [p.unprivileged_role]}, headers=headers, attribute=False
                )
                if tok is not None:
                    led.attribute_all([tok])
            else:
                aim = led.create("pv-control", roles=[p.unprivileged_role])
                resp = c.request("DELETE", f"/security/tokens/{aim.id}", headers=headers)
                if resp.is_success and listed(led.list_items(), aim.id, aim.name) is None:
                    led.forget(aim)
            if resp.is_success:
                requirement = DOCUMENTED_CALL_REQUIREMENT[state]
                why = f"the documented {call} itself accepted the {state} credential ({resp.status_code})"
                anyone = foundations.anonymous_accepted(self.target, call)
                if anyone is not None:  # it answers anyone: ST-AUTH-006's one finding (issue 24)
                    requirement, why = pre.ANONYMOUS_REFUSED_ON[call], anyone
                blocked[(state, call)] = (requirement, why)
        return blocked

    def documented_leaks(self, state: str) -> list[str]:
        """What the documented list, asked with the row's credential, carries of the secrets (a control made
        only when a variant's answer leaked: a server that leaks there as well fails ST-ONCE-006 for it)."""
        headers, presented = self._headers(state)
        known = REDACTOR.secrets()
        return fleet.carried(self.target.client.request("GET", "/security/tokens", headers=headers), presented, known)


def _blame(cells: dict[tuple[str, str], Cell], kept: bool) -> None:
    """Which cells the victim's fate is judged on. When it is gone or altered: the cells that could have
    done it and were answered 2xx (or, when none was, every cell that could have done it)."""
    relevant = [key for key in cells if BY_ID[key[1]].changes or key[0] == MANAGER]
    suspects = [
        key for key in relevant if cells[key].accepted and ("{id}" in BY_ID[key[1]].path or not BY_ID[key[1]].safe)
    ]
    for key in relevant:
        cells[key].victim_kept = kept or (bool(suspects) and key not in suspects)


@pytest.fixture(scope="session")
def variants(target, ledger) -> Variants:
    return Variants(target, ledger)


# -- the checks ---------------------------------------------------------------------------------------


def _cell_of(variants: Variants, state: str, variant_id: str) -> Cell:
    table = variants.table()
    v = BY_ID[variant_id]
    if state in table.missing:
        pre.block(*table.missing[state])
    if (state, v.of) in table.blocked:
        pre.block(*table.blocked[(state, v.of)])
    if (state, variant_id) not in table.cells:
        pytest.skip(f"not sent to this target: {variant_id} is sent only to a target the suite launched")
    cell = table.cells[(state, variant_id)]
    # the table's calls were made together: a failure report shows this cell's own exchange
    EXCHANGES.clear()
    if cell.exchange is not None:
        EXCHANGES.add(cell.exchange)
    return cell


def _what(state: str, v: Variant) -> str:
    who = {NONE: "no credential", DELETED: "a deleted manager token", MANAGER: "the manager token"}.get(
        state, "a token without the manager role"
    )
    extra = "".join(f" with {k}: {val}" for k, val in v.headers.items())
    return f"{v.method} {v.path}{extra} ({v.id}) with {who}"


def _shows_token_data(cell: Cell, names: list[str]) -> bool:
    text = cell.response.text if cell.response is not None else ""
    return any(name in text for name in names)


@pytest.mark.parametrize(("state", "variant_id"), REFUSAL_CELLS)
def test_variant_refuses_what_the_documented_call_refuses(variants, state, variant_id):
    """A path or method variant never answers 2xx to a credential the documented call refuses."""
    cell = _cell_of(variants, state, variant_id)
    v = BY_ID[variant_id]
    if not cell.accepted:
        return
    if v.method == "OPTIONS" and not _shows_token_data(cell, variants.table().names):
        return  # a CORS preflight answers without credentials; it may, as long as it shows nothing
    raise AssertionError(
        f"{_what(state, v)}: expected a refusal (or a redirect), but the target answered {cell.status}"
    )


@pytest.mark.parametrize(("state", "variant_id"), STATE_CELLS)
def test_variant_changes_nothing_it_may_not(variants, observe, state, variant_id):
    """A refused variant creates, deletes and alters nothing; a safe method changes nothing, whoever sends it."""
    cell = _cell_of(variants, state, variant_id)
    v = BY_ID[variant_id]
    if state == MANAGER:
        observe("path_variant", {"variant": variant_id, "status": cell.status})
    if cell.created:
        raise AssertionError(f"{_what(state, v)}: answered {cell.status}, and a token named {cell.name!r} was created")
    if cell.victim_kept is False:
        raise AssertionError(
            f"{_what(state, v)}: answered {cell.status}, and the token it named (a token of the run) was deleted "
            "or altered (the admin's list no longer shows it with its name and roles)"
        )


@pytest.mark.parametrize("state", LEAK_ROWS)
def test_variant_answers_carry_no_secret(variants, state):
    """No answer of the row's variants, any status, carries a secret presented in it or issued during the run."""
    table = variants.table()
    if state in table.missing:
        pre.block(*table.missing[state])
    leaks = {vid: cell for (s, vid), cell in table.cells.items() if s == state and cell.leaks}
    if leaks and variants.documented_leaks(state):
        pre.block("ST-ONCE-006", f"the documented list, asked with the {state} credential, carries a secret as well")
    if leaks:
        first = next(iter(leaks.values()))
        EXCHANGES.clear()
        if first.exchange is not None:
            EXCHANGES.add(first.exchange)
    assert not leaks, "answers carry secrets (masked in this report): " + "; ".join(
        f"{_what(state, BY_ID[vid])} ({cell.status}): {', '.join(cell.leaks)}" for vid, cell in leaks.items()
    )
