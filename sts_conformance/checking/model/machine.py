"""The token lifecycle as a Hypothesis state machine: any sequence of creates, deletes, calls and lists,
by any actor, with the target agreeing with the model after every step.

Every sequence begins the same way: the admin credential makes a manager token, and that token
makes two tokens under one name, the first expiring at the largest int64 value (it must
authenticate now all the same). Then any of: a manager actor (the admin credential, the prepared
manager token or a manager token the sequence made) creates a token (plain or manager, under a
new name with a suffix in any script, composed or decomposed, or under a name used before, with
an expiry anywhere from minutes ahead to the largest int64 value), deletes one (the oldest, the
newest, one of a pair, the maker of others), lists, or any token is presented. A sequence ends
with its makers deleted while their tokens live on (and those whose tokens are gone), then every
invariant checked completely.

After each step (sampled: after a create or delete one list by a manager actor in turn, and each
new token on one call in one header form, every pairing in turn; complete at the end of the
sequence; a step's requests, and the end's, sent together): see :mod:`.invariants`. Left-open behaviours seen here
are held for the rest of the run (:mod:`.choices`).
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from typing import Any, ClassVar

import httpx
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, multiple, precondition, rule

from sts_conformance.checking.checks import block_if_creates_fail
from sts_conformance.checking.model import invariants as inv
from sts_conformance.checking.model.actors import Actor, standing_actors, token_actor
from sts_conformance.checking.model.choices import held
from sts_conformance.checking.strategies import INT64_MAX, MIN_EXPIRY_AHEAD_MS, expiries_ahead, name_suffixes
from sts_conformance.core import preconditions as pre
from sts_conformance.target import settle
from sts_conformance.target.client import AuthForm
from sts_conformance.target.together import run_together
from sts_conformance.tokens.ledger import OwnedToken

#: At most this many live tokens at once: keeps every step's checks short on a remote target.
MAX_LIVE = 5
#: 2100-01-01T00:00:00Z: an expiry up to here must be accepted (ST-EXP-006); one past it may be refused (a 4xx),
#: but once accepted it must behave as asked
FAR_EXPIRY_REQUIRED_MS = 4_102_444_800_000
#: Predefined roles a model token may carry besides the profile's unprivileged role.
EXTRA_ROLES = ("stackstate-power-user", "stackstate-k8s-troubleshooter")
#: what one step costs, roughly: the step, a list, one or two presentations
REQUESTS_PER_STEP = 3.0
#: what the end of a sequence costs beyond its steps: a list per manager actor (a manager token of the
#: sequence: in each header form), each token on each call in each form (sent together: one round trip or so)
REQUESTS_PER_SEQUENCE_END = 36


def _first_then(first: httpx.Response | None, send: Callable[[], httpx.Response]) -> Callable[[], httpx.Response]:
    """A reader that gives ``first`` (an answer already read), then sends anew each time it is called again."""
    pending = [] if first is None else [first]
    return lambda: pending.pop() if pending else send()


def _role_lists(unprivileged: str) -> list[list[str]]:
    """Role lists of unprivileged model tokens: each carries the unprivileged role, so each must pass the probe."""
    lists = [
        [unprivileged],
        [unprivileged, EXTRA_ROLES[0]],
        [EXTRA_ROLES[1], unprivileged],
        [unprivileged, *EXTRA_ROLES],
    ]
    return [list(dict.fromkeys(roles)) for roles in lists]  # no role twice if the profile names a predefined one


class TokenLifecycleModel(RuleBasedStateMachine):
    """Creates, deletes, presents and lists tokens as many actors; the target must match the model.

    Bound to a target by :func:`bind` (a state machine cannot take pytest fixtures).
    """

    target: Any = None
    ledger: Any = None
    start_ms: int = 0
    role_lists: ClassVar[list[list[str]]] = []
    manager_roles: ClassVar[list[str]] = []
    forms: ClassVar[list[AuthForm]] = []  # the header forms accepted at all
    observed: ClassVar[list[tuple[str, Any]]] = []  # (key, value) of left-open behaviours seen

    tokens = Bundle("tokens")

    def __init__(self) -> None:
        super().__init__()
        self.live: list[OwnedToken] = []  # in creation order
        self.deleted: list[OwnedToken] = []
        self.names: set[str] = set()
        self.steps = 0
        self.made = 0
        self._checked: dict[int, bool] = {}  # id(token) -> presented after the step that made it
        self.actors: list[Actor] = standing_actors(self.target, self.forms)
        self.maker: dict[int, Actor] = {}  # id(token) -> the actor that made it
        self.accepted_roles: list[list[str]] = []
        self._clean = True  # False while a step or a check is under way (teardown judges only a clean end)
        self._changed_at = -1  # the step count after the last create or delete

    # -- helpers ------------------------------------------------------------------------------

    @property
    def managers(self) -> list[Actor]:
        return [a for a in self.actors if a.manager and a.alive]

    def _view(self) -> inv.ModelView:
        standing = [a for a in self.actors if a.token is None]
        expiry_judged = self.target.prepared.blocked(pre.EXPIRY_LISTED) is None
        return inv.ModelView(
            self.live, self.deleted, self.names, standing, self.target.expect.roles_compare, expiry_judged
        )

    @property
    def _revocation_judged(self) -> bool:
        """Whether a deleted token's refusal is judged here: not when no deleted token is refused at all
        (ST-AUTH-007, probed at the start, is then the one finding: one defect, one verdict)."""
        return self.target.prepared.blocked(pre.REVOKED) is None

    def _observe(self, key: str, value: Any, where: str) -> None:
        if (key, value) not in self.observed:
            self.observed.append((key, value))
        held(self.target.state).hold(key, value, f"the lifecycle model: {where}")

    def _actor_of(self, tok: OwnedToken) -> Actor | None:
        return next((a for a in self.actors if a.token is tok), None)

    def _manages(self, tok: OwnedToken) -> bool:
        """Whether a token of the sequence holds the manager role (may list tokens while it lives)."""
        return any(r in self.manager_roles for r in tok.roles)

    # -- creating ---------------------------------------------------------------------------

    def _create(
        self,
        by: Actor,
        name: str,
        roles: list[str],
        expiry: int | None,
        reused: OwnedToken | None,
        *,
        plain: bool,
    ) -> OwnedToken | None:
        """Create a token as ``by``; None when the target refused it (allowed only where the docs leave it open).

        ``plain``: a name the run makes up and a role list already accepted, which a correct target accepts.
        """
        self._clean = False
        body: dict[str, Any] = {"name": name, "roles": roles}
        if expiry is not None:
            body["expiryDate"] = expiry
        resp, tok = self.ledger.create_raw(body, token=by.secret, form=by.form)
        block_if_creates_fail(self.ledger, resp, roles, f"create {name!r}")
        self.steps += 1
        self.names.add(name)
        what = f"{by.label}: create {name!r} with roles {roles}, expiry {expiry}" + (
            " (a name used before)" if reused else ""
        )
        live_twin = reused is not None and any(t.name == name for t in self.live)
        # an expiry past what the suite requires elsewhere (year 2100) may be refused; once accepted it must work
        plain = plain and (expiry is None or expiry <= FAR_EXPIRY_REQUIRED_MS)
        roles_known = roles in self.accepted_roles or roles in (self.role_lists[0], self.manager_roles)
        if not resp.is_success:
            assert 400 <= resp.status_code < 500, f"{what}: expected 200 or a 4xx, got {resp.status_code}"
            # A profile's duplicate_names pin is judged by ST-LIFE-009; the model follows either choice,
            # but one choice for the whole run.
            if live_twin and roles_known:
                self._observe("duplicate_names", "refused", what)
            elif reused is not None and roles_known:
                self._observe("name_of_deleted_token", "refused", what)
            elif expiry is not None and expiry > FAR_EXPIRY_REQUIRED_MS:
                self._observe("far_expiry", {"expiryDate": expiry, "status": resp.status_code}, what)
            elif plain:
                assert not roles_known, f"{what}: a plain create was refused with {resp.status_code}"
                # only the roles can be the reason: allowed for predefined roles the target does not know
                self._observe("predefined_roles", {"roles": roles, "status": resp.status_code}, what)
            # else: a name of an unusual script or form, which a target may refuse (ST-FUZZ-001 judges how)
            self._clean = True
            return None
        if live_twin:
            self._observe("duplicate_names", "allowed", what)
        elif reused is not None:
            self._observe("name_of_deleted_token", "allowed", what)
        if roles not in self.accepted_roles:
            self.accepted_roles.append(list(roles))
        assert tok is not None, f"{what}: accepted with {resp.status_code} but no token secret in the body"
        self.ledger.block_unlisted(tok, f"{what}: accepted with {resp.status_code} but")
        clash = [t for t in self.live if t.id == tok.id]
        assert not clash, f"{what}: the new token got id {tok.id}, which {inv.label(clash[0])} still has"
        self.live.append(tok)
        self._changed_at = self.steps
        self.maker[id(tok)] = by
        self.made += 1
        if self._manages(tok):
            form = self.forms[self.made % len(self.forms)]
            self.actors.append(token_actor(tok, self.made, form, manager=True))
        self._clean = True
        return tok

    def _plain_name(self, suffix: str | None = None) -> str:
        base = self.ledger.name("model")
        return base if suffix is None else f"{base}-{suffix}"

    @initialize(target=tokens, roles=st.integers(0, 3), expiry=st.none() | st.integers(0, 2**62))
    def manager_token_makes_a_pair_with_one_name(self, roles: int, expiry: int | None) -> Any:
        """The admin credential makes a manager token; it makes two tokens under one name, the first
        expiring at the largest int64 value (or one, if the target refuses the second)."""
        manager = self._create(self.actors[0], self._plain_name(), list(self.manager_roles), None, None, plain=True)
        assert manager is not None
        maker = self._actor_of(manager)
        assert maker is not None
        first = self._create(maker, self._plain_name(), self.role_lists[0], INT64_MAX, None, plain=True)
        if first is None:  # the target refuses so far an expiry (a 4xx, observed): the pair without it
            first = self._create(maker, self._plain_name(), self.role_lists[0], None, None, plain=True)
        assert first is not None
        far = None if expiry is None else self.start_ms + MIN_EXPIRY_AHEAD_MS + expiry
        second = self._create(maker, first.name, self.role_lists[roles], far, first, plain=False)
        made = [manager, first] + ([second] if second is not None else [])
        return multiple(*made)

    def _expiry(self, data: st.DataObject) -> int | None:
        return data.draw(st.none() | expiries_ahead(self.start_ms), label="expiryDate")

    def _by(self, index: int) -> Actor:
        managers = self.managers
        return managers[index % len(managers)]

    @precondition(lambda self: len(self.live) < MAX_LIVE)
    @rule(target=tokens, by=st.integers(0, 7), roles=st.integers(0, 3), data=st.data())
    def create(self, by: int, roles: int, data: st.DataObject) -> Any:
        roles_ = self.role_lists[roles]
        tok = self._create(self._by(by), self._plain_name(), roles_, self._expiry(data), None, plain=True)
        return tok if tok is not None else multiple()

    @precondition(lambda self: len(self.live) < MAX_LIVE)
    @rule(target=tokens, by=st.integers(0, 7), suffix=name_suffixes(), data=st.data())
    def create_with_a_name_in_any_script(self, by: int, suffix: str, data: st.DataObject) -> Any:
        """A name that must be stored exactly as sent (not normalised, trimmed or re-encoded), or refused."""
        name = self._plain_name(suffix)
        tok = self._create(self._by(by), name, self.role_lists[0], self._expiry(data), None, plain=False)
        return tok if tok is not None else multiple()

    @precondition(lambda self: len(self.live) < MAX_LIVE)
    @rule(target=tokens, by=st.integers(0, 7))
    def create_manager_token(self, by: int) -> Any:
        """A manager token, made by a manager actor, that acts from now on."""
        tok = self._create(self._by(by), self._plain_name(), list(self.manager_roles), None, None, plain=True)
        return tok if tok is not None else multiple()

    @precondition(lambda self: len(self.live) < MAX_LIVE)
    @rule(target=tokens, other=tokens, by=st.integers(0, 7), roles=st.integers(0, 3), data=st.data())
    def create_with_same_name(self, other: OwnedToken, by: int, roles: int, data: st.DataObject) -> Any:
        tok = self._create(self._by(by), other.name, self.role_lists[roles], self._expiry(data), other, plain=False)
        return tok if tok is not None else multiple()

    # -- deleting -----------------------------------------------------------------------------

    def _delete(self, tok: OwnedToken, which: str, by: Actor) -> None:
        self._clean = False
        if by.token is tok:  # a token deleting itself is not what this step is about: the admin does it
            by = self.actors[0]
        resp = self.target.client.delete_token(by.secret, tok.id, form=by.form)
        self.steps += 1
        assert resp.is_success, (
            f"{by.label}: deleting the {which} {inv.label(tok)} answered {resp.status_code}, expected 204"
        )
        self.ledger.forget(tok)
        self.live.remove(tok)
        self.deleted.append(tok)
        self._changed_at = self.steps
        self._clean = True

    @precondition(lambda self: self.live)
    @rule(by=st.integers(0, 7))
    def delete_oldest(self, by: int) -> None:
        self._delete(self.live[0], "oldest", self._by(by))

    @precondition(lambda self: self.live)
    @rule(by=st.integers(0, 7))
    def delete_newest(self, by: int) -> None:
        self._delete(self.live[-1], "newest", self._by(by))

    @precondition(lambda self: self.live)
    @rule(index=st.integers(0, MAX_LIVE - 1), by=st.integers(0, 7))
    def delete_any(self, index: int, by: int) -> None:
        self._delete(self.live[index % len(self.live)], "chosen", self._by(by))

    @precondition(lambda self: len(self.live) > len({t.name for t in self.live}))
    @rule(second=st.booleans(), by=st.integers(0, 7))
    def delete_one_of_same_name(self, second: bool, by: int) -> None:
        counts = Counter(t.name for t in self.live)
        name = next(n for n, c in counts.items() if c > 1)
        twins = [t for t in self.live if t.name == name]
        which = "second of a pair" if second else "first of a pair"
        self._delete(twins[1] if second else twins[0], which, self._by(by))

    def _makers(self, *, ever: bool = False) -> list[OwnedToken]:
        """Live model tokens that made tokens still alive (``ever``: that made any token, alive or deleted since)."""
        made = [*self.live, *self.deleted] if ever else self.live
        return [
            t
            for t in self.live
            if (actor := self._actor_of(t)) is not None and any(self.maker.get(id(c)) is actor for c in made)
        ]

    @precondition(lambda self: self._makers())
    @rule(by=st.integers(0, 7))
    def delete_a_maker(self, by: int) -> None:
        """A manager token that made live tokens is deleted: the tokens it made live on."""
        self._delete(self._makers()[0], "maker (of live tokens)", self._by(by))

    # -- using and listing --------------------------------------------------------------------

    @rule(tok=tokens, which=st.integers(0, 3))
    def present(self, tok: OwnedToken, which: int) -> None:
        self._clean = False
        calls = inv.documented_calls(self.target)
        call = calls[which % len(calls)]
        form = self.forms[which // len(calls) % len(self.forms)]  # every pairing of call and form, not call k in form k
        self._judge_presented(tok, call, form)
        self.steps += 1
        self._clean = True

    @rule(by=st.integers(0, 7))
    def list_as(self, by: int) -> None:
        self._clean = False
        self._judge_list(self._by(by))
        self.steps += 1
        self._clean = True

    # -- invariants ---------------------------------------------------------------------------

    def _judge_presented(
        self, tok: OwnedToken, call: inv.Call, form: AuthForm, first: httpx.Response | None = None
    ) -> None:
        """``first``: the answer already read (sent together with others); read again only while a deleted
        token is still accepted, within the revocation window."""
        send = _first_then(first, lambda: call.send(tok.secret, form))
        if tok.deleted and not self._revocation_judged:
            return
        resp = settle.refused(send) if tok.deleted else send()  # a cache may take a moment to forget
        maker = self.maker.get(id(tok))
        made_by = f", made by {maker.label}{' (deleted since)' if not maker.alive else ''}" if maker else ""
        what = f"{inv.label(tok)}{made_by}, on {call.name} in {form.value}"
        if tok.deleted:
            what += settle.note(settle.REVOCATION)
        problem = inv.presentation_disagreement(resp, not tok.deleted, self.target.expect.unauthenticated_status, what)
        assert problem is None, problem

    def _judge_list(self, actor: Actor, form: AuthForm | None = None, first: httpx.Response | None = None) -> None:
        """The list as ``actor`` sees it, in its own header form or ``form``; ``first``: the answer already
        read (sent together with others), read again only while it disagrees, within the settle window."""
        view = self._view()
        form = actor.form if form is None else form
        resp = settle.until(
            settle.LIST,
            _first_then(first, lambda: self.target.client.list_tokens(actor.secret, form=form)),
            inv.agrees(view),
        )
        who = f"the list as {actor.label} sees it" + ("" if form is actor.form else f" in {form.value}")
        assert resp.is_success, f"{who}: listing tokens answered {resp.status_code}, expected 200"
        items = inv.list_items(resp)
        assert items is not None, f"{who} is not a JSON array"
        problems = inv.list_disagreements(items, view)
        assert not problems, f"{who}{settle.note(settle.LIST)}: " + "; ".join(problems)

    @invariant()
    def target_agrees_with_model(self) -> None:
        """After each step, the two checks below; their requests do not depend on each other and go
        together (``together.py``), the first disagreement in this order failing the step."""
        self._clean = False
        run_together([*self._list_as_one_manager(), *self._present_new_tokens()])
        self._clean = True

    def _list_as_one_manager(self) -> list[Callable[[], None]]:
        """After each create or delete, one manager actor in turn lists; the end of a sequence lists as every
        one, in every header form. A step that only presented or listed changed nothing the list shows, and
        what a presentation changes elsewhere shows at the next list all the same."""
        if self._changed_at != self.steps:
            return []
        managers = self.managers
        return [functools.partial(self._judge_list, managers[self.steps % len(managers)])]

    def _present_new_tokens(self) -> list[Callable[[], None]]:
        """Every token created since the last step is presented on one call, in one header form (each
        pairing of call and form in turn).

        Presenting every token on every call in both forms after every step would cost four requests per
        token per step. A new token may be deleted before the end of its sequence, so it is presented
        at once; a deleted token stays deleted, and the end of the sequence presents it, with every
        other token, on every call in every form. A step that touched another token (a delete that
        removed the wrong one) shows in the list after it.
        """
        changed = [t for t in self.live if id(t) not in self._checked]
        calls = inv.documented_calls(self.target)
        checks: list[Callable[[], None]] = []
        for n, tok in enumerate({id(t): t for t in changed}.values()):  # tokens compare by value: each object once
            turn = self.steps + n
            form = self.forms[turn // len(calls) % len(self.forms)]
            checks.append(functools.partial(self._present_and_note, tok, calls[turn % len(calls)], form))
        return checks

    def _present_and_note(self, tok: OwnedToken, call: inv.Call, form: AuthForm) -> None:
        self._judge_presented(tok, call, form)
        self._checked[id(tok)] = True

    def _complete_check(self) -> None:
        """At the end of a sequence: makers deleted (their tokens live on; then those whose tokens are gone
        already), then every invariant in full.

        The list as every manager actor sees it (a manager token of the sequence: in every header form),
        and every token of the sequence on every documented call its roles let it make (the probe,
        server/info, and for a manager token the list) in every header form: a live one accepted, a
        deleted one refused. The requests go together (about one round trip); only an answer that
        disagrees is read again, within the window a list or a revocation may take to settle.
        """
        for maker in self._makers():
            self._delete(maker, "maker (of live tokens), at the end of the sequence", self.actors[0])
        for maker in self._makers(ever=True):  # a deleted maker is refused whatever became of its tokens
            self._delete(maker, "maker (of tokens deleted since), at the end of the sequence", self.actors[0])
        calls = inv.documented_calls(self.target)
        listing = inv.list_call(self.target)
        views = [(a, f) for a in self.managers for f in (self.forms if a.token is not None else [a.form])]
        presented = [(t, c, f) for t in [*self.live, *self.deleted] for c in calls for f in self.forms]
        if self._revocation_judged:
            presented += [(t, listing, f) for t in self.deleted if self._manages(t) for f in self.forms]
        else:
            presented = [p for p in presented if not p[0].deleted]
        client = self.target.client
        answers = run_together(
            [
                *(functools.partial(client.list_tokens, a.secret, form=f) for a, f in views),
                *(functools.partial(c.send, t.secret, f) for t, c, f in presented),
            ]
        )
        for (actor, form), resp in zip(views, answers, strict=False):
            self._judge_list(actor, form, first=resp)
        for (tok, call, form), resp in zip(presented, answers[len(views) :], strict=True):
            self._judge_presented(tok, call, form, first=resp)

    def teardown(self) -> None:
        try:
            if self._clean:  # not after a failed step: its own failure is the one to report
                self._complete_check()
        finally:
            # keep the target small; anything left (a failed delete) is removed by the ledger at the end
            run_together(functools.partial(self.ledger.delete, tok) for tok in list(self.live))


def bind(target: Any, ledger: Any) -> type[TokenLifecycleModel]:
    """A model class bound to this run's target and ledger, with a fresh tally of observations."""
    from sts_conformance.checking.checks import working_forms

    manager_role = target.profile.manager_role
    attrs = {
        "target": target,
        "ledger": ledger,
        "start_ms": target.server_now_ms(),
        "role_lists": _role_lists(target.profile.unprivileged_role),
        "manager_roles": [manager_role],
        "forms": working_forms(target),
        "observed": [],
    }
    return type("TokenLifecycle", (TokenLifecycleModel,), attrs)


def requests_per_sequence(steps: int) -> float:
    """What one sequence of ``steps`` steps costs, roughly, for the time budget."""
    return REQUESTS_PER_STEP * steps + REQUESTS_PER_SEQUENCE_END
