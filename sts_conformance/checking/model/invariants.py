"""What must hold after every step of the model, as pure judgements of what the target answered.

Each function returns the disagreements it found (empty: the target agrees), so a caller can
both wait for a list that is allowed to lag (``settle``) and report every disagreement at once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from sts_conformance.checking.model.actors import Actor
from sts_conformance.target.client import AuthForm
from sts_conformance.tokens.journal import token_id
from sts_conformance.tokens.ledger import OwnedToken


def label(tok: OwnedToken) -> str:
    return f"token {tok.id} ({tok.name!r})"


def _same_roles(listed: Any, created: Sequence[str], compare: str) -> bool:
    if compare == "exact":
        return listed == list(created)
    return isinstance(listed, list) and set(listed) == set(created)


@dataclass
class ModelView:
    """What the model holds: the tokens a sequence made, and the names it used."""

    live: list[OwnedToken]
    deleted: list[OwnedToken]
    #: every name a create of the sequence sent (accepted or refused)
    names: set[str]
    #: the actors the sequence did not make: their list entries must not change (the frame condition)
    standing: list[Actor]
    roles_compare: str = "exact"
    #: whether expirations are compared: not when the run found expiries not kept as sent at all
    #: (ST-EXP-001/002, probed at the start, are then the one finding: one defect, one verdict)
    expiry_judged: bool = True


def list_disagreements(items: list[dict[str, Any]], model: ModelView) -> list[str]:
    """How a list answer differs from the model: every live token with every field as created, no
    deleted token, nothing else under the sequence's names, no id twice, the standing actors unchanged."""
    problems: list[str] = []
    ids = [token_id(i.get("id")) for i in items]
    repeated = sorted((i for i, n in Counter(ids).items() if n > 1 and i is not None), key=str)
    if repeated:
        problems.append(f"the list shows id(s) {repeated} more than once")
    by_id: dict[int | None, dict[str, Any]] = {token_id(i.get("id")): i for i in items}
    for tok in model.live:
        entry = by_id.get(tok.id)
        if entry is None:
            problems.append(f"live {label(tok)} is missing from the list")
            continue
        problems += _field_disagreements(
            entry, label(tok), tok.name, tok.roles, tok.expiration, model.roles_compare, model.expiry_judged
        )
    live_ids = {t.id for t in model.live}
    for tok in model.deleted:
        entry = by_id.get(tok.id)
        # an id may be given again to a new token of ours; a deleted token's own entry must be gone
        if entry is not None and tok.id not in live_ids and entry.get("name") == tok.name:
            problems.append(f"deleted {label(tok)} is still listed")
    phantoms = [
        (i.get("id"), i.get("name"))
        for i in items
        if i.get("name") in model.names and token_id(i.get("id")) not in live_ids
    ]
    if phantoms:
        problems.append(f"the list has entries under this sequence's names that the model does not hold: {phantoms}")
    for actor in model.standing:
        if actor.prepared_id is None:
            continue
        entry = by_id.get(actor.prepared_id)
        what = f"{actor.label} (id {actor.prepared_id}), which no step touched,"
        if entry is None:
            problems.append(f"{what} is missing from the list")
            continue
        f = actor.prepared_fields
        problems += _field_disagreements(
            entry, what, f["name"], f["roles"], f["expiration"], model.roles_compare, model.expiry_judged
        )
    return problems


def _field_disagreements(
    entry: dict[str, Any],
    what: str,
    name: str,
    roles: Sequence[str],
    expiration: int | None,
    compare: str,
    expiry_judged: bool = True,
) -> list[str]:
    problems = []
    if entry.get("name") != name:
        problems.append(f"{what} is listed with name {entry.get('name')!r}, created as {name!r}")
    if not _same_roles(entry.get("roles"), roles, compare):
        problems.append(f"{what} is listed with roles {entry.get('roles')!r}, created with {list(roles)}")
    if not expiry_judged:
        return problems
    if entry.get("expiration") != expiration or (expiration is not None and type(entry.get("expiration")) is not int):
        problems.append(f"{what} is listed with expiration {entry.get('expiration')!r}, created with {expiration}")
    return problems


def list_items(resp: httpx.Response) -> list[dict[str, Any]] | None:
    """The entries of a list answer; None when it is not a 2xx JSON array."""
    try:
        body = resp.json() if resp.is_success else None
    except ValueError:
        return None
    return [i for i in body if isinstance(i, dict)] if isinstance(body, list) else None


def agrees(model: ModelView) -> Callable[[httpx.Response], bool]:
    """For ``settle.until``: whether a list answer already shows what the model holds."""

    def check(resp: httpx.Response) -> bool:
        items = list_items(resp)
        return items is None or not list_disagreements(items, model)  # a broken answer is judged, not waited on

    return check


# -- presenting ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """A documented call any valid token is accepted on, whatever its roles."""

    name: str
    send: Callable[[str, AuthForm], httpx.Response]


def documented_calls(target: Any) -> list[Call]:
    """The probe the run chose and ``server/info`` (one call when the probe is server/info)."""
    calls = [Call(f"GET {target.probe_path}", lambda secret, form: target.probe(secret, form))]
    if not target.probe_path.rstrip("/").endswith("/server/info"):
        calls.append(Call("GET server/info", lambda secret, form: target.client.server_info(secret, form=form)))
    return calls


def list_call(target: Any) -> Call:
    """The list, a documented call a token holding the manager role may make (and a deleted one may not)."""
    return Call("GET the token list", lambda secret, form: target.client.list_tokens(secret, form=form))


def presentation_disagreement(resp: httpx.Response, live: bool, refusals: Iterable[int], what: str) -> str | None:
    """Why an answer to a presented token disagrees with the model (live: accepted; deleted: refused)."""
    refusals = tuple(refusals)
    if live:
        return None if resp.is_success else f"live {what} was refused ({resp.status_code})"
    if resp.status_code in refusals:
        return None
    verdict = "accepted" if resp.is_success else "answered"
    expected = " or ".join(map(str, refusals))
    return f"deleted {what}: expected refusal with {expected}, but the target {verdict} it with {resp.status_code}"
