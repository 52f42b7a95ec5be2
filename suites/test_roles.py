"""Roles: who may manage service tokens, and how a token's roles are kept.

Whether a manager token and an unprivileged token are accepted and refused on each call is
the authorization matrix's question (``test_authorization_matrix.py``); this module looks at
role lists: the manager role in second place, the roles as listed, case-altered and other
predefined roles.
"""

from __future__ import annotations

import pytest

from sts_conformance.checking import foundations
from sts_conformance.checking.checks import block_if_creates_fail, expect_refused, listed
from sts_conformance.core import preconditions as pre
from sts_conformance.plugin import planned
from sts_conformance.tokens.ledger import OwnedToken
from sts_conformance.tokens.premade import Premade, case_of

# every check here creates tokens and reads them back from the list
# the checks are independent of each other: they run at once with the
# other modules' (checking/ahead.py; hence this module's fixtures are of session scope), the deletes
# that share one victim token one after another
pytestmark = [pytest.mark.precondition(pre.CREATE, pre.LIST, pre.LISTED), pytest.mark.together]

OPERATIONS = ["create", "list", "delete"]
#: a refused delete is aimed at the module's one shared victim token: such checks run one after another
#: (while the others run), so that one wrongly accepted does not take the victim from under another's
REFUSED_DELETE = pytest.param("delete", marks=pytest.mark.together(one_at_a_time="role-victim"), id="delete")

#: The predefined roles of the product's documentation (self-hosted).
PREDEFINED_ROLES = ["stackstate-admin", "stackstate-power-user", "stackstate-k8s-troubleshooter", "stackstate-guest"]


def _wants(item, profile, ledger) -> dict:
    """The tokens a check of this module takes (see ``premade``): made together for the whole module."""
    case, name = case_of(item), item.originalname
    m, u = profile.manager_role, profile.unprivileged_role
    if name == "test_manager_role_listed_after_another_role_manages_tokens" and m != u:
        wanted = {"manager-second": ledger.body("role-manager-second", roles=[u, m])}
        if case["operation"] == "list":  # the token the list must show (the one a delete removes is made
            # when it is deleted: the newest token, so a delete that removes the next one instead shows in
            # ST-LIFE-006 alone)
            wanted["managed", "list"] = ledger.body("managed-listed", roles=[u])
        return wanted
    if name == "test_roles_round_trip_in_list":
        return {("round-trip", case["case"]): ledger.body("roles", roles=_roles_for(case["case"], profile))}
    if name == "test_case_altered_manager_role_grants_no_management":
        roles = [_case_altered(m, case["how"])]
        if roles == [m]:
            return {}
    elif name == "test_other_non_manager_roles_grant_no_management":
        roles = case["roles"]
        if m in roles:
            return {}
    else:
        return {}
    wanted = {("holding", *roles): ledger.body("role-holder", roles=roles)}
    if case["operation"] == "delete":
        wanted["victim"] = ledger.body("role-victim", roles=[u])
    return wanted


@pytest.fixture(scope="session")
def premade(request, target, ledger) -> Premade:
    """The tokens of this module's checks, made together when the first check needs one."""
    items, known = planned(request, __file__)
    return Premade.for_items(ledger, items, lambda item: _wants(item, target.profile, ledger), together=known)


class Holders:
    """Tokens of the module, each made once and shared by the checks that present it.

    A token with given roles is presented by every operation checked with it; the token the delete
    checks aim at is shared too, and made again only once a wrongly accepted delete removed it.
    """

    def __init__(self, target, ledger, premade):
        self.target, self.ledger, self.premade = target, ledger, premade
        self._victim: OwnedToken | None = None

    def holding(self, roles: list[str]) -> tuple[int, OwnedToken | None, str]:
        """(create status, token or None, name) of the module's token with exactly ``roles``."""
        key = ("holding", *roles)
        resp, tok = self.premade.take_raw(key)
        unprivileged = [self.target.profile.unprivileged_role]
        block_if_creates_fail(self.ledger, resp, unprivileged, f"a create with roles {roles}")
        name = self.premade.body(key)["name"]
        return resp.status_code, tok, name

    def victim(self) -> OwnedToken:
        if self._victim is None:
            (self._victim,) = self.premade.take("victim")
        elif self._victim.deleted:
            self._victim = self.ledger.create("role-victim", roles=[self.target.profile.unprivileged_role])
        return self._victim


@pytest.fixture(scope="session")
def holders(target, ledger, premade) -> Holders:
    return Holders(target, ledger, premade)


def _expect_management_refused(target, ledger, manage_as, holders, secret, operation, allowed, what):
    """``operation`` with ``secret`` is refused with one of ``allowed``, and the refused call changes nothing."""
    foundations.require_role_refused(target, operation)  # a call that lets anyone, or any role, in refuses no role
    form = target.admin_form
    if operation == "create":
        resp, name, _ = manage_as.create(secret, form, label="role-refused", roles=[target.profile.manager_role])
    elif operation == "list":
        resp = manage_as.list_tokens(secret, form)
    else:
        victim = holders.victim()
        resp = manage_as.delete(secret, form, victim)
    expect_refused(resp, allowed, f"{operation} by {what}")
    if operation == "create":
        assert not manage_as.entries_named(name), f"create by {what} was refused, yet a token named {name!r} exists"
    elif operation == "delete":
        assert listed(ledger.list_items(), victim.id, victim.name) is not None, (
            f"delete by {what} was refused, yet token {victim.id} is gone from the list"
        )
        works = target.probe(victim.secret, form)
        assert works.is_success, (
            f"delete by {what} was refused, yet token {victim.id} stopped working ({works.status_code})"
        )


@pytest.fixture(scope="session")
def manager_second(target, premade):
    """A token whose roles name the unprivileged role first and the manager role second."""
    m, u = target.profile.manager_role, target.profile.unprivileged_role
    if m == u:
        pytest.skip(f"profile settings 'roles.manager' and 'roles.unprivileged' name the same role {m!r}")
    (tok,) = premade.take("manager-second")
    return tok


@pytest.mark.requirement("ST-ROLE-001")
@pytest.mark.parametrize("operation", OPERATIONS)
def test_manager_role_listed_after_another_role_manages_tokens(target, manage_as, premade, manager_second, operation):
    """A token whose roles name the unprivileged role first and the manager role second manages tokens too."""
    what = f"{operation} by a token with roles {manager_second.roles}"
    aim = premade.take(("managed", "list"))[0] if operation == "list" else None
    manage_as.expect_manages(manager_second.secret, target.admin_form, operation, what, aim)


ROLE_LISTS = [
    "unprivileged",
    "manager",
    "manager-then-unprivileged",
    "unprivileged-then-manager",
    "all-predefined",
    "all-predefined-reversed",
]


def _roles_for(case: str, profile) -> list[str]:
    m, u = profile.manager_role, profile.unprivileged_role
    roles = {
        "unprivileged": [u],
        "manager": [m],
        "manager-then-unprivileged": [m, u],
        "unprivileged-then-manager": [u, m],
        "all-predefined": PREDEFINED_ROLES,
        "all-predefined-reversed": PREDEFINED_ROLES[::-1],
    }[case]
    return list(dict.fromkeys(roles))  # one role, not two, when the profile names the same role twice


@pytest.mark.requirement("ST-ROLE-004")
@pytest.mark.parametrize("case", ROLE_LISTS)
def test_roles_round_trip_in_list(target, ledger, premade, observe, case):
    """The list shows each token's roles as given: as a set, or exactly when the profile pins it."""
    roles = _roles_for(case, target.profile)
    known = {target.profile.manager_role, target.profile.unprivileged_role}
    resp, tok = premade.take_raw(("round-trip", case))  # (its create was sent with the module's others)
    block_if_creates_fail(ledger, resp, [target.profile.unprivileged_role], f"a create with roles {roles}")
    if not resp.is_success and not set(roles) <= known and 400 <= resp.status_code < 500:
        observe("predefined_roles", {"roles": roles, "status": resp.status_code})
        if target.expect.unknown_roles != "accepted":
            pytest.skip(
                f"the target refused roles {sorted(set(roles) - known)} ({resp.status_code}); only the profile "
                "settings 'roles.manager' and 'roles.unprivileged' are known to exist there, and "
                "'expect.unknown_roles' is not 'accepted'"
            )
    assert resp.is_success, f"create with roles {roles}: expected success, got {resp.status_code}"
    assert tok is not None and tok.id is not None, f"the token created with roles {roles} is not listed"
    entry = listed(ledger.list_items(), tok.id)
    assert entry is not None, f"token {tok.id} is not listed"
    got = entry.get("roles")
    assert isinstance(got, list), f"token {tok.id} is listed with roles {got!r}, not a list"
    if target.expect.roles_compare == "exact":
        assert got == roles, f"created with roles {roles}, listed with {got} (expect.roles_compare is exact)"
    else:
        assert sorted(set(got)) == sorted(set(roles)), f"created with roles {roles}, listed with {got}"


def _case_altered(role: str, how: str) -> str:
    if how == "title":
        altered = "-".join(part[:1].upper() + part[1:] for part in role.split("-"))
        return altered if altered != role else role.swapcase()
    return role.upper() if role.upper() != role else role.lower()


@pytest.mark.requirement("ST-ROLE-005")
@pytest.mark.parametrize("operation", ["create", "list", REFUSED_DELETE])
@pytest.mark.parametrize("how", [pytest.param("title", id="Title-Case"), pytest.param("upper", id="UPPER-CASE")])
def test_case_altered_manager_role_grants_no_management(target, ledger, manage_as, holders, observe, how, operation):
    """A token whose only role is the manager role in another case is refused token management."""
    role = _case_altered(target.profile.manager_role, how)
    if role == target.profile.manager_role:
        pytest.skip(f"the manager role {role!r} (profile setting 'roles.manager') has no letters to change the case of")
    status, tok, name = holders.holding([role])
    if not 200 <= status < 300:
        # refusing such a role at creation also keeps it from granting anything
        observe("case_altered_role", {"role": role, "create_status": status})
        assert 400 <= status < 500, f"creating a token with role {role!r} answered {status}"
        assert not [i for i in ledger.list_items() if i.get("name") == name], (
            f"creating a token with role {role!r} was refused, yet a token named {name!r} exists"
        )
        return
    observe("case_altered_role", {"role": role, "create_status": status})
    assert tok is not None and tok.id is not None, f"the token created with role {role!r} is not listed"
    allowed = tuple(dict.fromkeys((*target.expect.forbidden_status, *target.expect.unauthenticated_status)))
    _expect_management_refused(
        target, ledger, manage_as, holders, tok.secret, operation, allowed, f"a token with only role {role!r}"
    )


NON_MANAGER_SETS = [
    pytest.param([], id="no-roles"),
    pytest.param(["stackstate-power-user"], id="power-user"),
    pytest.param(["stackstate-k8s-troubleshooter"], id="k8s-troubleshooter"),
    pytest.param(["stackstate-power-user", "stackstate-guest", "stackstate-k8s-troubleshooter"], id="all-but-admin"),
]


@pytest.mark.requirement("ST-ROLE-006")
@pytest.mark.parametrize("operation", ["create", REFUSED_DELETE])
@pytest.mark.parametrize("roles", NON_MANAGER_SETS)
def test_other_non_manager_roles_grant_no_management(target, ledger, manage_as, holders, observe, roles, operation):
    """A token with no role, or only predefined roles other than the manager role, cannot manage tokens."""
    if target.profile.manager_role in roles:
        pytest.skip(f"profile setting 'roles.manager' ({target.profile.manager_role!r}) is one of {roles}")
    status, tok, _name = holders.holding(roles)
    if not 200 <= status < 300:
        # a target may refuse an empty or unknown role list at creation: then nothing can be granted
        observe("non_manager_roles", {"roles": roles, "create_status": status})
        assert 400 <= status < 500, f"creating a token with roles {roles} answered {status}"
        return
    assert tok is not None and tok.id is not None, f"the token created with roles {roles} is not listed"
    allowed = tuple(dict.fromkeys((*target.expect.forbidden_status, *target.expect.unauthenticated_status)))
    _expect_management_refused(
        target, ledger, manage_as, holders, tok.secret, operation, allowed, f"a token with roles {roles}"
    )
