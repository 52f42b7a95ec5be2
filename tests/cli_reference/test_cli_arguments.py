"""How the reference CLI reads its arguments, as the real one does: commands, roles, ids, target, credentials, TLS."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import respx

from sts_reference import cli
from sts_reference.cli_transport import TlsSettings

from .conftest import API, API_TOKEN, SERVICE_TOKEN, URL, RunCli

CREATED = {"name": "ci", "token": "svctok-new"}


@pytest.mark.parametrize(
    ("extra_args", "sent"),
    [
        pytest.param(["--roles", "stackstate-admin"], {"roles": ["stackstate-admin"]}, id="one role"),
        pytest.param(["--roles", "a,b"], {"roles": ["a", "b"]}, id="comma separated"),
        pytest.param(["--roles", "a,b", "--roles", "c"], {"roles": ["a", "b", "c"]}, id="flag repeated"),
        pytest.param(["--roles", "a, b"], {"roles": ["a", " b"]}, id="read as CSV: a blank after a comma is kept"),
        pytest.param(["--roles", '"a,b",c'], {"roles": ["a,b", "c"]}, id="read as CSV: a quoted comma"),
        pytest.param(["--roles", ""], {"roles": []}, id="empty list passed on for the server to judge"),
        pytest.param(
            ["--roles", "r", "--dedicatedSubject", "svc-x"],
            {"roles": ["r"], "dedicatedSubject": "svc-x"},
            id="dedicated subject",
        ),
    ],
)
def test_create_sends_name_roles_and_dedicated_subject(
    run_cli: RunCli, api: respx.MockRouter, extra_args: list[str], sent: dict[str, object]
) -> None:
    """`create` posts {name, roles, dedicatedSubject} ("" when none is given, as the real CLI); no expiryDate."""
    route = api.post("/security/tokens").respond(200, json=CREATED)

    result = run_cli("service-token", "create", "-n", "ci", *extra_args)

    assert result.code == 0, result.err
    assert json.loads(route.calls.last.request.content) == {"name": "ci", "dedicatedSubject": "", **sent}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["service-token", "create", "--roles", "a"], 'required flag(s) "name" not set', id="no --name"),
        pytest.param(["service-token", "create", "--name", "n"], 'required flag(s) "roles" not set', id="no --roles"),
        pytest.param(["service-token", "create"], 'required flag(s) "name", "roles" not set', id="neither"),
        pytest.param(["service-token", "delete"], 'required flag(s) "id" not set', id="delete without an id"),
        pytest.param(
            ["service-token", "delete", "107484341630693"],
            'required flag(s) "id" not set',
            id="delete with a positional id, as the product page shows it",
        ),
        pytest.param(["service-token", "delete", "--id", "abc"], "invalid syntax", id="non-numeric id"),
        pytest.param(["service-token", "delete", "--id", "1.5"], "invalid syntax", id="a fraction"),
        pytest.param(["service-token", "delete", "--id", str(2**63)], "out of range", id="beyond int64"),
        pytest.param(["service-token", "lst"], "invalid choice", id="unknown command"),
        pytest.param(["service-token", "list", "--nme", "x"], "unrecognized arguments", id="unknown flag"),
        pytest.param(["service-token", "list", "-o", "yaml"], "invalid choice", id="unknown output format"),
    ],
)
def test_flag_errors_exit_3_and_send_nothing(
    run_cli: RunCli, offline: respx.MockRouter, argv: list[str], message: str
) -> None:
    """A malformed command line is a flag error: `[ERROR] …` on stderr, the usage on stdout, exit code 3."""
    result = run_cli(*argv)

    assert result.code == 3
    assert result.err.startswith("[ERROR] ")
    assert message.lower() in result.err.lower()
    assert result.out.startswith("usage:")


@pytest.mark.parametrize(
    ("id_args", "sent"),
    [
        pytest.param(["--id", "107484341630693"], 107484341630693, id="--id"),
        pytest.param(["-i", "107484341630693"], 107484341630693, id="-i"),
        pytest.param(["--id=107484341630693"], 107484341630693, id="--id=ID"),
        pytest.param(["--id", "0x1F"], 31, id="hexadecimal, as Go's ParseInt with base 0"),
        pytest.param(["--id", "017"], 15, id="a leading zero is octal, as in Go"),
        pytest.param(["9", "--id", "8"], 8, id="a positional word beside --id is ignored, as cobra does"),
    ],
)
def test_delete_takes_the_id_flag(run_cli: RunCli, api: respx.MockRouter, id_args: list[str], sent: int) -> None:
    """The real CLI's required --id/-i names the token to delete."""
    api.delete(f"/security/tokens/{sent}").respond(204)

    result = run_cli("service-token", "delete", *id_args)

    assert result.code == 0, result.err
    assert result.out == f"[SUCCESS] Service token deleted: {sent}\n"


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["--url", URL, "service-token", "list"], id="before the group"),
        pytest.param(["service-token", "--url", URL, "list"], id="between group and command"),
        pytest.param(["service-token", "list", "--url", URL], id="after the command"),
    ],
)
def test_common_options_are_accepted_anywhere_on_the_line(
    run_cli: RunCli, api: respx.MockRouter, argv: list[str]
) -> None:
    """Like cobra's persistent flags, --url and friends may come before or after commands."""
    api.get("/security/tokens").respond(200, json=[])

    result = run_cli(*argv, env={"STS_CLI_SERVICE_TOKEN": SERVICE_TOKEN})

    assert result.code == 0, result.err


def write_config(directory: Path, current: str = "main", **contexts: dict[str, str]) -> Path:
    """A config file in the real CLI's format: named contexts, one of them current."""
    path = directory / "config.yaml"
    doc = {"contexts": [{"name": name, "context": ctx} for name, ctx in contexts.items()], "current-context": current}
    path.write_text(json.dumps(doc))  # JSON is YAML
    return path


@pytest.mark.parametrize(
    ("flag_url", "env_url", "used"),
    [
        pytest.param("http://flag.test", "http://env.test", "flag", id="flag"),
        pytest.param(None, "http://env.test", "env", id="env over config"),
        pytest.param(None, None, "cfg", id="config when alone"),
        pytest.param(None, "", "cfg", id="empty env counts as unset"),
    ],
)
def test_url_precedence_is_flag_then_env_then_config(
    run_cli: RunCli, tmp_path: Path, flag_url: str | None, env_url: str | None, used: str
) -> None:
    """Flags beat the environment, the environment beats the config file."""
    config = write_config(tmp_path, main={"url": "http://cfg.test"})
    env = {"STS_CLI_SERVICE_TOKEN": SERVICE_TOKEN}
    if env_url is not None:
        env["STS_CLI_URL"] = env_url
    argv = ["service-token", "list", "--config", str(config)] + (["--url", flag_url] if flag_url else [])

    with respx.mock(base_url=f"http://{used}.test/api", assert_all_called=True) as router:
        router.get("/server/info").respond(200, json={})
        router.get("/security/tokens").respond(200, json=[])
        result = run_cli(*argv, env=env)

    assert result.code == 0, result.err


@pytest.mark.parametrize(
    ("argv", "env", "used"),
    [
        pytest.param([], {}, "main", id="current-context"),
        pytest.param(["--context", "other"], {}, "other", id="--context"),
        pytest.param(["-c", "other"], {}, "other", id="-c"),
        pytest.param([], {"STS_CLI_CONTEXT": "other"}, "other", id="STS_CLI_CONTEXT"),
    ],
)
def test_context_is_chosen_by_flag_or_environment(
    run_cli: RunCli, tmp_path: Path, argv: list[str], env: dict[str, str], used: str
) -> None:
    config = write_config(
        tmp_path,
        main={"url": "http://main.test", "service-token": "t"},
        other={"url": "http://other.test", "service-token": "t"},
    )
    with respx.mock(base_url=f"http://{used}.test/api", assert_all_called=True) as router:
        router.get("/server/info").respond(200, json={})
        router.get("/security/tokens").respond(200, json=[])
        result = run_cli("service-token", "list", "--config", str(config), *argv, env=env)

    assert result.code == 0, result.err


@pytest.mark.parametrize(
    ("flags", "env", "context", "header", "secret"),
    [
        pytest.param(
            ["--service-token", "from-flag"],
            {"STS_CLI_SERVICE_TOKEN": "from-env"},
            {"service-token": "from-config"},
            "X-API-Key",
            "from-flag",
            id="service token: flag over env and config",
        ),
        pytest.param(
            [],
            {"STS_CLI_SERVICE_TOKEN": "from-env"},
            {"service-token": "from-config"},
            "X-API-Key",
            "from-env",
            id="service token: env over config",
        ),
        pytest.param([], {}, {"service-token": "from-config"}, "X-API-Key", "from-config", id="service token: config"),
        pytest.param(["--api-token", "from-flag"], {}, {}, "X-API-Token", "from-flag", id="api token: flag"),
        pytest.param([], {}, {"api-token": "from-config"}, "X-API-Token", "from-config", id="api token: config"),
    ],
)
def test_credential_precedence_and_header(
    run_cli: RunCli,
    tmp_path: Path,
    flags: list[str],
    env: dict[str, str],
    context: dict[str, str],
    header: str,
    secret: str,
) -> None:
    """Each setting from the first source that has it; a service token in X-API-Key, an API token in X-API-Token."""
    config_path = write_config(tmp_path, main={"url": URL, **context})
    other = "X-API-Token" if header == "X-API-Key" else "X-API-Key"

    with respx.mock(base_url=API, assert_all_called=True) as router:
        info = router.get("/server/info").respond(200, json={})
        listing = router.get("/security/tokens").respond(200, json=[])
        result = run_cli("service-token", "list", "--config", str(config_path), *flags, env=env)

    assert result.code == 0, result.err
    for call in (info.calls.last, listing.calls.last):
        assert call.request.headers[header] == secret
        assert other not in call.request.headers


@pytest.mark.parametrize(
    ("flags", "env", "expected_api"),
    [
        pytest.param([], {}, f"{URL}/api", id="default /api"),
        pytest.param([], {"STS_CLI_API_PATH": "/env"}, f"{URL}/env", id="env"),
        pytest.param(["--api-path", "flag/"], {"STS_CLI_API_PATH": "/env"}, f"{URL}/flag", id="flag"),
    ],
)
def test_api_path_precedence_and_default(
    run_cli: RunCli, flags: list[str], env: dict[str, str], expected_api: str
) -> None:
    """STS_CLI_API_PATH and --api-path move the API; /api when nobody says otherwise."""
    env = {"STS_CLI_URL": URL + "/", "STS_CLI_SERVICE_TOKEN": SERVICE_TOKEN, **env}

    with respx.mock(base_url=expected_api, assert_all_called=True) as router:
        router.get("/server/info").respond(200, json={})
        router.get("/security/tokens").respond(200, json=[])
        result = run_cli("service-token", "list", *flags, env=env)

    assert result.code == 0, result.err


@pytest.mark.parametrize(
    ("argv", "env", "config_text", "named"),
    [
        pytest.param([], {"STS_CLI_SERVICE_TOKEN": "t"}, None, "STS_CLI_URL", id="no url"),
        pytest.param([], {"STS_CLI_URL": URL}, None, "STS_CLI_SERVICE_TOKEN", id="no credential"),
        pytest.param(["--url", "sts.test"], {"STS_CLI_SERVICE_TOKEN": "t"}, None, "http://", id="no scheme"),
        pytest.param(
            ["--service-token", "a", "--api-token", "b"], {"STS_CLI_URL": URL}, None, "only one", id="both as flags"
        ),
        pytest.param(
            ["--api-token", "b"],
            {"STS_CLI_URL": URL, "STS_CLI_SERVICE_TOKEN": "a"},
            None,
            "only one",
            id="both kinds from two sources (merged setting by setting)",
        ),
        pytest.param(["--config", "/nonexistent/sts.yaml"], {}, None, "/nonexistent/sts.yaml", id="config missing"),
        pytest.param([], {}, "url: [unclosed", "not valid YAML", id="config not YAML"),
        pytest.param([], {}, "- a list", "no list of contexts", id="config without contexts"),
        pytest.param(["-c", "nope"], {}, '{"contexts": []}', "no context named", id="no such context"),
    ],
)
def test_missing_or_bad_settings_are_config_errors(
    run_cli: RunCli,
    offline: respx.MockRouter,
    tmp_path: Path,
    argv: list[str],
    env: dict[str, str],
    config_text: str | None,
    named: str,
) -> None:
    """A target that cannot be used exits 1 (the real CLI's config error) with a message naming what is wrong."""
    if config_text is not None:
        config = tmp_path / "config.yaml"
        config.write_text(config_text)
        argv = [*argv, "--config", str(config)]

    result = run_cli("service-token", "list", *argv, env=env)

    assert result.code == 1
    assert named in result.err


def test_api_token_is_sent_in_x_api_token_only(run_cli: RunCli, api: respx.MockRouter) -> None:
    """A personal API token travels in X-API-Token; X-API-Key stays absent."""
    listing = api.get("/security/tokens").respond(200, json=[])

    result = run_cli("service-token", "list", env={"STS_CLI_URL": URL, "STS_CLI_API_TOKEN": API_TOKEN})

    assert result.code == 0, result.err
    request = listing.calls.last.request
    assert request.headers["X-API-Token"] == API_TOKEN
    assert "X-API-Key" not in request.headers


def test_broken_config_file_error_does_not_quote_the_file(
    run_cli: RunCli, offline: respx.MockRouter, tmp_path: Path
) -> None:
    """A YAML error names the position only: the offending line may hold a token."""
    config = tmp_path / "config.yaml"
    config.write_text(f"contexts:\n- service-token: {SERVICE_TOKEN}: oops\n")

    result = run_cli("service-token", "list", "--config", str(config))

    assert result.code == 1
    assert "line 2" in result.err
    assert SERVICE_TOKEN not in result.err


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        pytest.param([], {}, TlsSettings(), id="none: system trust and proxies"),
        pytest.param(["--skip-ssl"], {}, TlsSettings(skip_ssl=True), id="--skip-ssl"),
        pytest.param([], {"STS_SKIP_SSL": "true"}, TlsSettings(skip_ssl=True), id="STS_SKIP_SSL"),
        pytest.param(["--ca-cert-path", "/ca.pem"], {}, TlsSettings(ca_cert_path="/ca.pem"), id="--ca-cert-path"),
        pytest.param([], {"STS_CA_CERT_PATH": "/ca.pem"}, TlsSettings(ca_cert_path="/ca.pem"), id="STS_CA_CERT_PATH"),
        pytest.param(
            ["--ca-cert-base64-data", "QUJD"], {}, TlsSettings(ca_cert_base64="QUJD"), id="--ca-cert-base64-data"
        ),
    ],
)
def test_tls_settings_are_read_from_flags_and_environment(
    argv: list[str], env: dict[str, str], expected: TlsSettings
) -> None:
    args = cli.build_parser().parse_args(["service-token", "list", *argv])
    target = cli.resolve_target(args, {"STS_CLI_URL": "https://sts.test", "STS_CLI_SERVICE_TOKEN": "t", **env})
    assert target.tls == expected
    assert target.tls.own_transport == (expected != TlsSettings())


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        pytest.param(["--ca-cert-path", "/nonexistent/ca.pem"], 5, "cannot read the ca certificate", id="unreadable"),
        pytest.param(["--ca-cert-base64-data", base64.b64encode(b"no pem").decode()], 11, "failed to parse", id="bad"),
    ],
)
def test_unusable_ca_is_refused_before_anything_is_sent(
    run_cli: RunCli, offline: respx.MockRouter, argv: list[str], code: int, message: str
) -> None:
    result = run_cli(
        "service-token", "list", *argv, env={"STS_CLI_URL": "https://sts.test", "STS_CLI_SERVICE_TOKEN": "t"}
    )

    assert result.code == code
    assert message in result.err.lower()
