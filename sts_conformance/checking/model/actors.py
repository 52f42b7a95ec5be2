"""Who acts in the model: every credential that exists on the target during a sequence.

The admin credential of the profile, the manager and unprivileged tokens prepared at the start of
the run (made by the admin credential), and the manager tokens a sequence makes itself, which then
make tokens of their own. Each actor can create, list and delete (a manager) or only present (an
unprivileged one). A token's maker is remembered for messages only: the documented behaviour ties
no token to the credential that made it, so deleting or expiring a maker touches none of its tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sts_conformance.target.client import AuthForm
from sts_conformance.tokens.ledger import OwnedToken
from sts_conformance.tokens.prepare import VALID_MANAGER, VALID_UNPRIVILEGED

ADMIN = "the admin credential"
PREPARED_MANAGER = "the prepared manager token"
PREPARED_UNPRIVILEGED = "the prepared unprivileged token"


@dataclass(eq=False)
class Actor:
    """A credential that acts. The secret never shows in its repr."""

    label: str
    secret: str = field(repr=False)
    form: AuthForm
    manager: bool
    #: the model token behind it (None: a credential the sequence did not make, never deleted by it)
    token: OwnedToken | None = None
    #: the prepared credential's list id, when known (to hold it to the frame condition)
    prepared_id: int | None = None
    #: what the prepared credential is listed with: name, roles, expiration
    prepared_fields: dict[str, Any] = field(default_factory=dict)

    @property
    def alive(self) -> bool:
        return self.token is None or not self.token.deleted


def standing_actors(target: Any, forms: list[AuthForm]) -> list[Actor]:
    """The actors every sequence starts with: the admin credential and the run's prepared tokens (if made)."""
    actors = [Actor(ADMIN, target.admin_token, target.admin_form, manager=True)]
    for state, label, manager in (
        (VALID_MANAGER, PREPARED_MANAGER, True),
        (VALID_UNPRIVILEGED, PREPARED_UNPRIVILEGED, False),
    ):
        cred = target.prepared.credentials.get(state)
        if cred is None:
            continue  # not made (its foundation failed): the checks that need it say so
        form = forms[-1] if manager else forms[0]  # the prepared manager lists in the other form when there are two
        fields = {"name": cred.name, "roles": list(cred.roles), "expiration": cred.expiration}
        actors.append(Actor(label, cred.secret, form, manager, prepared_id=cred.id, prepared_fields=fields))
    return actors


def token_actor(tok: OwnedToken, number: int, form: AuthForm, manager: bool) -> Actor:
    kind = "manager" if manager else "unprivileged"
    return Actor(f"{kind} model token #{number} (id {tok.id})", tok.secret, form, manager, token=tok)
