"""Named faults: each switches on one plausible defect that a conformance check can see."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sts_reference.clock import FakeClock
from sts_reference.faults import FAULTS, FaultSet
from sts_reference.testing import RunningServer

from .support import ADMIN, START_MS, Api, StartServer

Probe = Callable[[Api, FakeClock], bool]
"""Runs a scenario against a server and says whether it behaved faithfully."""


def x_api_key_accepted(api: Api, clock: FakeClock) -> bool:
    return api.status({"X-API-Key": ADMIN.token}).status_code == 200


def past_expiry_refused_and_expiry_enforced(api: Api, clock: FakeClock) -> bool:
    past = api.create({"name": "past", "roles": [], "expiryDate": START_MS - 1})
    _, secret = api.new_token([], expiry=START_MS + 1000)
    clock.advance(2000)
    return past.status_code == 400 and api.status_with(secret).status_code == 401


def deleted_token_refused(api: Api, clock: FakeClock) -> bool:
    token_id, secret = api.new_token([])
    api.delete(token_id)
    return api.status_with(secret).status_code == 401


def list_has_no_secrets(api: Api, clock: FakeClock) -> bool:
    _, secret = api.new_token([])
    text = api.list_tokens().text
    return secret not in text and ADMIN.token not in text


def refused_at_expiry_instant(api: Api, clock: FakeClock) -> bool:
    _, secret = api.new_token([], expiry=START_MS + 500)
    clock.set(START_MS + 500)
    return api.status_with(secret).status_code == 401


PROBES: dict[str, Probe] = {
    "x-api-key-ignored": x_api_key_accepted,
    "expiry-seconds-as-ms": past_expiry_refused_and_expiry_enforced,
    "delete-not-revoking": deleted_token_refused,
    "list-leaks-secret": list_has_no_secrets,
    "expiry-inclusive": refused_at_expiry_instant,
}


@pytest.mark.parametrize("fault", PROBES)
def test_fault_changes_only_what_it_names(
    start_server: StartServer, api_for: Callable[[RunningServer], Api], fault: str
) -> None:
    """The faithful server passes the fault's probe; with the fault on it fails it, while
    the rest of the API (status, list, create) keeps working."""
    for faults, faithful in (((), True), ((fault,), False)):
        clock = FakeClock(START_MS)
        api = api_for(start_server(clock=clock, faults=faults))
        assert PROBES[fault](api, clock) is faithful, f"faults={faults}"
        api = api.using_authorization_header()  # the one form no fault breaks
        assert api.status_with(ADMIN.token).status_code == 200
        assert api.list_tokens().status_code == 200
        assert api.create({"name": "still-works", "roles": []}).status_code == 200


def test_fault_catalogue_entries_are_one_line_descriptions() -> None:
    """Each fault has a kebab-case name and a one-line description for the faults command."""
    for name, description in FAULTS.items():
        assert name == name.lower() and " " not in name
        assert description and "\n" not in description


def test_fault_set_refuses_unknown_names_listing_known_ones() -> None:
    """A misspelt fault is an error naming the known faults, not a silently faithful server."""
    with pytest.raises(ValueError, match="unknown fault") as caught:
        FaultSet(["delete-not-revoking", "delete-not-revokng"])
    assert "delete-not-revokng" in str(caught.value)
    for name in FAULTS:
        assert name in str(caught.value)


def test_fault_set_membership_and_on() -> None:
    """A fault is on only when chosen; asking about an uncatalogued name is a server bug."""
    faults = FaultSet(["expiry-inclusive"])
    assert faults.on("expiry-inclusive") and "expiry-inclusive" in faults
    assert not faults.on("list-leaks-secret") and "list-leaks-secret" not in faults
    assert FaultSet("expiry-inclusive") == faults  # a lone string is one name, not letters
    with pytest.raises(KeyError):
        faults.on("no-such-fault")
    assert not FaultSet(())
