"""Assertions shared by the suites: wire shapes, refusals, and reading bodies.

Messages say what was expected and what came back; secrets are masked by the plugin
before any message leaves the process.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from sts_conformance.core import preconditions as pre
from sts_conformance.core.redact import REDACTOR
from sts_conformance.target.client import AuthForm
from sts_conformance.tokens.journal import token_id
from sts_conformance.tokens.prepare import Sample

_SCHEMAS = Path(__file__).with_name("schemas") / "service-tokens.json"


@functools.cache
def _schema_doc() -> dict[str, Any]:
    return json.loads(_SCHEMAS.read_text(encoding="utf-8"))


def validate(instance: Any, shape: str) -> None:
    """Assert ``instance`` has the documented wire shape ``shape`` (a name under ``$defs``)."""
    doc = _schema_doc()
    schema = {"$schema": doc["$schema"], "$defs": doc["$defs"], "$ref": f"#/$defs/{shape}"}
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(top level)"
        raise AssertionError(f"response body is not a valid {shape}: at {where}: {REDACTOR.mask(first.message)}")


def json_body(resp: httpx.Response, what: str) -> Any:
    try:
        return resp.json()
    except ValueError:
        raise AssertionError(
            f"{what}: expected a JSON body, got {resp.headers.get('content-type', 'no content type')}: "
            f"{REDACTOR.mask(resp.text[:200])!r}"
        ) from None


def expect_json_media_type(resp: httpx.Response, what: str) -> None:
    """The answer says its body is JSON, as the spec's ``content: application/json`` does: application/json
    (any case, any parameters) or a +json structured-syntax type (RFC 6839)."""
    declared = resp.headers.get("content-type", "")
    media = declared.split(";", 1)[0].strip().lower()
    assert media == "application/json" or (media.startswith("application/") and media.endswith("+json")), (
        f"{what}: the body is labelled {f'Content-Type {declared!r}' if declared else 'with no Content-Type'}, "
        "not application/json: a client that decodes by media type (as clients generated from the OpenAPI "
        "spec do) cannot read it"
    )


def expect_status(resp: httpx.Response, expected: int | Iterable[int], what: str) -> None:
    allowed = (expected,) if isinstance(expected, int) else tuple(expected)
    if resp.status_code not in allowed:
        shown = allowed[0] if len(allowed) == 1 else " or ".join(map(str, allowed))
        raise AssertionError(f"{what}: expected {shown}, got {resp.status_code}: {REDACTOR.mask(resp.text[:200])!r}")


def expect_refused(resp: httpx.Response, allowed: Iterable[int], what: str) -> None:
    """A credential was refused: one of the allowed statuses (401/403 unless the profile pins)."""
    allowed = tuple(allowed)
    if resp.status_code not in allowed:
        verdict = "accepted" if resp.is_success else "answered"
        raise AssertionError(
            f"{what}: expected refusal with {' or '.join(map(str, allowed))}, but the target "
            f"{verdict} it with {resp.status_code}"
        )


def expect_no_server_error(resp: httpx.Response, what: str) -> None:
    if resp.status_code >= 500:
        raise AssertionError(f"{what}: the target answered with a server error {resp.status_code}")


def listed(items: list[dict[str, Any]], wanted: int | None, name: str | None = None) -> dict[str, Any] | None:
    """The list entry with id ``wanted`` (an id listed as a string of digits counts: ST-LIFE-002 judges the type).

    With ``name``, only an entry carrying that name: ids are names, not identities, and a target may
    hand a deleted token's id to the next token (after a delete, pass the deleted token's name)."""
    if wanted is None:
        return None
    entries = [i for i in items if token_id(i.get("id")) == wanted and name in (None, i.get("name"))]
    if len(entries) > 1:
        # which of them is the token the check is about cannot be told: the defect is the shared id
        pre.block(pre.UNIQUE_IDS, f"the list shows id {wanted} {len(entries)} times, so its entry cannot be told")
    return entries[0] if entries else None


#: the requirement that says each header form is accepted at all: a check in that form stands on it
FORM_REQUIREMENT = {AuthForm.AUTHORIZATION: pre.AUTHORIZATION_FORM, AuthForm.X_API_KEY: pre.X_API_KEY_FORM}


def form_param(form: AuthForm, id: str) -> Any:
    """A ``pytest.param`` for one header form, declaring that form's foundation as a precondition."""
    return pytest.param(form, id=id, marks=pytest.mark.precondition(FORM_REQUIREMENT[form]))


#: both documented header forms, as test parameters with their preconditions
FORMS = [form_param(AuthForm.AUTHORIZATION, "Authorization-ApiKey"), form_param(AuthForm.X_API_KEY, "X-API-Key")]


def working_forms(target: Any) -> list[AuthForm]:
    """The header forms accepted at all (probed at the start of the run); blocks when neither is."""
    forms = [f for f in AuthForm if target.prepared.blocked(FORM_REQUIREMENT[f]) is None]
    if not forms:
        pre.block(pre.X_API_KEY_FORM, target.prepared.blocked(pre.X_API_KEY_FORM) or "no header form is accepted")
    return forms


def require_form(target: Any, form: AuthForm) -> None:
    """Block the check when ``form`` is not accepted at all (its own check fails for that)."""
    requirement = FORM_REQUIREMENT[form]
    why = target.prepared.blocked(requirement)
    if why is not None:
        pre.block(requirement, why)


#: what a server's clock may differ from its Date header by (resolution, a proxy's or replica's clock)
CLOCK_MARGIN_MS = 1_000


#: when a call made right after a create came too close to the expiry to tell: fresh tokens living this long (ms)
WIDER_LIVES_MS = (10_000, 30_000)


def expect_accepted_before(
    sample: Any, expiry_ms: int, what: str, retry: Callable[[int], tuple[Any, int]] | None = None
) -> None:
    """A call made right after a create was accepted; if it was refused, fail only when it surely came
    before ``expiry_ms``. Else it is tried again with ``retry`` (given a life in ms, a fresh token's first
    call and its expiry), each time with a longer life (:data:`WIDER_LIVES_MS`); one that still cannot tell
    is inconclusive.

    ``sample`` has ``status``, ``server_ms`` (its Date header) and ``accepted``.
    """
    unsure: list[str] = []
    for life_ms in (None, *(WIDER_LIVES_MS if retry is not None else ())):
        if life_ms is not None and retry is not None:
            sample, expiry_ms = retry(life_ms)
        if sample.accepted:
            return
        surely_before = sample.server_ms is not None and sample.server_ms + 1000 + CLOCK_MARGIN_MS <= expiry_ms
        if surely_before:
            earlier = f" (after {len(unsure)} tries too close to tell)" if unsure else ""
            raise AssertionError(
                f"{what}, expiring at {expiry_ms}, was refused with {sample.status} at server time "
                f"{sample.server_ms}, before its expiry{earlier}"
            )
        unsure.append(f"answered {sample.status} at server time {sample.server_ms}, expiring at {expiry_ms}")
    pre.inconclusive(
        f"the first call with {what} came too close to its expiry to tell before from after, "
        f"{len(unsure)} time(s): {'; '.join(unsure)}"
    )


def expiring_sample(
    target: Any, ledger: Any, roles: list[str], life_ms: int, call: str, form: AuthForm
) -> tuple[Any, int]:
    """A fresh token expiring ``life_ms`` after the server's now, used at once (``call``: ``probe`` or ``list``):
    that first call and its expiry, for :func:`expect_accepted_before`'s wider tries."""
    expiry = target.server_now_ms() + life_ms
    tok = ledger.create("expiring", roles=roles, expiry_ms=expiry)
    resp = target.client.list_tokens(tok.secret, form=form) if call == "list" else target.probe(tok.secret, form)
    return Sample.of(resp, target.prepared.clock_facts), expiry


def block_if_creates_fail(ledger: Any, resp: httpx.Response, roles: Any, what: str) -> None:
    """After a create answered a server error: when a plain create fails too, the check is blocked by
    ST-LIFE-001 (creates fail whatever is sent) instead of failing on its own requirement."""
    if resp.status_code < 500:
        return
    why = ledger.creates_work(list(roles) if isinstance(roles, list | tuple) else ["stackstate-guest"])
    if why is not None:
        pre.block(pre.CREATE, f"{what} answered {resp.status_code}, and {why} as well")
