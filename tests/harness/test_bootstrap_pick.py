"""The bootstrap token is told apart in the list by its configuration, not by being the only token."""

from __future__ import annotations

from sts_conformance.checking import fleet
from sts_conformance.checking.fleet import BY_EXPIRY, BY_ONLY, BY_ROLES, Instance, expiry_window, pick_bootstrap
from sts_conformance.tokens.prepare import Sample

DAY = 86_400_000
BOOT_ROLES = ["stackstate-k8s-troubleshooter", "stackstate-power-user"]


def _entry(tid: int, roles: list[str], expiration: int | None) -> dict:
    return {"id": tid, "name": f"someone-{tid}", "roles": roles, "expiration": expiration}


def test_the_only_entry_is_the_bootstrap_token():
    only = _entry(1, ["x"], None)
    assert pick_bootstrap([only], BOOT_ROLES, None) == (only, BY_ONLY)


def test_among_several_the_one_with_its_roles_in_any_order():
    boot = _entry(7, list(reversed(BOOT_ROLES)), 5 * DAY)
    others = [_entry(1, ["stackstate-admin"], None), boot, _entry(9, BOOT_ROLES[:1], 5 * DAY)]
    assert pick_bootstrap(others, BOOT_ROLES, None) == (boot, BY_ROLES)


def test_among_several_with_its_roles_the_one_expiring_at_start_plus_ttl():
    boot = _entry(7, BOOT_ROLES, 8 * DAY + 500)
    others = [_entry(1, BOOT_ROLES, None), boot, _entry(3, BOOT_ROLES, 30 * DAY)]
    assert pick_bootstrap(others, BOOT_ROLES, (8 * DAY, 8 * DAY + 3_000)) == (boot, BY_EXPIRY)


def test_nothing_is_picked_when_no_single_entry_fits():
    twins = [_entry(1, BOOT_ROLES, 8 * DAY), _entry(2, BOOT_ROLES, 8 * DAY + 1)]
    assert pick_bootstrap(twins, BOOT_ROLES, (8 * DAY, 8 * DAY + 3_000)) == (None, "")
    assert pick_bootstrap(twins, BOOT_ROLES, None) == (None, "")
    assert pick_bootstrap([], BOOT_ROLES, None) == (None, "")


def test_expiry_window_spans_start_to_first_accepted_call_plus_ttl():
    inst = Instance(label="long", roles=BOOT_ROLES, ttl="7d", launched_at=100.0)
    inst.first = {"X_API_KEY": Sample(200, 1_000_000, 102.0), "AUTHORIZATION": Sample(401, 1_000_500, 102.5)}
    low, high = expiry_window(inst) or (0, 0)
    ttl = 7 * DAY
    assert low == 1_000_000 - 2_000 - fleet.CLOCK_MARGIN_MS + ttl
    assert high == 1_000_000 + 1_000 + fleet.CLOCK_MARGIN_MS + ttl
    assert expiry_window(Instance(label="none", roles=BOOT_ROLES, ttl=None)) is None
