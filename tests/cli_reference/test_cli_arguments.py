"""How the reference CLI reads its arguments: commands, roles, ids, target and credentials."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import respx

from .conftest import API, API_TOKEN, SERVICE_TOKEN, URL, RunCli

CREATED = {"name": "ci", "token": "svctok-new"}


@pytest.mark.parametrize(
    ("role_args", "sent"),
    [
        pytest.param(["--roles", "stackstate-admin"], ["stackstate-admin"], id="one role"),
        pytest.param(["--roles", "a,b"], ["a", "b"], id="comma separated"),
        pytest.param(["--roles", "a,b", "--roles", "c"], ["a", "b", "c"], id="flag repeated"),
        pytest.param(["--roles", "a, b"], ["a", "b"], id="blanks around commas dropped"),
        pytest.param(["--roles", ""], [], id="empty list passed on for the server to judge"),
    ],
)
def test_create_sends_name_and_roles_as_given(
    run_cli: RunCli, api: respx.MockRouter, role_args: list[str], sent: list[str]
) -> None:
    """`create` posts exactly {name, roles}: no expiryDate unless --expiration is given."""
    route = api.post("/security/tokens").respond(200, json=CREATED)

    result = run_cli("service-token", "create", "--name", "ci", *role_args)

    assert result.code == 0, result.err
    assert json.loads(route.calls.last.request.content) == {"name": "ci", "roles": sent}


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["service-token", "create", "--roles", "a"], id="create without --name"),
        pytest.param(["service-token", "create", "--name", "n"], id="create without --roles"),
        pytest.param(["service-token", "delete"], id="delete without an id"),
        pytest.param(["service-token", "delete", "abc"], id="delete with a non-numeric id"),
        pytest.param(["service-token", "delete", "--id", "1.5"], id="delete with a fraction"),
        pytest.param(["service-token", "delete", str(2**63)], id="delete with id beyond int64"),
        pytest.param(["service-token", "delete", "1", "--id", "2"], id="delete with two ids"),
        pytest.param(["service-token", "lst"], id="unknown command"),
        pytest.param(["service-token", "list", "--nme", "x"], id="unknown flag"),
        pytest.param(["service-token", "list", "-o", "yaml"], id="unknown output format"),
        pytest.param(["service-token"], id="no command"),
    ],
)
def test_usage_error_exits_2_and_sends_nothing(run_cli: RunCli, offline: respx.MockRouter, argv: list[str]) -> None:
    """A malformed command line is refused argparse-style before anything is sent."""
    result = run_cli(*argv)

    assert result.code == 2
    assert "usage:" in result.err
    assert result.out == ""


@pytest.mark.parametrize(
    "id_args",
    [
        pytest.param(["107484341630693"], id="positional, as documented"),
        pytest.param(["--id", "107484341630693"], id="--id, as the real CLI"),
        pytest.param(["-i", "107484341630693"], id="-i"),
        pytest.param(["--id=107484341630693"], id="--id=ID"),
        pytest.param(["107484341630693", "-i", "107484341630693"], id="both forms agreeing"),
    ],
)
def test_delete_takes_the_id_in_either_form(run_cli: RunCli, api: respx.MockRouter, id_args: list[str]) -> None:
    """The documented positional id and the real CLI's --id/-i both delete that id."""
    api.delete("/security/tokens/107484341630693").respond(204)

    result = run_cli("service-token", "delete", *id_args)

    assert result.code == 0, result.err
    assert result.out == "✅ Service token deleted: 107484341630693\n"


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


def write_config(directory: Path, **settings: str) -> Path:
    path = directory / "sts.yaml"
    path.write_text(json.dumps({key.replace("_", "-"): v for key, v in settings.items()}))
    return path  # JSON is YAML, and keeps the helper free of quoting questions


@pytest.mark.parametrize(
    ("flag_url", "env_url", "config_url", "used"),
    [
        pytest.param("http://flag.test", "http://env.test", "http://cfg.test", "flag", id="flag"),
        pytest.param(None, "http://env.test", "http://cfg.test", "env", id="env over config"),
        pytest.param(None, None, "http://cfg.test", "cfg", id="config when alone"),
        pytest.param(None, "", "http://cfg.test", "cfg", id="empty env counts as unset"),
    ],
)
def test_url_precedence_is_flag_then_env_then_config(
    run_cli: RunCli,
    tmp_path: Path,
    flag_url: str | None,
    env_url: str | None,
    config_url: str,
    used: str,
) -> None:
    """Flags beat the environment, the environment beats the config file."""
    config = write_config(tmp_path, url=config_url)
    env = {"STS_CLI_SERVICE_TOKEN": SERVICE_TOKEN, "STS_CLI_CONFIG": str(config)}
    if env_url is not None:
        env["STS_CLI_URL"] = env_url
    argv = ["service-token", "list"] + (["--url", flag_url] if flag_url else [])

    with respx.mock(base_url=f"http://{used}.test/api", assert_all_called=True) as router:
        router.get("/server/info").respond(200, json={})
        router.get("/security/tokens").respond(200, json=[])
        result = run_cli(*argv, env=env)

    assert result.code == 0, result.err


@pytest.mark.parametrize(
    ("flags", "env", "config", "header", "secret"),
    [
        pytest.param(
            ["--service-token", "from-flag"],
            {"STS_CLI_SERVICE_TOKEN": "from-env"},
            {"service_token": "from-config"},
            "X-API-Key",
            "from-flag",
            id="service token: flag over env and config",
        ),
        pytest.param(
            [],
            {"STS_CLI_SERVICE_TOKEN": "from-env"},
            {"service_token": "from-config"},
            "X-API-Key",
            "from-env",
            id="service token: env over config",
        ),
        pytest.param(
            [],
            {},
            {"service_token": "from-config"},
            "X-API-Key",
            "from-config",
            id="service token: config when alone",
        ),
        pytest.param(
            ["--api-token", "from-flag"],
            {"STS_CLI_SERVICE_TOKEN": "from-env"},
            {},
            "X-API-Token",
            "from-flag",
            id="api token flag beats a service token from env",
        ),
        pytest.param(
            [],
            {"STS_CLI_API_TOKEN": "from-env"},
            {"service_token": "from-config"},
            "X-API-Token",
            "from-env",
            id="api token from env beats a service token from config",
        ),
        pytest.param(
            [],
            {},
            {"api_token": "from-config"},
            "X-API-Token",
            "from-config",
            id="api token: config when alone",
        ),
    ],
)
def test_credential_precedence_and_header(
    run_cli: RunCli,
    tmp_path: Path,
    flags: list[str],
    env: dict[str, str],
    config: dict[str, str],
    header: str,
    secret: str,
) -> None:
    """The credential comes whole from the first source that has one, in its own header."""
    config_path = write_config(tmp_path, url=URL, **config)
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
    ("flags", "env", "config", "expected_api"),
    [
        pytest.param([], {}, {}, f"{URL}/api", id="default /api"),
        pytest.param([], {}, {"api_path": "/cfg"}, f"{URL}/cfg", id="config"),
        pytest.param([], {"STS_CLI_API_PATH": "/env"}, {"api_path": "/cfg"}, f"{URL}/env", id="env"),
        pytest.param(["--api-path", "flag/"], {"STS_CLI_API_PATH": "/env"}, {}, f"{URL}/flag", id="flag"),
    ],
)
def test_api_path_precedence_and_default(
    run_cli: RunCli,
    tmp_path: Path,
    flags: list[str],
    env: dict[str, str],
    config: dict[str, str],
    expected_api: str,
) -> None:
    """STS_CLI_API_PATH and friends move the API; /api when nobody says otherwise."""
    config_path = write_config(tmp_path, **config)
    env = {"STS_CLI_URL": URL + "/", "STS_CLI_SERVICE_TOKEN": SERVICE_TOKEN, **env}

    with respx.mock(base_url=expected_api, assert_all_called=True) as router:
        router.get("/server/info").respond(200, json={})
        router.get("/security/tokens").respond(200, json=[])
        result = run_cli("service-token", "list", "--config", str(config_path), *flags, env=env)

    assert result.code == 0, result.err


def test_config_flag_beats_sts_cli_config(run_cli: RunCli, tmp_path: Path) -> None:
    """--config PATH is read instead of $STS_CLI_CONFIG, not as well."""
    (tmp_path / "flag").mkdir()
    (tmp_path / "env").mkdir()
    chosen = write_config(tmp_path / "flag", url="http://flag.test", service_token="t")
    ignored = write_config(tmp_path / "env", url="http://env.test", service_token="t")

    with respx.mock(base_url="http://flag.test/api", assert_all_called=True) as router:
        router.get("/server/info").respond(200, json={})
        router.get("/security/tokens").respond(200, json=[])
        result = run_cli("service-token", "list", "--config", str(chosen), env={"STS_CLI_CONFIG": str(ignored)})

    assert result.code == 0, result.err


@pytest.mark.parametrize(
    ("argv", "env", "config_text", "named"),
    [
        pytest.param([], {"STS_CLI_SERVICE_TOKEN": "t"}, None, "STS_CLI_URL", id="no url"),
        pytest.param([], {"STS_CLI_URL": URL}, None, "STS_CLI_SERVICE_TOKEN", id="no credential"),
        pytest.param(["--url", "sts.test"], {"STS_CLI_SERVICE_TOKEN": "t"}, None, "http://", id="no scheme"),
        pytest.param(
            ["--service-token", "a", "--api-token", "b"],
            {"STS_CLI_URL": URL},
            None,
            "only one",
            id="two credentials on the command line",
        ),
        pytest.param(
            [],
            {"STS_CLI_URL": URL, "STS_CLI_SERVICE_TOKEN": "a", "STS_CLI_API_TOKEN": "b"},
            None,
            "only one",
            id="two credentials in the environment",
        ),
        pytest.param(
            ["--config", "/nonexistent/sts.yaml"],
            {},
            None,
            "/nonexistent/sts.yaml",
            id="config file missing",
        ),
        pytest.param([], {}, "url: [unclosed", "not valid YAML", id="config not YAML"),
        pytest.param([], {}, "- a list", "mapping", id="config not a mapping"),
        pytest.param([], {}, "servicetoken: x", "servicetoken", id="config with unknown key"),
        pytest.param([], {}, "url: 8080", "must be text", id="config value not text"),
    ],
)
def test_missing_or_bad_settings_are_usage_errors(
    run_cli: RunCli,
    offline: respx.MockRouter,
    tmp_path: Path,
    argv: list[str],
    env: dict[str, str],
    config_text: str | None,
    named: str,
) -> None:
    """A target that cannot be used exits 2 with a message naming what is wrong."""
    if config_text is not None:
        config = tmp_path / "sts.yaml"
        config.write_text(config_text)
        env = {**env, "STS_CLI_CONFIG": str(config)}

    result = run_cli("service-token", "list", *argv, env=env)

    assert result.code == 2
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
    config = tmp_path / "sts.yaml"
    config.write_text(f"url: {URL}\nservice-token: {SERVICE_TOKEN}: oops\n")

    result = run_cli("service-token", "list", env={"STS_CLI_CONFIG": str(config)})

    assert result.code == 2
    assert "line 2" in result.err
    assert SERVICE_TOKEN not in result.err
