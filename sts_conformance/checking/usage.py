"""Calls made with one credential, one call kind at a time: what the checks of a credential's rights send.

``call_as`` makes one call of a kind (the probe, server info, list, create, delete) presenting
a credential — in one header form, or as the exact header lines given. ``refused_now`` is the
one place a check asks "is this credential refused now?" after something revoked it (a
delete, an expiry): a target whose revocation settles within a bounded time may later be
asked there more than once, without touching the checks.

``near_miss`` makes the secrets that resemble a real one (one character short, one too many,
another case, one character changed): each must be refused wherever it is presented.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any

import httpx

from sts_conformance.core.redact import REDACTOR
from sts_conformance.target import settle
from sts_conformance.target.client import TOKENS_PATH, AuthForm

#: the kinds of call a credential is presented on, in the authorization matrix's order
CALL_KINDS = ("probe", "server-info", "list", "create", "delete")
MANAGEMENT_CALLS = ("list", "create", "delete")

NEAR_MISSES = ("truncated", "extended", "case-altered", "one-char-changed")


def call_as(
    target: Any,
    ledger: Any,
    call: str,
    *,
    token: str | None = None,
    form: AuthForm = AuthForm.X_API_KEY,
    headers: dict[str, str] | None = None,
    repeated: Sequence[tuple[str, str]] = (),
    delete_id: int | None = None,
    label: str = "as",
) -> httpx.Response:
    """One ``call`` presenting ``token`` in ``form`` (or exactly ``headers`` and ``repeated`` lines).

    A create is journalled by the ledger (a token it makes is deleted at the end of the run) and
    asks for the unprivileged role; a delete is aimed at ``delete_id``.
    """
    if headers is None and token is None:
        headers = {}
    if call == "create":
        body = {"name": ledger.name(label), "roles": [target.profile.unprivileged_role]}
        resp, _tok = ledger.create_raw(
            body, token=token, form=form, headers=headers, repeated=repeated, attribute=False
        )
        return resp
    client = target.client
    kw: dict[str, Any] = {"token": token, "form": form, "headers": headers, "repeated": repeated}
    if call == "probe":
        return client.request("GET", target.profile.probe_path, api=False, **kw)
    if call == "server-info":
        return client.request("GET", "/server/info", **kw)
    if call == "list":
        return client.request("GET", TOKENS_PATH, **kw)
    if call == "delete":
        if delete_id is None:
            raise ValueError("a delete needs the id it is aimed at")
        return client.request("DELETE", f"{TOKENS_PATH}/{delete_id}", **kw)
    raise ValueError(f"unknown call kind {call!r}; known: {', '.join(CALL_KINDS)}")


def refused_now(target: Any, ledger: Any, call: str, **kw: Any) -> httpx.Response:
    """The answer to ``call`` with a credential that something has just revoked (see ``call_as``).

    Asked again, within the revocation settle window (``consistency.revocation_within``), while
    the answer is not a refusal of the credential: a deployment's authentication cache may keep
    a deleted token working for a moment (a 404 for a delete aimed at a gone id is such an answer).
    """
    refusals = {*target.expect.unauthenticated_status, *target.expect.forbidden_status}
    return settle.until(
        settle.REVOCATION, lambda: call_as(target, ledger, call, **kw), lambda resp: resp.status_code in refusals
    )


def _changed(ch: str) -> str:
    """Another character of the same kind (digit, lower-case, upper-case letter) as ``ch``."""
    for pool in (string.digits, string.ascii_lowercase, string.ascii_uppercase):
        if ch in pool:
            return pool[(pool.index(ch) + 1) % len(pool)]
    return "A" if ch != "A" else "B"


def near_miss(secret: str, how: str) -> str | None:
    """``how`` (one of ``NEAR_MISSES``) applied to ``secret``; None when it has no such form (no letters
    to change the case of). The result gives most of the secret away: it is masked like one."""
    if how == "truncated":
        presented = secret[:-1]
    elif how == "extended":
        presented = secret + ("x" if not secret.endswith("x") else "y")
    elif how == "case-altered":
        presented = secret.swapcase()
    elif how == "one-char-changed":
        middle = len(secret) // 2
        presented = secret[:middle] + _changed(secret[middle]) + secret[middle + 1 :]
    else:
        raise ValueError(f"unknown near miss {how!r}; known: {', '.join(NEAR_MISSES)}")
    if presented == secret or not presented:
        return None
    REDACTOR.register(presented)
    return presented
