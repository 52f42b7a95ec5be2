"""Bootstrap token: the service token an operator configures in authentication.yaml.

The checks need deployments configured in several ways: a bootstrap token with the manager
role, one with only the unprivileged role, one under the seed document's ``servicetoken``
key, one per ttl spelling. The controller takes each configuration through a recorded
scenario at the start of the run (``sts_conformance/checking/fleet.py``): on a managed target, further
instances it launches (their ttls run out while other checks run); on an external target with
``bootstrap.reconfigure``, the deployment itself, reconfigured and restored before the other
checks (``sts_conformance/checking/reconfigure.py``). The checks here judge what was recorded.
(That a bootstrap token first presented only after its ttl is refused is
``test_unused_bootstrap_token.py``'s.)

On an external target without ``reconfigure`` only the bootstrap token the profile names
(``bootstrap.token``, with ``bootstrap.roles``) can be checked, live; the rest is skipped,
naming the setting.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NoReturn

import pytest

from sts_conformance.checking import fleet, foundations
from sts_conformance.checking.checks import (
    CLOCK_MARGIN_MS,
    FORMS,
    expect_refused,
    expect_status,
    json_body,
    listed,
    working_forms,
)
from sts_conformance.core import preconditions as pre
from sts_conformance.plugin import STATE_KEY, is_active
from sts_conformance.target import settle
from sts_conformance.target.client import AuthForm
from sts_conformance.target.profile import BootstrapSettings
from sts_conformance.tokens.journal import Journal
from sts_conformance.tokens.ledger import TokenLedger

MANAGER = fleet.MANAGER
UNPRIVILEGED = fleet.UNPRIVILEGED


def _ttl_spellings(config: pytest.Config) -> tuple[str, ...]:
    if is_active(config):
        return config.stash[STATE_KEY].profile.bootstrap.ttl_spellings
    return BootstrapSettings().ttl_spellings


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "ttl_spelling" in metafunc.fixturenames:
        spellings = _ttl_spellings(metafunc.config)
        metafunc.parametrize("ttl_spelling", spellings, ids=[f"ttl-{s.strip().replace(' ', '-')}" for s in spellings])


def _recorded(target, label: str, stage: str = fleet.READY) -> fleet.Instance | None:
    """The configuration ``label`` as its scenario recorded it; None when the run has none (external,
    without reconfigure)."""
    if not target.state.has_instances:
        return None
    inst = target.instance(label, stage)
    if inst.error is not None and not inst.first:
        pytest.fail(f"the deployment with bootstrap {label} is not usable: {inst.error}", pytrace=False)
    return inst


def _never_accepted(inst: fleet.Instance, target) -> bool:
    forms = working_forms(target)
    return not any(s.accepted for name, s in inst.first.items() if AuthForm[name] in forms)


def _key_blocks(inst: fleet.Instance, target) -> None:
    """A configuration under the ``servicetoken`` key whose token never worked: ST-BOOT-004 says why."""
    if inst.key == "servicetoken" and _never_accepted(inst, target):
        pre.block("ST-BOOT-004", "the bootstrap token configured under the 'servicetoken' key was never accepted")


@pytest.fixture(scope="module")
def external_bootstrap(target, ledger, run_state) -> Iterator[tuple[str, TokenLedger | None] | None]:
    """An external target's own bootstrap token (``bootstrap.token``), checked live: (label, ledger for a manager)."""
    settings = target.profile.bootstrap
    if target.state.has_instances or not settings.token:
        yield None
        return
    label = MANAGER if target.profile.manager_role in settings.roles else UNPRIVILEGED
    boot_ledger = None
    if label == MANAGER:
        # its tokens are journalled like every other, so the run's final cleanup knows them too
        worker = f"{run_state.worker}-boot"
        boot_ledger = TokenLedger(
            target.client,
            settings.token,
            working_forms(target)[0],
            prefix=f"{ledger.prefix}-boot",
            run_dir=run_state.run_dir,
            journal=Journal(run_state.run_dir / f"journal-{worker}.jsonl", worker),
            baseline=run_state.prepared.baseline,
        )
    yield label, boot_ledger


def _no_bootstrap_to_check(target, label: str) -> NoReturn:
    settings = target.profile.bootstrap
    if settings.token:
        has = "the manager role" if label == UNPRIVILEGED else "no manager role"
        pytest.skip(
            f"the external target's bootstrap token has {has} (profile setting 'bootstrap.roles' is "
            f"{list(settings.roles)}); other configurations need profile setting 'bootstrap.reconfigure'"
        )
    pytest.skip(
        "checking the bootstrap token of an external target needs profile setting 'bootstrap.reconfigure' "
        "(or 'bootstrap.token' with 'bootstrap.roles' for the one it has)"
    )


# -- authenticates, with exactly its roles ------------------------------------------------------


@pytest.mark.requirement("ST-BOOT-001")
@pytest.mark.precondition(pre.ANONYMOUS_REFUSED)
@pytest.mark.parametrize("form", FORMS)
def test_bootstrap_token_authenticates_once_started(target, external_bootstrap, form):
    """The bootstrap token configured in authentication.yaml is accepted once the deployment is up."""
    inst = _recorded(target, MANAGER)
    if inst is not None:
        sample = inst.first.get(form.name)
        assert sample is not None and sample.accepted, (
            f"the bootstrap token (roles {inst.roles}) was refused with {sample.status if sample else '?'} "
            f"in form {form.value} right after the deployment answered"
        )
        return
    if external_bootstrap is None:
        _no_bootstrap_to_check(target, MANAGER)
    resp = target.probe(target.profile.bootstrap.token, form)
    assert resp.is_success, (
        f"the bootstrap token (roles {list(target.profile.bootstrap.roles)}) was refused with {resp.status_code} "
        f"in form {form.value}; if its ttl has run out, remove 'bootstrap.token' from the profile"
    )


@pytest.mark.requirement("ST-BOOT-002")
@pytest.mark.precondition(pre.CREATE, pre.LISTED)
def test_bootstrap_token_with_manager_role_manages_tokens(target, external_bootstrap, observe):
    """A bootstrap token given the manager role lists, creates and deletes tokens."""
    inst = _recorded(target, MANAGER)
    if inst is not None:
        manage = inst.manage
        if not manage:
            pre.block("ST-BOOT-001", f"the bootstrap token (roles {inst.roles}) was never accepted")
        listing, created, deleted = manage.get("list", {}), manage.get("create", {}), manage.get("delete", {})
        what = f"with a bootstrap token of roles {inst.roles}"
        assert 200 <= listing.get("status", 0) < 300, f"listing tokens {what} answered {listing.get('status')}"
        if not listing.get("array"):
            pre.block(pre.LIST, "the list answered with something other than a JSON array")
        assert 200 <= created.get("status", 0) < 300, f"creating a token {what} answered {created.get('status')}"
        assert created.get("listed"), f"the token created {what} is not listed"
        assert 200 <= deleted.get("status", 0) < 300, f"deleting that token {what} answered {deleted.get('status')}"
        assert deleted.get("gone"), f"the token deleted {what} is still listed"
        if target.managed:
            # a fresh deployment: whatever was listed before the run created anything is the bootstrap token
            observe("bootstrap_in_list", "listed" if target.prepared.names_before else "not listed")
        return
    if external_bootstrap is None or external_bootstrap[1] is None:
        _no_bootstrap_to_check(target, MANAGER)
    boot_ledger = external_bootstrap[1]
    resp = target.client.list_tokens(target.profile.bootstrap.token, form=boot_ledger.admin_form)
    expect_status(resp, 200, "GET /security/tokens with the bootstrap token")
    if not isinstance(json_body(resp, "list response"), list):
        pre.block(pre.LIST, "the list answered with something other than a JSON array")
    tok = boot_ledger.create("boot-made", roles=[target.profile.unprivileged_role])
    resp = boot_ledger.delete(tok)
    assert resp.is_success, f"DELETE of token {tok.id} with the bootstrap token answered {resp.status_code}"
    assert listed(boot_ledger.list_without(tok.id, tok.name), tok.id, tok.name) is None, (
        f"token {tok.id} is still listed after its delete" + settle.note(settle.LIST)
    )


@pytest.mark.requirement("ST-BOOT-002")
@pytest.mark.precondition(pre.ANONYMOUS_REFUSED)
def test_bootstrap_token_without_manager_role_passes_probe_but_cannot_manage(target, ledger, external_bootstrap):
    """A bootstrap token given only an unprivileged role passes the probe and is refused token management."""
    forbidden = target.expect.forbidden_status
    inst = _recorded(target, UNPRIVILEGED)
    if inst is not None:
        ttl_ms = fleet.duration_ms(inst.ttl) if inst.ttl else None

        def after_ttl(at: object) -> bool:
            """Whether a call answered at client time ``at`` may have come after the token's ttl ran out."""
            return ttl_ms is not None and isinstance(at, float) and (at - inst.launched_at) * 1000 >= ttl_ms

        if _never_accepted(inst, target) and all(after_ttl(s.at) for s in inst.first.values()):
            pre.inconclusive(
                f"the deployment first answered after the bootstrap token's ttl {inst.ttl!r} may have run out"
            )
        if _never_accepted(inst, target):
            raise AssertionError(
                f"the bootstrap token (roles {inst.roles}) was refused on the probe right after the deployment "
                f"answered ({', '.join(f'{k}: {s.status}' for k, s in inst.first.items())})"
            )
        listing, created = inst.manage.get("list", {}), inst.manage.get("create", {})
        what = f"with a bootstrap token of roles {inst.roles}"
        for call, got in (("listing", listing), ("creating", created)):
            status = got.get("status")
            if status not in forbidden and status in target.expect.unauthenticated_status and after_ttl(got.get("at")):
                pre.inconclusive(
                    f"{call} tokens {what} was refused as unauthenticated ({status}) when its ttl "
                    f"{inst.ttl!r} may have run out: whether for its roles cannot be told"
                )
        # a call that lets anyone, or any role, in refuses no role: ST-AUTH-006/ST-ROLE-002's finding, not this
        judged = {
            call
            for call in ("list", "create", "delete")
            if foundations.anonymous_accepted(target, call) is None and foundations.role_ignored(target, call) is None
        }
        assert "list" not in judged or listing.get("status") in forbidden, (
            f"listing tokens {what}: expected refusal with {forbidden}, got {listing.get('status')}"
        )
        assert "create" not in judged or created.get("status") in forbidden, (
            f"creating a token {what}: expected refusal with {forbidden}, got {created.get('status')}"
        )
        assert "create" not in judged or not created.get("listed"), (
            f"creating a token {what} was refused, yet the token is listed"
        )
        deleted = inst.manage.get("delete-as-unprivileged")  # (only where another credential made a victim)
        if deleted is not None and "delete" in judged:
            assert deleted["status"] in forbidden, (
                f"deleting token {deleted['id']} {what}: expected refusal with {forbidden}, got {deleted['status']}"
            )
            assert deleted["kept"], f"deleting token {deleted['id']} {what} was refused, yet it is gone from the list"
        return
    if external_bootstrap is None or external_bootstrap[0] != UNPRIVILEGED:
        _no_bootstrap_to_check(target, UNPRIVILEGED)
    token = target.profile.bootstrap.token
    form = working_forms(target)[0]
    probe = target.probe(token, form)
    assert probe.is_success, f"the bootstrap token was refused on the probe with {probe.status_code}"
    expect_refused(target.client.list_tokens(token, form=form), forbidden, "listing tokens with the bootstrap token")
    body = {"name": ledger.name("boot-unprivileged"), "roles": [target.profile.manager_role]}
    resp, _ = ledger.create_raw(body, token=token, form=form)  # journalled: a wrong accept is cleaned up
    expect_refused(resp, forbidden, "creating a manager token with the unprivileged bootstrap token")
    victim = ledger.create("boot-victim", roles=[target.profile.unprivileged_role])
    resp = target.client.delete_token(token, victim.id, form=form)
    expect_refused(resp, forbidden, f"deleting token {victim.id} with the unprivileged bootstrap token")
    assert listed(ledger.list_items(), victim.id) is not None, (
        f"deleting token {victim.id} with the unprivileged bootstrap token was refused, yet it is gone from the list"
    )


@pytest.mark.requirement("ST-BOOT-004")
def test_lower_case_servicetoken_key_configures_the_bootstrap_token(target):
    """authentication.yaml spelling the key 'servicetoken', as the seed document does, configures the token too."""
    if "servicetoken" not in target.profile.bootstrap.key_spellings:
        pytest.skip(
            "not applicable: current stackstate-k8s charts read only the 'serviceToken' key; "
            "profile setting 'bootstrap.key_spellings' lists servicetoken to check it (one more rollout)"
        )
    inst = _recorded(target, fleet.LOWER_CASE_KEY)
    if inst is None:
        _no_bootstrap_to_check(target, fleet.LOWER_CASE_KEY)
    assert not _never_accepted(inst, target), (
        "a bootstrap token configured under 'servicetoken' was refused "
        f"({', '.join(f'{k}: {s.status}' for k, s in inst.first.items())}): the lower-case key was not read"
    )
    listing = inst.manage.get("list", {})
    assert 200 <= listing.get("status", 0) < 300, (
        f"listing tokens with the manager bootstrap token under 'servicetoken' answered {listing.get('status')}"
    )


# -- ttl ---------------------------------------------------------------------------------------


@pytest.mark.requirement("ST-BOOT-003")
def test_bootstrap_token_works_within_its_ttl_then_is_refused(target, ttl_spelling):
    """A bootstrap token with a short ttl is accepted right after start and refused once the ttl has passed.

    That it is refused on every other call too is the authorization matrix's bootstrap-expired row.
    """
    ttl_ms = fleet.duration_ms(ttl_spelling)
    limit = fleet.max_ttl_ms(target.profile)
    if ttl_ms is None or ttl_ms <= 0:
        pytest.skip(f"profile setting 'bootstrap.ttl_spellings': {ttl_spelling!r} is not a duration such as 3s")
    if ttl_ms > limit:
        pytest.skip(
            f"profile setting 'bootstrap.ttl_spellings': {ttl_spelling!r} is longer than {limit // 1000}s, "
            "more than this suite waits"
        )
    inst = _recorded(target, fleet.ttl_label(ttl_spelling), fleet.DONE)
    if inst is None:
        _no_bootstrap_to_check(target, fleet.ttl_label(ttl_spelling))
    _key_blocks(inst, target)
    forms = working_forms(target)
    for form_name, sample in inst.first.items():
        if sample.accepted or AuthForm[form_name] not in forms:
            continue  # (a form accepted nowhere says nothing about the ttl)
        elapsed_ms = (sample.at - inst.launched_at) * 1000
        if elapsed_ms >= ttl_ms:
            pre.inconclusive(
                f"the deployment answered {elapsed_ms:.0f} ms after it was started, when the ttl "
                f"{ttl_spelling!r} may already have run out; use longer 'bootstrap.ttl_spellings'"
            )
        raise AssertionError(
            f"the bootstrap token with ttl {ttl_spelling!r} was refused with {sample.status} in form "
            f"{AuthForm[form_name].value} only {elapsed_ms:.0f} ms after the deployment was started"
        )
    if inst.error is not None:
        raise AssertionError(f"the bootstrap token with ttl {ttl_spelling!r}: {inst.error}")
    for form in forms:
        after = inst.after.get(form.name)
        assert after is not None, f"no call was made once the ttl {ttl_spelling!r} had passed"
        assert after.status in target.expect.unauthenticated_status, (
            f"a bootstrap token whose ttl {ttl_spelling!r} has passed, presented as {form.value}: expected "
            f"refusal with {' or '.join(map(str, target.expect.unauthenticated_status))}, got {after.status}"
        )


# -- issue 19: the bootstrap token's lifecycle ----------------------------------------------------


def _long_ttl_recorded(target) -> fleet.Instance:
    inst = _recorded(target, fleet.LONG)
    if inst is None:
        _no_bootstrap_to_check(target, fleet.LONG)
    if _never_accepted(inst, target):
        pre.block("ST-BOOT-001", f"the bootstrap token with ttl {inst.ttl!r} was never accepted")
    found = inst.manage.get("bootstrap") or {}
    if not 200 <= found.get("list", 0) < 300:
        why = f"the manager bootstrap token with ttl {inst.ttl!r} could not list tokens ({found.get('list')})"
        pre.block("ST-BOOT-002", why)
    if found.get("id") is None:
        pytest.skip(
            f"the bootstrap token cannot be told apart in the list ({found.get('candidates', 0)} entries not made "
            f"by this suite, and not one of them alone has its roles {inst.roles} and an expiration of its start "
            "plus its ttl): not listed, or other tokens look just like it"
        )
    return inst


@pytest.mark.requirement("ST-BOOT-006")
def test_long_bootstrap_ttl_listed_as_start_plus_ttl(target):
    """A bootstrap token with ttl 7d is listed as expiring 7 days after it was created (server clock)."""
    inst = _long_ttl_recorded(target)
    expiration = inst.manage["bootstrap"].get("expiration")
    ttl_ms = fleet.duration_ms(inst.ttl or "")
    assert ttl_ms is not None
    if expiration is None:
        pytest.skip(f"the bootstrap token with ttl {inst.ttl!r} is listed without an expiration: nothing to compare")
    if inst.manage["bootstrap"].get("by") == fleet.BY_EXPIRY:
        # told apart from tokens with the same roles by this very expiration: nothing left to judge
        pytest.skip(
            f"inconclusive: the bootstrap token with ttl {inst.ttl!r} was told apart from other tokens with its "
            "roles by its expiration, so that expiration cannot be judged as well"
        )
    first = [s for s in inst.first.values() if s.accepted and s.server_ms is not None]
    if not first:
        pytest.skip("the deployment sent no usable Date header: its clock cannot be read")
    answered = min(first, key=lambda s: s.at)
    # the expiry is the service's: read its clock from the answer's serverTimestamp when it carries one (a
    # Date header may come from a proxy's clock), else from the Date header
    seen_ms = answered.stamped_ms if answered.stamped_ms is not None else answered.server_ms or 0
    # created between the start (reconfiguration) and the first accepted call, on the server's clock
    latest = seen_ms + 1000 + CLOCK_MARGIN_MS
    earliest = seen_ms - (answered.at - inst.launched_at) * 1000 - CLOCK_MARGIN_MS
    assert isinstance(expiration, int) and earliest + ttl_ms <= expiration <= latest + ttl_ms, (
        f"the bootstrap token with ttl {inst.ttl!r} is listed as expiring at {expiration!r}, "
        f"{(expiration - seen_ms) / 3_600_000 if isinstance(expiration, int) else '?'} h after "
        f"its first accepted call; expected {ttl_ms / 3_600_000:g} h after its creation "
        f"(between {int(earliest + ttl_ms)} and {latest + ttl_ms})"
    )


@pytest.mark.requirement("ST-BOOT-005")
@pytest.mark.precondition(pre.REVOKED)  # a delete revokes at all (issue 24: one defect, one verdict)
def test_deleted_bootstrap_token_is_refused(target):
    """Where the bootstrap token may be deleted, it is refused once deleted."""
    inst = _long_ttl_recorded(target)
    deleted = inst.manage.get("delete-bootstrap")
    assert deleted is not None, "the bootstrap token was found in the list, but no delete of it was recorded"
    if not 200 <= deleted["status"] < 300:
        pytest.skip(f"the target does not let the bootstrap token be deleted (the delete answered {deleted['status']})")
    after = deleted["after"]
    assert after["status"] in target.expect.unauthenticated_status, (
        f"the bootstrap token, deleted (with itself: {deleted['status']}), was then accepted ({after['status']}) in "
        f"form {AuthForm[deleted['form']].value}: the delete did not revoke it"
    )
