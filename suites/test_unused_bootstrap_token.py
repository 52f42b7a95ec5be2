"""Time: a bootstrap token presented for the first time only after its ttl is refused.

The bootstrap token is created when the deployment starts, and its ttl counts from then, not
from its first use: a token never presented expires as one used at once does (ST-BOOT-003).
On a managed target one more instance is launched with the others (``fleet.plan``, ``UNUSED``):
the controller sees it up by an anonymous call, and presents its bootstrap token for the first
time only once the instance's clock shows its start, the ttl, the bootstrap settle window and
the clock margin past (``fleet.run_unused``). This module is collected last on purpose: that
wait runs out while every other check runs, and is never waited for here.
"""

from __future__ import annotations

import pytest

from sts_conformance.checking import fleet, foundations
from sts_conformance.checking.checks import working_forms
from sts_conformance.core import preconditions as pre
from sts_conformance.target import settle
from sts_conformance.target.client import AuthForm


@pytest.mark.requirement("ST-BOOT-007")
@pytest.mark.precondition(pre.ANONYMOUS_REFUSED)
def test_bootstrap_token_first_presented_after_its_ttl_is_refused(target):
    """A bootstrap token never presented until its ttl has passed, counted from the deployment's start, is
    refused the first time it is: the ttl counts from its creation, not its first use (one presented at
    once expires alike: ST-BOOT-003, ``test_bootstrap.py``)."""
    if not target.managed:
        pytest.skip(
            "needs a managed target (profile setting 'launch'): an external deployment's bootstrap token "
            "('bootstrap.token') may have been presented already, and on a reconfigured one it would take one "
            "more rollout, whose end is seen only by presenting the new token"
        )
    limit = fleet.max_ttl_ms(target.profile)
    if not any(fleet.waitable_ttl(s, limit) for s in target.profile.bootstrap.ttl_spellings):
        pytest.skip(f"profile setting 'bootstrap.ttl_spellings' has no duration of at most {limit // 1000}s")
    inst = target.instance(fleet.UNUSED, fleet.DONE)
    forms = working_forms(target)
    # a call that answers anyone would let an expired token through too: ST-AUTH-006/ST-AUTH-011's finding
    judged = {
        key: sample
        for key, sample in inst.late.items()
        if AuthForm[key.split("/")[1]] in forms and foundations.anonymous_accepted(target, key.split("/")[0]) is None
    }
    if not judged:
        raise AssertionError(f"the bootstrap token with ttl {inst.ttl!r} was never presented: {inst.error}")
    # (a call the header form is refused on everywhere says nothing about the ttl: it is left out above)
    refused = target.expect.unauthenticated_status
    let_in = {key: sample for key, sample in judged.items() if sample.status not in refused}
    if let_in and not inst.shown_past_due:
        pre.inconclusive(
            f"the deployment's clock did not show the ttl {inst.ttl!r} surely past (it read {inst.past_ms}, "
            f"due {inst.due_ms}) before the bootstrap token was first presented"
        )
    first_key, first = next(iter(inst.late.items()))
    after_s = first.at - inst.anonymous.at if inst.anonymous is not None else float("nan")
    if let_in:
        raise AssertionError(
            f"a bootstrap token with ttl {inst.ttl!r}, presented for the first time ({_call_shown(first_key)}) "
            f"{after_s:.1f} s after the deployment answered, once its clock showed the start plus the ttl, the "
            f"bootstrap settle window ({target.profile.consistency.window(settle.BOOTSTRAP):g} s, profile setting "
            f"'consistency.bootstrap_within') and the clock margin past, was not refused with "
            f"{' or '.join(map(str, refused))}: "
            + ", ".join(f"{_call_shown(key)} answered {sample.status}" for key, sample in let_in.items())
        )


def _call_shown(key: str) -> str:
    """``probe/X_API_KEY`` as ``probe as X-API-Key``."""
    call, form = key.split("/")
    return f"{call} as {AuthForm[form].value}"
