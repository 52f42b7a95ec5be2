"""server/info and server/status, the Date header, and answers for unknown routes."""

from __future__ import annotations

from collections.abc import Callable
from email.utils import formatdate, parsedate_to_datetime

import pytest

from sts_reference.clock import FakeClock
from sts_reference.testing import RunningServer

from .support import ADMIN, DAY_MS, START_MS, Api, StartServer, VendorSchemas


def test_server_info_matches_the_vendor_schema(api: Api, vendor: VendorSchemas) -> None:
    """info is a ServerInfo of a self-hosted Observability deployment."""
    response = api.info()
    assert response.status_code == 200
    body = response.json()
    vendor.validate("ServerInfo", body)
    assert body["deploymentMode"] == "SelfHosted"
    assert body["applicationDomains"] == ["Observability"]


def test_server_status_is_a_small_json_object(api: Api) -> None:
    """status, the seed document's "am I authenticated" call, answers 200 with JSON."""
    response = api.status_with(ADMIN.token)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert isinstance(response.json(), dict)


def test_date_header_follows_the_injected_clock(
    start_server: StartServer, api_for: Callable[[RunningServer], Api]
) -> None:
    """Date is the server's clock, so clients that compute waits from it agree with a fake one."""
    clock = FakeClock(START_MS)
    api = api_for(start_server(clock=clock))
    for moment in (START_MS, START_MS + 1500, START_MS + 3 * DAY_MS):
        clock.set(moment)
        for response in (api.status_with(ADMIN.token), api.status({}), api.http.get("/nowhere")):
            assert response.headers["date"] == formatdate(moment // 1000, usegmt=True)
            assert parsedate_to_datetime(response.headers["date"]).timestamp() == moment // 1000
            assert len(response.headers.get_list("date")) == 1


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/nowhere", 404),
        ("GET", "/api/security/tokens/", 404),
        ("GET", "/api/security/tokens/123/extra", 404),
        ("PUT", "/api/security/tokens", 405),
        ("PATCH", "/api/security/tokens/123", 405),
        ("POST", "/api/server/status", 405),
    ],
)
def test_unknown_route_or_method_answers_json(api: Api, method: str, path: str, status: int) -> None:
    """Routes and methods the API lacks get 404 or 405 with a JSON body, not a redirect."""
    api.error_body(api.http.request(method, path, headers=api.key(ADMIN.token)), status)
