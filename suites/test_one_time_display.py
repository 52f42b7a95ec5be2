"""One-time display: the secret is in the create response and in no response after it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from sts_conformance.checking.checks import block_if_creates_fail, json_body
from sts_conformance.core import disguise
from sts_conformance.core import preconditions as pre
from sts_conformance.core.redact import REDACTOR
from sts_conformance.plugin import planned
from sts_conformance.tokens.premade import Premade, own
from sts_conformance.tokens.prepare import STATES

# every check here creates tokens and reads them back from the list
# the checks are independent of each other: they run at once with the
# other modules' (checking/ahead.py; hence this module's fixtures are of session scope)
pytestmark = [pytest.mark.precondition(pre.CREATE, pre.LIST, pre.LISTED), pytest.mark.together]

#: How many characters of each secret must vary once the prefix (and suffix) they all share is taken off.
MIN_VARYING = 20


def _strings(value: Any) -> Iterator[str]:
    """Every string in a JSON document, keys included (catches secrets the raw text escapes)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _leaks(resp, secrets: Iterable[tuple[str, str]]) -> list[str]:
    """Labels of the secrets that ``resp`` carries in its body (raw or JSON-decoded) or headers, in
    clear or in disguise (base64, percent-encoded, a fragment of an issued secret: disguise.py)."""
    texts = [resp.text, *resp.headers.values()]
    with contextlib.suppress(ValueError):
        texts.extend(_strings(resp.json()))
    pairs = list(secrets)
    found = disguise.carried(texts, {secret for _label, secret in pairs}, REDACTOR.issued())
    return [f"{label} ({found[secret]})" for label, secret in pairs if secret in found]


def _run_secrets(ledger, *, extra: Iterable[tuple[str, str]] = ()) -> list[tuple[str, str]]:
    """(label, secret) of every token this run created so far, plus ``extra``; labels never show a secret."""
    known = [(f"token {t.name!r} (id {t.id})", t.secret) for t in ledger.owned if t.secret]
    return [*known, *extra]


def _roles(target) -> list[str]:
    return [target.profile.unprivileged_role]


#: the label of the token each check of this module makes first (see ``premade``)
_FIRST = {
    "test_create_response_carries_working_secret": "once-shown",
    "test_list_never_carries_a_secret": "once-list",
    "test_no_later_response_carries_the_secret": "once-later",
    "test_same_name_gets_a_different_secret": "once-twice",
}


@pytest.fixture(scope="session")
def premade(request, target, ledger) -> Premade:
    """The first token of each check of this module, made together when the first check needs one."""
    items, known = planned(request, __file__)

    def wants(item):
        label = _FIRST.get(item.originalname)
        return {} if label is None else {own(item)[0]: ledger.body(label, roles=_roles(target))}

    return Premade.for_items(ledger, items, wants, together=known)


@pytest.mark.requirement("ST-ONCE-001")
@pytest.mark.precondition(pre.ANONYMOUS_REFUSED)
def test_create_response_carries_working_secret(request, target, ledger, premade):
    """The create response carries the secret as a non-empty string, and it authenticates."""
    resp, _ = premade.take_raw(*own(request.node))  # (sent with the module's other creates)
    block_if_creates_fail(ledger, resp, _roles(target), "a plain create")
    # any success will do here: the exact status is ST-LIFE-001's to judge
    assert resp.is_success, f"POST /security/tokens answered {resp.status_code}, expected success"
    body = json_body(resp, "create response")
    secret = body.get("token") if isinstance(body, dict) else None
    assert isinstance(secret, str) and secret.strip(), (
        f"the create response carries token={type(secret).__name__}, expected a non-empty string"
    )
    works = target.probe(secret, target.admin_form)
    assert works.is_success, (
        f"the secret from the create response was refused on {target.probe_path} ({works.status_code})"
    )


@pytest.mark.requirement("ST-ONCE-002")
@pytest.mark.parametrize("moment", ["fresh", "after-use"])
def test_list_never_carries_a_secret(request, target, ledger, premade, moment):
    """The whole raw list body carries no secret of any token of the run, nor the admin credential."""
    (tok,) = premade.take(*own(request.node))
    if moment == "after-use":
        # a server may keep a secret in memory once it has seen it; it still must not list it
        target.probe(tok.secret, target.admin_form)
    resp = target.client.list_tokens(target.admin_token, form=target.admin_form)
    assert resp.is_success, f"GET /security/tokens answered {resp.status_code}"
    leaked = _leaks(resp, _run_secrets(ledger, extra=[("the admin credential", target.admin_token)]))
    assert not leaked, f"the token list carries the secret of {', '.join(leaked)}"


def _later_call(ledger, call: str, tok) -> Any:
    if call == "delete":
        return ledger.delete(tok)
    if call == "duplicate-create":
        resp, _ = ledger.create_raw({"name": tok.name, "roles": tok.roles})
        return resp
    if call == "bad-request":
        # an expiry in the past: documented as 400 (ST-EXP-004 judges the status; here only the body matters)
        resp, _ = ledger.create_raw({"name": tok.name, "roles": tok.roles, "expiryDate": 1})
        return resp
    raise ValueError(call)


@pytest.mark.requirement("ST-ONCE-003")
@pytest.mark.parametrize("call", ["delete", "duplicate-create", "bad-request"])
def test_no_later_response_carries_the_secret(request, ledger, premade, call):
    """No answer to the admin's later calls (a delete, a refused or duplicate create) carries a secret of the run.

    Every call presenting a credential, in every state, is the authorization matrix's (ST-ONCE-006).
    """
    (tok,) = premade.take(*own(request.node))
    before = _run_secrets(ledger)  # taken now: a duplicate create may rightly show its own new secret
    resp = _later_call(ledger, call, tok)
    leaked = _leaks(resp, before)
    assert not leaked, f"the {call} response ({resp.status_code}) carries the secret of {', '.join(leaked)}"


@pytest.mark.requirement("ST-ONCE-004")
@pytest.mark.parametrize("when", ["both-alive", "after-delete"])
def test_same_name_gets_a_different_secret(request, ledger, premade, observe, when):
    """Two creates with one name and the same roles give two different secrets."""
    (first,) = premade.take(*own(request.node))
    if when == "after-delete":
        ledger.remove(first)
    resp, second = ledger.create_raw({"name": first.name, "roles": first.roles})
    block_if_creates_fail(ledger, resp, first.roles, "a second create with one name")
    if not resp.is_success:
        assert 400 <= resp.status_code < 500, f"the second create with one name answered {resp.status_code}"
        if when == "both-alive":  # held for the run (ST-FUZZ-005), in the words the other checks use
            observe("duplicate_names", "refused")
        else:  # (a target may still count a name just deleted as live: recorded, not held)
            observe("deleted_name_given_again", {"refused": resp.status_code})
        # whether a name may be used twice is left open (ST-LIFE-009 judges the refusal itself)
        pytest.skip(
            f"the target refused a second token named like a {'live' if when == 'both-alive' else 'deleted'} one "
            f"({resp.status_code}), so there is no second secret to compare (see 'expect.duplicate_names')"
        )
    assert second is not None, "the second create answered 200 without a token"
    assert second.secret != first.secret, f"two creates named {first.name!r} gave the same secret ({when})"


def _shared_affixes(values: list[str]) -> tuple[int, int]:
    """Lengths of the prefix all ``values`` share, then of the suffix the rests share."""
    shortest = min(len(v) for v in values)
    pre = next((i for i in range(shortest) if len({v[i] for v in values}) > 1), shortest)
    rests = [v[pre:] for v in values]
    shortest_rest = min(len(r) for r in rests)
    suf = next((i for i in range(shortest_rest) if len({r[len(r) - 1 - i] for r in rests}) > 1), shortest_rest)
    return pre, suf


@pytest.mark.requirement("ST-ONCE-005")
def test_secrets_unpredictable(target):
    """Secrets created in a row share at most a fixed prefix and suffix, and vary in 20+ characters each.

    The secrets compared are those of the tokens prepared, back to back, at the start of the run.
    """
    values = [cred.secret for cred in target.prepared.credentials.values()]
    samples = len(values)
    if samples < 3:
        for state in STATES:
            target.prepared.credential(state)  # blocks, naming the foundation that kept one from being made
        pytest.fail(f"only {samples} token(s) could be prepared: too few secrets to compare", pytrace=False)
    shared, suf = _shared_affixes(values)
    varying = [len(v) - shared - suf for v in values]
    assert len(set(values)) == len(values), f"{samples} secrets created in a row are not all different"
    assert min(varying) >= MIN_VARYING, (
        f"{samples} secrets created in a row share a {shared}-character prefix and a {suf}-character suffix, "
        f"leaving as few as {min(varying)} varying characters (expected at least {MIN_VARYING}); "
        f"secret lengths {sorted({len(v) for v in values})}"
    )
