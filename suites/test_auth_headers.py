"""Presenting a token: both documented header forms, and every way a credential must be refused."""

from __future__ import annotations

import secrets
import string
from collections.abc import Set

import pytest

from sts_conformance.checks import expect_refused, listed
from sts_conformance.client import AuthForm
from sts_conformance.redact import REDACTOR

FORMS = [
    pytest.param(AuthForm.AUTHORIZATION, id="Authorization-ApiKey"),
    pytest.param(AuthForm.X_API_KEY, id="X-API-Key"),
]

#: Ways a credential can be wrong; each must be refused (ST-AUTH-006).
BAD_CREDENTIALS = ["missing", "empty", "unknown", "truncated", "extended", "case-altered"]


@pytest.fixture(scope="module")
def issued(target, ledger):
    """Two live tokens without the manager role: the one presented, and one to learn the secrets' shape."""
    roles = [target.profile.unprivileged_role]
    return ledger.create("auth", roles=roles), ledger.create("auth-shape", roles=roles)


@pytest.fixture(scope="module")
def manager(target, ledger):
    return ledger.create("auth-manager", roles=[target.profile.manager_role])


def _common_prefix_len(a: str, b: str) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def _same_shape_unknown(secret: str, keep: int, taken: Set[str]) -> str:
    """A never-issued token shaped like ``secret``: same first ``keep`` characters, and each
    later letter or digit replaced by a random one of the same kind."""
    pools = (string.digits, string.ascii_lowercase, string.ascii_uppercase)
    for _ in range(20):
        chars = list(secret[:keep])
        for ch in secret[keep:]:
            pool = next((p for p in pools if ch in p), None)
            chars.append(secrets.choice(pool) if pool else ch)
        candidate = "".join(chars)
        if candidate not in taken:
            return candidate
    # too few letters and digits to vary: any long random string is unknown too
    return secrets.token_hex(max(16, len(secret)))


def _bad_headers(form: AuthForm, variant: str, secret: str, shape_peer: str) -> dict[str, str]:
    """The headers presenting ``variant`` of ``secret`` in ``form`` (``{}`` sends none)."""
    if variant == "missing":
        # X-API-Key: no header at all; Authorization: the scheme word with no token after it
        return {} if form is AuthForm.X_API_KEY else {"Authorization": "ApiKey"}
    if variant == "empty":
        return {"X-API-Key" if form is AuthForm.X_API_KEY else "Authorization": ""}
    if variant == "unknown":
        presented = _same_shape_unknown(secret, _common_prefix_len(secret, shape_peer), REDACTOR.secrets())
    elif variant == "truncated":
        presented = secret[:-1]
    elif variant == "extended":
        presented = secret + ("x" if not secret.endswith("x") else "y")
    elif variant == "case-altered":
        presented = secret.swapcase()
        if presented == secret:
            pytest.skip("the target's secrets contain no letters, so a secret has no case-altered form")
    else:
        raise ValueError(variant)
    # every variant derived from a real secret gives most of it away: mask it like one
    REDACTOR.register(presented)
    return form.headers(presented)


def _accepted_in(target, secret: str, form: AuthForm, what: str) -> None:
    """Positive control: without it, a refusal of a bad credential in this form proves nothing."""
    resp = target.probe(secret, form)
    assert resp.is_success, (
        f"positive control: {what} in the {form.value} form was refused ({resp.status_code}) on "
        f"{target.profile.probe_path}, so a refusal in this form proves nothing"
    )


def _delete(ledger, tok) -> None:
    """Delete with the admin credential; the status itself is ST-LIFE-004's to judge."""
    resp = ledger.delete(tok)
    assert resp.is_success, f"deleting token {tok.id} with the admin credential answered {resp.status_code}"


def _expect_4xx(resp, what: str) -> None:
    assert 400 <= resp.status_code < 500, (
        f"{what}: expected a refusal (4xx), but the target "
        f"{'accepted it' if resp.is_success else 'answered'} with {resp.status_code}"
    )


@pytest.mark.requirement("ST-AUTH-001")
def test_probe_refuses_anonymous_call(target):
    """The probe refuses a call that presents no credential at all: the ground every auth check stands on."""
    resp = target.probe()
    _expect_4xx(resp, f"anonymous GET {target.profile.probe_path}")


@pytest.mark.parametrize(
    "form",
    [
        pytest.param(AuthForm.AUTHORIZATION, id="Authorization-ApiKey", marks=pytest.mark.requirement("ST-AUTH-002")),
        pytest.param(AuthForm.X_API_KEY, id="X-API-Key", marks=pytest.mark.requirement("ST-AUTH-003")),
    ],
)
def test_valid_token_accepted_on_probe(target, probe_refuses_anonymous, issued, form):
    """A valid service token is accepted on the probe in each documented header form."""
    tok = issued[0]
    resp = target.probe(tok.secret, form)
    assert resp.is_success, (
        f"a valid token in the {form.value} form: expected success on {target.profile.probe_path}, "
        f"got {resp.status_code}"
    )


@pytest.mark.requirement("ST-AUTH-004")
@pytest.mark.parametrize("operation", ["create", "list", "delete"])
@pytest.mark.parametrize("form", FORMS)
def test_manager_token_manages_tokens_in_each_form(target, manage_as, manager, form, operation):
    """A manager token creates, lists and deletes tokens in each documented header form."""
    manage_as.expect_manages(
        manager.secret, form, operation, f"{operation} with a manager token in the {form.value} form"
    )


@pytest.mark.requirement("ST-AUTH-005")
@pytest.mark.parametrize(
    ("form", "name_case"),
    [
        pytest.param(AuthForm.AUTHORIZATION, "lower", id="authorization"),
        pytest.param(AuthForm.AUTHORIZATION, "upper", id="AUTHORIZATION"),
        pytest.param(AuthForm.X_API_KEY, "lower", id="x-api-key"),
        pytest.param(AuthForm.X_API_KEY, "upper", id="X-API-KEY"),
    ],
)
def test_header_name_case_ignored(target, probe_refuses_anonymous, issued, form, name_case):
    """A header name in lower or upper case is the same header (RFC 9110 §5.1)."""
    headers = form.headers(issued[0].secret, name_case=name_case)
    resp = target.client.probe(target.profile.probe_path, None, headers=headers)
    assert resp.is_success, (
        f"a valid token under the header name {next(iter(headers))!r}: expected success, got {resp.status_code}"
    )


@pytest.mark.requirement("ST-AUTH-006")
@pytest.mark.parametrize("variant", BAD_CREDENTIALS)
@pytest.mark.parametrize("form", FORMS)
def test_bad_token_refused_on_probe(target, issued, form, variant):
    """A missing, empty, unknown, truncated, extended or case-altered token is refused in each form."""
    tok, peer = issued
    headers = _bad_headers(form, variant, tok.secret, peer.secret)
    _accepted_in(target, tok.secret, form, "the genuine token")
    resp = target.client.probe(target.profile.probe_path, None, headers=headers)
    _expect_4xx(resp, f"a {variant} token in the {form.value} form")


@pytest.mark.requirement("ST-AUTH-006")
@pytest.mark.parametrize("variant", ["missing", "unknown"])
@pytest.mark.parametrize("operation", ["create", "list", "delete"])
def test_bad_token_refused_on_token_management(target, ledger, manage_as, issued, manager, operation, variant):
    """Token management refuses a missing or unknown token, and the refused call changes nothing."""
    form = target.admin_form
    headers = _bad_headers(form, variant, manager.secret, issued[0].secret)
    what = f"{operation} with a {variant} token"
    control = manage_as.list_tokens(manager.secret, form)
    assert control.status_code == 200, (
        f"positive control: listing with a manager token in the {form.value} form answered {control.status_code}, "
        "so a refused token management call in this form proves nothing"
    )
    if operation == "create":
        resp, name = manage_as.create(None, headers=headers, roles=[target.profile.manager_role], label="refused")
        _expect_4xx(resp, what)
        assert not manage_as.entries_named(name), f"{what} was refused but a token named {name!r} was created"
    elif operation == "list":
        _expect_4xx(manage_as.list_tokens(None, headers=headers), what)
    else:
        victim = ledger.create("survivor", roles=[target.profile.unprivileged_role])
        _expect_4xx(manage_as.delete(None, form, victim, headers=headers), what)
        assert listed(ledger.list_items(), victim.id) is not None, f"{what} was refused but removed {victim.id}"


@pytest.mark.requirement("ST-AUTH-007")
@pytest.mark.parametrize("form", FORMS)
def test_deleted_token_refused(target, ledger, form):
    """A token that worked is refused in each form once it is deleted."""
    tok = ledger.create("auth-deleted", roles=[target.profile.unprivileged_role])
    _accepted_in(target, tok.secret, form, "the token before its deletion")
    _delete(ledger, tok)
    resp = target.probe(tok.secret, form)
    _expect_4xx(resp, f"a deleted token in the {form.value} form")


@pytest.mark.requirement("ST-AUTH-008")
@pytest.mark.parametrize("variant", [*BAD_CREDENTIALS, "deleted"])
@pytest.mark.parametrize("form", FORMS)
def test_refusal_status_as_profile_pins(target, ledger, issued, observe, form, variant):
    """A refused credential gets the status the profile pins (401 or 403 unless pinned)."""
    if variant == "deleted":
        gone = ledger.create("status-deleted", roles=[target.profile.unprivileged_role])
        _delete(ledger, gone)
        headers = form.headers(gone.secret)
    else:
        headers = _bad_headers(form, variant, issued[0].secret, issued[1].secret)
    resp = target.client.probe(target.profile.probe_path, None, headers=headers)
    observe("unauthenticated_status", resp.status_code)
    expect_refused(resp, target.expect.unauthenticated_status, f"a {variant} token in the {form.value} form")


@pytest.mark.requirement("ST-AUTH-009")
@pytest.mark.parametrize("scheme", ["apikey", "APIKEY", "Apikey", "apiKey"])
def test_scheme_word_case_as_profile_pins(target, probe_refuses_anonymous, issued, observe, scheme):
    """The scheme word ApiKey in another case is accepted or refused as the profile pins."""
    tok = issued[0]
    resp = target.client.probe(
        target.profile.probe_path, None, headers=AuthForm.AUTHORIZATION.headers(tok.secret, scheme=scheme)
    )
    observe("scheme_case", {"scheme": scheme, "status": resp.status_code})
    pinned = target.expect.scheme_case
    if pinned == "either":
        pytest.skip("the case of the scheme word is left open: profile setting 'expect.scheme_case' is not pinned")
    if pinned == "insensitive":
        assert resp.is_success, (
            f"expect.scheme_case is insensitive, but 'Authorization: {scheme} <token>' got {resp.status_code}"
        )
    else:
        _accepted_in(target, tok.secret, AuthForm.AUTHORIZATION, "the token with the scheme word 'ApiKey'")
        _expect_4xx(resp, f"expect.scheme_case is sensitive; 'Authorization: {scheme} <token>'")


@pytest.mark.requirement("ST-AUTH-010")
@pytest.mark.parametrize(
    "header",
    [
        pytest.param("X-API-Token", id="X-API-Token"),
        pytest.param("Authorization-ApiToken", id="Authorization-ApiToken"),
    ],
)
def test_service_token_refused_as_personal_api_token(target, issued, header):
    """A service token presented through the personal API-token headers is refused."""
    tok = issued[0]
    _accepted_in(target, tok.secret, target.admin_form, "the token")
    headers = {"X-API-Token": tok.secret} if header == "X-API-Token" else {"Authorization": f"ApiToken {tok.secret}"}
    resp = target.client.probe(target.profile.probe_path, None, headers=headers)
    _expect_4xx(resp, f"a service token sent as {header}")


@pytest.mark.requirement("ST-AUTH-011")
def test_server_info_refuses_anonymous_call(target):
    """GET /api/server/info, which the sts CLI calls first, answers a valid token and refuses a call without one."""
    works = target.client.server_info(target.admin_token, form=target.admin_form)
    assert works.is_success, (
        f"positive control: GET /api/server/info with the admin token answered {works.status_code}, "
        "so its refusal of an anonymous call proves nothing"
    )
    resp = target.client.server_info(None)
    expect_refused(resp, target.expect.unauthenticated_status, "anonymous GET /api/server/info")
