"""The token ledger: it finds each created token's id, blocks a check when bookkeeping cannot go on,
journals every create before sending it, and cleans up only what it created."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
import respx

from sts_conformance.checking.checks import listed
from sts_conformance.core.preconditions import Blocked
from sts_conformance.target.client import ApiClient, AuthForm
from sts_conformance.target.throttle import THROTTLE
from sts_conformance.tokens.journal import Journal, Pending, duplicate_ids, outstanding, read_events, token_id
from sts_conformance.tokens.ledger import BROKEN_AFTER, TokenLedger
from sts_conformance.tokens.sweep import sweep
from tests.harness.ledger_support import admin_server, immediate  # noqa: F401 (fixtures)

ADMIN = "ledger-admin-0123456789abcdef"
API = "http://target.test/api/security/tokens"


server = admin_server(ADMIN)


@pytest.fixture
def ledger(server):
    with ApiClient(server.url) as client:
        yield TokenLedger(client, ADMIN, AuthForm.X_API_KEY, prefix="stsct-test-gw0")


def _listing(items):
    return httpx.Response(200, json=items)


def _ledger(client, tmp_path=None, prefix="stsct-r1-gw0", **kw):
    journal = Journal(tmp_path / f"journal-{prefix.rsplit('-', 1)[-1]}.jsonl") if tmp_path else None
    return TokenLedger(client, ADMIN, AuthForm.X_API_KEY, prefix=prefix, run_dir=tmp_path, journal=journal, **kw)


# -- ids ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(123, 123), ("123", 123), (" 42 ", 42), ("-7", -7), (True, None), (1.5, None), ("12a", None), (None, None)],
)
def test_token_id_reads_integers_and_strings_of_digits(value, expected):
    """An id listed as a string of digits is still that id; anything else is no id."""
    assert token_id(value) == expected


# -- against the reference ------------------------------------------------------------------------


def test_create_finds_the_id_and_cleanup_deletes_only_own_tokens(server, ledger):
    """Cleanup removes every token the ledger created and leaves a foreign one with our prefix alone."""
    with ApiClient(server.url) as c:
        foreign = c.create_token(ADMIN, {"name": "stsct-test-gw0-lookalike-1", "roles": []})
        assert foreign.status_code == 200
    ledger.baseline = frozenset(token_id(i["id"]) for i in ledger.list_items())
    a = ledger.create("a")
    b = ledger.create("b", expiry_ms=4_102_444_800_000)
    assert a.id is not None and b.id is not None and a.id != b.id
    assert ledger.cleanup() == []
    names = [i["name"] for i in ledger.list_items()]
    assert a.name not in names and b.name not in names
    assert "stsct-test-gw0-lookalike-1" in names, "cleanup deleted a token the run did not create"


def test_a_name_used_before_the_run_is_never_taken_for_ours(server, ledger):
    """A non-unique name is attributed to the id that did not exist before the run."""
    with ApiClient(server.url) as c:
        assert c.create_token(ADMIN, {"name": "shared", "roles": []}).status_code == 200
    ledger.baseline = frozenset(token_id(i["id"]) for i in ledger.list_items())
    resp, tok = ledger.create_raw({"name": "shared", "roles": []})
    assert resp.status_code == 200 and tok is not None
    items = {i["id"]: i for i in ledger.list_items()}
    assert items[tok.id]["name"] == "shared"
    assert tok.id not in ledger.baseline
    ledger.cleanup()
    assert [i["name"] for i in ledger.list_items()].count("shared") == 1


def test_repr_of_a_token_never_shows_the_secret(ledger):
    """OwnedToken's repr names a fingerprint, not the secret."""
    tok = ledger.create("repr")
    assert tok.secret not in repr(tok)
    ledger.cleanup()


def test_attribute_all_finds_several_new_tokens_with_one_list(server, ledger):
    """Tokens created without a list each are found by one list afterwards."""
    made = [ledger.create_raw({"name": ledger.name("batch"), "roles": []}, attribute=False)[1] for _ in range(3)]
    assert all(t is not None and t.id is None for t in made)
    found = ledger.attribute_all([t for t in made if t is not None])
    assert len(found) == 3 and len(set(found.values())) == 3
    assert ledger.cleanup() == []


# -- blocking instead of failing ----------------------------------------------------------------------


def test_a_2xx_create_with_a_secret_is_good_enough_to_go_on():
    """A create answered 201 (not the documented 200) still gives the check its token."""
    with respx.mock(assert_all_called=True, assert_all_mocked=True) as mock:
        mock.post(API).mock(return_value=httpx.Response(201, json={"name": "n", "token": "svctok-abcdefgh201"}))
        mock.get(API).mock(return_value=_listing([{"id": "77", "name": "stsct-r1-gw0-t-1", "roles": []}]))
        with ApiClient("http://target.test") as c:
            tok = _ledger(c).create("t")
    assert tok.status == 201 and tok.id == 77, "an id listed as a string of digits is that id"


def test_created_but_never_listed_blocks_the_check_by_st_life_003():
    """A 200 create whose token never shows up in the list blocks the check, naming ST-LIFE-003."""
    with respx.mock(assert_all_called=True, assert_all_mocked=True) as mock:
        mock.post(API).mock(return_value=httpx.Response(200, json={"name": "n", "token": "svctok-abcdefgh123"}))
        mock.get(API).mock(return_value=_listing([]))
        with ApiClient("http://target.test") as c:
            led = _ledger(c)
            with pytest.raises(Blocked) as blocked:
                led.create("ghost")
            left = led.cleanup()
    assert blocked.value.requirement == "ST-LIFE-003"
    assert str(blocked.value).startswith("blocked by ST-LIFE-003: ")
    assert left and left[0].id is None and "never shown by the list" in left[0].why
    assert "svctok-abcdefgh123" not in json.dumps([x.as_dict() for x in left])


@pytest.mark.parametrize(("ago_ms", "reported"), [(60_000, False), (-60_000, True)], ids=["expired", "live"])
def test_an_unlisted_token_is_left_behind_only_until_its_expiry_is_past(ago_ms, reported):
    """A list may leave expired tokens out: a token created with an expiry long past and never listed is
    not reported as left behind (nothing that authenticates is left); one not yet expired still is."""
    expiry = int(time.time() * 1000) - ago_ms
    with respx.mock(assert_all_mocked=True) as mock:
        mock.post(API).mock(return_value=httpx.Response(200, json={"name": "n", "token": "svctok-abcdefgh124"}))
        mock.get(API).mock(return_value=_listing([]))
        with ApiClient("http://target.test") as c:
            led = _ledger(c)
            resp, tok = led.create_raw({"name": led.name("late"), "roles": [], "expiryDate": expiry}, attribute=False)
            assert resp.status_code == 200 and tok is not None
            left = led.cleanup()
    assert bool(left) is reported, left
    assert not left or "never shown by the list" in left[0].why


@pytest.mark.parametrize(
    ("answer", "requirement"),
    [
        (httpx.Response(500, json={"_type": "ErrorsResponse"}), "ST-LIFE-001"),
        (httpx.Response(200, json={"name": "n"}), "ST-LIFE-001"),
    ],
    ids=["server-error", "no-secret"],
)
def test_a_create_that_gives_no_usable_token_blocks_by_st_life_001(answer, requirement):
    """A create refused, or answered without a secret, blocks the check that needed the token."""
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as mock:
        mock.post(API).mock(return_value=answer)
        mock.get(API).mock(return_value=_listing([]))
        with ApiClient("http://target.test") as c, pytest.raises(Blocked) as blocked:
            _ledger(c).create("t")
    assert blocked.value.requirement == requirement


def test_list_that_is_not_an_array_blocks_by_st_life_002():
    """A list call answering an object blocks the check, naming the list's requirement."""
    with respx.mock(assert_all_called=True, assert_all_mocked=True) as mock:
        mock.get(API).mock(return_value=httpx.Response(200, json={"items": []}))
        with ApiClient("http://target.test") as c, pytest.raises(Blocked, match="not a JSON array") as blocked:
            _ledger(c, prefix="p").list_items()
    assert blocked.value.requirement == "ST-LIFE-002"


def test_an_id_another_token_of_the_run_has_blocks_by_st_life_007():
    """A new token listed only under the id of an earlier token of the run: ids collide."""
    first = {"id": 5, "name": "stsct-r1-gw0-t-1", "roles": []}
    second = {"id": 5, "name": "stsct-r1-gw0-t-2", "roles": []}
    with respx.mock(assert_all_mocked=True) as mock:
        mock.post(API).mock(
            side_effect=[
                httpx.Response(200, json={"name": first["name"], "token": "svctok-firstfirst"}),
                httpx.Response(200, json={"name": second["name"], "token": "svctok-secondsecond"}),
            ]
        )
        mock.get(API).mock(side_effect=[_listing([first]), _listing([first, second])])
        with ApiClient("http://target.test") as c:
            led = _ledger(c)
            led.create("t")
            with pytest.raises(Blocked) as blocked:
                led.create("t")
    assert blocked.value.requirement == "ST-LIFE-007"


def test_an_id_there_before_the_run_blocks_create_raw_by_st_life_007_not_as_unlisted(tmp_path):
    """Listed under its name but under an id the list showed before the run: a clash, not a missing entry."""
    old = {"id": 9, "name": "bootstrap", "roles": []}
    mine = {"id": 9, "name": "stsct-r1-gw0-t-1", "roles": []}
    with respx.mock(assert_all_mocked=True) as mock:
        mock.post(API).mock(return_value=httpx.Response(200, json={"name": mine["name"], "token": "svctok-mine12345"}))
        mock.get(API).mock(side_effect=[_listing([old]), _listing([old, mine])])
        with ApiClient("http://target.test") as c:
            led = _ledger(c, tmp_path)
            led.baseline = frozenset({9})
            led.list_items()  # the baseline read
            with pytest.raises(Blocked) as blocked:
                led.create_raw({"name": mine["name"], "roles": []})
    assert blocked.value.requirement == "ST-LIFE-007"
    assert not (tmp_path / "target-broken").exists(), "a clash is no sign of a broken list"
    assert led._unlisted_streak == 0


def test_a_token_the_cli_made_under_a_shared_id_blocks_by_st_life_007():
    """Adopting what the CLI created meets the same clash as a create of the ledger's own."""
    first = {"id": 5, "name": "stsct-r1-gw0-t-1", "roles": []}
    cli_made = {"id": 5, "name": "stsct-r1-gw0-cli-2", "roles": []}
    with respx.mock(assert_all_mocked=True) as mock:
        mock.post(API).mock(return_value=httpx.Response(200, json={"name": first["name"], "token": "svctok-first1234"}))
        mock.get(API).mock(side_effect=[_listing([first]), _listing([first, cli_made])])
        with ApiClient("http://target.test") as c:
            led = _ledger(c)
            led.create("t")
            with pytest.raises(Blocked) as blocked:
                led.adopt(led.name("cli"), "svctok-climade1234")
    assert blocked.value.requirement == "ST-LIFE-007"


def test_duplicate_ids_in_the_list_are_found_and_listed_refuses_to_guess():
    items: list[dict[str, Any]] = [{"id": 1, "name": "a"}, {"id": "2", "name": "b"}, {"id": 2, "name": "c"}]
    items.append({"id": 1, "name": "d"})
    assert duplicate_ids(items) == [2, 1]
    assert duplicate_ids([{"id": 1}, {"id": 3}, {"name": "no id"}]) == []
    assert listed([{"id": 1}, {"id": 3}], 3) == {"id": 3}
    with pytest.raises(Blocked, match="shows id 2 2 times") as blocked:
        listed(items, 2)
    assert blocked.value.requirement == "ST-LIFE-007"


def test_a_target_that_does_not_list_what_was_created_gets_no_more_tokens(tmp_path):
    """After a few tokens in a row are created and never listed, the run stops creating (in every worker)."""
    with respx.mock(assert_all_mocked=True) as mock:
        post = mock.post(API).mock(return_value=httpx.Response(200, json={"name": "n", "token": "svctok-abcdefgh123"}))
        mock.get(API).mock(return_value=_listing([]))
        with ApiClient("http://target.test") as c:
            led = _ledger(c, tmp_path)
            for _ in range(BROKEN_AFTER):
                with pytest.raises(Blocked):
                    led.create("lost")
            assert post.call_count == BROKEN_AFTER
            with pytest.raises(Blocked, match="creates no more tokens"):
                led.create("lost")
            other_worker = _ledger(c, tmp_path, prefix="stsct-r1-gw1")
            with pytest.raises(Blocked, match="creates no more tokens"):
                other_worker.create_raw({"name": "anything", "roles": []})
        assert post.call_count == BROKEN_AFTER, "no create is sent once the target is known to be broken"


# -- the journal and the sweep ----------------------------------------------------------------------


def test_every_create_is_journalled_before_it_is_sent(tmp_path):
    """The intent is on disk before the request goes out, so a create whose answer is lost is still known."""
    seen = []

    def answer(request):
        seen.append([json.loads(line)["e"] for line in (tmp_path / "journal-gw0.jsonl").read_text().splitlines()])
        raise httpx.ReadTimeout("no answer", request=request)

    with respx.mock(assert_all_mocked=True) as mock:
        mock.post(API).mock(side_effect=answer)
        with ApiClient("http://target.test") as c:
            led = _ledger(c, tmp_path, prefix="stsct-r1-gw0")
            with pytest.raises(httpx.ReadTimeout):
                led.create_raw({"name": "stsct-r1-gw0-lost-1", "roles": []})
    assert seen == [["intent"]]
    [pending] = outstanding(read_events(tmp_path))
    assert pending.name == "stsct-r1-gw0-lost-1" and pending.status is None and not pending.ids


def test_a_token_created_despite_a_lost_answer_is_found_by_name_and_deleted(tmp_path):
    """A create whose answer never came, and a 500 that stored the token anyway: both are swept up by name."""
    lost = {"id": 9, "name": "stsct-r1-gw0-x-1", "roles": []}
    stored = {"id": 10, "name": "fuzzed name", "roles": []}
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as mock:
        mock.post(API).mock(
            side_effect=[httpx.ReadTimeout("lost"), httpx.Response(500, json={"_type": "ErrorsResponse"})]
        )
        items = [{"id": 1, "name": "fuzzed name", "roles": []}, lost, stored]
        mock.get(API).mock(side_effect=lambda _request: _listing([i for i in items if i["id"] not in removed]))
        removed: set[int] = set()

        def remove(token: int):
            def answer(_request: httpx.Request) -> httpx.Response:
                removed.add(token)
                return httpx.Response(204)

            return answer

        deletes = {i: mock.delete(f"{API}/{i}").mock(side_effect=remove(i)) for i in (1, 9, 10)}
        with ApiClient("http://target.test") as c:
            led = _ledger(c, tmp_path, baseline=[1])
            with pytest.raises(httpx.ReadTimeout):
                led.create_raw({"name": lost["name"], "roles": []})
            resp, tok = led.create_raw({"name": stored["name"], "roles": []})
            assert resp.status_code == 500 and tok is None
            assert led.cleanup() == []
    assert deletes[9].call_count == 1 and deletes[10].call_count == 1
    assert deletes[1].call_count == 0, "a token with that name that existed before the run is never touched"
    assert outstanding(read_events(tmp_path)) == []


def test_a_delete_answered_with_success_is_believed_only_once_the_list_no_longer_shows_the_token():
    """A target whose delete answers 204 but removes nothing (or another token): the token the list still
    shows under its id and name is reported as left behind, whatever its name."""
    kept = {"id": 4, "name": "fuzzed name kept", "roles": []}
    with respx.mock(assert_all_mocked=True) as mock:
        mock.post(API).mock(
            return_value=httpx.Response(200, json={"name": kept["name"], "token": "svctok-keptkeptkept"})
        )
        mock.get(API).mock(return_value=_listing([kept]))
        mock.delete(f"{API}/4").mock(return_value=httpx.Response(204))
        with ApiClient("http://target.test") as c:
            led = _ledger(c)
            _resp, tok = led.create_raw({"name": kept["name"], "roles": []})
            assert tok is not None and tok.id == 4
            left = led.cleanup()
    assert [(x.id, x.name) for x in left] == [(4, kept["name"])]
    assert "yet the list still shows it" in left[0].why


def test_cleanup_deletes_by_every_known_id_even_when_the_list_no_longer_shows_it():
    """A token that expired and left the list is still deleted by the id the ledger learnt."""
    entry = {"id": 3, "name": "stsct-r1-gw0-exp-1", "roles": [], "expiration": 1}
    with respx.mock(assert_all_mocked=True) as mock:
        mock.post(API).mock(return_value=httpx.Response(200, json={"name": entry["name"], "token": "svctok-expexpexp"}))
        mock.get(API).mock(return_value=_listing([entry]))
        delete = mock.delete(f"{API}/3").mock(return_value=httpx.Response(204))
        with ApiClient("http://target.test") as c:
            led = _ledger(c)
            led.create("exp")
            mock.get(API).mock(return_value=_listing([]))  # expired, and no longer listed
            assert led.cleanup() == []
    assert delete.call_count == 1


def test_sweep_believes_a_delete_only_when_the_list_no_longer_shows_the_token():
    """A delete that answers 204 but removes another token: the run's entries still listed are deleted
    once more, and one that stays is reported, never deleted twice (each delete may remove another's token)."""
    kept = {"id": 7, "name": "stsct-r1-gw0-a-1", "roles": []}
    missed = {"id": 8, "name": "stsct-r1-gw0-b-2", "roles": []}  # the journal says it is gone
    foreign = {"id": 9, "name": "someone-elses", "roles": []}
    with respx.mock(assert_all_mocked=True) as mock:
        mock.get(API).mock(
            # read for the owners of the known ids, then after the deletes; the last: truthful
            side_effect=[_listing([kept, missed, foreign])] * 2 + [_listing([kept, foreign])] * 3
        )
        del7 = mock.delete(f"{API}/7").mock(return_value=httpx.Response(204))
        del8 = mock.delete(f"{API}/8").mock(return_value=httpx.Response(204))
        with ApiClient("http://target.test") as c:
            pending = [Pending("k1", str(kept["name"]), ids={7}, status=200)]
            left = sweep(c, ADMIN, AuthForm.X_API_KEY, pending, deadline=1e12, verify_prefix="stsct-r1-")
    assert [(x.name, x.id) for x in left] == [(kept["name"], 7)]
    assert "still shows it" in left[0].why
    assert del7.call_count == 2 and del8.call_count == 1, "each listed entry of the run is deleted once more at most"


def test_sweep_reads_a_list_cut_short_again_until_everything_is_found():
    """A list that stops at two entries shows the next ones once those are deleted."""
    tokens = [{"id": i, "name": f"stsct-r1-gw0-t-{i}", "roles": []} for i in range(1, 6)]
    alive = list(tokens)

    def listing(request):
        return _listing(alive[:2])

    def delete(request):
        token = int(request.url.path.rsplit("/", 1)[1])
        alive[:] = [t for t in alive if t["id"] != token]
        return httpx.Response(204)

    journal = Journal(None)
    for t in tokens:
        key = journal.intent(str(t["name"]), [])
        journal.answered(key, 200)
    with respx.mock(assert_all_mocked=True) as mock:
        mock.get(API).mock(side_effect=listing)
        mock.delete(url__regex=rf"{API}/\d+").mock(side_effect=delete)
        with ApiClient("http://target.test") as c:
            left = sweep(c, ADMIN, AuthForm.X_API_KEY, outstanding(journal.events()), deadline=float("inf"))
    assert left == [] and alive == []


def test_a_delete_that_keeps_failing_is_reported_with_the_reason():
    """What cannot be deleted is reported: name, id and why; never silently dropped."""
    journal = Journal(None)
    key = journal.intent("stsct-r1-gw0-stuck-1", [])
    journal.found(key, 4)
    with respx.mock(assert_all_mocked=True) as mock:
        mock.delete(f"{API}/4").mock(return_value=httpx.Response(500))
        mock.get(API).mock(return_value=_listing([{"id": 4, "name": "stsct-r1-gw0-stuck-1", "roles": []}]))
        with ApiClient("http://target.test") as c:
            [left] = sweep(c, ADMIN, AuthForm.X_API_KEY, outstanding(journal.events()), deadline=float("inf"))
    assert (left.name, left.id, left.why) == ("stsct-r1-gw0-stuck-1", 4, "delete answered 500")


@pytest.mark.parametrize("answer", [429, 503, 500])
def test_a_failed_delete_whose_token_the_final_list_no_longer_shows_is_not_reported(answer):
    """The leftover report is what the final list really still shows: a throttled or failed delete that
    removed the token anyway (or a token gone since) is not reported as left."""
    journal = Journal(None)
    for tid in (4, 5):
        journal.found(journal.intent(f"stsct-r1-gw0-t-{tid}", []), tid)
    deadline = time.monotonic() + 1.0  # a throttled delete is sent again until the cleanup's deadline
    with respx.mock(assert_all_mocked=True) as mock:
        mock.delete(url__regex=rf"{API}/[45]").mock(return_value=httpx.Response(answer))
        mock.get(API).mock(return_value=_listing([{"id": 5, "name": "stsct-r1-gw0-t-5", "roles": []}]))
        with ApiClient("http://target.test") as c, THROTTLE.until(deadline):
            left = sweep(c, ADMIN, AuthForm.X_API_KEY, outstanding(journal.events()), deadline=deadline)
    # a throttled delete is waited out until the deadline, which either reason then names
    throttled = {"delete still throttled (429/503) at the cleanup's deadline", "the cleanup ran out of time"}
    assert [x.id for x in left] == [5]
    assert left[0].why in (throttled if answer in (429, 503) else {"delete answered 500"})


def test_failed_deletes_are_reported_as_they_are_when_the_final_list_cannot_be_read():
    """Without a final list, nothing can be told gone: every failed delete is reported."""
    journal = Journal(None)
    journal.found(journal.intent("stsct-r1-gw0-t-4", []), 4)
    with respx.mock(assert_all_mocked=True) as mock:
        mock.delete(f"{API}/4").mock(return_value=httpx.Response(429))
        mock.get(API).mock(return_value=httpx.Response(429))
        with ApiClient("http://target.test") as c, THROTTLE.until(time.monotonic() + 1.0):
            left = sweep(c, ADMIN, AuthForm.X_API_KEY, outstanding(journal.events()), deadline=float("inf"))
    assert [x.id for x in left] == [4]


def test_an_id_deleted_and_handed_to_a_new_token_is_still_the_new_tokens():
    """A target that reuses a freed id: the journal counts the old token gone, the new one alive."""
    journal = Journal(None)
    first = journal.intent("stsct-r1-gw0-t-1", [])
    journal.found(first, 3)
    journal.gone(3)
    second = journal.intent("stsct-r1-gw0-t-2", [])
    journal.found(second, 3)
    [pending] = outstanding(journal.events())
    assert pending.key == second and pending.ids == {3}


def test_deleted_id_is_released_for_reuse():
    """A target that hands a freed id to the next token still gets that token attributed."""
    a = {"id": 3, "name": "stsct-r1-gw0-t-1", "roles": []}
    b = {"id": 3, "name": "stsct-r1-gw0-t-2", "roles": []}
    with respx.mock(assert_all_called=True, assert_all_mocked=True) as mock:
        mock.post(API).mock(
            side_effect=[
                httpx.Response(200, json={"name": a["name"], "token": "svctok-aaaaaaaaaa"}),
                httpx.Response(200, json={"name": b["name"], "token": "svctok-bbbbbbbbbb"}),
            ]
        )
        mock.get(API).mock(side_effect=[_listing([a]), _listing([b])])
        mock.delete(f"{API}/3").mock(return_value=httpx.Response(204))
        with ApiClient("http://target.test") as c:
            led = _ledger(c)
            first = led.create("t")
            assert led.delete(first).status_code == 204
            second = led.create("t")
            assert second.id == 3


def test_another_workers_claim_is_respected(tmp_path):
    """Two workers create the same odd name: each takes the id the other has not claimed (journals)."""
    a = {"id": 1, "name": "odd", "roles": []}
    b = {"id": 2, "name": "odd", "roles": []}
    with respx.mock(assert_all_mocked=True) as mock:
        mock.post(API).mock(return_value=httpx.Response(200, json={"name": "odd", "token": "svctok-oddoddodd"}))
        mock.get(API).mock(return_value=_listing([a, b]))
        with ApiClient("http://target.test") as c:
            gw0 = _ledger(c, tmp_path, prefix="stsct-r1-gw0")
            gw1 = _ledger(c, tmp_path, prefix="stsct-r1-gw1")
            mine = gw0.create_raw({"name": "odd", "roles": []})[1]
            theirs = gw1.create_raw({"name": "odd", "roles": []})[1]
    assert mine is not None and theirs is not None
    assert {mine.id, theirs.id} == {1, 2}


def test_a_token_stored_under_an_altered_name_is_still_swept_up():
    """A 200 whose token the target listed trimmed (never attributed: the run was cut short) is still found."""
    journal = Journal(None)
    key = journal.intent("\tpadded name\n", [])
    journal.answered(key, 200)
    items = [{"id": 1, "name": "padded name", "roles": []}, {"id": 2, "name": "padded name", "roles": []}]
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        mock.get(API).mock(return_value=_listing(items))
        deletes = {i: mock.delete(f"{API}/{i}").mock(return_value=httpx.Response(204)) for i in (1, 2)}
        with ApiClient("http://target.test") as c:
            left = sweep(c, ADMIN, AuthForm.X_API_KEY, outstanding(journal.events()), baseline=[1], deadline=1e12)
    assert left == []
    assert deletes[2].call_count == 1, "the entry that is new since the run started is ours"
    assert deletes[1].call_count == 0, "the one listed before the run is not"


def test_refused_creates_are_no_leftovers_when_the_list_is_refused_too():
    """A credential that may not manage tokens: every create got 403 and so does the list. No token was
    made, so none is reported left; a create that went unanswered still is."""
    journal = Journal(None)
    for i in range(3):
        journal.answered(journal.intent(f"stsct-r1-gw0-t-{i}", []), 403)
    journal.intent("stsct-r1-gw0-unanswered", [])
    with respx.mock(assert_all_mocked=True) as mock:
        mock.get(API).mock(return_value=httpx.Response(403))
        with ApiClient("http://target.test") as c:
            left = sweep(c, ADMIN, AuthForm.X_API_KEY, outstanding(journal.events()), deadline=float("inf"))
    assert [x.name for x in left] == ["stsct-r1-gw0-unanswered"]
    assert "the list answered 403" in left[0].why


# -- ids are names, not identities (issue 24) -------------------------------------------------------


def test_an_id_freed_outside_the_ledger_and_given_again_is_the_new_tokens():
    """A target that hands a deleted token's id to the next token: once the list no longer shows the
    first token under that id, the entry there with the new name is the new token, not a clash."""
    first = {"id": 5, "name": "stsct-r1-gw0-t-1", "roles": []}
    second = {"id": 5, "name": "stsct-r1-gw0-t-2", "roles": []}
    with respx.mock(assert_all_mocked=True) as mock:
        mock.post(API).mock(
            side_effect=[
                httpx.Response(200, json={"name": first["name"], "token": "svctok-firstfirst"}),
                httpx.Response(200, json={"name": second["name"], "token": "svctok-secondsecond"}),
            ]
        )
        # the first token was deleted by a call of a check, not through the ledger
        mock.get(API).mock(side_effect=[_listing([first]), _listing([second])])
        with ApiClient("http://target.test") as c:
            led = _ledger(c)
            assert led.create("t").id == 5
            assert led.create("t").id == 5


def test_a_peers_id_is_taken_while_listed_under_its_name_and_free_once_not(tmp_path):
    """Another worker's claim holds while the list shows its token under that id; then the id is free."""
    peer = Journal(tmp_path / "journal-gw1.jsonl", "gw1")
    peer.found(peer.intent("stsct-r1-gw1-t-1", []), 7)
    theirs = {"id": 7, "name": "stsct-r1-gw1-t-1", "roles": []}
    ours = {"id": 7, "name": "stsct-r1-gw0-t-1", "roles": []}
    with respx.mock(assert_all_mocked=True) as mock:
        mock.post(API).mock(return_value=httpx.Response(200, json={"name": ours["name"], "token": "svctok-oursours"}))
        mock.get(API).mock(side_effect=[_listing([theirs, ours]), _listing([ours])])
        with ApiClient("http://target.test") as c:
            with pytest.raises(Blocked) as blocked:
                _ledger(c, tmp_path).create("t")
            assert blocked.value.requirement == "ST-LIFE-007"  # both listed under 7: a shared id
            # the peer's token gone from the list (deleted), its id given to ours: it is ours
            assert _ledger(c, tmp_path).create("t").id == 7


def test_listed_with_a_name_skips_a_new_token_under_a_freed_id():
    items = [{"id": 5, "name": "the-new-one"}]
    assert listed(items, 5) == items[0]
    assert listed(items, 5, "the-deleted-one") is None
    assert listed(items, 5, "the-new-one") == items[0]


def test_inconclusive_is_a_skip_whose_reason_says_so():
    from _pytest.outcomes import Skipped

    from sts_conformance.core import preconditions as pre

    with pytest.raises(Skipped) as skipped:
        pre.inconclusive("the call after the expiry came before it")
    assert isinstance(skipped.value, pre.Inconclusive)
    assert skipped.value.msg == "inconclusive: the call after the expiry came before it"
    assert pre.is_inconclusive(skipped.value.msg) and pre.is_inconclusive(f"Skipped: {skipped.value.msg}")
    assert pre.is_inconclusive("sts_conformance.core.preconditions.Inconclusive: inconclusive: why")
    assert not pre.is_inconclusive("blocked by ST-LIFE-001: why") and not pre.is_inconclusive(None)


def test_sweep_never_deletes_an_id_the_list_shows_under_a_name_not_the_runs():
    """A target that reuses ids: the run's token under id 5 was deleted by a check, and the target gave 5
    to somebody else's token. The sweep leaves that token alone; the run's own is gone, nothing is left."""
    journal = Journal(None)
    journal.found(journal.intent("stsct-r1-gw0-t-1", []), 5)
    journal.found(journal.intent("stsct-r1-gw0-t-2", []), 6)
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        mock.get(API).mock(return_value=_listing([{"id": 5, "name": "someone-elses", "roles": []}]))
        foreign = mock.delete(f"{API}/5").mock(return_value=httpx.Response(204))
        ours = mock.delete(f"{API}/6").mock(return_value=httpx.Response(404))
        with ApiClient("http://target.test") as c:
            left = sweep(
                c,
                ADMIN,
                AuthForm.X_API_KEY,
                outstanding(journal.events()),
                deadline=float("inf"),
                verify_prefix="stsct-r1-",
            )
    assert left == []
    assert foreign.call_count == 0, "a token of another name under a reused id is not the run's to delete"
    assert ours.call_count == 1, "an id not listed is still deleted by id (404: gone)"


@pytest.mark.parametrize("resend", [True, False])
def test_a_create_whose_connection_closed_is_sent_again_unless_the_caller_counts_its_names(resend):
    """The same body once more on a fresh connection (the sweep finds a first one by its name), or the error
    for a caller that must not see one name made twice (the list-scale step makes another name instead)."""
    with respx.mock(assert_all_mocked=True) as mock:
        route = mock.post(API).mock(
            side_effect=[httpx.ReadError("closed"), httpx.Response(200, json={"name": "n", "token": "svctok-again123"})]
        )
        with ApiClient("http://target.test") as c:
            led = _ledger(c)
            if resend:
                resp, tok = led.create_raw({"name": led.name("t"), "roles": []}, attribute=False)
                assert resp.status_code == 200 and tok is not None
            else:
                with pytest.raises(httpx.ReadError):
                    led.create_raw({"name": led.name("t"), "roles": []}, attribute=False, resend=False)
    assert route.call_count == (2 if resend else 1)
