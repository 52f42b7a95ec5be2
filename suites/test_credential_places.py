"""A service token authenticates in the two documented headers and nowhere else (ST-AUTH-020), and
whatever the target hands back for it dies with it (ST-AUTH-021).

The product page names two ways to present a token, ``Authorization: ApiKey <token>`` and
``X-API-Key: <token>``; the vendor spec declares the scheme ``in: header``. Every other place a
client could put it must authenticate nothing: a query parameter under the names frameworks
and gateways read (RFC 6750 §2.3 describes the URI form for bearer tokens, and §5.3 why it
leaks: URIs are logged), a form or JSON body field, another header name, another
``Authorization`` scheme, Basic auth with the token as user or password (OWASP API2).

Each check presents the token in many such places at once where they cannot interfere (query
parameters, body fields, header names), so a correct target costs one request; only when one
is accepted are the places tried one at a time to name it.

A target may set a session cookie on an accepted call, or hand back another credential in an
answer header; the suite's client keeps none of them (it has no cookie jar). The preparation
records what the answers handed back (``prepare.issued_credentials``) for a token it then
deletes, and for the tokens that expire early in the run; here each is presented alone, on
purpose, after its token is gone: it must be refused.
"""

from __future__ import annotations

import base64
import functools
from urllib.parse import urlencode

import pytest

from sts_conformance.core import preconditions as pre
from sts_conformance.target import settle
from sts_conformance.target.client import AuthForm
from sts_conformance.tokens.prepare import (
    DELETED_UNPRIVILEGED,
    EXPIRED_MANAGER,
    EXPIRED_UNPRIVILEGED,
    VALID_MANAGER,
    VALID_UNPRIVILEGED,
)

# the checks are independent of each other: they run at once with the
# other modules' (checking/ahead.py; hence this module's fixtures are of session scope)
pytestmark = pytest.mark.together

#: query parameter names frameworks and gateways read a key or token from
QUERY_NAMES = ("apiKey", "api_key", "apikey", "token", "key", "access_token")
#: body field names a handler might read a credential from
BODY_FIELDS = ("token", "apiKey", "api_key", "apikey", "key", "access_token", "serviceToken")
#: header names no documentation gives a service token (X-API-Token is ST-AUTH-010's; the spec's
#: X-API-ServiceBearer is left alone: the spec pairs it with a service token)
OTHER_HEADERS = (
    "X-Auth-Token",
    "X-Access-Token",
    "X-Token",
    "Token",
    "Api-Key",
    "X-Service-Token",
    "X-StackState-Token",
)
#: Authorization values in other schemes, and Basic auth with the token as user or password
OTHER_AUTHORIZATION = {
    "Bearer": lambda t: f"Bearer {t}",
    "Token": lambda t: f"Token {t}",
    "no-scheme": lambda t: t,
    "Basic-password": lambda t: "Basic " + base64.b64encode(f"apikey:{t}".encode()).decode(),
    "Basic-empty-user": lambda t: "Basic " + base64.b64encode(f":{t}".encode()).decode(),
    "Basic-user": lambda t: "Basic " + base64.b64encode(f"{t}:".encode()).decode(),
}
#: where the suite's client keeps what an answer handed back, before each is presented alone
ISSUED_SAMPLES = ("probe/X_API_KEY", "probe/AUTHORIZATION")


def _refused(resp) -> bool:
    return 400 <= resp.status_code < 500


def _which(places: dict[str, dict], send) -> list[str]:
    """The places (name -> request keywords) that are accepted on their own."""
    return [name for name, kw in places.items() if send(**kw).is_success]


@pytest.mark.requirement("ST-AUTH-020")
@pytest.mark.precondition(pre.ANONYMOUS_REFUSED)
@pytest.mark.parametrize("call", ["probe", "list"])
def test_token_in_query_parameters_authenticates_nothing(target, call):
    """The token under every common query-parameter name, on the probe and on the list, is refused."""
    if call == "probe":
        secret, path, api = target.credential(VALID_UNPRIVILEGED).secret, target.probe_path, False
    else:
        secret, path, api = target.credential(VALID_MANAGER).secret, "/security/tokens", True

    def send(names=QUERY_NAMES):
        return target.client.request("GET", f"{path}?{urlencode({n: secret for n in names})}", api=api)

    resp = send()
    if _refused(resp):
        return
    accepted = _which({n: {"names": (n,)} for n in QUERY_NAMES}, send) or list(QUERY_NAMES)
    pytest.fail(
        f"GET {path} with the token only in the query ({', '.join(accepted)}) got {resp.status_code}: a token "
        "in a URL authenticated (only the Authorization: ApiKey and X-API-Key headers may)"
    )


@pytest.mark.requirement("ST-AUTH-020")
@pytest.mark.precondition(pre.ANONYMOUS_REFUSED)
def test_token_in_other_header_names_authenticates_nothing(target):
    """The token under header names no documentation gives it is refused on the probe."""
    secret = target.credential(VALID_UNPRIVILEGED).secret

    def send(names=OTHER_HEADERS):
        return target.probe(None, headers={n: secret for n in names})

    resp = send()
    if _refused(resp):
        return
    accepted = _which({n: {"names": (n,)} for n in OTHER_HEADERS}, send) or list(OTHER_HEADERS)
    pytest.fail(f"the token only in the header(s) {', '.join(accepted)} was accepted on the probe ({resp.status_code})")


@pytest.mark.requirement("ST-AUTH-020")
@pytest.mark.precondition(pre.ANONYMOUS_REFUSED)
@pytest.mark.parametrize("scheme", list(OTHER_AUTHORIZATION))
def test_token_in_other_authorization_schemes_authenticates_nothing(target, scheme):
    """``Authorization`` in another scheme than ApiKey, or Basic with the token as user or password, is refused."""
    secret = target.credential(VALID_UNPRIVILEGED).secret
    resp = target.probe(None, headers={"Authorization": OTHER_AUTHORIZATION[scheme](secret)})
    assert _refused(resp), (
        f"the token in 'Authorization: {scheme.split('-')[0]} …' ({scheme}) was accepted on the probe "
        f"({resp.status_code}); only the ApiKey scheme presents a service token"
    )


@pytest.mark.requirement("ST-AUTH-020")
@pytest.mark.precondition(pre.ANONYMOUS_REFUSED)
def test_token_in_json_body_fields_authenticates_nothing(target, ledger):
    """A create whose JSON body carries a manager token in credential-like fields, with no credential header,
    is refused and creates nothing."""
    secret = target.credential(VALID_MANAGER).secret
    body = {"name": ledger.name("body-cred"), "roles": [target.profile.unprivileged_role]}
    body.update({field: secret for field in BODY_FIELDS})
    # journalled like any create: were it accepted, the token is cleaned up at the end of the run
    resp, made = ledger.create_raw(body, headers={}, attribute=False)
    assert _refused(resp) and made is None, (
        f"a create with no credential header but the manager token in the JSON body fields {', '.join(BODY_FIELDS)} "
        f"got {resp.status_code}" + (" and made a token" if made is not None else "")
    )


@pytest.mark.requirement("ST-AUTH-020")
@pytest.mark.precondition(pre.ANONYMOUS_REFUSED)
def test_token_in_form_body_fields_authenticates_nothing(target, ledger):
    """A form-encoded POST carrying a manager token in credential-like fields, with no credential header,
    is refused."""
    secret = target.credential(VALID_MANAGER).secret
    name = ledger.name("form-cred")
    ledger.intend(name, [target.profile.unprivileged_role])  # the end-of-run sweep finds it by name if made
    fields = {"name": name, "roles": target.profile.unprivileged_role, **{f: secret for f in BODY_FIELDS}}
    resp = target.client.request(
        "POST",
        "/security/tokens",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        content=urlencode(fields),
    )
    assert _refused(resp), (
        f"a form-encoded POST with no credential header but the manager token in the fields "
        f"{', '.join(BODY_FIELDS)} got {resp.status_code}"
    )


def _issued(target, states: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """(state, header name, value) of every credential the answers to the prepared calls handed back."""
    found = []
    for state in states:
        cred = target.credential(state)
        for key in ISSUED_SAMPLES:
            sample = cred.samples.get(key)
            if sample is not None and sample.accepted:
                found += [(state, name, value) for name, value in sample.issued.items()]
    return found


def _presented_alone(target, name: str, value: str):
    return target.probe(None, headers={name: value})


@pytest.mark.requirement("ST-AUTH-021")
@pytest.mark.precondition(pre.ANONYMOUS_REFUSED, pre.REVOKED)
def test_what_the_target_hands_back_dies_with_the_deleted_token(target, observe):
    """A cookie (or answer header) issued on a call with a token is refused, alone, once that token is deleted."""
    issued = _issued(target, (DELETED_UNPRIVILEGED,))
    observe("issued_credentials", sorted({name for _state, name, _value in issued}))
    for state, name, value in issued:
        resp = settle.until(settle.REVOCATION, functools.partial(_presented_alone, target, name, value), _refused)
        assert _refused(resp), (
            f"the {name} the target handed back on a call with the {state} token still authenticates "
            f"({resp.status_code}) after that token was deleted" + settle.note(settle.REVOCATION)
        )


@pytest.mark.requirement("ST-AUTH-021")
@pytest.mark.precondition(pre.ANONYMOUS_REFUSED)
def test_what_the_target_hands_back_dies_with_the_expired_token(target, observe):
    """A cookie (or answer header) issued on a call with a token is refused, alone, once that token has expired."""
    issued = _issued(target, (EXPIRED_MANAGER, EXPIRED_UNPRIVILEGED))
    observe("issued_credentials", sorted({name for _state, name, _value in issued}))
    if not issued:
        return
    expiry = target.prepared.expiry_ms
    assert expiry is not None
    target.wait_until_server_time(expiry)
    for state in sorted({state for state, _name, _value in issued}):
        # the token itself still accepted is ST-EXP-006's finding, not this one's
        own = target.probe(target.credential(state).secret, AuthForm.X_API_KEY)
        if own.is_success:
            pytest.skip(f"the {state} token itself is still accepted after its expiry (ST-EXP-006 judges that)")
    for state, name, value in issued:
        resp = _presented_alone(target, name, value)
        assert _refused(resp), (
            f"the {name} the target handed back on a call with the {state} token still authenticates "
            f"({resp.status_code}) after that token expired"
        )
