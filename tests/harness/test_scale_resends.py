"""The list-scale check's waves of creates and deletes, when a request gets no answer (issue 25's CI failure).

A create whose answer is lost (a read timeout under load) may still have been made; sent again under
the same name, a correct target lists that name twice and the check reports ST-LIFE-020 against it.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

import httpx
import pytest

from sts_conformance.tokens.ledger import OwnedToken
from suites import test_list_scale as scale


class LossyLedger:
    """Just what the scale step uses of a ledger; the target it stands for acts on every request, and
    the answers of the calls numbered in ``lose`` are lost (``error`` raised after the work is done)."""

    def __init__(self, lose: set[int], error: type[httpx.TransportError] = httpx.ReadTimeout) -> None:
        self.lose = lose
        self.error = error
        self.calls = itertools.count()
        self.mutex = threading.Lock()
        self.names: list[str] = []  # what the target made, in order
        self.deletes: list[int] = []  # the ids it was asked to delete, in order
        self.ids = itertools.count(1)
        self.numbers = itertools.count(1)

    def name(self, label: str) -> str:
        return f"sts-conf-{label}-{next(self.numbers)}"

    def _lost(self) -> bool:
        with self.mutex:
            return next(self.calls) in self.lose

    def create_raw(
        self, body: dict[str, Any], attribute: bool = True, resend: bool = True
    ) -> tuple[httpx.Response, OwnedToken]:
        """As the ledger's: a create whose connection closed is sent again with the same body, unless
        ``resend=False``."""
        with self.mutex:
            self.names.append(body["name"])
            token_id = next(self.ids)
        if self._lost():
            if resend and self.error in (httpx.ReadError, httpx.RemoteProtocolError):
                return self.create_raw(body, attribute, resend)
            raise self.error("the answer was lost")
        tok = OwnedToken(name=body["name"], secret="s" * 32, roles=body["roles"], expiration=None, id=token_id)
        return httpx.Response(200), tok

    def delete(self, tok: OwnedToken) -> httpx.Response:
        with self.mutex:
            self.deletes.append(tok.id or 0)
        if self._lost():
            raise self.error("the answer was lost")
        tok.deleted = True
        return httpx.Response(204)

    def attribute_all(self, *_args: Any, **_kw: Any) -> None:
        return None


@pytest.mark.parametrize("error", [httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError])
def test_a_create_whose_answer_was_lost_is_made_again_under_a_new_name(error):
    ledger = LossyLedger(lose={3, 17}, error=error)
    made = scale._create_many(ledger, ["r"], 40, managed=True)

    assert len(made) == 40
    assert len(ledger.names) == 42, "each create that got no answer is made once more"
    assert len(set(ledger.names)) == len(ledger.names), "no name is sent in two creates"
    assert len({tok.name for tok in made}) == 40


@pytest.mark.parametrize(
    ("error", "resent"),
    [(httpx.ReadTimeout, False), (httpx.RemoteProtocolError, False), (httpx.ConnectError, True)],
)
def test_a_delete_is_sent_again_only_when_it_never_reached_the_target(error, resent):
    ledger = LossyLedger(lose={2}, error=error)
    made = [OwnedToken(name=f"t{i}", secret="s" * 32, roles=[], expiration=None, id=i) for i in range(1, 6)]

    scale._delete_all(ledger, made, None, managed=True)

    assert set(ledger.deletes) == set(range(1, 6))
    assert len(ledger.deletes) == (6 if resent else 5)
    # a delete the target may have done is left to the end-of-run sweep, which lists before it deletes
    assert sum(not tok.deleted for tok in made) == (0 if resent else 1)
