"""No answer of the run carries a secret the run holds (ST-ONCE-006), wherever a check sends it (a pytest plugin).

The secret is shown once, in the create's answer (seed: "it isn't possible to see the token
again"). The checks of ST-ONCE-* look for secrets in the answers they are about: the list, the
admin's later calls, every call of the authorization matrix and of the path variants. Any other
answer could carry one unseen: the 400 for a malformed body that quotes the request's headers,
a refusal of a fuzzed name, an answer to a check of the clock. So the suite's client looks at
every answer, body and headers, for the secrets the run holds when it comes — every secret the
target issued earlier in the run, and the admin's credential — in clear or in the disguises
masking knows (base64, a fragment of an issued secret's random part, percent-encoded)
(:meth:`Redactor.held_in <sts_conformance.core.redact.Redactor.held_in>`). A create's answer
carries its own new secret, which the run registers only once that answer is in: that one is
where the secret is meant to be shown.

A check whose own assertions failed already names a defect; a check that passed (or was skipped,
not blocked) while one of its answers carried a held secret is reported failed under
**ST-ONCE-006** instead of its own requirement, with those requests as its evidence (secrets
masked): one defect, one verdict, as ``server_errors.py`` does for the 5xx. What the preparation
at the start of the run, the bootstrap scenarios in the background and the final cleanup receive
is not a check's and is not judged here. The judging costs no request: it reads the answers the
checks receive anyway.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from sts_conformance.checking.server_errors import exchange_lines, overturn
from sts_conformance.core.preconditions import Blocked
from sts_conformance.target.client import EXCHANGES, Exchange

REQUIREMENT = "ST-ONCE-006"


def _is_check(item: pytest.Item) -> bool:
    return item.get_closest_marker("requirement") is not None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    # the call alone: what a session fixture's preparation received during setup is not this check's
    EXCHANGES.clear_leaks()


def unnoticed_message(seen: list[Exchange]) -> str:
    return (
        f"{REQUIREMENT}: {len(seen)} answer(s) to this check's requests carry, in the body or a header, a "
        "secret the run holds (issued earlier in the run, or the admin's), in clear or in disguise - "
        "a secret is shown once, in its own create's answer:\n" + exchange_lines(seen)
    )


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    if not _is_check(item) or call.when != "call":
        return report
    seen = EXCHANGES.leaks()
    if not seen:
        return report
    blocked = call.excinfo is not None and isinstance(call.excinfo.value, Blocked)
    overturn(report, blocked, seen, REQUIREMENT, unnoticed_message(seen))
    return report
