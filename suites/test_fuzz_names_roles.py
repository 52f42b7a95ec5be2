"""Fuzzed token names and role lists: accepted exactly as sent, or refused cleanly.

For every generated create request the target either accepts it (200; the token then
authenticates, and the list shows exactly that name and those roles) or refuses it with a
4xx that creates nothing. Never a server error, never a hang, never a secret in the list.
Which of the two the target chose, and up to which name length it accepts, is left open
by the documentation: it is recorded as an observation, not judged.

An example sends a small batch of create requests together (the values are independent; a
slow target pays one round trip for them) and then judges each answer in turn, as if it had
been sent alone; a failing batch shrinks to the one value that fails. Every token an example
creates is deleted at the end of the example.
"""

from __future__ import annotations

import functools
import math
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Sequence
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
from sts_conformance.target import together
from sts_conformance.target.client import AuthForm
from sts_conformance.target.together import run_together
from sts_conformance.tokens.journal import token_id
from sts_conformance.tokens.ledger import OwnedToken

# The checks run at once with the other modules' (checking/ahead.py), but those that draw examples with
# Hypothesis one after another: they send names that are not the run's own, which two of them could draw
# alike, and the bounds on shrinking (hypothesis_profiles.bounded_shrinking) are the process's
pytestmark = pytest.mark.together(one_at_a_time="hypothesis")

#: what one generated example costs in round trips (its requests of each step go together): the creates,
#: a list, the new tokens' probes (and, for role lists, one call made with each to judge what it may
#: do), and the deletes
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


def _run(check: Any, target, request, *, share: float = 1.0, waves: int = 1) -> None:
    """Run a ``@given`` check with its share of the examples, within the run's time budget (an example's
    steps each take ``waves`` round trips: its creates are more than the requests in flight at once)."""
    budget = target.fuzz_budget()
    round_trips = REQUESTS_PER_EXAMPLE * waves
    settings = suite_settings(share, budget=budget, requests_per_example=round_trips)
    run_seeded(
        settings(check),
        config=request.config,
        nodeid=request.node.nodeid,
        shrink_seconds=budget.shrink_seconds(round_trips),
    )


# -- judging one create request ---------------------------------------------------------------


def _likeness(listed: str, sent: str) -> tuple[bool, int]:
    """How much a listed name looks like the name sent: the same trimmed and normalised, then the length
    of their common start."""
    common = 0
    for a, b in zip(listed, sent, strict=False):
        if a != b:
            break
        common += 1
    return _loose(listed) == _loose(sent), common


def _known_secret_in(text: str) -> bool:
    return any(secret in text for secret in REDACTOR.secrets())


def _roles_match(listed_roles: Any, sent: list[str], compare: str) -> bool:
    if not isinstance(listed_roles, list):
        return False
    if compare == "exact":
        return listed_roles == sent
    return set(map(str, listed_roles)) == set(sent)


def _release_all(ledger, toks: list[OwnedToken], items: list[dict[str, Any]]) -> None:
    """Delete the tokens an example created (together); leave alone an entry the ledger mistook for ours."""
    doomed = []
    for tok in toks:
        if tok.id is None or tok.deleted:
            continue
        entry = listed(items, tok.id)
        name = entry.get("name") if entry else None
        if ledger.in_run(name) and not ledger.is_ours(name):
            ledger.forget(tok)  # another worker's token, claimed by the ledger's best guess: not ours to delete
            continue
        doomed.append(tok)
    answers = run_together(functools.partial(ledger.delete, tok) for tok in doomed)
    for tok, resp in zip(doomed, answers, strict=True):
        assert resp.is_success or resp.status_code == 404, (
            f"deleting the example's token {tok.id} answered {resp.status_code}, expected 204"
        )


@dataclass(frozen=True)
class Case:
    """One create request an example sends, and what its token must do when it is accepted."""

    body: dict[str, Any]
    must_authenticate: bool
    form: AuthForm
    #: whether the new token must (True) or must not (False) be let into token management, judged with
    #: one list call made with it; None leaves it unjudged
    manages: bool | None = None

    @property
    def what(self) -> str:
        roles = ", ".join(show(r, 24) for r in self.body["roles"])
        return f"create with name {show(self.body['name'])} and roles [{roles}]"


def create_and_judge(
    target, ledger, body: dict[str, Any], *, must_authenticate: bool, form: AuthForm, manages: bool | None = None
) -> Outcome:
    """Send one create request and hold the answer to "accepted exactly, or refused cleanly"
    (:func:`create_and_judge_together` of one)."""
    return create_and_judge_together(target, ledger, [Case(body, must_authenticate, form, manages)])[0]


def create_and_judge_together(target, ledger, cases: Sequence[Case]) -> list[Outcome]:
    """Send the create requests together (one wave, ``together.py``) and hold each answer, in the order
    given, to "accepted exactly, or refused cleanly"; every token made is deleted at the end.

    The creates are independent, and so is the judging of each: one list read after all of them
    answered serves every case (the new tokens' ids, and that a refusal made nothing), and the new
    tokens' calls (the probe, the list call that judges their rights) go together too. The first
    case in the order given that disagrees fails the check, with the message it would get alone.
    The cases' names must differ even trimmed and normalised (a refusal is judged by no entry
    carrying the name): a generated batch draws them so."""
    answers = _send_creates(ledger, [case.body for case in cases])
    made = [(case, a[1]) for case, a in zip(cases, answers, strict=True) if isinstance(a, tuple) and a[1] is not None]
    shared = _Shared(target, ledger, made)
    try:
        return [
            _judge_answer(target, ledger, case, answer, shared) for case, answer in zip(cases, answers, strict=True)
        ]
    finally:
        if made:  # (their ids from the wave's one list, read now if no case got to it)
            _release_all(ledger, [tok for _case, tok in made], shared.list_items())


_Answer = tuple[httpx.Response, OwnedToken | None] | httpx.TimeoutException


def _send_creates(ledger, bodies: list[dict[str, Any]]) -> list[_Answer]:
    """The creates, sent together; a create that timed out is answered by its exception.

    As in :meth:`TokenLedger.create_raw_together`, a create that got a server error while others
    were in flight is sent once more alone: the verdict is the one it gets one create at a time."""

    def send(body: dict[str, Any]) -> _Answer:
        try:
            return ledger.create_raw(body, attribute=False)
        except httpx.TimeoutException as exc:
            return exc

    with ledger.foreign_names_together():  # the generated names are not the run's own
        answers = run_together(functools.partial(send, body) for body in bodies)
        if len(bodies) > 1 and together.LIMIT > 1:
            answers = [
                send(body) if isinstance(answer, tuple) and answer[0].status_code >= 500 else answer
                for body, answer in zip(bodies, answers, strict=True)
            ]
    return answers


class _Shared:
    """What the cases of one wave read once: the list after every create answered, and the new tokens'
    calls (made together the first time one is judged)."""

    def __init__(self, target, ledger, made: list[tuple[Case, OwnedToken]]) -> None:
        self.target, self.ledger, self.made = target, ledger, made
        self.items: list[dict[str, Any]] = []
        self._read = False
        self._calls: dict[tuple[int, str], httpx.Response] | None = None

    def list_items(self) -> list[dict[str, Any]]:
        """The list read once the new tokens show (a list may show a create late); their ids found in it."""
        if not self._read:
            ledger = self.ledger
            toks = [tok for _case, tok in self.made]
            if toks:
                self.items.extend(ledger.list_until(lambda now: ledger.shows(toks, now)))
                # the one list finds the new tokens' ids: first those listed under the name sent, then
                # each of the rest, listed under another name (trimmed, cut, re-encoded), with the new
                # entry most like its name: alone, that is the one new entry left (the ledger's rule)
                listed_names = {i.get("name") for i in self.items}
                ledger.attribute_all([tok for tok in toks if tok.name in listed_names], self.items)
                altered = [tok for tok in toks if tok.name not in listed_names]
                if len(altered) == 1:
                    ledger.attribute_all(altered, self.items)
                elif altered:
                    self._attribute_altered(altered)
            else:
                self.items.extend(ledger.list_items())
            self._read = True
        return self.items

    def _attribute_altered(self, altered: list[OwnedToken]) -> None:
        """Several new tokens the list shows under names not sent: each is given the new entry most like
        its name (the same once trimmed and normalised, then the longest common start), found by the
        ledger in a list that shows that one new entry alone. Which entry is whose matters only for
        the message: a failing wave shrinks to the one value, judged alone."""
        ours = {t.id for _case, t in self.made if t.id is not None}
        new = [
            i
            for i in self.items
            if isinstance(i.get("name"), str)
            and not self.ledger.in_run(i.get("name"))
            and (entry_id := token_id(i.get("id"))) is not None
            and entry_id not in self.ledger.baseline
            and entry_id not in ours
        ]
        for tok in altered:
            if not new:
                return
            best = max(new, key=lambda i: _likeness(i["name"], tok.name))
            new.remove(best)
            alone = [i for i in self.items if not any(i is other for other in new)]
            self.ledger.attribute_all([tok], alone, fresh=False)

    def call(self, tok: OwnedToken, kind: str) -> httpx.Response:
        """A new token's probe (``kind`` "probe") or list call ("rights"); all made together the first time."""
        if self._calls is None:
            wanted: list[tuple[tuple[int, str], Callable[[], httpx.Response]]] = []
            for case, made in self.made:
                wanted.append(((id(made), "probe"), functools.partial(self.target.probe, made.secret, case.form)))
                if case.manages is not None:
                    send = functools.partial(self.target.client.list_tokens, made.secret, form=case.form)
                    wanted.append(((id(made), "rights"), send))
            answers = run_together(send for _key, send in wanted)
            self._calls = {key: resp for (key, _send), resp in zip(wanted, answers, strict=True)}
        return self._calls[(id(tok), kind)]


def _judge_answer(target, ledger, case: Case, answer: _Answer, shared: _Shared) -> Outcome:
    """Hold one create's answer to "accepted exactly, or refused cleanly"."""
    what = case.what
    if isinstance(answer, httpx.TimeoutException):
        raise AssertionError(
            f"{what}: no answer within {target.profile.request_timeout:g}s (profile setting request_timeout)"
        )
    resp, tok = answer
    status = resp.status_code
    # the positive control is a plain create: with the fuzzed roles it fails for the same reason (many-roles-500)
    block_if_creates_fail(ledger, resp, [target.profile.unprivileged_role], what)
    assert status < 500, f"{what}: expected 200 or a 4xx, got a server error {status}"
    assert 200 <= status < 300 or 400 <= status < 500, f"{what}: expected 200 or a 4xx, got {status}"
    if not resp.is_success:
        if _known_secret_in(resp.text):
            raise AssertionError(f"{what}: the {status} refusal carries a secret (masked in this report)")
        _assert_created_nothing(ledger, case.body["name"], what, status, shared.list_items())
        return Outcome(False, status)

    assert tok is not None, f"{what}: accepted with {status} but the body carries no token secret"
    _judge_accepted(target, ledger, case, tok, resp, shared)
    if case.manages is not None:
        _judge_rights(target, shared.call(tok, "rights"), what, manages=case.manages)
    return Outcome(True, status)


def _judge_accepted(target, ledger, case: Case, tok: OwnedToken, resp, shared: _Shared) -> None:
    """Judge an accepted create: listed exactly as sent (with the one list of the wave), and authenticated."""
    body, what, form = case.body, case.what, case.form
    items = shared.list_items()
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

    probe = shared.call(tok, "probe")
    assert probe.status_code < 500, f"{what}: the new token's probe call answered a server error {probe.status_code}"
    if case.must_authenticate:
        assert probe.is_success, f"{what}: the new token is refused ({probe.status_code}) on the probe in {form.value}"
    else:
        # Roles the target may not know: the token must still be authenticated, though it
        # may lack a permission. Only a status pinned as "unauthenticated" and not as
        # "forbidden" says the token itself was not recognised.
        unauthenticated_only = set(target.expect.unauthenticated_status) - set(target.expect.forbidden_status)
        assert probe.status_code not in unauthenticated_only, (
            f"{what}: the new token is refused as unauthenticated ({probe.status_code}) in {form.value}"
        )


def _judge_rights(target, resp: httpx.Response, what: str, *, manages: bool) -> None:
    """The new token may list tokens exactly when its roles hold the manager role (ST-ROLE-001/007):
    ``resp`` answered its list call."""
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


def _assert_created_nothing(ledger, name: str, what: str, status: int, items: list[dict[str, Any]]) -> None:
    """After a refusal, no new entry of the list (``items``, read after it) may carry the name (trimmed or
    normalised or not).

    Entries listed before the run, and the run's own (prefixed) tokens, are not evidence: a
    stray the target made anyway is deleted by the run's cleanup, found by its name.
    """
    for entry in items:
        got = entry.get("name")
        if not isinstance(got, str) or ledger.in_run(got) or token_id(entry.get("id")) in ledger.baseline:
            continue
        if got == name or _loose(got) == _loose(name):
            raise AssertionError(
                f"{what}: refused with {status}, but token {entry.get('id')} named {show(got)} was created"
            )


# -- the checks -----------------------------------------------------------------------------


#: the most create requests one generated example sends together (one wave); a failing batch shrinks to
#: the one value that fails
BATCH = 6
#: a batch holds about 4 values (Hypothesis draws lists of 1 to BATCH with a mean near 4): a check runs
#: this share of the profile's examples, so a run creates about as many tokens as with one value each
BATCH_SHARE = 0.25


def _batches(values: st.SearchStrategy[Any], forms: list[AuthForm], *, key: Any = None) -> st.SearchStrategy:
    """Lists of 1 to :data:`BATCH` (value, form) pairs (at most the requests in flight at once by default,
    so one round trip); ``key`` of each value differs within a list."""
    pair = st.tuples(values, st.sampled_from(forms))
    unique_by = None if key is None else (lambda p: key(p[0]))
    return st.lists(pair, min_size=1, max_size=BATCH, unique_by=unique_by)


@pytest.mark.requirement("ST-FUZZ-001")
def test_any_name_accepted_exactly_or_refused_cleanly(target, ledger, observe, request):
    """Any name is accepted and listed exactly as sent (and authenticates), or refused with a 4xx creating nothing."""
    tally = Tally()
    roles = [target.profile.unprivileged_role]
    forms = working_forms(target)

    # the classic bug classes, sent on every run whatever the profile draws; two names that are one
    # trimmed (a refusal is judged by no entry carrying the name, trimmed or not) go in two batches
    @example(batch=[("   ", AuthForm.X_API_KEY)])
    @example(
        batch=[
            ("  padded on both sides  ", AuthForm.X_API_KEY),
            ("\ttab and newline\n", AuthForm.AUTHORIZATION),
            ("", AuthForm.X_API_KEY),
            ("café ünïcode 名前 🙂", AuthForm.AUTHORIZATION),
            ("e\u0301 combining, \u200b zero-width, \u202e right-to-left", AuthForm.X_API_KEY),
            ('quote " backslash \\ slash / percent %2F amp & hash #', AuthForm.AUTHORIZATION),
        ]
    )
    @given(batch=_batches(names(), forms, key=_loose))
    def check(batch: list[tuple[str, AuthForm]]) -> None:
        # an explicit example's form may be one not accepted at all
        cases = [
            Case({"name": name, "roles": roles}, True, form if form in forms else forms[0]) for name, form in batch
        ]
        for (name, _form), outcome in zip(batch, create_and_judge_together(target, ledger, cases), strict=True):
            tally.add(name_traits(name), outcome)

    _run(check, target, request, share=BATCH_SHARE)
    observe("fuzz_names", tally.summary())


#: Every boundary length in every alphabet up to 257 characters (where limits are cut); above that,
#: in the alphabet of the most bytes per character only (what overflows a column or a body limit).
LENGTHS_BY_ALPHABET = {
    alphabet: tuple(n for n in BOUNDARY_LENGTHS if n <= 257 or alphabet == LENGTH_ALPHABETS[-1])
    for alphabet in LENGTH_ALPHABETS
}


@pytest.mark.requirement("ST-FUZZ-001")
@pytest.mark.parametrize("alphabet", LENGTH_ALPHABETS)
def test_name_at_boundary_length_accepted_exactly_or_refused_cleanly(target, ledger, observe, request, alphabet):
    """A name of exactly each boundary length is accepted and listed verbatim, or refused with a 4xx."""
    lengths = LENGTHS_BY_ALPHABET[alphabet]
    seen: dict[int, set[str]] = {length: set() for length in lengths}
    roles = [target.profile.unprivileged_role]

    # one name of each length, their creates sent together
    @given(batch=st.tuples(*(names_of_length(length, alphabet) for length in lengths)))
    def check(batch: tuple[str, ...]) -> None:
        assert [len(name) for name in batch] == list(lengths)
        cases = [Case({"name": name, "roles": roles}, True, target.admin_form) for name in batch]
        for length, outcome in zip(lengths, create_and_judge_together(target, ledger, cases), strict=True):
            seen[length].add(str(outcome))

    # one example (a name of each length) per alphabet is the default
    _run(check, target, request, share=0.04, waves=math.ceil(len(lengths) / together.LIMIT))
    for length in lengths:
        observe("name_length", {"length": length, "alphabet": alphabet, "outcome": sorted(seen[length])})


@pytest.mark.requirement("ST-FUZZ-002")
def test_any_role_list_accepted_exactly_or_refused_cleanly(target, ledger, observe, request):
    """Any role list is accepted and listed as sent, or refused with a 4xx that creates nothing."""
    tally = Tally()
    known = (target.profile.manager_role, target.profile.unprivileged_role)

    forms = working_forms(target)

    def case(roles: list[str], form: AuthForm) -> Case:
        body = {"name": ledger.name("fuzz-roles"), "roles": roles}
        # a token holding a role the profile names must pass the probe; others need only be recognised
        must_authenticate = bool(set(known) & set(roles))
        manages: bool | None = _may_manage(roles, target.profile)
        if not manages and (foundations.anonymous_accepted(target, "list") or foundations.role_ignored(target, "list")):
            manages = None  # a list that lets anyone, or any role, in refuses no role: ST-AUTH-006/ST-ROLE-002's
        return Case(body, must_authenticate, form, manages)

    @given(batch=_batches(role_lists(known), forms))
    def check(batch: list[tuple[list[str], AuthForm]]) -> None:
        outcomes = create_and_judge_together(target, ledger, [case(roles, form) for roles, form in batch])
        for (roles, _form), outcome in zip(batch, outcomes, strict=True):
            tally.add(role_traits(roles, known), outcome)

    # half the batches of the names' check: the classic edges (many roles, long names, duplicates...) are
    # sent on every run, explicitly, by test_role_list_edges.py
    _run(check, target, request, share=BATCH_SHARE / 2)
    observe("fuzz_roles", tally.summary())


#: Role lists whose fate the documentation leaves open, and the profile setting that pins it.
_OPEN_ROLE_LISTS = [
    pytest.param("empty_roles", [], id="empty-list"),
    pytest.param("unknown_roles", ["sts-conformance-no-such-role"], id="unknown-role"),
    pytest.param("unknown_roles", ["@UNPRIVILEGED@", "sts-conformance-no-such-role"], id="known-and-unknown-role"),
]


@pytest.mark.together  # no Hypothesis, the run's own names: not in the turns of the checks above
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
