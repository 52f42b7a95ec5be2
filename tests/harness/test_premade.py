"""Premade tokens: the first take sends the creates of the whole plan together and finds their ids with one
list; each check takes its own, with its create's exchange in its log; what cannot be had blocks the check
that takes it; every token of the plan is journalled and swept, taken or not."""

from __future__ import annotations

import pytest

from sts_conformance.core import preconditions as pre
from sts_conformance.core.preconditions import Blocked
from sts_conformance.target.client import EXCHANGES, ApiClient, AuthForm
from sts_conformance.tokens.journal import Journal, outstanding
from sts_conformance.tokens.ledger import TokenLedger
from sts_conformance.tokens.premade import Premade
from tests.harness.ledger_support import admin_server, immediate  # noqa: F401 (fixtures)

ADMIN = "premade-admin-0123456789abcdef"


server = admin_server(ADMIN)


@pytest.fixture
def ledger(server, tmp_path):
    with ApiClient(server.url) as client:
        journal = Journal(tmp_path / "journal-gw0.jsonl")
        yield TokenLedger(client, ADMIN, AuthForm.X_API_KEY, prefix="stsct-r1-gw0", run_dir=tmp_path, journal=journal)


def _plan(ledger, *labels):
    return {label: ledger.body(label) for label in labels}


def _creates(ledger) -> int:
    return sum(1 for e in ledger.journal.events() if e.get("e") == "intent")


def test_the_first_take_makes_the_whole_plan_and_later_takes_send_nothing(ledger):
    premade = Premade(ledger, _plan(ledger, "a", "b", "c"))
    assert _creates(ledger) == 0, "nothing is sent before a check takes a token"
    (a,) = premade.take("a")
    assert _creates(ledger) == 3
    assert {t.name for t in ledger.owned} == {premade.body(k)["name"] for k in "abc"}
    assert all(t.id is not None for t in ledger.owned), "the ids of the whole wave are found"
    b, c = premade.take("b", "c")
    assert _creates(ledger) == 3
    assert len({a.id, b.id, c.id}) == 3
    assert premade.take("a") == [a], "a key taken again is the same token"


def test_unknown_cases_make_each_token_when_it_is_taken(ledger):
    """An xdist worker does not know which cases come to it: it makes only what is taken."""
    premade = Premade(ledger, _plan(ledger, "a", "b"), together=False)
    premade.take("b")
    assert [t.name for t in ledger.owned] == [premade.body("b")["name"]]


def test_a_check_shows_its_own_creates_in_the_order_sent_with_the_secret_masked(ledger):
    premade = Premade(ledger, _plan(ledger, "a", "b", "c"))
    premade.take("a")
    EXCHANGES.clear()  # (a new check begins)
    c, b = premade.take("c", "b")
    shown = [e for e in EXCHANGES.snapshot() if e.method == "POST"]
    assert [premade.body(k)["name"] in e.request_body for k, e in zip("bc", shown, strict=True)] == [True, True]
    assert len(shown) == 2, "only the check's own creates are shown"
    assert all(tok.secret not in e.response_body for tok in (b, c) for e in shown)


def test_a_refused_create_blocks_the_check_that_takes_it_and_is_handed_as_is_to_one_that_judges_it(ledger):
    plan = {"ok": ledger.body("ok"), "refused": {**ledger.body("refused"), "expiryDate": 1}}
    premade = Premade(ledger, plan)
    resp, tok = premade.take_raw("refused")
    assert resp.status_code == 400 and tok is None
    with pytest.raises(Blocked) as blocked:
        premade.take("refused")
    assert blocked.value.requirement == pre.CREATE
    (ok,) = premade.take("ok")
    assert ok.id is not None


def test_a_name_the_ledger_did_not_make_is_sent_by_itself_when_taken(ledger):
    """A create whose name the ledger cannot recognise is found in the list under the cross-worker lock, alone."""
    premade = Premade(ledger, {"ours": ledger.body("ours"), "foreign": {"name": "someone-else", "roles": []}})
    premade.take("ours")
    assert _creates(ledger) == 1
    resp, tok = premade.take_raw("foreign")
    assert resp.is_success and tok is not None and tok.id is not None
    assert _creates(ledger) == 2


def test_every_planned_token_is_swept_whether_its_check_ran_or_not(ledger):
    premade = Premade(ledger, _plan(ledger, "a", "b", "c"))
    premade.take("a")  # (b and c: their checks were deselected at run time, or the run stopped)
    assert len(outstanding(ledger.journal.events())) == 3
    assert ledger.cleanup() == []
    names = {premade.body(k)["name"] for k in "abc"}
    assert not [i for i in ledger.list_items() if i.get("name") in names]


def test_a_token_removed_before_its_check_takes_it_is_made_again_then(ledger):
    """A delete that removed another token than it named (ST-LIFE-006's finding) may take a token made ahead:
    its check gets one made when it needs it, as it would have made one itself."""
    premade = Premade(ledger, _plan(ledger, "a", "b"))
    (a,) = premade.take("a")
    b_first = premade.sent()["b"][1]
    assert b_first is not None and b_first.id is not None
    assert ledger.client.delete_token(ADMIN, b_first.id, form=AuthForm.X_API_KEY).status_code == 204
    (b,) = premade.take("b")
    assert b.id is not None and b.id != b_first.id
    assert premade.take("a") == [a], "a token still listed is kept"
    assert _creates(ledger) == 3


def test_no_list_is_read_to_look_for_gone_tokens_when_no_delete_was_sent(ledger):
    premade = Premade(ledger, _plan(ledger, "a", "b"))
    premade.take("a")
    EXCHANGES.clear()
    premade.take("b")
    assert not [e for e in EXCHANGES.snapshot() if e.method == "GET"]


def test_a_token_seen_gone_while_another_check_took_its_own_is_made_again_when_taken(ledger):
    """One list after a delete tells about every token made ahead, not only those of the check that read it."""
    premade = Premade(ledger, _plan(ledger, "a", "b", "c"))
    premade.take("a")
    c_first = premade.sent()["c"][1]
    assert ledger.client.delete_token(ADMIN, c_first.id, form=AuthForm.X_API_KEY).status_code == 204
    premade.take("b")  # (a delete was sent since: the list is read, and shows c gone)
    EXCHANGES.clear()
    (c,) = premade.take("c")
    assert c.id is not None and c.id != c_first.id
    lists = [e for e in EXCHANGES.snapshot() if e.method == "GET" and e.url.endswith("/security/tokens")]
    assert len(lists) == 1, "no list to find c gone again: only the one that finds the new token's id"
