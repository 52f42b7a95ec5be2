"""The foundations of issue 24 (one defect, one verdict), judged from what the start of a run saw.

The kill matrix shows each of them against a faulty server (``expiry-stored-times-1000``,
``list-public``, ``list-skips-role-check``, ...); these tests pin the decisions themselves:
which observation fails which foundation, and which requirement a blocked check names.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from sts_conformance.checking import foundations
from sts_conformance.core import preconditions as pre
from sts_conformance.tokens import prepare as prep
from sts_conformance.tokens.prepare import Credential, Prepared

EXPIRY = 1_796_000_000_123


def _target(prepared: Prepared, run_dir: Path | None = None) -> Any:
    profile = SimpleNamespace(request_timeout=0.0)
    return SimpleNamespace(prepared=prepared, profile=profile, state=SimpleNamespace(run_dir=run_dir))


def _blocked_by(call: Any) -> str:
    with pytest.raises(pre.Blocked) as caught:
        call()
    return caught.value.requirement


def test_a_call_that_answers_anyone_blocks_refusals_judged_there() -> None:
    target = _target(Prepared(anonymous_calls={"server-info": 401, "list": 200, "create": 400, "delete": 403}))
    assert foundations.anonymous_accepted(target, "list") is not None
    assert all(foundations.anonymous_accepted(target, call) is None for call in ("server-info", "create", "delete"))
    assert _blocked_by(lambda: foundations.require_anonymous_refused(target, "list")) == "ST-AUTH-006"
    foundations.require_anonymous_refused(target, "create")  # refused (400 is a refusal): nothing blocked
    foundations.require_anonymous_refused(target, "probe")  # the probe's own foundation is ST-AUTH-001
    info = _target(Prepared(anonymous_calls={"server-info": 200}))
    assert _blocked_by(lambda: foundations.require_anonymous_refused(info, "server-info")) == "ST-AUTH-011"


def test_a_call_that_lets_the_unprivileged_token_in_blocks_the_role_checks_there() -> None:
    target = _target(Prepared(unprivileged_calls={"list": 403, "create": 401, "delete": 204}))
    assert foundations.role_ignored(target, "list") is None
    assert _blocked_by(lambda: foundations.require_role_refused(target, "delete")) == "ST-ROLE-002"
    foundations.require_role_refused(target, "list")
    anyone = _target(Prepared(anonymous_calls={"list": 200}, unprivileged_calls={"list": 200}))
    assert _blocked_by(lambda: foundations.require_role_refused(anyone, "list")) == "ST-AUTH-006"  # the first cause


def _made(echoed: Any, listed: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    cred = Credential(prep.EXPIRED_MANAGER, "n", "s", ["r"], id=7, expiration=EXPIRY, response={"expiration": echoed})
    return {prep.EXPIRED_MANAGER: (cred, None)}, [{"id": 7, "name": "n", "expiration": listed}]


@pytest.mark.parametrize(
    ("echoed", "listed", "failed"),
    [
        pytest.param(EXPIRY, EXPIRY, [], id="kept"),
        pytest.param(EXPIRY * 1000, EXPIRY * 1000, ["ST-EXP-001", "ST-EXP-002"], id="times-1000"),
        pytest.param(EXPIRY, EXPIRY + 3_600_000, ["ST-EXP-002"], id="listed-an-hour-late"),
        pytest.param(str(EXPIRY), EXPIRY, ["ST-EXP-001"], id="echoed-as-a-string"),
    ],
)
def test_an_expiry_not_kept_as_sent_fails_the_round_trip(echoed: Any, listed: Any, failed: list[str]) -> None:
    prepared = Prepared()
    made, items = _made(echoed, listed)
    prep._check_expiry_round_trip(prepared, made, items)
    assert sorted(prepared.failed) == failed
    target = _target(prepared)
    if failed:
        assert _blocked_by(lambda: foundations.require_expiry_round_trip(target)) == failed[0]
    else:
        foundations.require_expiry_round_trip(target)


def test_a_list_not_showing_the_token_yet_leaves_the_round_trip_unjudged() -> None:
    prepared = Prepared()
    made, _ = _made(EXPIRY, EXPIRY)
    prep._check_expiry_round_trip(prepared, made, [])
    assert prepared.failed == {}


def test_an_expired_token_accepted_blocks_what_stands_on_enforcement(tmp_path: Path) -> None:
    target = _target(Prepared(), tmp_path)
    foundations._publish(tmp_path, foundations.Enforcement(EXPIRY))
    foundations.require_expiry_enforced(target)  # held: nothing blocked
    foundations._publish(tmp_path, foundations.Enforcement(EXPIRY, failed="still accepted"))
    assert _blocked_by(lambda: foundations.require_expiry_enforced(target)) == "ST-EXP-006"
    # the round trip comes first: an expiry stored otherwise is that finding, not enforcement's
    target.prepared.failed[pre.EXPIRY_ECHOED] = "echoed x1000"
    assert _blocked_by(lambda: foundations.require_expiry_enforced(target)) == "ST-EXP-001"
