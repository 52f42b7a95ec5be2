"""Presenting a token: header-name case, the scheme word, the personal-token headers, and
near-miss credentials (empty, truncated, extended, case-altered) that must be refused.

Every check here presents credentials to the probe the run chose at its start: the profile's
``probe_path`` when it refuses an anonymous request, else ``server/info``
(``sts_conformance/target/probe.py``).

Which credential states are accepted or refused on which call is the authorization matrix's
question (``test_authorization_matrix.py``); this module looks at how a credential is
written. The tokens presented are the ones prepared at the start of the run.
"""

from __future__ import annotations

import pytest

from sts_conformance.checking import foundations
from sts_conformance.checking.checks import FORM_REQUIREMENT, FORMS, expect_refused
from sts_conformance.core import preconditions as pre
from sts_conformance.core.redact import REDACTOR
from sts_conformance.target.client import AuthForm
from sts_conformance.tokens.prepare import VALID_UNPRIVILEGED

# the checks are independent of each other: they run at once with the
# other modules' (checking/ahead.py; hence this module's fixtures are of session scope)
pytestmark = pytest.mark.together

#: Near misses of a real secret; each must be refused (ST-AUTH-006). The matrix sends unknown,
#: malformed and missing credentials.
NEAR_MISSES = ["empty", "truncated", "extended", "case-altered"]


@pytest.fixture(scope="session")
def genuine(target) -> str:
    """The secret of a live token without the manager role (prepared for the run; never deleted here)."""
    return target.credential(VALID_UNPRIVILEGED).secret


def _near_miss(form: AuthForm, variant: str, secret: str) -> dict[str, str]:
    """The headers presenting ``variant`` of ``secret`` in ``form``."""
    if variant == "empty":
        return {"X-API-Key" if form is AuthForm.X_API_KEY else "Authorization": ""}
    if variant == "truncated":
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


def _cased(form: AuthForm, case: str, id: str):
    return pytest.param(form, case, id=id, marks=pytest.mark.precondition(FORM_REQUIREMENT[form]))


def _expect_4xx(resp, what: str) -> None:
    assert 400 <= resp.status_code < 500, (
        f"{what}: expected a refusal (4xx), but the target "
        f"{'accepted it' if resp.is_success else 'answered'} with {resp.status_code}"
    )


@pytest.mark.requirement("ST-AUTH-001")
@pytest.mark.precondition(pre.ANONYMOUS_REFUSED)
def test_anonymous_request_refused_on_probe(target, observe):
    """The call the run presents credentials to refuses a request that presents none."""
    observe("probe", {"path": target.probe_path, "anonymous": target.prepared.anonymous})
    _expect_4xx(target.probe(), f"GET {target.probe_path} without a credential")


@pytest.mark.requirement("ST-AUTH-005")
@pytest.mark.precondition(pre.ANONYMOUS_REFUSED)
@pytest.mark.parametrize(
    ("form", "name_case"),
    [
        _cased(AuthForm.AUTHORIZATION, "lower", "authorization"),
        _cased(AuthForm.AUTHORIZATION, "upper", "AUTHORIZATION"),
        _cased(AuthForm.X_API_KEY, "lower", "x-api-key"),
        _cased(AuthForm.X_API_KEY, "upper", "X-API-KEY"),
    ],
)
def test_header_name_case_ignored(target, genuine, form, name_case):
    """A header name in lower or upper case is the same header (RFC 9110 §5.1)."""
    headers = form.headers(genuine, name_case=name_case)
    resp = target.client.probe(target.probe_path, None, headers=headers)
    assert resp.is_success, (
        f"a valid token under the header name {next(iter(headers))!r}: expected success, got {resp.status_code}"
    )


@pytest.mark.requirement("ST-AUTH-006")
@pytest.mark.parametrize("variant", NEAR_MISSES)
@pytest.mark.parametrize("form", FORMS)
def test_near_miss_token_refused_on_probe(target, genuine, form, variant):
    """An empty, truncated, extended or case-altered token is refused in each form."""
    resp = target.client.probe(target.probe_path, None, headers=_near_miss(form, variant, genuine))
    _expect_4xx(resp, f"a {variant} token in the {form.value} form")


@pytest.mark.requirement("ST-AUTH-008")
@pytest.mark.parametrize("variant", NEAR_MISSES)
@pytest.mark.parametrize("form", FORMS)
def test_refusal_status_as_profile_pins(target, genuine, observe, form, variant):
    """A refused credential gets the status the profile pins (401 or 403 unless pinned)."""
    resp = target.client.probe(target.probe_path, None, headers=_near_miss(form, variant, genuine))
    if variant == "empty":  # no credential in the header at all: a bad request (400) is a refusal too
        observe("malformed_status", resp.status_code)
        allowed = target.expect.malformed_statuses()
    else:
        observe("unauthenticated_status", resp.status_code)
        allowed = target.expect.unauthenticated_status
    expect_refused(resp, allowed, f"a {variant} token in the {form.value} form")


@pytest.mark.requirement("ST-AUTH-009")
@pytest.mark.precondition(pre.ANONYMOUS_REFUSED, pre.AUTHORIZATION_FORM)
@pytest.mark.parametrize("scheme", ["apikey", "APIKEY", "Apikey", "apiKey"])
def test_scheme_word_case_as_profile_pins(target, genuine, observe, scheme):
    """The scheme word ApiKey in another case is accepted or refused as the profile pins."""
    resp = target.client.probe(target.probe_path, None, headers=AuthForm.AUTHORIZATION.headers(genuine, scheme=scheme))
    observe("scheme_case", {"scheme": scheme, "status": resp.status_code})
    pinned = target.expect.scheme_case
    if pinned == "either":
        pytest.skip("the case of the scheme word is left open: profile setting 'expect.scheme_case' is not pinned")
    if pinned == "insensitive":
        assert resp.is_success, (
            f"expect.scheme_case is insensitive, but 'Authorization: {scheme} <token>' got {resp.status_code}"
        )
    else:
        _expect_4xx(resp, f"expect.scheme_case is sensitive; 'Authorization: {scheme} <token>'")


@pytest.mark.requirement("ST-AUTH-009")
@pytest.mark.precondition(pre.ANONYMOUS_REFUSED, pre.AUTHORIZATION_FORM)
def test_several_spaces_after_the_scheme_word(target, genuine):
    """'Authorization: ApiKey  <token>' (two spaces) presents the token: RFC 9110 §11.4 writes
    credentials as auth-scheme 1*SP token68, so a parser that takes everything after the first
    space as the token refuses a well-formed header."""
    resp = target.client.probe(target.probe_path, None, headers={"Authorization": f"ApiKey  {genuine}"})
    assert resp.is_success, (
        f"'Authorization: ApiKey  <token>' (two spaces after the scheme word, which RFC 9110 §11.4's 1*SP "
        f"allows) got {resp.status_code}, while the same token after one space is accepted"
    )


#: The documented GET calls a HEAD is sent to without any credential, and the requirement that says
#: the GET refuses it: HEAD is GET without the content (RFC 9110 §9.3.2), so it is refused alike.
HEAD_CALLS = [
    pytest.param("server-info", marks=pytest.mark.requirement("ST-AUTH-011"), id="server-info"),
    pytest.param("probe", marks=pytest.mark.requirement("ST-AUTH-012"), id="probe"),
]


@pytest.mark.parametrize("call", HEAD_CALLS)
def test_anonymous_head_refused_like_get(target, call):
    """A HEAD without any credential is refused where the GET is: an authentication rule that lets HEAD
    through (a health-check exemption) answers anyone, and tells them what the GET would."""
    if call == "server-info":
        why = foundations.anonymous_accepted(target, "server-info")
        if why is not None:
            pytest.skip(f"not applicable: the GET itself {why.split(' ', 1)[1]} (ST-AUTH-011 judges it)")
        resp, shown = target.client.request("HEAD", "/server/info"), "HEAD /server/info"
    else:
        path = target.profile.probe_path
        status = target.prepared.anonymous.get(path)
        if status is None or 200 <= status < 300:
            pytest.skip(f"not applicable: GET {path} answered a request without any credential with {status}")
        resp, shown = target.client.request("HEAD", path, api=False), f"HEAD {path}"
    _expect_4xx(resp, f"{shown} without a credential (the GET is refused)")


@pytest.mark.requirement("ST-AUTH-010")
@pytest.mark.precondition(pre.ANONYMOUS_REFUSED)
@pytest.mark.parametrize(
    "header",
    [
        pytest.param("X-API-Token", id="X-API-Token"),
        pytest.param("Authorization-ApiToken", id="Authorization-ApiToken"),
    ],
)
def test_service_token_refused_as_personal_api_token(target, genuine, header):
    """A service token presented through the personal API-token headers is refused."""
    headers = {"X-API-Token": genuine} if header == "X-API-Token" else {"Authorization": f"ApiToken {genuine}"}
    resp = target.client.probe(target.probe_path, None, headers=headers)
    _expect_4xx(resp, f"a service token sent as {header}")
