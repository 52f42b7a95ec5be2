"""The model's judgements (sts_conformance.checking.model) without a server: lists, presentations, held choices."""

from __future__ import annotations

import httpx

from sts_conformance.checking.model.actors import Actor
from sts_conformance.checking.model.choices import HeldChoices, held
from sts_conformance.checking.model.invariants import ModelView, agrees, list_disagreements, presentation_disagreement
from sts_conformance.target.client import AuthForm
from sts_conformance.tokens.ledger import OwnedToken

ROLES = ["stackstate-guest"]


def _tok(tid: int, name: str, expiration: int | None = None, roles: list[str] | None = None) -> OwnedToken:
    return OwnedToken(name=name, secret=f"secret-{tid}", roles=roles or ROLES, expiration=expiration, id=tid)


def _entry(tok: OwnedToken, **changes) -> dict:
    entry = {"id": tok.id, "name": tok.name, "roles": list(tok.roles), "lastUpdateTimestamp": 1}
    if tok.expiration is not None:
        entry["expiration"] = tok.expiration
    return {**entry, **changes}


def _view(live, deleted=(), standing=(), compare="exact") -> ModelView:
    names = {t.name for t in [*live, *deleted]}
    return ModelView(list(live), list(deleted), names, list(standing), compare)


def test_a_list_showing_every_live_token_as_created_agrees():
    a, b = _tok(1, "m-a", 2**63 - 1), _tok(2, "m-b")
    other = {"id": 99, "name": "someone-else", "roles": ["x"]}
    assert list_disagreements([_entry(a), other, _entry(b)], _view([a, b])) == []


def test_every_field_as_created():
    far = _tok(1, "m-caf\u00e9", 2**63 - 1)
    view = _view([far])
    assert list_disagreements([_entry(far, name="m-cafe\u0301")], view)  # normalised to another form
    assert list_disagreements([_entry(far, expiration=2**63 - 1024)], view)  # read as a double somewhere
    assert list_disagreements([_entry(far, expiration=float(2**63 - 1))], view)
    assert list_disagreements([_entry(far, roles=[*ROLES, "stackstate-admin"])], view)


def test_a_missing_live_token_a_listed_deleted_one_and_a_phantom_disagree():
    live, gone = _tok(1, "m-live"), _tok(2, "m-gone")
    view = _view([live], [gone])
    assert any("missing" in p for p in list_disagreements([], view))
    assert any("still listed" in p for p in list_disagreements([_entry(live), _entry(gone)], view))
    phantom = {"id": 7, "name": "m-live", "roles": ROLES}
    assert any("does not hold" in p for p in list_disagreements([_entry(live), phantom], view))


def test_an_id_listed_twice_disagrees():
    a = _tok(1, "m-a")
    assert any("more than once" in p for p in list_disagreements([_entry(a), _entry(a)], _view([a])))


def test_the_frame_condition_holds_the_standing_actors():
    manager = Actor("prepared manager", "s", AuthForm.X_API_KEY, True, prepared_id=5)
    manager.prepared_fields = {"name": "prep", "roles": ["stackstate-admin"], "expiration": None}
    entry = {"id": 5, "name": "prep", "roles": ["stackstate-admin"]}
    assert list_disagreements([entry], _view([], standing=[manager])) == []
    assert list_disagreements([], _view([], standing=[manager]))
    assert list_disagreements([{**entry, "expiration": 5}], _view([], standing=[manager]))


def test_roles_compared_as_a_set_when_the_profile_says_so():
    a = _tok(1, "m-a", roles=["r1", "r2"])
    assert list_disagreements([_entry(a, roles=["r2", "r1"])], _view([a], compare="set")) == []
    assert list_disagreements([_entry(a, roles=["r2", "r1"])], _view([a], compare="exact"))


def test_agrees_waits_only_on_a_readable_list():
    a = _tok(1, "m-a")
    assert agrees(_view([a]))(httpx.Response(200, json=[_entry(a)]))
    assert not agrees(_view([a]))(httpx.Response(200, json=[]))
    assert agrees(_view([a]))(httpx.Response(500, text="boom"))  # judged at once, not waited on


def test_presentations():
    ok, refused = httpx.Response(200), httpx.Response(401)
    assert presentation_disagreement(ok, True, (401, 403), "t") is None
    assert presentation_disagreement(refused, True, (401, 403), "t")
    assert presentation_disagreement(refused, False, (401, 403), "t") is None
    assert "accepted" in (presentation_disagreement(ok, False, (401, 403), "t") or "")


def test_held_choices_keep_the_first_answer_and_record_a_change():
    choices = HeldChoices()
    assert choices.hold("duplicate_names", "allowed", "first check") is None
    assert choices.hold("duplicate_names", "allowed", "second check") is None
    assert choices.hold("predefined_roles", {"status": 400}, "not held") is None
    assert choices.hold("predefined_roles", {"status": 404}, "not held") is None
    change = choices.hold("duplicate_names", "refused", "third check")
    assert change is not None and "first check" in change and "third check" in change
    changes = [(k, f.value, later.value) for k, f, later in choices.conflicts]
    assert changes == [("duplicate_names", "allowed", "refused")]


def test_held_choices_are_kept_per_run():
    class Run:
        pass

    one, two = Run(), Run()
    assert held(one) is held(one)
    assert held(one) is not held(two)
