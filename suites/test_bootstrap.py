"""Bootstrap token: the service token an operator configures in authentication.yaml.

On a managed target the run's own admin credential *is* a bootstrap token with the manager
role (the suite writes it into the authentication.yaml it launches the target with). The
other configurations — a bootstrap token with only the unprivileged role, one under the seed
document's ``servicetoken`` key, one per short ttl spelling — are further instances the
controller launched at the start of the run (``sts_conformance/fleet.py``), so their ttls
have been running out while other checks ran. Each instance goes away at the end of the run
with its own working directory (the reference keeps its throw-away database there).

On an external target only the bootstrap token the profile names (``bootstrap.token``,
with ``bootstrap.roles``) can be checked; the rest is skipped, naming the setting.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from sts_conformance import fleet
from sts_conformance import preconditions as pre
from sts_conformance.checks import FORMS, expect_refused, expect_status, json_body, listed, working_forms
from sts_conformance.client import ApiClient, AuthForm
from sts_conformance.journal import Journal
from sts_conformance.plugin import STATE_KEY, is_active
from sts_conformance.profile import BootstrapSettings
from sts_conformance.tokens import TokenLedger

MANAGER = "manager-role"
UNPRIVILEGED = fleet.UNPRIVILEGED


def _ttl_spellings(config: pytest.Config) -> tuple[str, ...]:
    if is_active(config):
        return config.stash[STATE_KEY].profile.bootstrap.ttl_spellings
    return BootstrapSettings().ttl_spellings


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "ttl_spelling" in metafunc.fixturenames:
        spellings = _ttl_spellings(metafunc.config)
        metafunc.parametrize("ttl_spelling", spellings, ids=[f"ttl-{s.strip().replace(' ', '-')}" for s in spellings])


@dataclass
class Bootstrap:
    """A bootstrap token under test, and a client of the deployment it belongs to."""

    label: str
    roles: list[str]
    client: ApiClient
    token: str = field(repr=False)
    #: for a manager bootstrap token: a ledger that manages tokens with it
    ledger: TokenLedger | None = None


def _instance(target, label: str) -> tuple[fleet.Instance, ApiClient]:
    inst = target.instance(label)
    if inst.error is not None:
        pytest.fail(f"the instance with bootstrap {label} is not usable: {inst.error}", pytrace=False)
    return inst, target.instance_client(inst)


@pytest.fixture(scope="module")
def bootstraps(target, ledger, run_state) -> Iterator[dict[str, Bootstrap]]:
    """The bootstrap tokens whose roles can be checked, by label (``manager-role``, ``unprivileged-role``)."""
    profile = target.profile
    clients: list[ApiClient] = []
    found: dict[str, Bootstrap] = {}
    if target.managed:
        # the run's admin credential is the bootstrap token the suite configured, with the manager role
        found[MANAGER] = Bootstrap(MANAGER, list(profile.bootstrap.roles), target.client, target.admin_token, ledger)
        inst, client = _instance(target, UNPRIVILEGED)
        clients.append(client)
        found[UNPRIVILEGED] = Bootstrap(UNPRIVILEGED, inst.roles, client, inst.token)
    elif profile.bootstrap.token:
        settings = profile.bootstrap
        label = MANAGER if profile.manager_role in settings.roles else UNPRIVILEGED
        boot = Bootstrap(label, list(settings.roles), target.client, settings.token)
        if label == MANAGER:
            # its tokens are journalled like every other, so the run's final cleanup knows them too
            worker = f"{run_state.worker}-boot"
            boot.ledger = TokenLedger(
                target.client,
                settings.token,
                working_forms(target)[0],
                prefix=f"{ledger.prefix}-boot",
                run_dir=run_state.run_dir,
                journal=Journal(run_state.run_dir / f"journal-{worker}.jsonl", worker),
                baseline=run_state.prepared.baseline,
            )
        found[label] = boot
    else:
        pytest.skip(
            "checking the bootstrap token of an external target needs profile setting 'bootstrap.token' "
            "(and 'bootstrap.roles'); other bootstrap settings need 'launch'"
        )
    try:
        yield found
    finally:
        for client in clients:
            client.close()


def _with_roles(bootstraps: dict[str, Bootstrap], label: str, profile) -> Bootstrap:
    boot = bootstraps.get(label)
    if boot is None:
        has = "the manager role" if label == UNPRIVILEGED else "no manager role"
        pytest.skip(
            f"the external target's bootstrap token has {has} (profile setting 'bootstrap.roles' is "
            f"{list(profile.bootstrap.roles)}); bootstraps of other roles need profile setting 'launch'"
        )
    return boot


# -- authenticates, with exactly its roles ------------------------------------------------------


@pytest.mark.requirement("ST-BOOT-001")
@pytest.mark.precondition(pre.ANONYMOUS_REFUSED)
@pytest.mark.parametrize("form", FORMS)
def test_bootstrap_token_authenticates_once_started(target, bootstraps, form):
    """The bootstrap token configured in authentication.yaml is accepted once the deployment is up."""
    boot = bootstraps.get(MANAGER) or bootstraps[UNPRIVILEGED]
    resp = boot.client.probe(target.profile.probe_path, boot.token, form)
    assert resp.is_success, (
        f"the bootstrap token (roles {boot.roles}) was refused with {resp.status_code} in form {form.value}"
        + ("" if target.managed else "; if its ttl has run out, remove 'bootstrap.token' from the profile")
    )


@pytest.mark.requirement("ST-BOOT-002")
@pytest.mark.precondition(pre.CREATE, pre.LISTED)
def test_bootstrap_token_with_manager_role_manages_tokens(target, bootstraps, observe):
    """A bootstrap token given the manager role lists, creates and deletes tokens."""
    boot = _with_roles(bootstraps, MANAGER, target.profile)
    assert boot.ledger is not None
    resp = boot.client.list_tokens(boot.token, form=boot.ledger.admin_form)
    expect_status(resp, 200, f"GET /security/tokens with a bootstrap token of roles {boot.roles}")
    items = json_body(resp, "list response")
    if not isinstance(items, list):
        pre.block(pre.LIST, f"the list is a {type(items).__name__}, not a JSON array")
    if target.managed:
        # a fresh deployment: whatever was listed before the run created anything is the bootstrap token
        observe("bootstrap_in_list", "listed" if target.prepared.names_before else "not listed")
    tok = boot.ledger.create("boot-made", roles=[target.profile.unprivileged_role])
    resp = boot.ledger.delete(tok)
    assert resp.is_success, f"DELETE of token {tok.id} with the bootstrap token answered {resp.status_code}"
    assert listed(boot.ledger.list_items(), tok.id) is None, f"token {tok.id} is still listed after its delete"


@pytest.mark.requirement("ST-BOOT-002")
@pytest.mark.precondition(pre.ANONYMOUS_REFUSED)
def test_bootstrap_token_without_manager_role_passes_probe_but_cannot_manage(target, ledger, bootstraps):
    """A bootstrap token given only an unprivileged role passes the probe and is refused token management."""
    boot = _with_roles(bootstraps, UNPRIVILEGED, target.profile)
    forbidden = target.expect.forbidden_status
    form = working_forms(target)[0]
    probe = boot.client.probe(target.profile.probe_path, boot.token, form)
    assert probe.is_success, (
        f"the bootstrap token (roles {boot.roles}) was refused on the probe with {probe.status_code}"
    )
    expect_refused(
        boot.client.list_tokens(boot.token, form=form),
        forbidden,
        f"listing tokens with a bootstrap token of roles {boot.roles}",
    )
    body = {"name": ledger.name("boot-unprivileged"), "roles": [target.profile.manager_role]}
    if target.managed:
        # on its own instance: a wrongly created token goes away with the instance
        resp = boot.client.create_token(boot.token, body, form=form)
    else:
        # on the shared target: journalled, so the run's cleanup removes what a wrong accept made
        resp, _ = ledger.create_raw(body, token=boot.token, form=form)
    expect_refused(resp, forbidden, f"creating a manager token with a bootstrap token of roles {boot.roles}")


@pytest.mark.requirement("ST-BOOT-004")
def test_lower_case_servicetoken_key_configures_the_bootstrap_token(target):
    """authentication.yaml spelling the key 'servicetoken', as the seed document does, configures the token too."""
    inst, client = _instance(target, fleet.LOWER_CASE_KEY)
    form = working_forms(target)[0]
    with client:
        resp = client.probe(target.profile.probe_path, inst.token, form)
        assert resp.is_success, (
            f"a bootstrap token configured under 'servicetoken' was refused with {resp.status_code}: "
            "the lower-case key was not read"
        )
        expect_status(
            client.list_tokens(inst.token, form=form),
            200,
            "listing tokens with the manager bootstrap token under 'servicetoken'",
        )


# -- ttl ---------------------------------------------------------------------------------------


@pytest.mark.requirement("ST-BOOT-003")
def test_bootstrap_token_works_within_its_ttl_then_is_refused(target, ttl_spelling):
    """A bootstrap token with a short ttl is accepted right after start and refused once the ttl has passed.

    That it is refused on every other call too is the authorization matrix's bootstrap-expired row.
    """
    ttl_ms = fleet.duration_ms(ttl_spelling)
    if ttl_ms is None or ttl_ms <= 0:
        pytest.skip(f"profile setting 'bootstrap.ttl_spellings': {ttl_spelling!r} is not a duration such as 3s")
    if ttl_ms > fleet.MAX_TTL_MS:
        pytest.skip(
            f"profile setting 'bootstrap.ttl_spellings': {ttl_spelling!r} is longer than "
            f"{fleet.MAX_TTL_MS // 1000}s, more than this suite waits"
        )
    inst, client = _instance(target, fleet.ttl_label(ttl_spelling))
    forms = working_forms(target)
    with client:
        for form_name, sample in inst.first.items():
            if sample.accepted or AuthForm[form_name] not in forms:
                continue  # (a form accepted nowhere says nothing about the ttl)
            elapsed_ms = (sample.at - inst.launched_at) * 1000
            if elapsed_ms >= ttl_ms:
                pytest.skip(
                    f"inconclusive: the instance answered {elapsed_ms:.0f} ms after its launch, when the ttl "
                    f"{ttl_spelling!r} may already have run out; use longer 'bootstrap.ttl_spellings'"
                )
            raise AssertionError(
                f"the bootstrap token with ttl {ttl_spelling!r} was refused with {sample.status} in form "
                f"{AuthForm[form_name].value} only {elapsed_ms:.0f} ms after the instance was launched"
            )
        fleet.wait_past_ttl(client, inst, ttl_ms, target.profile.probe_path)
        for form in forms:
            resp = client.probe(target.profile.probe_path, inst.token, form)
            expect_refused(
                resp,
                target.expect.unauthenticated_status,
                f"a bootstrap token whose ttl {ttl_spelling!r} has passed, presented as {form.value}",
            )
