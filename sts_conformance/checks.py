"""Assertions shared by the suites: wire shapes, refusals, and reading bodies.

Messages say what was expected and what came back; secrets are masked by the plugin
before any message leaves the process.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import jsonschema

from .redact import REDACTOR

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


def listed(items: list[dict[str, Any]], token_id: int | None) -> dict[str, Any] | None:
    return next((i for i in items if token_id is not None and i.get("id") == token_id), None)
