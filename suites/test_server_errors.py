"""Ordinary mistakes never get a server error, and fields a client may not set never bind.

The spec documents 400 for a bad create and 500 only as "error when handling the request
on the server side": a client's mistake answered 5xx is a server fault. Three tables of
mistakes a client makes every day, each cell judged on its own:

- **ids in the path** (ST-ERR-002): deleting an id a second time; an id that is not a number,
  a number followed by letters (a lenient parser reads a token's id out of it), 20 digits,
  negative, just above the 64-bit range. Any 2xx or 4xx passes (the documents give no
  status), a 5xx does not, and no token of the run may go missing;
- **create input** (ST-ERR-003): 9 and 100 roles, NUL and other C0 characters in a name or a
  role, an unknown field, an optional field of the wrong type: accepted or refused with a
  4xx, never a 5xx; a refused one creates nothing;
- **read-only fields** (ST-ERR-004): an ``id``, ``token`` and ``lastUpdateTimestamp`` sent in a
  create body choose neither the new token's id (nor replace the token that had it), nor its
  secret, nor its timestamp; an ``id`` and ``roles`` in a delete's body change nothing about
  what is deleted.

Every other 5xx a check meets is ST-ERR-001's (``sts_conformance/checking/server_errors.py``). The calls
of all three tables are made once, together, with the admin credential, then one list shows
what they did (about 30 requests, no waits).
"""

from __future__ import annotations

import functools
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from sts_conformance.checking import server_errors
from sts_conformance.checking.checks import block_if_creates_fail, listed
from sts_conformance.core import preconditions as pre
from sts_conformance.core.redact import REDACTOR
from sts_conformance.target.client import EXCHANGES, Exchange, exchange_of
from sts_conformance.target.inflight import IDS
from sts_conformance.target.together import run_together
from sts_conformance.tokens.journal import token_id

# the checks run at once with the other modules' (checking/ahead.py; hence the table's fixture is of
# session scope): they share one table, made by the first of them while the others wait for it
pytestmark = [pytest.mark.precondition(pre.CREATE, pre.LIST, pre.LISTED), pytest.mark.together]

#: ids in a delete's path: ``{id}`` is a live token of the run's
BAD_IDS = {
    "not-a-number": "abc",
    "number-then-letters": "{id}abc",
    "twenty-digits": "9" * 20,
    "negative": "-1",
    "above-int64": str(2**63),
}
DOUBLE_DELETE = "deleted-twice"


def _create_inputs(unprivileged: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """label -> (what is added to the name, the rest of the body): the create inputs of ST-ERR-003."""
    plain = {"roles": [unprivileged]}
    return {
        # far past any plausible fixed table of roles (a server with 8 slots fails at 9 already)
        "hundred-roles": ("", {"roles": [unprivileged, *(f"{unprivileged}-{i}" for i in range(99))]}),
        "nul-in-name": ("-\x00-nul", plain),
        "c0-in-name": ("-\x01\x07\x1b[0m\x1f", plain),
        "control-in-role": ("", {"roles": [unprivileged, "role-\x00\x1b-x"]}),
        "unknown-and-mistyped-fields": (
            "",
            {**plain, "stsctUnknown": {"nested": [1, None, True]}, "dedicatedSubject": 5, "description": ["x"]},
        ),
    }


#: the read-only fields sent in one create (ST-ERR-004)
CHOSEN_TIMESTAMP = 1


@dataclass
class Answer:
    status: int | None
    exchange: Exchange | None = field(default=None, repr=False)
    #: the create inputs: the name sent and whether the list shows it
    name: str | None = None
    created: bool = False

    @property
    def server_error(self) -> bool:
        return self.status is None or self.status >= 500


@dataclass
class Mistakes:
    """What every mistake got, and what the list showed after them."""

    ids: dict[str, Answer]
    creates: dict[str, Answer]
    bystander_kept: bool
    #: ST-ERR-004: the create with read-only fields, and what became of it
    bound: Answer
    bound_problems: list[str]
    delete_with_body: Answer
    delete_with_body_problems: list[str]


def _answer(resp: httpx.Response) -> Answer:
    return Answer(resp.status_code, exchange_of(resp))


class MistakeRun:
    def __init__(self, target: Any, ledger: Any):
        self.target = target
        self.ledger = ledger
        self._done: Mistakes | None = None
        self._lock = threading.Lock()  # checks run together (checking/ahead.py) wait for the first to make it

    def get(self) -> Mistakes:
        with self._lock:
            if self._done is None:
                self._done = self._run()
                # every status these calls got is judged by a cell of the tables below, 5xx included
                server_errors.judged()
            return self._done

    def _run(self) -> Mistakes:
        t, led = self.target, self.ledger
        c, admin, form = t.client, t.admin_token, t.admin_form
        role = t.profile.unprivileged_role
        # found with one list: the bystander's id is inside some malformed ids; the owner's is sent in bodies
        # that must not bind it; the third is deleted twice
        # (the first two together; the third after them, the newest, as when made one by one: a delete that
        # also removes the next token must not take one of the other two)
        bodies = [{"name": led.name(f"err-{label}"), "roles": [role]} for label in ("bystander", "id-owner", "twice")]
        made = [tok for _resp, tok in led.create_raw_together(bodies[:2])]
        made.append(led.create_raw(bodies[2], attribute=False)[1])
        if any(tok is None for tok in made):
            pre.block(pre.CREATE, "a plain create with the admin credential did not give a token")
        led.attribute_all(made)
        bystander, owner, twice = made
        for tok in made:  # (ST-LIFE-007 when it is listed under an id another token has, else ST-LIFE-003)
            led.block_unlisted(tok, f"token {tok.name!r} was created")

        # ST-ERR-004 (delete): a body naming another token must not change what the delete removes; then the
        # second delete of its id. No create of the run goes between them: a correct target may give the freed
        # id to the next token it makes, which the second delete would then remove
        with IDS.freeing():
            resp = c.request(
                "DELETE",
                f"/security/tokens/{twice.id}",
                token=admin,
                form=form,
                json_body={"id": owner.id, "roles": [t.profile.manager_role]},
            )
            delete_with_body = _answer(resp)
            # the deletes of the first table together, then the creates of the other two together (the deletes
            # first, as one after another: a delete that removes another token must not take a new one)
            deletes = {}
            if resp.is_success:
                led.forget(twice)
                deletes[DOUBLE_DELETE] = functools.partial(c.delete_token, admin, twice.id, form=form)
            for label, template in BAD_IDS.items():
                path = "/security/tokens/" + template.format(id=bystander.id)
                deletes[label] = functools.partial(c.request, "DELETE", path, token=admin, form=form)
            ids = {label: _answer(r) for label, r in zip(deletes, run_together(deletes.values()), strict=True)}

        odd = {
            label: (led.name(f"err-{label}") + suffix, rest) for label, (suffix, rest) in _create_inputs(role).items()
        }

        chosen = "svctok-" + secrets.token_urlsafe(24)
        REDACTOR.register(chosen)
        bound_name = led.name("err-read-only")
        body = {
            "name": bound_name,
            "roles": [role],
            "id": owner.id,
            "token": chosen,
            "lastUpdateTimestamp": CHOSEN_TIMESTAMP,
        }
        sent = [{"name": name, **rest} for name, rest in odd.values()] + [body]
        *answers, (resp, _) = led.create_raw_together(sent)
        creates = {}
        for (label, (name, _rest)), (answer, _tok) in zip(odd.items(), answers, strict=True):
            creates[label] = _answer(answer)
            creates[label].name = name
        bound = _answer(resp)
        bound.name = bound_name

        # a list from a replica shows a delete or a create late: read again, within the settle window,
        # until the token deleted with a body is gone and the plainly named create is shown
        gone = {twice.id} if delete_with_body.status is not None and 200 <= delete_with_body.status < 300 else set()
        shown = {bound_name} if resp.is_success else set()
        items = led.list_until(
            lambda items: not gone & {token_id(i.get("id")) for i in items} and shown <= {i.get("name") for i in items}
        )
        new = [tok for tok in led.owned if not tok.deleted and tok.id is None]
        led.attribute_all(new, items, fresh=False)
        for answer in creates.values():
            answer.created = any(i.get("name") == answer.name for i in items)
        entry = listed(items, bystander.id)
        bystander_kept = entry is not None and entry.get("name") == bystander.name
        entry = listed(items, owner.id)
        owner_kept = entry is not None and entry.get("name") == owner.name

        problems = []
        if resp.is_success:
            try:
                created = resp.json()
            except ValueError:
                created = None
            secret = created.get("token") if isinstance(created, dict) else None
            if secret == chosen:
                problems.append("the create answered with the secret the body chose as its 'token'")
            if t.probe(chosen, form).is_success:
                problems.append("the secret the body chose as its 'token' authenticates")
            mine = next((i for i in items if i.get("name") == bound_name), None)
            if not owner_kept:
                problems.append(f"the token that had the id the body chose ({owner.id}) is gone or renamed")
            elif mine is not None and mine.get("id") == owner.id:
                problems.append(f"the new token is listed under the id the body chose ({owner.id})")
            if mine is not None and mine.get("lastUpdateTimestamp") == CHOSEN_TIMESTAMP:
                problems.append(
                    f"the new token is listed with the lastUpdateTimestamp the body chose ({CHOSEN_TIMESTAMP})"
                )
        del_problems = []
        delete_accepted = delete_with_body.status is not None and 200 <= delete_with_body.status < 300
        if delete_accepted and listed(items, twice.id, twice.name) is not None:  # (its id may be another's now)
            del_problems.append(f"the delete answered {delete_with_body.status}, but token {twice.id} is still listed")
        if not owner_kept and not resp.is_success:
            # (when the create naming the same id was accepted, the token may be gone through it: judged there)
            del_problems.append(f"token {owner.id}, named only in the delete's body, is gone or renamed")
        for tok, kept in ((bystander, bystander_kept), (owner, owner_kept)):
            if not kept:
                led.forget(tok)
        return Mistakes(ids, creates, bystander_kept, bound, problems, delete_with_body, del_problems)


@pytest.fixture(scope="session")
def mistakes(target, ledger) -> MistakeRun:
    return MistakeRun(target, ledger)


def _show(answer: Answer) -> None:
    EXCHANGES.clear()
    if answer.exchange is not None:
        EXCHANGES.add(answer.exchange)


ID_CELLS = [DOUBLE_DELETE, *BAD_IDS]


@pytest.mark.requirement("ST-ERR-002")
@pytest.mark.precondition(pre.DELETE, pre.DELETED_GONE)
@pytest.mark.parametrize("label", ID_CELLS)
def test_bad_id_in_the_path_gets_no_server_error(mistakes, label):
    """A second delete of an id, or a malformed or out-of-range id, gets no 5xx and deletes no other token."""
    got = mistakes.get()
    if label not in got.ids:
        pre.block(pre.DELETE, "the first delete of the token was not accepted, so there is no second one")
    answer = got.ids[label]
    what = "deleting an id a second time" if label == DOUBLE_DELETE else f"DELETE with the id {label}"
    if answer.server_error:
        _show(answer)
        raise AssertionError(f"{what}: the target answered {answer.status or 'nothing'}, a server error")
    if label != DOUBLE_DELETE and not got.bystander_kept:
        raise AssertionError(
            f"after the deletes of malformed ids (this one answered {answer.status}), a token of the run whose id "
            "some of them contained is gone from the list"
        )


@pytest.mark.requirement("ST-ERR-003")
@pytest.mark.parametrize("label", list(_create_inputs("r")))
def test_odd_create_input_gets_no_server_error(target, mistakes, label):
    """Many roles, control characters, unknown or mistyped fields: accepted or refused with a 4xx, never a 5xx."""
    got = mistakes.get()
    answer = got.creates[label]
    if answer.server_error:
        _show(answer)
        # when no create works at all, that is ST-LIFE-001's failure, not this input's
        block_if_creates_fail(
            mistakes.ledger, httpx.Response(answer.status or 500), [target.profile.unprivileged_role], label
        )
        raise AssertionError(
            f"a create with {label.replace('-', ' ')} answered {answer.status or 'nothing'}, a server error"
        )
    accepted = answer.status is not None and 200 <= answer.status < 300
    if not accepted and answer.created:
        _show(answer)
        raise AssertionError(f"a create with {label.replace('-', ' ')} was refused ({answer.status}), yet it is listed")


@pytest.mark.requirement("ST-ERR-004")
@pytest.mark.parametrize("call", ["create", "delete"])
def test_read_only_fields_never_bind(mistakes, call):
    """An id, token or timestamp in a create body, or an id and roles in a delete's body, change nothing they name."""
    got = mistakes.get()
    answer, problems = (
        (got.bound, got.bound_problems) if call == "create" else (got.delete_with_body, got.delete_with_body_problems)
    )
    if answer.server_error:
        problems = [*problems, f"answered {answer.status or 'nothing'}, a server error"]
    if problems:
        _show(answer)
    assert not problems, f"a {call} with fields the client may not set ({answer.status}): " + "; ".join(problems)


@pytest.mark.requirement("ST-ERR-001")
def test_preparation_got_no_server_error(target):
    """The requests the run made while preparing, before any check, got no 5xx that no foundation judged.

    (Every check's own requests are judged where they are made: ``sts_conformance/checking/server_errors.py``.)
    """
    seen = [Exchange(**e) for e in target.prepared.server_errors]
    if not seen:
        return
    failed = sorted(target.prepared.failed)
    if failed:
        pre.block(failed[0], f"the preparation got server errors, and foundation {failed[0]} failed there")
    for exchange in seen[-server_errors.SHOWN :]:
        EXCHANGES.add(exchange)
    raise AssertionError(
        server_errors.unnoticed_message(seen).removeprefix("ST-ERR-001: ").replace("this check", "the preparation")
    )
