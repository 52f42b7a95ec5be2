"""Role lists at the edges: accepted, listed as sent and then behaving as asked, or refused with a 4xx
that creates nothing.

The documentation sets no limit on how many roles a token holds or how long a role name is, and
leaves unknown role names to the target (stored as given or refused with a 4xx). Servers commonly
cap somewhere: a fixed number of role slots (8, 32, 64, 255), a role column of 255 characters or
767 bytes, a length counted in UTF-16 units. A cap applied without a 4xx — a list cut short,
sorted, made unique, a name trimmed or normalised — is the defect class these classic cases are
sent for on every run, never left to what Hypothesis draws (``test_fuzz_names_roles.py`` draws
the rest):

- many roles (64, 256, 1,024), the manager role last among them, so a list cut short also
  loses management;
- one very long role name, counted in characters (256 ASCII) and in UTF-8 bytes (256 characters
  of three bytes, 768 in all; 192 of four bytes, 768 bytes and 384 UTF-16 units);
- a role twice in the list; every predefined role together; roles in other scripts, with one
  role composed and the same role decomposed; an empty role name; roles of white space only or
  padded with it.

Each list also holds the profile's unprivileged role, so an accepted token must authenticate.
An accepted list must be listed as sent (exactly, or as a set, as ``expect.roles_compare``
says), the token must pass the probe, and it must be let into token management exactly when
the list holds the manager role (a list of the unprivileged role and names no one defined
grants nothing; other predefined roles are left to ST-ROLE-006).

Cost: the creates go together (one wave), their ids are found with one list that also judges
each entry, then each token's probe and list call go together, and the tokens are deleted
together: four waves for the eleven cases.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from sts_conformance.checking import foundations
from sts_conformance.checking.checks import block_if_creates_fail, listed, working_forms
from sts_conformance.checking.strategies import PREDEFINED_ROLES
from sts_conformance.core import preconditions as pre
from sts_conformance.target.client import AuthForm
from sts_conformance.target.together import run_together
from sts_conformance.tokens.journal import token_id
from sts_conformance.tokens.ledger import OwnedToken

# the checks run at once with the other modules' (checking/ahead.py; hence the table's fixture is of
# session scope): they share one table, made by the first of them while the others wait for it
pytestmark = [
    pytest.mark.precondition(pre.CREATE, pre.LIST, pre.LISTED),
    pytest.mark.requirement("ST-FUZZ-002"),
    pytest.mark.together,
]


def _fillers(count: int) -> list[str]:
    return [f"sts-conformance-role-{i:04d}" for i in range(count)]


def _roles(case: str, manager: str, unprivileged: str) -> list[str]:
    """The role list of ``case``; each holds the unprivileged role (the token must authenticate)."""
    many = {"64-roles": 64, "256-roles": 256, "1024-roles": 1_024}
    if case in many:  # the manager role last: a list cut short loses it
        return [unprivileged, *_fillers(many[case] - 2), manager]
    return {
        "role-of-256-ascii-characters": [unprivileged, "r" * 256],
        "role-of-256-characters-768-utf8-bytes": [unprivileged, "\u5f79" * 256],  # 役, three bytes each
        "role-of-192-characters-768-utf8-bytes": [unprivileged, "\U0001d4c7" * 192],  # four bytes, two UTF-16 units
        "role-twice": [unprivileged, "sts-conformance-twice", unprivileged, "sts-conformance-twice"],
        "every-predefined-role": list(dict.fromkeys((unprivileged, *PREDEFINED_ROLES, manager))),
        "other-scripts-composed-and-decomposed": [
            unprivileged,
            "ρόλος-роль-役割-역할",
            "دور-תפקיד",
            "caf\u00e9",  # composed
            "cafe\u0301",  # the same role decomposed: a target that normalises makes the two one
        ],
        "empty-role-name": [unprivileged, ""],
        "white-space-roles": [unprivileged, " ", "\t", " padded role "],
    }[case]


CASES = [
    "64-roles",
    "256-roles",
    "1024-roles",
    "role-of-256-ascii-characters",
    "role-of-256-characters-768-utf8-bytes",
    "role-of-192-characters-768-utf8-bytes",
    "role-twice",
    "every-predefined-role",
    "other-scripts-composed-and-decomposed",
    "empty-role-name",
    "white-space-roles",
]


def show_roles(roles: Any) -> str:
    """A role list as a message can show it: escaped, long names and long lists cut."""
    if not isinstance(roles, list):
        return ascii(roles)
    shown = [ascii(r) if not isinstance(r, str) or len(r) <= 32 else f"{r[:12]!a}…({len(r)} chars)" for r in roles]
    if len(shown) > 6:
        shown = [*shown[:3], f"… {len(shown) - 5} more …", *shown[-2:]]
    return f"[{', '.join(shown)}] ({len(roles)} roles)"


@dataclass
class Made:
    """One case: what was sent, the create's answer, and (when accepted) the token and what it showed."""

    roles: list[str]
    name: str
    form: AuthForm
    status: int = 0
    tok: OwnedToken | None = None
    #: the token's list entry, or the entries under the name of a refused create (none is right)
    entry: dict[str, Any] | None = None
    strays: list[dict[str, Any]] = field(default_factory=list)
    probe: httpx.Response | None = None
    listing: httpx.Response | None = None


class Edges:
    """Every case's token, made together on first use, judged from one list and one wave of calls."""

    def __init__(self, target, ledger) -> None:
        self.target, self.ledger = target, ledger
        self._made: dict[str, Made] | None = None
        self._lock = threading.Lock()  # checks run together (checking/ahead.py) wait for the first to make it

    def made(self, case: str) -> Made:
        with self._lock:
            if self._made is None:
                self._made = self._make_all()
            return self._made[case]

    def _make_all(self) -> dict[str, Made]:
        p, ledger = self.target.profile, self.ledger
        forms = working_forms(self.target)
        made = {
            case: Made(
                _roles(case, p.manager_role, p.unprivileged_role), ledger.name(f"edge-{n}"), forms[n % len(forms)]
            )
            for n, case in enumerate(CASES)
        }
        answers = ledger.create_raw_together([{"name": m.name, "roles": m.roles} for m in made.values()])
        for (case, m), (resp, tok) in zip(made.items(), answers, strict=True):
            block_if_creates_fail(ledger, resp, [p.unprivileged_role], f"a create with role list {case}")
            m.status, m.tok = resp.status_code, tok
        toks = [m.tok for m in made.values() if m.tok is not None]
        items = ledger.list_until(lambda now: ledger.shows(toks, now))  # (a list may show a create late)
        ledger.attribute_all(toks, items)
        for m in made.values():
            if m.tok is not None and m.tok.id is not None:
                m.entry = listed(items, m.tok.id)
            elif m.tok is None:
                m.strays = [i for i in items if i.get("name") == m.name]
        usable = [(m, m.tok) for m in made.values() if m.tok is not None and m.tok.id is not None]
        client = self.target.client
        calls = [
            call
            for m, tok in usable
            for call in (
                functools.partial(self.target.probe, tok.secret, m.form),
                functools.partial(client.list_tokens, tok.secret, form=m.form),
            )
        ]
        answers_ = run_together(calls)
        for n, (m, _tok) in enumerate(usable):
            m.probe, m.listing = answers_[2 * n], answers_[2 * n + 1]
        # many roles make a long list entry: gone before the rest of the run lists again
        run_together(functools.partial(ledger.delete, tok) for _m, tok in usable)
        return made


@pytest.fixture(scope="session")
def edges(target, ledger) -> Edges:
    return Edges(target, ledger)


def _same_roles(listed_roles: Any, sent: list[str], compare: str) -> bool:
    if not isinstance(listed_roles, list):
        return False
    return listed_roles == sent if compare == "exact" else set(map(str, listed_roles)) == set(sent)


def _difference(got: Any, sent: list[str]) -> str:
    """What a listed role list lost, gained or changed against the one sent, for a message."""
    if not isinstance(got, list):
        return ""
    missing = [r for r in dict.fromkeys(sent) if r not in got]
    extra = [r for r in dict.fromkeys(got) if r not in sent]
    if missing or extra:
        return f": missing {show_roles(missing)}, not sent {show_roles(extra)}"
    if sorted(got) == sorted(sent):
        return ": the same roles in another order"
    return ": the same roles, but not each as many times as sent"


def _may_manage(roles: list[str], target) -> bool | None:
    """Whether the token must manage tokens (the manager role), must not (only the unprivileged role and
    names no one defined), or may either (another predefined role: ST-ROLE-006's question)."""
    p = target.profile
    if p.manager_role in roles:
        return True
    others = set(PREDEFINED_ROLES) | {"stackstate-k8s-admin"}
    if any(r in others and r != p.unprivileged_role for r in roles):
        return None
    if foundations.anonymous_accepted(target, "list") or foundations.role_ignored(target, "list"):
        return None  # a list that lets anyone, or any role, in refuses no role: ST-AUTH-006/ST-ROLE-002's
    return False


@pytest.mark.parametrize("case", CASES)
def test_role_list_at_the_edge_accepted_as_sent_and_obeyed_or_refused(target, ledger, edges, observe, case):
    """The role list is refused with a 4xx creating nothing, or listed as sent, authenticates, and manages
    tokens exactly when it holds the manager role."""
    m = edges.made(case)
    what = f"a token created with roles {show_roles(m.roles)} ({case})"
    observe("role_list_edge", {"case": case, "create_status": m.status})
    if not 200 <= m.status < 300:
        assert 400 <= m.status < 500, f"{what}: the create answered {m.status}, expected 200 or a 4xx"
        assert not m.strays, (
            f"{what}: refused with {m.status}, yet the list shows token(s) under its name: "
            + ", ".join(str(token_id(i.get("id"))) for i in m.strays)
        )
        return
    assert m.tok is not None, f"{what}: accepted with {m.status} but the body carries no token secret"
    ledger.block_unlisted(m.tok, f"{what}: accepted ({m.status}), but")
    compare = target.expect.roles_compare
    assert m.entry is not None, f"{what}: accepted, but no list entry carries its id {m.tok.id}"
    got = m.entry.get("roles")
    if not _same_roles(got, m.roles, compare):  # not an assert: pytest would print both lists in full
        raise AssertionError(
            f"{what}: listed with roles {show_roles(got)}, expected "
            f"{'exactly' if compare == 'exact' else 'the set'} {show_roles(m.roles)}{_difference(got, m.roles)}"
        )
    assert m.probe is not None and m.listing is not None
    assert m.probe.is_success, f"{what}: refused ({m.probe.status_code}) on the probe in {m.form.value}"
    manages = _may_manage(m.roles, target)
    if manages:
        assert m.listing.is_success, (
            f"{what}: holds the manager role (last of its list), yet its list call in {m.form.value} got "
            f"{m.listing.status_code}"
        )
    elif manages is False:
        refused = tuple(dict.fromkeys((*target.expect.forbidden_status, *target.expect.unauthenticated_status)))
        assert m.listing.status_code in refused, (
            f"{what}: holds no manager role, yet its list call got {m.listing.status_code} "
            f"(expected refusal with {' or '.join(map(str, refused))})"
        )
