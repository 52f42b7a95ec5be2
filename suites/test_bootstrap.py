"""Bootstrap token: the service token an operator configures in authentication.yaml.

On a managed target the module launches further instances of the target, each with its
own authentication.yaml (the Helm-values shape) and a fresh bootstrap secret: one with the
manager role, one with only the unprivileged role, one spelling the key ``servicetoken``,
and one per short ttl spelling. They start in parallel (the ttl ones first), and every ttl
runs out in the same window, so the module waits about one ttl however many spellings there are.
Whatever a check creates on an instance is deleted before the instance stops; an instance
then goes away with its own working directory (the reference keeps its throw-away database
there).

On an external target only the bootstrap token the profile names (``bootstrap.token``,
with ``bootstrap.roles``) can be checked; the rest is skipped, naming the setting.
"""

from __future__ import annotations

import contextlib
import re
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest

from sts_conformance.checks import expect_refused, expect_status, json_body, listed, validate
from sts_conformance.client import ApiClient, AuthForm, server_time_ms
from sts_conformance.plugin import STATE_KEY, is_active
from sts_conformance.profile import BootstrapSettings
from sts_conformance.tokens import TokenLedger

MANAGER = "manager-role"
UNPRIVILEGED = "unprivileged-role"
LOWER_CASE_KEY = "lower-case-key"
#: longest ttl the module will wait out: waits stay a few seconds
MAX_TTL_MS = 10_000
#: slack after the ttl, measured from the first accepted call, before "after" is judged
AFTER_SLACK_MS = 250

FORMS = [
    pytest.param(AuthForm.AUTHORIZATION, id="authorization-apikey"),
    pytest.param(AuthForm.X_API_KEY, id="x-api-key"),
]

_UNIT_MS = {
    **dict.fromkeys(("ns", "nano", "nanos", "nanosecond", "nanoseconds"), 1e-6),
    **dict.fromkeys(("us", "micro", "micros", "microsecond", "microseconds"), 1e-3),
    **dict.fromkeys(("", "ms", "milli", "millis", "millisecond", "milliseconds"), 1),
    **dict.fromkeys(("s", "second", "seconds"), 1_000),
    **dict.fromkeys(("m", "minute", "minutes"), 60_000),
    **dict.fromkeys(("h", "hour", "hours"), 3_600_000),
    **dict.fromkeys(("d", "day", "days"), 86_400_000),
}
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*")


def duration_ms(text: str) -> int | None:
    """A HOCON duration (``3s``, ``3000ms``, ``3 seconds``; a bare number is ms) in ms, or None."""
    match = _DURATION.fullmatch(text)
    if match is None or match[2] not in _UNIT_MS:
        return None
    return int(float(match[1]) * _UNIT_MS[match[2]])


def _ttl_spellings(config: pytest.Config) -> tuple[str, ...]:
    if is_active(config):
        return config.stash[STATE_KEY].profile.bootstrap.ttl_spellings
    return BootstrapSettings().ttl_spellings


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "ttl_spelling" in metafunc.fixturenames:
        spellings = _ttl_spellings(metafunc.config)
        metafunc.parametrize("ttl_spelling", spellings, ids=[f"ttl-{s.strip().replace(' ', '-')}" for s in spellings])


@dataclass
class Sample:
    """A call made with the bootstrap token: status, server clock, and when (monotonic) it returned."""

    status: int
    server_ms: int | None
    received: float

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class Bootstrap:
    """A bootstrap token under test: on a launched instance, or the one an external profile names."""

    label: str
    roles: list[str]
    ttl: str | None = None
    key: str | None = None
    client: ApiClient | None = None
    token: str = field(default="", repr=False)
    error: str | None = None
    #: monotonic time just before the instance's launch command started
    launched_at: float = 0.0
    #: one call per header form, made as soon as the instance answered
    first: dict[AuthForm, Sample] = field(default_factory=dict)
    ledger: TokenLedger | None = None

    def usable(self) -> tuple[ApiClient, str]:
        if self.error is not None or self.client is None:
            pytest.fail(f"the instance with bootstrap {self.label} is not usable: {self.error}", pytrace=False)
        return self.client, self.token


def _sample(target, boot: Bootstrap, form: AuthForm) -> Sample:
    assert boot.client is not None
    resp = boot.client.probe(target.profile.probe_path, boot.token, form)
    return Sample(resp.status_code, server_time_ms(resp), time.monotonic())


def _launch(target, boot: Bootstrap) -> Any:
    """Start one instance and call it at once in both forms; returns its context manager."""
    profile = target.profile
    manager = target.launch(roles=boot.roles, ttl=boot.ttl, key=boot.key)
    boot.launched_at = time.monotonic()
    try:
        proc = manager.__enter__()
    except (Exception, pytest.fail.Exception, pytest.skip.Exception) as exc:
        boot.error = f"it did not start: {exc}"
        return None
    boot.token = proc.token
    boot.client = ApiClient.for_profile(profile, proc.url)
    try:
        for form in (AuthForm.X_API_KEY, AuthForm.AUTHORIZATION):
            boot.first[form] = _sample(target, boot, form)
    except Exception as exc:  # the instance still has to be stopped: hand it back, marked unusable
        boot.error = f"it started, but the first call with its bootstrap token failed: {type(exc).__name__}: {exc}"
    return manager


def _cleanup(boot: Bootstrap) -> None:
    if boot.ledger is not None:
        problems = boot.ledger.cleanup()
        if problems:
            warnings.warn(
                f"tokens created on the instance with bootstrap {boot.label} could not be deleted: "
                + "; ".join(problems),
                stacklevel=1,
            )


@pytest.fixture(scope="module")
def fleet(target, ledger) -> Iterator[dict[str, Bootstrap]]:
    """Further instances of a managed target, launched in parallel, keyed by label."""
    target.require_managed("checking bootstrap tokens of other roles, keys and ttls")
    profile = target.profile
    boots = [
        Bootstrap(MANAGER, [profile.manager_role]),
        Bootstrap(UNPRIVILEGED, [profile.unprivileged_role]),
        Bootstrap(LOWER_CASE_KEY, [profile.manager_role], key="servicetoken"),
    ]
    for spelling in profile.bootstrap.ttl_spellings:
        ttl_ms = duration_ms(spelling)
        if ttl_ms is not None and 0 < ttl_ms <= MAX_TTL_MS:
            boots.append(Bootstrap(f"ttl {spelling}", [profile.unprivileged_role], ttl=spelling))
    # The ttl instances start first, so that no other start competes with their first call;
    # the others start while those ttls run.
    waves = [[b for b in boots if b.ttl is not None], [b for b in boots if b.ttl is None]]
    with contextlib.ExitStack() as stack:
        with ThreadPoolExecutor(max_workers=len(boots)) as pool:
            for wave in waves:
                for boot, manager in zip(wave, pool.map(lambda b: _launch(target, b), wave), strict=True):
                    if manager is None:
                        continue
                    stack.push(manager)  # stops the instance, after everything pushed later
                    assert boot.client is not None
                    stack.callback(boot.client.close)
                    if profile.manager_role in boot.roles:
                        boot.ledger = TokenLedger(
                            boot.client, boot.token, AuthForm.X_API_KEY, prefix=f"{ledger.prefix}-boot"
                        )
                        stack.callback(_cleanup, boot)
        yield {b.label: b for b in boots}


@pytest.fixture(scope="module")
def bootstraps(request, target, ledger) -> Iterator[dict[str, Bootstrap]]:
    """The bootstrap tokens whose roles can be checked: launched ones, or the external profile's own."""
    if target.managed:
        fleet = request.getfixturevalue("fleet")
        yield {label: fleet[label] for label in (MANAGER, UNPRIVILEGED)}
        return
    settings = target.profile.bootstrap
    if not settings.token:
        pytest.skip(
            "checking the bootstrap token of an external target needs profile setting 'bootstrap.token' "
            "(and 'bootstrap.roles'); other bootstrap settings need 'launch'"
        )
    boot = Bootstrap(
        MANAGER if target.profile.manager_role in settings.roles else UNPRIVILEGED,
        list(settings.roles),
        client=target.client,
        token=settings.token,
    )
    if boot.label == MANAGER:
        boot.ledger = TokenLedger(target.client, settings.token, AuthForm.X_API_KEY, prefix=f"{ledger.prefix}-boot")
    try:
        yield {boot.label: boot}
    finally:
        _cleanup(boot)


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
@pytest.mark.parametrize("form", FORMS)
def test_bootstrap_token_authenticates_once_started(target, bootstraps, form):
    """The bootstrap token configured in authentication.yaml is accepted once the deployment is up."""
    boot = bootstraps.get(MANAGER) or bootstraps[UNPRIVILEGED]
    client, token = boot.usable()
    resp = client.probe(target.profile.probe_path, token, form)
    assert resp.is_success, (
        f"the bootstrap token (roles {boot.roles}) was refused with {resp.status_code} in form {form.value}"
        + ("" if target.managed else "; if its ttl has run out, remove 'bootstrap.token' from the profile")
    )


@pytest.mark.requirement("ST-BOOT-002")
def test_bootstrap_token_with_manager_role_manages_tokens(target, bootstraps, observe):
    """A bootstrap token given the manager role lists, creates and deletes tokens."""
    boot = _with_roles(bootstraps, MANAGER, target.profile)
    client, token = boot.usable()
    assert boot.ledger is not None
    resp = client.list_tokens(token)
    expect_status(resp, 200, f"GET /security/tokens with a bootstrap token of roles {boot.roles}")
    items = json_body(resp, "list response")
    validate(items, "TokenList")
    if target.managed:
        # a fresh instance: whatever is listed before anything is created is the bootstrap token
        observe("bootstrap_in_list", "listed" if items else "not listed")
    tok = boot.ledger.create("boot-made", roles=[target.profile.unprivileged_role])
    assert listed(boot.ledger.list_items(), tok.id) is not None, (
        f"token {tok.id} made by the bootstrap token is not listed"
    )
    expect_status(boot.ledger.delete(tok), 204, f"DELETE of token {tok.id} with the bootstrap token")
    assert listed(boot.ledger.list_items(), tok.id) is None, f"token {tok.id} is still listed after its delete"


@pytest.mark.requirement("ST-BOOT-002")
def test_bootstrap_token_without_manager_role_passes_probe_but_cannot_manage(target, ledger, bootstraps):
    """A bootstrap token given only an unprivileged role passes the probe and is refused token management."""
    boot = _with_roles(bootstraps, UNPRIVILEGED, target.profile)
    client, token = boot.usable()
    forbidden = target.expect.forbidden_status
    probe = client.probe(target.profile.probe_path, token, AuthForm.X_API_KEY)
    assert probe.is_success, (
        f"the bootstrap token (roles {boot.roles}) was refused on the probe with {probe.status_code}"
    )
    expect_refused(client.list_tokens(token), forbidden, f"listing tokens with a bootstrap token of roles {boot.roles}")
    name = ledger.name("boot-unprivileged")
    resp = client.create_token(token, {"name": name, "roles": [target.profile.manager_role]})
    stray = resp.is_success
    if not target.managed:
        # the external target is the shared one: remove what a wrongly accepted create made
        entries = [i for i in ledger.list_items() if i.get("name") == name and isinstance(i.get("id"), int)]
        for entry in entries:
            target.client.delete_token(target.admin_token, entry["id"], form=target.admin_form)
        stray = stray or bool(entries)
    # (on a launched instance a wrongly created token goes away with the instance)
    expect_refused(resp, forbidden, f"creating a manager token with a bootstrap token of roles {boot.roles}")
    assert not stray, "the refused create still made a token"


@pytest.mark.requirement("ST-BOOT-004")
def test_lower_case_servicetoken_key_configures_the_bootstrap_token(target, fleet):
    """authentication.yaml spelling the key 'servicetoken', as the seed document does, configures the token too."""
    boot = fleet[LOWER_CASE_KEY]
    client, token = boot.usable()
    resp = client.probe(target.profile.probe_path, token, AuthForm.X_API_KEY)
    assert resp.is_success, (
        f"a bootstrap token configured under 'servicetoken' was refused with {resp.status_code}: "
        "the lower-case key was not read"
    )
    expect_status(
        client.list_tokens(token), 200, "listing tokens with the manager bootstrap token under 'servicetoken'"
    )


# -- ttl ---------------------------------------------------------------------------------------


def _wait_past_ttl(target, boot: Bootstrap, ttl_ms: int) -> None:
    """Wait until the bootstrap token's ttl has surely run out on the instance.

    The token exists by the time it was first accepted, so it was created at the latest
    when that call returned (``received``) and at the latest within one Date-header second
    of that call's server time. Both bounds must be passed: the elapsed time since that call
    needs no clock to agree, and the instance's own clock must show the ttl gone as well.
    """
    assert boot.client is not None
    accepted = [s for s in boot.first.values() if s.accepted]
    received = min(s.received for s in accepted)
    time.sleep(max(0.0, received + (ttl_ms + AFTER_SLACK_MS) / 1000 - time.monotonic()))
    server_times = [s.server_ms for s in accepted if s.server_ms is not None]
    if not server_times:
        pytest.fail("the instance sent no usable Date header; its clock cannot be read", pytrace=False)
    when = min(server_times) + 1000 + ttl_ms
    deadline = time.monotonic() + 5
    while True:
        now = server_time_ms(boot.client.probe(target.profile.probe_path))
        if now is not None and now >= when:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"the instance's clock did not reach {when} within 5 s of the ttl (reads {now})", pytrace=False)
        time.sleep(0.1)


@pytest.mark.requirement("ST-BOOT-003")
def test_bootstrap_token_works_within_its_ttl_then_is_refused(target, fleet, ttl_spelling):
    """A bootstrap token with a short ttl is accepted right after start and refused once the ttl has passed."""
    ttl_ms = duration_ms(ttl_spelling)
    if ttl_ms is None or ttl_ms <= 0:
        pytest.skip(f"profile setting 'bootstrap.ttl_spellings': {ttl_spelling!r} is not a duration such as 3s")
    if ttl_ms > MAX_TTL_MS:
        pytest.skip(
            f"profile setting 'bootstrap.ttl_spellings': {ttl_spelling!r} is longer than {MAX_TTL_MS // 1000}s, "
            "more than this suite waits"
        )
    boot = fleet[f"ttl {ttl_spelling}"]
    client, token = boot.usable()
    for form, sample in boot.first.items():
        if sample.accepted:
            continue
        elapsed_ms = (sample.received - boot.launched_at) * 1000
        if elapsed_ms >= ttl_ms:
            pytest.skip(
                f"inconclusive: the instance answered {elapsed_ms:.0f} ms after its launch, when the ttl "
                f"{ttl_spelling!r} may already have run out; use longer 'bootstrap.ttl_spellings'"
            )
        raise AssertionError(
            f"the bootstrap token with ttl {ttl_spelling!r} was refused with {sample.status} in form "
            f"{form.value} only {elapsed_ms:.0f} ms after the instance was launched"
        )
    _wait_past_ttl(target, boot, ttl_ms)
    for form in (AuthForm.X_API_KEY, AuthForm.AUTHORIZATION):
        resp = client.probe(target.profile.probe_path, token, form)
        expect_refused(
            resp,
            target.expect.unauthenticated_status,
            f"a bootstrap token whose ttl {ttl_spelling!r} has passed, presented as {form.value}",
        )
