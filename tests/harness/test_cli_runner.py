"""The CLI runner: a clean environment, a throw-away home, masking, timeouts; the ledger adopting CLI tokens."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from sts_conformance.checking.cli_runner import CliRunner, CliUnavailable, split_command
from sts_conformance.core.errors import ProfileError
from sts_conformance.core.redact import REDACTOR
from sts_conformance.target.client import PROXY_VARIABLES, TLS_VARIABLES, ApiClient, AuthForm
from sts_conformance.target.profile import parse_profile
from sts_conformance.tokens.ledger import TokenLedger
from sts_reference.config import BootstrapSpec
from sts_reference.testing import running_server

SECRET = "svc-runner-test-secret-0123456789"

# A stand-in CLI that reports what it was given: argv, environment, whether HOME exists.
ECHO_CLI = """\
import json, os, sys
print(json.dumps({"argv": sys.argv[1:], "env": dict(os.environ), "home_exists": os.path.isdir(os.environ["HOME"])}))
"""


@pytest.fixture
def echo_cli(tmp_path: Path) -> str:
    script = tmp_path / "echo cli.py"  # a space in the path: the command line must quote it
    script.write_text(ECHO_CLI, encoding="utf-8")
    return f"{{python}} '{script}'"


def _report(runner: CliRunner, *args: str, **kw) -> dict:
    res = runner.run(*args, **kw)
    assert res.exit_code == 0, res.describe()
    return json.loads(res.stdout)


def test_split_command_fills_in_the_interpreter():
    assert split_command("{python} -m sts_reference.cli", python="/opt/my python/bin/python") == [
        "/opt/my python/bin/python",
        "-m",
        "sts_reference.cli",
    ]
    assert split_command("sts") == ["sts"]


@pytest.mark.parametrize(
    "command, problem",
    [("{pyhton} -m x", "unknown placeholder"), ("   ", "empty"), ("sts 'unclosed", "cannot be split")],
)
def test_split_command_refuses_bad_command_lines(command, problem):
    with pytest.raises(ValueError, match=problem):
        split_command(command)


def test_environment_is_clean_and_home_thrown_away(echo_cli, monkeypatch):
    """Only the documented variables reach the CLI; HOME is a fresh directory, gone afterwards."""
    for name in (*TLS_VARIABLES, *PROXY_VARIABLES):  # passed on when set (test_cli_environment.py)
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STS_CLI_URL", "http://developer.example")
    monkeypatch.setenv("STS_CLI_API_TOKEN", "developer-token")
    monkeypatch.setenv("XDG_CONFIG_HOME", "/home/dev/.config")
    runner = CliRunner(echo_cli, "http://target.test:8080/", "/api")
    report = _report(runner, "service-token", "list", token=SECRET, tz="America/Los_Angeles")
    env = report["env"]
    # the interpreter may add its own variables (e.g. macOS's __CF_USER_TEXT_ENCODING, LC_CTYPE)
    ours = {k: v for k, v in env.items() if not k.startswith("__") and k != "LC_CTYPE"}
    assert set(ours) == {
        "PATH",
        "LANG",
        "LC_ALL",
        "TZ",
        "HOME",
        "XDG_CONFIG_HOME",
        "NO_COLOR",
        "STS_CLI_URL",
        "STS_CLI_API_PATH",
        "STS_CLI_SERVICE_TOKEN",
    }
    assert env["STS_CLI_URL"] == "http://target.test:8080"
    assert env["STS_CLI_SERVICE_TOKEN"] == SECRET and env["STS_CLI_API_PATH"] == "/api"
    assert env["TZ"] == "America/Los_Angeles" and env["NO_COLOR"] == "1"
    assert env["XDG_CONFIG_HOME"].startswith(env["HOME"])
    assert report["home_exists"] and not os.path.exists(env["HOME"])
    assert report["argv"] == ["service-token", "list"]


def test_flags_carry_target_and_token_and_keep_them_out_of_the_environment(echo_cli):
    runner = CliRunner(echo_cli, "http://target.test", "/api")
    report = _report(runner, "service-token", "list", token=SECRET, output="json", via="flags")
    assert report["argv"] == [
        "service-token",
        "list",
        "-o",
        "json",
        "--url",
        "http://target.test",
        "--service-token",
        SECRET,
    ]
    assert not [k for k in report["env"] if k.startswith("STS_CLI_")]


def test_flags_with_other_api_path_set_it_in_the_environment(echo_cli):
    report = _report(CliRunner(echo_cli, "http://target.test", "/sts/api"), "x", token=SECRET, via="flags")
    assert report["env"]["STS_CLI_API_PATH"] == "/sts/api"


def test_description_masks_the_token_in_arguments(echo_cli):
    """A secret passed as --service-token never shows in the description of a run."""
    res = CliRunner(echo_cli, "http://target.test").run("list", token=SECRET, via="flags")
    text = res.describe()
    assert SECRET not in text and "<secret:" in text


def test_hung_cli_is_killed_and_fails(tmp_path):
    script = tmp_path / "hang.py"
    script.write_text(f"import time\nprint({SECRET!r}, flush=True)\ntime.sleep(30)\n", encoding="utf-8")
    runner = CliRunner(f"{{python}} {script}", "http://target.test", timeout=0.5)
    with pytest.raises(CliUnavailable, match=r"did not finish within 0\.5s") as info:
        runner.run("list", token=SECRET)
    assert SECRET not in str(info.value)


def test_missing_cli_names_the_setting():
    runner = CliRunner("/nonexistent/sts", "http://target.test")
    with pytest.raises(CliUnavailable, match=r"cli\.command"):
        runner.run("list", token=SECRET)


def test_exit_code_and_streams_are_kept(tmp_path):
    script = tmp_path / "fail.py"
    script.write_text("import sys\nprint('out')\nprint('❌ no', file=sys.stderr)\nsys.exit(4)\n", encoding="utf-8")
    res = CliRunner(f"{{python}} {script}", "http://target.test").run("list", token=None)
    assert (res.exit_code, res.out, res.err, res.error_lines()) == (4, "out\n", "❌ no\n", ["❌ no"])


@pytest.mark.parametrize("form", ["option", "positional", "either"])
def test_profile_cli_delete_form(form):
    profile = parse_profile({"name": "x", "url": "http://x", "admin_token": "t", "cli": {"delete_form": form}})
    assert profile.cli_delete_form == form and profile.redacted()["cli"]["delete_form"] == form


def test_profile_cli_delete_form_defaults_to_either_and_refuses_others():
    assert parse_profile({"name": "x", "url": "http://x", "admin_token": "t"}).cli_delete_form == "either"
    with pytest.raises(ProfileError, match=r"cli\.delete_form must be one of option, positional, either"):
        parse_profile({"name": "x", "url": "http://x", "admin_token": "t", "cli": {"delete_form": "--id"}})


ADMIN = "runner-admin-0123456789abcdef"


def test_ledger_adopts_a_token_made_elsewhere_and_cleans_it_up():
    """A token the CLI made under a run name is found by name, tracked, masked and deleted at cleanup."""
    spec = BootstrapSpec(token=ADMIN, roles=["stackstate-admin"], ttl_ms=3_600_000)
    with running_server(auth_config=spec) as srv, ApiClient(srv.url) as client:
        ledger = TokenLedger(client, ADMIN, AuthForm.X_API_KEY, prefix="stsct-adopt-gw0")
        name = ledger.name("cli")
        made = client.create_token(ADMIN, {"name": name, "roles": ["stackstate-guest"]}).json()
        assert ledger.adopt(ledger.name("never-made")) is None
        tok = ledger.adopt(name, made["token"], roles=["stackstate-guest"])
        assert tok is not None and tok.id is not None and made["token"] in REDACTOR.secrets()
        with pytest.raises(ValueError, match="only tokens with this run's names"):
            ledger.adopt("someone-elses-token")
        assert ledger.cleanup() == []
        assert name not in [i["name"] for i in ledger.list_items()]


def test_runner_uses_the_suite_interpreter_by_default():
    assert split_command("{python}")[0] == sys.executable


# -- the terminal a call runs in, and what it leaves in its home -------------------------------

TERMINAL_CLI = """\
import os, sys
size = os.get_terminal_size(1).columns if sys.stdout.isatty() else None
print(size, os.environ.get("COLUMNS"))
print("second line")
with open(os.path.join(os.environ["HOME"], "saved.yaml"), "w") as out:
    out.write("service-token: " + sys.argv[1] + "\\n")
"""


@pytest.mark.parametrize(("columns", "first_line"), [(None, "None None"), (200, "200 200"), (40, "40 40")])
def test_a_call_runs_into_a_pipe_or_a_terminal_of_the_width_asked(tmp_path: Path, columns, first_line):
    """stdout a pipe by default (the real CLI then assumes 80 columns), or a pseudo-terminal that wide."""
    script = tmp_path / "terminal_cli.py"
    script.write_text(TERMINAL_CLI, encoding="utf-8")
    runner = CliRunner(f"{{python}} {script}", "http://127.0.0.1:9")
    res = runner.run("not-a-secret", token=None, columns=columns)
    assert res.exit_code == 0, res.describe()
    assert res.stdout == f"{first_line}\nsecond line\n"  # no "\r\n" from the terminal
    assert res.columns == columns


def test_secrets_saved_under_home_are_found(tmp_path: Path):
    """After the call, every file under the throw-away home is searched for the secrets the run knows."""
    script = tmp_path / "terminal_cli.py"
    script.write_text(TERMINAL_CLI, encoding="utf-8")
    runner = CliRunner(f"{{python}} {script}", "http://127.0.0.1:9")
    REDACTOR.register(SECRET)
    saved = runner.run(SECRET, token=None)
    clean = runner.run("nothing-secret-here", token=None)
    assert len(saved.home_secrets) == 1 and SECRET not in saved.home_secrets[0]
    assert clean.home_secrets == ()
