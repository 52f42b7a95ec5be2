"""How the reference CLI fails, as the real one does: exit codes 1/3/4 and the [ERROR] lines.

The real CLI's codes (``internal/common/exit_codes.go``): 1 a missing URL or credential, 3 a
flag error or an HTTP error on the token call, 4 any failure of ``server/info``.
"""

from __future__ import annotations

import json

import httpx
import pytest
import respx

from sts_reference.cli import EXIT_AUTH, EXIT_HTTP_ERROR

from .conftest import API, URL, RunCli

COMMANDS = [
    pytest.param(["create", "--name", "n", "--roles", "r"], ("POST", "/security/tokens"), id="create"),
    pytest.param(["list"], ("GET", "/security/tokens"), id="list"),
    pytest.param(["delete", "--id", "7"], ("DELETE", "/security/tokens/7"), id="delete --id"),
]
ERRORS_RESPONSE = {
    "_type": "ErrorsResponse",
    "trackingKey": "k",
    "serverTimestamp": 1,
    "errors": [{"_type": "InternalError", "message": "boom"}],
}


@pytest.mark.parametrize(("argv", "route"), COMMANDS)
def test_server_info_first_and_401_there_exits_4(
    run_cli: RunCli, api: respx.MockRouter, argv: list[str], route: tuple[str, str]
) -> None:
    """Every command asks /server/info first; a 401 there ends it with code 4, no token call."""
    api.routes["server_info"].respond(401)

    result = run_cli("service-token", *argv)

    assert result.code == EXIT_AUTH == 4
    assert result.out == ""
    assert result.err == (
        f"[ERROR] Authentication failed when connecting to {API}: 401 Unauthorized\n"
        "For more information: https://l.stackstate.com/cli-invalid-api-token\n"
    )


@pytest.mark.parametrize("status", [403, 404, 500, 503])
def test_other_server_info_errors_also_exit_4(run_cli: RunCli, api: respx.MockRouter, status: int) -> None:
    """As in the real CLI, any refusal of the connection check is a connect error."""
    api.routes["server_info"].respond(status, json=ERRORS_RESPONSE)

    result = run_cli("service-token", "list")

    assert result.code == 4
    assert result.err.startswith(f"[ERROR] Could not connect to {API} ({status} ")


@pytest.mark.parametrize(("argv", "route"), COMMANDS)
@pytest.mark.parametrize(
    ("status", "status_line"),
    [
        pytest.param(400, "400 Bad Request", id="400"),
        pytest.param(401, "401 Unauthorized", id="401"),
        pytest.param(403, "403 Forbidden", id="403"),
        pytest.param(404, "404 Not Found", id="404"),
        pytest.param(500, "500 Internal Server Error", id="500"),
    ],
)
def test_http_error_on_a_token_call_exits_3_with_the_status_line(
    run_cli: RunCli,
    api: respx.MockRouter,
    argv: list[str],
    route: tuple[str, str],
    status: int,
    status_line: str,
) -> None:
    """`[ERROR] <status line>` on stderr, then the JSON error body shown as YAML; exit code 3."""
    api.request(*route).respond(status, json=ERRORS_RESPONSE)

    result = run_cli("service-token", *argv)

    assert result.code == EXIT_HTTP_ERROR == 3
    assert result.out == ""
    first_line, body = result.err.split("\n", 1)
    assert first_line == f"[ERROR] {status_line}"
    assert body.startswith("_type: ErrorsResponse\n")
    assert "message: boom" in body


def test_http_error_with_a_plain_text_body_shows_it(run_cli: RunCli, api: respx.MockRouter) -> None:
    """A text/plain error body is shown under the status line, as the real CLI shows it."""
    api.delete("/security/tokens/7").respond(404, text="no such token")

    result = run_cli("service-token", "delete", "--id", "7")

    assert (result.code, result.err) == (3, "[ERROR] 404 Not Found\nno such token\n")


def test_json_output_reports_errors_as_json_on_stderr(run_cli: RunCli, api: respx.MockRouter) -> None:
    """-o json: the real CLI's {"error": true, "error-message": ...} on stderr, same exit code."""
    api.get("/security/tokens").respond(500, json=ERRORS_RESPONSE)

    result = run_cli("service-token", "list", "-o", "json")

    assert (result.code, result.out) == (3, "")
    assert json.loads(result.err) == {"error": True, "error-message": "500 Internal Server Error"}


@pytest.mark.parametrize(
    ("broken", "error", "code", "start"),
    [
        pytest.param(
            "server_info", httpx.ConnectError("[Errno 111] Connection refused"), 4, "Could not connect", id="refused"
        ),
        pytest.param("server_info", httpx.ConnectTimeout("timed out"), 4, "Could not connect", id="connect timeout"),
        pytest.param("tokens", httpx.ReadTimeout("timed out"), 3, "GET /security/tokens", id="token call timeout"),
        pytest.param("tokens", httpx.RemoteProtocolError("dropped"), 3, "GET /security/tokens", id="dropped"),
    ],
)
def test_unreachable_server(
    run_cli: RunCli, api: respx.MockRouter, broken: str, error: Exception, code: int, start: str
) -> None:
    """No answer on server/info is a connect error (4); on the token call, a failed call (3)."""
    if broken == "server_info":
        api.routes["server_info"].mock(side_effect=error)
    else:
        api.get("/security/tokens").mock(side_effect=error)

    result = run_cli("service-token", "list")

    assert result.code == code
    assert result.err.startswith(f"[ERROR] {start}")


@pytest.mark.parametrize(
    ("argv", "route", "body"),
    [
        pytest.param(["list"], ("GET", "/security/tokens"), b"<html>", id="list: not JSON"),
        pytest.param(["list"], ("GET", "/security/tokens"), b'{"a": 1}', id="list: not a list"),
        pytest.param(
            ["create", "--name", "n", "--roles", "r"],
            ("POST", "/security/tokens"),
            b'{"name": "n"}',
            id="create: no token",
        ),
    ],
)
def test_unreadable_success_body_exits_3(
    run_cli: RunCli, api: respx.MockRouter, argv: list[str], route: tuple[str, str], body: bytes
) -> None:
    """A 200 whose body is not what the API promises is a failed token call, not a crash."""
    api.request(*route).respond(200, content=body)

    result = run_cli("service-token", *argv)

    assert result.code == 3
    assert result.err.startswith("[ERROR] Unreadable response body")


def test_api_token_refused_exits_4(run_cli: RunCli, api: respx.MockRouter) -> None:
    """A personal API token refused on server/info is a connect error too."""
    api.routes["server_info"].respond(401)

    result = run_cli("service-token", "list", env={"STS_CLI_URL": URL, "STS_CLI_API_TOKEN": "t"})

    assert result.code == 4
    assert "Authentication failed" in result.err
