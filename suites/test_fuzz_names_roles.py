"""Fuzzed token names and role lists: accepted exactly as sent, or refused cleanly.

For every generated create request the target either accepts it (200; the token then
authenticates, and the list shows exactly that name and those roles) or refuses it with a
4xx that creates nothing. Never a server error, never a hang, never a secret in the list.
Which of the two the target chose, and up to which name length it accepts, is left open
by the documentation: it is recorded as an observation, not judged.

Every token an example creates is deleted at the end of the example.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from sts_conformance.checking import foundations
from sts_conformance.checking.checks import block_if_creates_fail, json_body, listed, validate, working_forms
from sts_conformance.checking.hypothesis_profiles import run_seeded, suite_settings
from sts_conformance.checking.strategies import (
    BOUNDARY_LENGTHS,
    LENGTH_ALPHABETS,
    PREDEFINED_ROLES,
    name_traits,
    names,
    names_of_length,
    role_lists,
    role_traits,
)
from sts_conformance.core.redact import REDACTOR
from sts_conformance.target.client import AuthForm
from sts_conformance.tokens.journal import token_id
from sts_conformance.tokens.ledger import OwnedToken

#: what one generated create costs the target: the create, a list, a probe and a delete when accepted
#: (and, for a role list, one call made with the new token to judge what it may do)
REQUESTS_PER_EXAMPLE = 4


def show(text: str, limit: int = 48) -> str:
    """A name or role as a message can show it: escaped, and cut when long."""
    if len(text) <= limit:
        return ascii(text)
    return f"{text[:limit]!a}… ({len(text)} characters)"


def _loose(text: str) -> str:
    """What a target that trims or normalises names would turn ``text`` into."""
    return unicodedata.normalize("NFC", text).strip()


@dataclass
class Outcome:
    accepted: bool
    status: int

    def __str__(self) -> str:
        return "accepted" if self.accepted else f"refused {self.status}"


@dataclass
class Tally:
    """Which answers the target gave to each kind of generated value, for the report.

    Kept as sets, not counts, so two runs against one target report the same choices.
    """

    by_trait: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def add(self, traits: list[str], outcome: Outcome) -> None:
        for trait in traits:
            self.by_trait[trait].add(str(outcome))

    def summary(self) -> dict[str, list[str]]:
        return {trait: sorted(seen) for trait, seen in sorted(self.by_trait.items())}


def _run(check: Any, target, request, *, share: float = 1.0) -> None:
    """Run a ``@given`` check with its share of the examples, within the run's time budget."""
    budget = target.fuzz_budget()
    settings = suite_settings(share, budget=budget, requests_per_example=REQUESTS_PER_EXAMPLE)
    run_seeded(
        settings(check),
        config=request.config,
        nodeid=request.node.nodeid,
        shrink_seconds=budget.shrink_seconds(REQUESTS_PER_EXAMPLE),
    )


# -- judging one create request ---------------------------------------------------------------


def _known_secret_in(text: str) -> bool:
    return any(secret in text for secret in REDACTOR.secrets())


def _roles_match(listed_roles: Any, sent: list[str], compare: str) -> bool:
    if not isinstance(listed_roles, list):
        return False
    if compare == "exact":
        return listed_roles == sent
    return set(map(str, listed_roles)) == set(sent)


def _release(ledger, tok: OwnedToken, items: list[dict[str, Any]]) -> None:
    """Delete a token an example created; leave alone an entry the ledger mistook for ours."""
    if tok.id is None or tok.deleted:
        return
    entry = listed(items, tok.id)
    name = entry.get("name") if entry else None
    if ledger.in_run(name) and not ledger.is_ours(name):
        ledger.forget(tok)  # another worker's token, claimed by the ledger's best guess: not ours to delete
        return
    resp = ledger.delete(tok)
    assert resp.is_success or resp.status_code == 404, (
        f"deleting the example's token {tok.id} answered {resp.status_code}, expected 204"
    )


def create_and_judge(
    target, ledger, body: dict[str, Any], *, must_authenticate: bool, form: AuthForm, manages: bool | None = None
) -> Outcome:
    """Send one create request and hold the answer to "accepted exactly, or refused cleanly".

    ``manages``: whether the new token must (True) or must not (False) be let into token
    management, judged with one list call made with it; None leaves it unjudged."""
    what = f"create with name {show(body['name'])} and roles [{', '.join(show(r, 24) for r in body['roles'])}]"
    try:
        resp, tok = ledger.create_raw(body, attribute=False)
    except httpx.TimeoutException:
        raise AssertionError(
            f"{what}: no answer within {target.profile.request_timeout:g}s (profile setting request_timeout)"
        ) from None
    status = resp.status_code
    # the positive control is a plain create: with the fuzzed roles it fails for the same reason (many-roles-500)
    block_if_creates_fail(ledger, resp, [target.profile.unprivileged_role], what)
    assert status < 500, f"{what}: expected 200 or a 4xx, got a server error {status}"
    assert 200 <= status < 300 or 400 <= status < 500, f"{what}: expected 200 or a 4xx, got {status}"
    if not resp.is_success:
        if _known_secret_in(resp.text):
            raise AssertionError(f"{what}: the {status} refusal carries a secret (masked in this report)")
        _assert_created_nothing(ledger, body["name"], what, status)
        return Outcome(False, status)

    assert tok is not None, f"{what}: accepted with {status} but the body carries no token secret"
    listed_items: list[dict[str, Any]] = []
    try:
        _judge_accepted(
            target, ledger, body, tok, resp, what, listed_items, must_authenticate=must_authenticate, form=form
        )
        if manages is not None:
            _judge_rights(target, tok, what, manages=manages, form=form)
    finally:
        _release(ledger, tok, listed_items or ledger.list_items())
    return Outcome(True, status)


def _judge_accepted(
    target, ledger, body, tok: OwnedToken, resp, what, items: list[dict[str, Any]], *, must_authenticate, form
):
    """Judge an accepted create; ``items`` receives the list it read (the caller reuses it)."""
    items.extend(ledger.list_until(lambda now: ledger.shows([tok], now)))  # (a list may show a create late)
    ledger.attribute_all([tok], items)  # the one list finds the new token's id and judges it
    ledger.block_unlisted(tok, f"{what}: accepted ({resp.status_code}), but")
    created = json_body(resp, what)
    validate(created, "CreatedToken")
    if created["name"] != body["name"]:  # not an assert: pytest would print both names raw, RTL and all
        raise AssertionError(f"{what}: the create response names it {show(created['name'])}")
    entry = listed(items, tok.id)
    if entry is None or entry.get("name") != body["name"]:
        sent = _loose(body["name"])
        near = [n for i in items if isinstance(n := i.get("name"), str) and _loose(n) == sent]
        hint = f"; entries with a trimmed/normalised form of it: {', '.join(map(show, near))}" if near else ""
        shown = entry.get("name") if entry else None
        got = f"listed as {show(shown)}" if isinstance(shown, str) else "not listed under its id"
        raise AssertionError(f"{what}: accepted (200) but {got}, expected exactly the name sent{hint}")
    if not _roles_match(entry.get("roles"), body["roles"], target.expect.roles_compare):
        raise AssertionError(
            f"{what}: listed with roles {entry.get('roles')!a}, expected "
            f"{'exactly' if target.expect.roles_compare == 'exact' else 'the set'} {body['roles']!a}"
        )

    probe = target.probe(tok.secret, form)
    assert probe.status_code < 500, f"{what}: the new token's probe call answered a server error {probe.status_code}"
    if must_authenticate:
        assert probe.is_success, f"{what}: the new token is refused ({probe.status_code}) on the probe in {form.value}"
    else:
        # Roles the target may not know: the token must still be authenticated, though it
        # may lack a permission. Only a status pinned as "unauthenticated" and not as
        # "forbidden" says the token itself was not recognised.
        unauthenticated_only = set(target.expect.unauthenticated_status) - set(target.expect.forbidden_status)
        assert probe.status_code not in unauthenticated_only, (
            f"{what}: the new token is refused as unauthenticated ({probe.status_code}) in {form.value}"
        )


def _judge_rights(target, tok: OwnedToken, what: str, *, manages: bool, form: AuthForm) -> None:
    """The new token may list tokens exactly when its roles hold the manager role (ST-ROLE-001/007)."""
    resp = target.client.list_tokens(tok.secret, form=form)
    if manages:
        assert resp.is_success, f"{what}: the token holds the manager role, yet its list call got {resp.status_code}"
        return
    refused = (*target.expect.forbidden_status, *target.expect.unauthenticated_status)
    assert resp.status_code in refused, (
        f"{what}: no role of the token is the manager role, yet its list call got {resp.status_code} "
        f"(expected refusal with {' or '.join(map(str, sorted(set(refused))))})"
    )


def _may_manage(roles: list[str], profile) -> bool | None:
    """Whether a token with ``roles`` must manage tokens (True), must not (False), or may either (None):
    the manager role grants it; generated names and the unprivileged role grant nothing; other
    predefined roles, and an empty list, are left to ST-ROLE-006 (older releases let power users
    manage; what no role at all may do is not documented)."""
    if profile.manager_role in roles:
        return True
    if not roles:
        return None
    others = set(PREDEFINED_ROLES) | {"stackstate-k8s-admin"}
    if any(role in others and role != profile.unprivileged_role for role in roles):
        return None
    return False


def _assert_created_nothing(ledger, name: str, what: str, status: int) -> None:
    """After a refusal, no new list entry may carry the name (trimmed or normalised or not).

    Entries listed before the run, and the run's own (prefixed) tokens, are not evidence: a
    stray the target made anyway is deleted by the run's cleanup, found by its name.
    """
    for entry in ledger.list_items():
        got = entry.get("name")
        if not isinstance(got, str) or ledger.in_run(got) or token_id(entry.get("id")) in ledger.baseline:
            continue
        if got == name or _loose(got) == _loose(name):
            raise AssertionError(
                f"{what}: refused with {status}, but token {entry.get('id')} named {show(got)} was created"
            )


# -- the checks -----------------------------------------------------------------------------


@pytest.mark.requirement("ST-FUZZ-001")
def test_any_name_accepted_exactly_or_refused_cleanly(target, ledger, observe, request):
    """Any name is accepted and listed exactly as sent (and authenticates), or refused with a 4xx creating nothing."""
    tally = Tally()
    roles = [target.profile.unprivileged_role]
    forms = working_forms(target)

    # the classic bug classes, sent on every run whatever the profile draws
    @example(name="  padded on both sides  ", form=AuthForm.X_API_KEY)
    @example(name="\ttab and newline\n", form=AuthForm.AUTHORIZATION)
    @example(name="   ", form=AuthForm.X_API_KEY)
    @example(name="", form=AuthForm.X_API_KEY)
    @example(name="café ünïcode 名前 🙂", form=AuthForm.AUTHORIZATION)
    @example(name="e\u0301 combining, \u200b zero-width, \u202e right-to-left", form=AuthForm.X_API_KEY)
    @example(name='quote " backslash \\ slash / percent %2F amp & hash #', form=AuthForm.AUTHORIZATION)
    @given(name=names(), form=st.sampled_from(forms))
    def check(name: str, form: AuthForm) -> None:
        form = form if form in forms else forms[0]  # an explicit example's form may be one not accepted at all
        outcome = create_and_judge(target, ledger, {"name": name, "roles": roles}, must_authenticate=True, form=form)
        tally.add(name_traits(name), outcome)

    _run(check, target, request)
    observe("fuzz_names", tally.summary())


#: Every boundary length in every alphabet up to 257 characters (where limits are cut); above that,
#: in the alphabet of the most bytes per character only (what overflows a column or a body limit).
LENGTH_CASES = [
    pytest.param(length, alphabet, id=f"len{length}-{alphabet}")
    for length in BOUNDARY_LENGTHS
    for alphabet in (LENGTH_ALPHABETS if length <= 257 else LENGTH_ALPHABETS[-1:])
]


@pytest.mark.requirement("ST-FUZZ-001")
@pytest.mark.parametrize(("length", "alphabet"), LENGTH_CASES)
def test_name_at_boundary_length_accepted_exactly_or_refused_cleanly(
    target, ledger, observe, request, length, alphabet
):
    """A name of exactly this many characters is accepted and listed verbatim, or refused with a 4xx."""
    seen: set[str] = set()
    roles = [target.profile.unprivileged_role]

    @given(name=names_of_length(length, alphabet))
    def check(name: str) -> None:
        assert len(name) == length
        outcome = create_and_judge(
            target, ledger, {"name": name, "roles": roles}, must_authenticate=True, form=target.admin_form
        )
        seen.add(str(outcome))

    # one example per length and alphabet is the default: together these are 33 checks
    _run(check, target, request, share=0.04)
    observe("name_length", {"length": length, "alphabet": alphabet, "outcome": sorted(seen)})


@pytest.mark.requirement("ST-FUZZ-002")
def test_any_role_list_accepted_exactly_or_refused_cleanly(target, ledger, observe, request):
    """Any role list is accepted and listed as sent, or refused with a 4xx that creates nothing."""
    tally = Tally()
    known = (target.profile.manager_role, target.profile.unprivileged_role)

    forms = working_forms(target)

    @given(roles=role_lists(known), form=st.sampled_from(forms))
    def check(roles: list[str], form: AuthForm) -> None:
        body = {"name": ledger.name("fuzz-roles"), "roles": roles}
        # a token holding a role the profile names must pass the probe; others need only be recognised
        must_authenticate = bool(set(known) & set(roles))
        manages: bool | None = _may_manage(roles, target.profile)
        if not manages and (foundations.anonymous_accepted(target, "list") or foundations.role_ignored(target, "list")):
            manages = None  # a list that lets anyone, or any role, in refuses no role: ST-AUTH-006/ST-ROLE-002's
        outcome = create_and_judge(
            target, ledger, body, must_authenticate=must_authenticate, form=form, manages=manages
        )
        tally.add(role_traits(roles, known), outcome)

    # half the profile's examples: the classic edges (many roles, long names, duplicates...) are sent on
    # every run, explicitly, by test_role_list_edges.py
    _run(check, target, request, share=0.5)
    observe("fuzz_roles", tally.summary())


#: Role lists whose fate the documentation leaves open, and the profile setting that pins it.
_OPEN_ROLE_LISTS = [
    pytest.param("empty_roles", [], id="empty-list"),
    pytest.param("unknown_roles", ["sts-conformance-no-such-role"], id="unknown-role"),
    pytest.param("unknown_roles", ["@UNPRIVILEGED@", "sts-conformance-no-such-role"], id="known-and-unknown-role"),
]


@pytest.mark.requirement("ST-FUZZ-004")
@pytest.mark.parametrize(("setting", "roles"), _OPEN_ROLE_LISTS)
def test_open_role_list_accepted_or_refused_as_pinned(target, ledger, observe, setting, roles):
    """An empty role list or an unknown role is accepted or refused as the profile pins; either, if it does not."""
    roles = [target.profile.unprivileged_role if r == "@UNPRIVILEGED@" else r for r in roles]
    outcome = create_and_judge(
        target,
        ledger,
        {"name": ledger.name("open-roles"), "roles": roles},
        must_authenticate=target.profile.unprivileged_role in roles,
        form=target.admin_form,
    )
    choice = "accepted" if outcome.accepted else "refused"
    observe(setting, choice)
    pinned = getattr(target.expect, setting)
    if pinned != "either":
        assert choice == pinned, f"roles {roles} were {outcome}, but the profile pins expect.{setting}: {pinned}"
