"""Token lifecycle: create, list, delete, with their exact status codes and bodies."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from sts_conformance.checking.checks import (
    block_if_creates_fail,
    expect_json_media_type,
    expect_no_server_error,
    expect_status,
    json_body,
    listed,
    validate,
)
from sts_conformance.core import preconditions as pre
from sts_conformance.plugin import planned
from sts_conformance.target import settle
from sts_conformance.tokens.journal import token_id
from sts_conformance.tokens.premade import Premade, case_of, own

# every check here creates tokens and reads them back from the list; they run at once with the
# other modules' (checking/ahead.py; hence this module's fixtures are of session scope),
# except those marked alone: they compare what they saw before and after with every other token in view
pytestmark = [pytest.mark.precondition(pre.CREATE, pre.LIST, pre.LISTED), pytest.mark.together]


#: The request media type of this one create, with a charset parameter, which "has no effect on
#: compliant recipients" of JSON (RFC 8259 §11; RFC 9110 §8.3.1 makes parameters part of the media type's
#: syntax). Every other create of the run sends plain application/json, so this costs no request.
SPELT_MEDIA_TYPE = "application/json; charset=utf-8"


def _wants(item, profile, ledger) -> dict:
    """The tokens a check of this module takes (see ``premade``), keyed by check and case."""
    name, case = item.originalname, case_of(item)
    roles = [profile.unprivileged_role]
    plain = {
        "test_list_answers_200_with_array_of_tokens": ("list-shape", 1),
        "test_delete_answers_204_without_body": ("delete-204", 1),
        "test_deleted_token_gone_from_list": ("delete-gone", 1),
        "test_delete_one_leaves_others_listed_and_working": ("sibling", 3),
        "test_delete_one_of_two_same_name_tokens_leaves_the_other": ("same-name", 1),
        "test_delete_unknown_id_no_server_error": ("bystander", 2),
        "test_duplicate_names_distinct_ids_or_refused": ("dup", 1),
    }
    if name in plain:
        label, count = plain[name]
        return {key: ledger.body(label, roles=roles) for key in own(item, count)}
    if name == "test_create_with_missing_or_mistyped_fields_refused":
        return {own(item)[0]: _fill(case["body"], ledger.name("malformed"))}
    if name == "test_create_with_empty_dedicated_subject_works":
        return {own(item)[0]: {**ledger.body("dedicated-empty", roles=roles), "dedicatedSubject": ""}}
    if name == "test_create_with_dedicated_subject_value_recorded":
        body = ledger.body("dedicated-value", roles=roles)
        return {own(item)[0]: {**body, "dedicatedSubject": f"{body['name']}-subject"}}
    return {}


@pytest.fixture(scope="session")
def premade(request, target, ledger) -> Premade:
    """The tokens of this module's checks, made together when the first check needs one."""
    items, known = planned(request, __file__)
    return Premade.for_items(ledger, items, lambda item: _wants(item, target.profile, ledger), together=known)


@pytest.mark.requirement("ST-LIFE-001")
def test_create_answers_200_with_name_and_token(target, ledger):
    """Creating a token answers 200 with {name, token} and echoes the name; the request's media type
    carries a charset parameter, which changes nothing (RFC 9110, RFC 8259). Made by itself, not with
    the module's premade tokens: its request is not the usual one."""
    name = ledger.name("create")
    resp, tok = ledger.create_raw(
        {"name": name, "roles": [target.profile.unprivileged_role]},
        token=ledger.admin_token,
        headers={"Content-Type": SPELT_MEDIA_TYPE},
    )
    expect_status(resp, 200, f"POST /security/tokens with Content-Type {SPELT_MEDIA_TYPE!r} (the JSON media type)")
    body = json_body(resp, "create response")
    expect_json_media_type(resp, "create response")
    validate(body, "CreatedToken")
    assert body["name"] == name, f"create response names the token {body['name']!r}, sent {name!r}"
    assert "expiration" not in body or body["expiration"] is None, (
        "a token created without expiryDate came back with an expiration"
    )
    assert tok is not None


@pytest.mark.requirement("ST-LIFE-002")
def test_list_answers_200_with_array_of_tokens(request, target, premade):
    """Listing answers 200 with an array of ServiceToken objects."""
    premade.take(*own(request.node))
    resp = target.client.list_tokens(target.admin_token, form=target.admin_form)
    expect_status(resp, 200, "GET /security/tokens")
    validate(json_body(resp, "list response"), "TokenList")
    expect_json_media_type(resp, "list response")


@pytest.mark.alone
@pytest.mark.requirement("ST-LIFE-003")
def test_created_token_listed_with_its_name_roles_and_a_new_id(target, ledger):
    """A created token is listed under an id nobody else has, with its name and roles."""
    roles = [target.profile.unprivileged_role]
    before = {token_id(i.get("id")) for i in ledger.list_items()}
    tok = ledger.create("listed", roles=roles)
    items = ledger.list_items()
    entry = listed(items, tok.id)
    assert entry is not None
    assert tok.id not in before, f"the new token's id {tok.id} was already in use before the create"
    ids = [token_id(i.get("id")) for i in items]
    assert ids.count(tok.id) == 1, f"id {tok.id} appears {ids.count(tok.id)} times in the list"
    assert entry["name"] == tok.name
    assert sorted(entry["roles"]) == sorted(roles), f"listed roles {entry['roles']}, created with {roles}"


@pytest.mark.requirement("ST-LIFE-004")
def test_delete_answers_204_without_body(request, ledger, premade):
    """Deleting a token by id answers 204 and sends no body."""
    (tok,) = premade.take(*own(request.node))
    resp = ledger.delete(tok)
    expect_status(resp, 204, f"DELETE /security/tokens/{tok.id}")
    assert resp.content == b"", f"204 came with a body of {len(resp.content)} bytes"


@pytest.mark.requirement("ST-LIFE-005")
def test_deleted_token_gone_from_list(request, ledger, premade):
    """After delete, the token's id is no longer listed."""
    (tok,) = premade.take(*own(request.node))
    ledger.remove(tok)  # the status of the answer is ST-LIFE-004's to judge
    # (by id and name: a target may give the freed id to a token made since, under its own name)
    assert listed(ledger.list_without(tok.id, tok.name), tok.id, tok.name) is None, (
        f"token {tok.id} is still listed after delete" + settle.note(settle.LIST)
    )


@pytest.mark.alone
@pytest.mark.requirement("ST-LIFE-006")
@pytest.mark.parametrize("victim", ["first", "middle", "last"])
def test_delete_one_leaves_others_listed_and_working(request, target, ledger, premade, victim):
    """Deleting one of three tokens touches neither of the other two, nor any other token of the run."""
    toks = premade.take(*own(request.node, 3))
    index = {"first": 0, "middle": 1, "last": 2}[victim]
    # the three were made together with the module's other tokens, so the ones made next to the one
    # deleted may be any of them: every token this process holds, listed now and without an expiry
    # (a target may drop an expired token from the list), must still be listed after the delete
    before = ledger.list_items()
    others = [
        t
        for t in ledger.owned
        if t is not toks[index] and not t.deleted and t.expiration is None and listed(before, t.id, t.name) is not None
    ]
    ledger.remove(toks[index])
    items = ledger.list_items()
    for tok in others:
        assert listed(items, tok.id, tok.name) is not None, f"deleting {toks[index].id} also removed {tok.id}"
    for i, tok in enumerate(toks):
        if i == index:
            continue
        resp = target.probe(tok.secret, target.admin_form)
        assert resp.is_success, f"sibling {tok.id} stopped authenticating ({resp.status_code}) after deleting another"


@pytest.mark.requirement("ST-LIFE-006")
@pytest.mark.parametrize("victim", ["first", "second"])
def test_delete_one_of_two_same_name_tokens_leaves_the_other(request, target, ledger, premade, observe, victim):
    """Deleting one of two tokens that share a name removes that id only; the other stays listed and working."""
    # the second create comes once the first is listed: which id is whose is known, not guessed
    (first,) = premade.take(*own(request.node))
    resp, second = ledger.create_raw({"name": first.name, "roles": [target.profile.unprivileged_role]})
    if resp.is_success or 400 <= resp.status_code < 500:
        observe("duplicate_names", "allowed" if resp.is_success else "refused")  # held for the run (ST-FUZZ-005)
    if not resp.is_success:
        block_if_creates_fail(ledger, resp, [target.profile.unprivileged_role], "a second create with one name")
        # whether a name may be used twice is left open; ST-LIFE-009 judges the refusal itself
        pytest.skip(
            f"the target refused a second token named like a live one ({resp.status_code}), so there is no "
            "pair to delete one of (see profile setting 'expect.duplicate_names')"
        )
    assert second is not None and second.id is not None, f"the second token named {first.name!r} is not listed"
    gone, kept = (first, second) if victim == "first" else (second, first)
    ledger.remove(gone)
    items = ledger.list_without(gone.id, gone.name)
    assert listed(items, gone.id, gone.name) is None, f"token {gone.id} is still listed after its delete" + settle.note(
        settle.LIST
    )
    assert listed(items, kept.id) is not None, (
        f"deleting token {gone.id} also removed token {kept.id}, which only shares its name"
    )
    resp = target.probe(kept.secret, target.admin_form)
    assert resp.is_success, (
        f"token {kept.id} stopped authenticating ({resp.status_code}) after deleting {gone.id}, which shares its name"
    )


@pytest.mark.requirement("ST-LIFE-007")
def test_ids_unique_under_rapid_creation(target):
    """The tokens prepared at the start of the run, created one right after another, got ids of their own.

    (They were made back to back, several within one second, and found with one list: the
    evidence costs this check no request of its own.)
    """
    collision = target.prepared.blocked(pre.UNIQUE_IDS)
    assert collision is None, f"ids repeat under rapid creation: {collision}"
    # (a short-lived one the list no longer showed has no id: an expired token may leave the list)
    ids = [cred.id for cred in target.prepared.credentials.values() if cred.id is not None]
    assert len(ids) >= 2, f"only {len(ids)} token(s) could be prepared; nothing to compare"
    assert len(set(ids)) == len(ids), f"ids repeat under rapid creation: {ids}"


#: How many creates the concurrency check sends at the same moment.
CONCURRENT_CREATES = 6


@pytest.mark.alone
@pytest.mark.requirement("ST-LIFE-007")
def test_ids_unique_under_concurrent_creation(target, ledger):
    """Creates sent at the same moment are all accepted, each under an id of its own."""
    names = [ledger.name("concurrent") for _ in range(CONCURRENT_CREATES)]
    start = threading.Barrier(CONCURRENT_CREATES)

    def create(name):
        start.wait(timeout=30)
        return ledger.create_raw({"name": name, "roles": [target.profile.unprivileged_role]})

    with ThreadPoolExecutor(max_workers=CONCURRENT_CREATES) as pool:
        results = list(pool.map(create, names))
    statuses = [resp.status_code for resp, _ in results]
    assert all(200 <= s < 300 for s in statuses), (
        f"{CONCURRENT_CREATES} creates sent at the same moment answered {statuses}, expected 200 for each"
    )
    ids = [tok.id if tok is not None else None for _, tok in results]
    assert None not in ids, f"not every token created concurrently is listed under its name: ids {ids}"
    assert len(set(ids)) == len(ids), f"ids repeat under concurrent creation: {ids}"


@pytest.mark.requirement("ST-LIFE-008")
def test_delete_unknown_id_no_server_error(request, target, ledger, premade, observe):
    """Deleting an id that does not exist is answered without a 5xx and removes nothing."""
    bystanders = premade.take(*own(request.node, 2))
    ids = {tid for i in ledger.list_items() if (tid := token_id(i.get("id"))) is not None}
    unknown = max(ids | {0}) + 7919
    while unknown in ids:
        unknown += 1
    resp = target.client.delete_token(target.admin_token, unknown, form=target.admin_form)
    observe("delete_unknown_status", resp.status_code)
    expect_no_server_error(resp, f"DELETE of unknown id {unknown}")
    if target.expect.delete_unknown_status is not None:
        expect_status(resp, target.expect.delete_unknown_status, f"DELETE of unknown id {unknown}")
    # judge only this test's own tokens: other workers delete theirs at any time, and a
    # target may drop expired tokens from the list
    after = {tid for i in ledger.list_items() if (tid := token_id(i.get("id"))) is not None}
    gone = [b.id for b in bystanders if b.id not in after]
    assert not gone, f"deleting the unknown id {unknown} removed token(s) {gone}"


@pytest.mark.requirement("ST-LIFE-009")
def test_duplicate_names_distinct_ids_or_refused(request, target, ledger, premade, observe):
    """A second token with an existing name gets its own id, or is refused and creates nothing."""
    (first,) = premade.take(*own(request.node))
    resp, second = ledger.create_raw({"name": first.name, "roles": [target.profile.unprivileged_role]})
    mode = target.expect.duplicate_names
    if resp.is_success:
        observe("duplicate_names", "allowed")
        assert mode != "refused", "profile pins duplicate_names: refused, but the second create was accepted"
        assert second is not None and second.id is not None
        assert second.id != first.id, "two tokens with one name share an id"
        assert second.secret != first.secret
    else:
        # a create that fails whatever is sent is ST-LIFE-001's failure, as in the other checks of a second name
        block_if_creates_fail(ledger, resp, [target.profile.unprivileged_role], "a second create with one name")
        observe("duplicate_names", "refused")
        assert mode != "allowed", f"profile pins duplicate_names: allowed, but the target answered {resp.status_code}"
        assert 400 <= resp.status_code < 500, f"duplicate name refused with {resp.status_code}, expected a 4xx"
        same = [i for i in ledger.list_items() if i.get("name") == first.name]
        assert len(same) == 1, f"the refused duplicate still created a token ({len(same)} listed)"


_MALFORMED = [
    pytest.param({"roles": ["stackstate-guest"]}, id="name-missing"),
    pytest.param({"name": "@NAME@"}, id="roles-missing"),
    pytest.param({"name": "@NAME@", "roles": "stackstate-guest"}, id="roles-a-string"),
    pytest.param({"name": "@NAME@", "roles": {"stackstate-guest": True}}, id="roles-an-object"),
    pytest.param(["@NAME@"], id="body-an-array"),
]


def _fill(body, name):
    if isinstance(body, dict):
        return {k: (name if v == "@NAME@" else v) for k, v in body.items()}
    return [name if v == "@NAME@" else v for v in body]


@pytest.mark.requirement("ST-LIFE-010")
@pytest.mark.parametrize("body", _MALFORMED)
def test_create_with_missing_or_mistyped_fields_refused(request, ledger, premade, body):
    """A create without name or roles, or with mistyped fields, is refused and creates nothing."""
    (key,) = own(request.node)
    sent = premade.body(key)
    name = sent.get("name") if isinstance(sent, dict) else sent[0]
    resp, tok = premade.take_raw(key)
    assert not resp.is_success, f"a malformed create was accepted with {resp.status_code}"
    assert tok is None
    if name is not None:  # (a create without a name leaves no name to look for)
        assert not [i for i in ledger.list_items() if i.get("name") == name], "the refused create left a token behind"


_BAD_BODIES = [
    pytest.param(b'{"name": "x", "roles": [', id="truncated-json"),
    pytest.param(b"name=x&roles=y", id="form-encoded"),
    pytest.param(b"", id="empty-body"),
]


@pytest.mark.requirement("ST-LIFE-011")
@pytest.mark.parametrize("raw", _BAD_BODIES)
def test_malformed_create_gets_4xx_not_5xx(target, raw):
    """A create whose body is not a JSON object is refused with a 4xx."""
    resp = target.client.request(
        "POST",
        "/security/tokens",
        token=target.admin_token,
        form=target.admin_form,
        headers={"Content-Type": "application/json"},
        content=raw,
    )
    assert 400 <= resp.status_code < 500, f"malformed body answered with {resp.status_code}, expected a 4xx"


# -- dedicatedSubject: optional in the spec, sent empty by every real `sts service-token create` ------


@pytest.mark.requirement("ST-LIFE-012")
@pytest.mark.precondition(pre.EMPTY_DEDICATED_SUBJECT)
def test_create_with_empty_dedicated_subject_works(request, target, ledger, premade, observe):
    """A create carrying "dedicatedSubject": "" (as the real CLI sends it) works like one without it."""
    (key,) = own(request.node)
    name = premade.body(key)["name"]
    resp, tok = premade.take_raw(key)
    assert resp.is_success, f'a create with "dedicatedSubject": "" was refused with {resp.status_code}'
    assert tok is not None and tok.id is not None, (
        f"the token {name!r} made with an empty dedicatedSubject is not listed"
    )
    entry = listed(ledger.list_items(), tok.id)
    assert entry is not None and entry.get("name") == name, f"token {tok.id} is not listed under the name {name!r}"
    observe("dedicated_subject_empty_listed_as", entry.get("dedicatedSubject", "<absent>"))
    works = target.probe(tok.secret, target.admin_form)
    assert works.is_success, f'a token made with "dedicatedSubject": "" was refused ({works.status_code})'


@pytest.mark.requirement("ST-LIFE-012")
def test_create_with_dedicated_subject_value_recorded(request, ledger, premade, observe):
    """A dedicatedSubject value is accepted or refused as the target chooses (recorded); a refusal creates nothing."""
    (key,) = own(request.node)
    name = premade.body(key)["name"]
    resp, tok = premade.take_raw(key)
    items = ledger.list_items()
    entry = listed(items, tok.id) if tok is not None and tok.id is not None else None
    observe(
        "dedicated_subject_value",
        {"status": resp.status_code, "listed_as": None if entry is None else entry.get("dedicatedSubject", "<absent>")},
    )
    if not resp.is_success:
        left = [i.get("id") for i in items if i.get("name") == name]
        assert not left, f"a create with a dedicatedSubject value was refused ({resp.status_code}) but left {left}"
