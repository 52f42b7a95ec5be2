"""The probe is the first documented call that refuses an anonymous request (issue 17).

A public server/status is one finding, not a reason to judge every refusal on a call that
refuses no one: the run then presents credentials to server/info, which the spec defines
with its 401. Only when neither refuses is there no probe.
"""

from __future__ import annotations

import pytest

from sts_conformance.target import probe
from sts_conformance.target.client import ApiClient
from sts_conformance.target.profile import parse_profile
from sts_reference.testing import running_server

STATUS, INFO = "/api/server/status", "/api/server/info"


@pytest.mark.parametrize(
    ("faults", "path", "anonymous"),
    [
        pytest.param((), STATUS, {STATUS: 401}, id="faithful-status"),
        pytest.param(("status-public",), INFO, {STATUS: 200, INFO: 401}, id="public-status-info"),
        pytest.param(("server-info-public",), STATUS, {STATUS: 401}, id="public-info-status"),
        pytest.param(("status-public", "server-info-public"), STATUS, {STATUS: 200, INFO: 200}, id="none-refuses"),
    ],
)
def test_probe_is_the_first_call_that_refuses_anonymous_requests(faults, path, anonymous):
    """One anonymous GET per candidate, in order, until one refuses; that one is the probe."""
    with running_server(faults=faults) as server:
        profile = parse_profile({"name": "t", "url": server.url, "admin_token": "x"}, environ={})
        with ApiClient.for_profile(profile) as client:
            choice = probe.choose(client, profile)
    assert (choice.path, choice.anonymous) == (path, anonymous)
    assert choice.refuses_anonymous is (len(faults) < 2)
    assert probe.public(choice.anonymous, STATUS) is ("status-public" in faults)


def test_a_probe_path_of_server_info_is_tried_once():
    """A profile whose probe_path is already server/info has one candidate."""
    profile = parse_profile({"name": "t", "url": "http://h", "admin_token": "x", "probe_path": INFO}, environ={})
    assert probe.candidates(profile) == [INFO]
