"""What the CLI gets to reach the target (TLS trust, proxies, cli.env), and the start-up check.

Also the reference CLI's side: it honours SSL_CERT_FILE/SSL_CERT_DIR and the proxy
variables from the environment it is given, as the Go ``sts`` does.
"""

from __future__ import annotations

import http.server
import io
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sts_conformance.checking.cli_runner import CliResult, CliRunner, CliTimedOut, CliUnavailable, no_answer_kind
from sts_conformance.core.errors import HarnessError
from sts_conformance.target.client import PROXY_VARIABLES, TLS_VARIABLES
from sts_conformance.target.connect import free_port
from sts_conformance.target.profile import parse_profile
from sts_reference import cli as reference_cli
from sts_reference.config import BootstrapSpec
from sts_reference.testing import RunningServer, running_server

from .suite_run import ROOT
from .tls_support import ADMIN_TOKEN, Pki, TlsFrontend, make_pki

ECHO_CLI = "import json, os; print(json.dumps(dict(os.environ)))"
TARGET = "https://sts.example"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def echo_cli(tmp_path: Path) -> str:
    script = tmp_path / "echo.py"
    script.write_text(ECHO_CLI, encoding="utf-8")
    return f"{{python}} {script}"


def _cli_env(runner: CliRunner) -> dict[str, str]:
    result = runner.run("service-token", "list", token="cli-env-test-token-0123456789")
    assert result.exit_code == 0, result.describe()
    return json.loads(result.stdout)


# -- what the CLI is given ----------------------------------------------------------------------


def test_tls_and_proxy_variables_reach_the_cli_and_nothing_else(echo_cli):
    """SSL_CERT_FILE/SSL_CERT_DIR and every proxy variable pass when set; others and STS_CLI_* never."""
    user = {name: f"value-of-{name}" for name in (*TLS_VARIABLES, *PROXY_VARIABLES)}
    user |= {"STS_CLI_URL": "http://developer.example", "STS_CLI_API_TOKEN": "dev", "JAVA_HOME": "/opt/java"}
    env = _cli_env(CliRunner(echo_cli, TARGET, environ=user))
    for name in (*TLS_VARIABLES, *PROXY_VARIABLES):
        assert env[name] == f"value-of-{name}"
    assert env["STS_CLI_URL"] == TARGET and "STS_CLI_API_TOKEN" not in env and "JAVA_HOME" not in env


def test_ca_bundle_is_the_clis_ssl_cert_file(echo_cli):
    """With ca_bundle the CLI trusts that file (SSL_CERT_FILE); the environment's own store is left out."""
    user = {"SSL_CERT_FILE": "/etc/mine.pem", "SSL_CERT_DIR": "/etc/mine", "HTTPS_PROXY": "http://proxy:3128"}
    env = _cli_env(CliRunner(echo_cli, TARGET, ca_bundle="/srv/ca.pem", environ=user))
    assert env["SSL_CERT_FILE"] == "/srv/ca.pem" and "SSL_CERT_DIR" not in env
    assert env["HTTPS_PROXY"] == "http://proxy:3128"


def test_cli_env_copies_named_variables_when_set(echo_cli):
    """cli.env adds variables from the suite's environment; unset or empty ones are not invented."""
    user = {"JAVA_HOME": "/opt/java", "EMPTY": "", "HOME": "/home/dev", "STS_CLI_URL": "http://developer.example"}
    runner = CliRunner(echo_cli, TARGET, pass_env=["JAVA_HOME", "EMPTY", "UNSET", "HOME", "STS_CLI_URL"], environ=user)
    env = _cli_env(runner)
    assert env["JAVA_HOME"] == "/opt/java" and "EMPTY" not in env and "UNSET" not in env
    assert env["HOME"] != "/home/dev" and env["STS_CLI_URL"] == TARGET


def test_runner_from_profile_takes_ca_bundle_and_cli_env(pki, echo_cli):
    profile = parse_profile(
        {
            "name": "t",
            "url": TARGET,
            "admin_token": "x",
            "ca_bundle": str(pki.ca_pem),
            "cli": {"command": echo_cli, "env": ["KUBECONFIG"]},
        },
        environ={},
    )
    runner = CliRunner.from_profile(profile, TARGET, environ={"KUBECONFIG": "/k", "no_proxy": ".internal"})
    assert runner.inherited == {
        "SSL_CERT_FILE": str(pki.ca_pem),
        "STS_CA_CERT_PATH": str(pki.ca_pem),  # what sts v3.1+ reads
        "KUBECONFIG": "/k",
        "no_proxy": ".internal",
    }


# -- telling "no HTTP answer" from "an answer the checks judge" ----------------------------------

PY_TLS = (
    "❌ could not connect to https://sts.example/api (ConnectError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate "
    "verify failed: unable to get local issuer certificate (_ssl.c:1006))"
)
GO_TLS = (
    '❌ could not connect to https://sts.example: Get "https://sts.example/api/server/info": tls: failed to '
    "verify certificate: x509: certificate signed by unknown authority"
)
GO_PROXY = (
    '[ERROR] Get "https://sts.example/api/server/info": proxyconnect tcp: dial tcp 10.0.0.1:3128: connect: '
    "connection refused"
)
GO_DNS = (
    '[ERROR] Get "https://sts.example/api/server/info": dial tcp: lookup sts.example on 127.0.0.53:53: no such host'
)
GO_TIMEOUT = "[ERROR] context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
PY_REFUSED = "❌ could not connect to https://sts.example/api (ConnectError: [Errno 111] Connection refused)"
ANSWER_401 = "❌ could not connect to https://sts.example/api: 401 Unauthorized: the service token was not accepted"


def _result(exit_code: int, stderr: str, stdout: str = "") -> CliResult:
    return CliResult(("sts",), exit_code, stdout, stderr, "UTC", 0.1)


@pytest.mark.parametrize(
    ("url", "exit_code", "stderr", "kind"),
    [
        pytest.param(TARGET, 5, PY_TLS, "tls", id="python-tls"),
        pytest.param(TARGET, 4, GO_TLS, "tls", id="go-tls"),
        pytest.param(TARGET, 4, GO_PROXY, "proxy", id="go-proxy"),
        pytest.param(TARGET, 4, GO_DNS, "dns", id="go-dns"),
        pytest.param(TARGET, 4, GO_TIMEOUT, "connection", id="go-timeout"),
        pytest.param(TARGET, 5, PY_REFUSED, "connection", id="python-refused"),
        pytest.param(TARGET, 4, ANSWER_401, None, id="401-is-an-answer"),
        pytest.param(
            TARGET, 3, "❌ 500 Internal Server Error\nconnection refused upstream", None, id="500-is-an-answer"
        ),
        pytest.param(TARGET, 0, PY_TLS, None, id="exit-0"),
        pytest.param(TARGET, 2, "usage: sts [-h]\nsts: error: unrecognized arguments", None, id="usage-error"),
        pytest.param(
            "https://tls-proxy.example",
            4,
            '❌ Get "https://tls-proxy.example/api/server/info": unexpected reply',
            None,
            id="target-host-named-proxy",
        ),
    ],
)
def test_no_answer_kind(url, exit_code, stderr, kind):
    """Only output that shows no HTTP answer came back counts; any status line is an answer."""
    assert no_answer_kind(_result(exit_code, stderr), url) == kind


def _fake_cli(tmp_path: Path, stderr: str, exit_code: int, sleep: float = 0) -> str:
    script = tmp_path / "fake_sts.py"
    script.write_text(
        f"import sys, time\ntime.sleep({sleep})\nprint({stderr!r}, file=sys.stderr)\nsys.exit({exit_code})\n",
        encoding="utf-8",
    )
    return f"{{python}} {script}"


def test_cli_without_tls_trust_is_a_harness_error_naming_the_settings(tmp_path):
    runner = CliRunner(_fake_cli(tmp_path, PY_TLS, 5), TARGET, environ={})
    with pytest.raises(CliUnavailable) as info:
        runner.check_reaches_target("start-up-token-0123456789")
    assert isinstance(info.value, HarnessError) and not isinstance(info.value, AssertionError)
    message = str(info.value)
    assert message.startswith(f"the CLI does not trust the TLS certificate of {TARGET}: set ca_bundle")
    assert "export SSL_CERT_FILE" in message and "CERTIFICATE_VERIFY_FAILED" in message


def test_cli_given_the_ca_that_still_refuses_is_told_where_to_look(tmp_path):
    runner = CliRunner(_fake_cli(tmp_path, GO_TLS, 4), TARGET, ca_bundle="/srv/ca.pem", environ={})
    with pytest.raises(CliUnavailable, match=r"although it was given ca_bundle as SSL_CERT_FILE.*cli\.env"):
        runner.check_reaches_target("start-up-token-0123456789", verify_tls=False)


def test_cli_without_a_connection_names_the_proxy_variables(tmp_path):
    runner = CliRunner(_fake_cli(tmp_path, GO_PROXY, 4), TARGET, environ={"HTTPS_PROXY": "http://10.0.0.1:3128"})
    with pytest.raises(CliUnavailable, match=r"its proxy could not be used.*HTTPS_PROXY.*cli\.env") as info:
        runner.check_reaches_target("start-up-token-0123456789")
    assert "Passed on to the CLI: HTTPS_PROXY." in str(info.value)


def test_hung_cli_at_start_up_is_a_harness_error(tmp_path):
    runner = CliRunner(_fake_cli(tmp_path, "", 0, sleep=30), TARGET, timeout=0.5, environ={})
    with pytest.raises(CliTimedOut, match=r"hung on its first call.*proxy variables"):
        runner.check_reaches_target("start-up-token-0123456789")


def test_cli_that_cannot_be_started_names_cli_command():
    with pytest.raises(CliUnavailable, match=r"cli\.command .*could not be started"):
        CliRunner("/nonexistent/sts", TARGET).check_reaches_target("start-up-token-0123456789")


def test_any_http_answer_passes_the_start_up_check(tmp_path):
    """A CLI refused with 401 got an answer: the checks, not the start-up check, judge it."""
    result = CliRunner(_fake_cli(tmp_path, ANSWER_401, 4), TARGET).check_reaches_target("start-up-token-0123456789")
    assert result.exit_code == 4


# -- the reference CLI honours TLS and proxy variables ---------------------------------------------


PROXY_ENVIRONMENTS = [
    {},
    {"HTTPS_PROXY": "http://proxy:3128"},
    {"HTTP_PROXY": "proxy:3128", "https_proxy": "http://lower:1", "HTTPS_PROXY": "http://upper:2"},
    {"ALL_PROXY": "socks5://s:1080", "NO_PROXY": "localhost,127.0.0.1,::1,.internal,example.com,10.0.0.0/8"},
    {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "a.example, *"},
    {"HTTPS_PROXY": "http://p:1", "https_proxy": ""},
    {"no_proxy": "http://direct.example", "all_proxy": "http://p:1"},
]


@pytest.mark.parametrize("environ", PROXY_ENVIRONMENTS, ids=lambda e: ",".join(e) or "none")
def test_reference_cli_reads_proxies_as_httpx_does(environ, monkeypatch):
    """The CLI reads the environment it is given exactly as httpx reads the process environment."""
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert reference_cli.environment_proxies(environ) == httpx._utils.get_environment_proxies()


@pytest.fixture(scope="module")
def reference() -> Iterator[RunningServer]:
    spec = BootstrapSpec(token=ADMIN_TOKEN, roles=["stackstate-admin"], ttl_ms=3_600_000)
    with running_server(auth_config=spec) as srv:
        yield srv


@pytest.fixture(scope="module")
def tls_reference(pki: Pki, reference: RunningServer) -> Iterator[str]:
    with TlsFrontend(pki, int(reference.url.rsplit(":", 1)[1])) as front:
        yield front.url


def _run_reference_cli(env: dict[str, str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = reference_cli.main(["service-token", "list"], env=env, stdout=out, stderr=err)
    return code, out.getvalue() + err.getvalue()


def test_reference_cli_trusts_ssl_cert_file(pki, tls_reference):
    base = {"STS_CLI_URL": tls_reference, "STS_CLI_SERVICE_TOKEN": ADMIN_TOKEN}
    assert _run_reference_cli({**base, "SSL_CERT_FILE": str(pki.ca_pem)})[0] == 0
    code, output = _run_reference_cli(base)
    assert code == reference_cli.EXIT_UNREACHABLE and "CERTIFICATE_VERIFY_FAILED" in output
    code, output = _run_reference_cli({**base, "SSL_CERT_FILE": str(pki.ca_pem) + ".missing"})
    assert code == reference_cli.EXIT_UNREACHABLE and "Cannot load the CA certificates in SSL_CERT_FILE=" in output


@pytest.mark.skipif(
    shutil.which("openssl") is None, reason="the openssl command is not installed: needed to hash a CA dir"
)
def test_reference_cli_trusts_ssl_cert_dir(pki, tls_reference, tmp_path):
    certs = tmp_path / "certs"
    certs.mkdir()
    shutil.copy(pki.ca_pem, certs / "private-ca.pem")
    subprocess.run(["openssl", "rehash", str(certs)], check=True, capture_output=True)
    env = {"STS_CLI_URL": tls_reference, "STS_CLI_SERVICE_TOKEN": ADMIN_TOKEN, "SSL_CERT_DIR": str(certs)}
    assert _run_reference_cli(env)[0] == 0


def test_reference_cli_as_a_process_reads_its_real_environment(pki, tls_reference):
    """``{python} -m sts_reference.cli`` (what cli.command names) takes SSL_CERT_FILE from its environment."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "STS_CLI_URL": tls_reference,
        "STS_CLI_SERVICE_TOKEN": ADMIN_TOKEN,
        "SSL_CERT_FILE": str(pki.ca_pem),
    }
    done = subprocess.run(
        [sys.executable, "-m", "sts_reference.cli", "service-token", "list"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


class _AnsweringProxy(http.server.ThreadingHTTPServer):
    """A forward proxy that answers every request itself, and notes the URLs it was asked for."""

    def __init__(self) -> None:
        self.requested: list[str] = []
        super().__init__(("127.0.0.1", 0), _ProxyHandler)


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    server: _AnsweringProxy

    def do_GET(self) -> None:
        self.server.requested.append(self.path)
        body = b"[]" if self.path.endswith("/security/tokens") else b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def proxy() -> Iterator[_AnsweringProxy]:
    server = _AnsweringProxy()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_reference_cli_goes_through_the_proxy_unless_no_proxy_says_otherwise(proxy):
    """HTTP_PROXY routes the calls (the target itself is a closed port); NO_PROXY or an empty http_proxy does not."""
    target = f"http://127.0.0.1:{free_port()}"
    proxy_url = f"http://127.0.0.1:{proxy.server_address[1]}"
    base = {"STS_CLI_URL": target, "STS_CLI_SERVICE_TOKEN": ADMIN_TOKEN, "HTTP_PROXY": proxy_url}
    code, output = _run_reference_cli(base)
    assert (code, output.strip()) == (0, "No service tokens found.")
    assert proxy.requested == [f"{target}/api/server/info", f"{target}/api/security/tokens"]
    for direct in ({"NO_PROXY": "127.0.0.1"}, {"no_proxy": "*"}, {"http_proxy": ""}):
        assert _run_reference_cli({**base, **direct})[0] == reference_cli.EXIT_UNREACHABLE, direct
    assert len(proxy.requested) == 2


# -- the real CLI's own TLS settings: --ca-cert-path/STS_CA_CERT_PATH, --skip-ssl; proxies then ignored --


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        pytest.param([], {"STS_CA_CERT_PATH": "{ca}"}, id="STS_CA_CERT_PATH"),
        pytest.param(["--ca-cert-path", "{ca}"], {}, id="--ca-cert-path"),
        pytest.param(["--skip-ssl"], {}, id="--skip-ssl"),
        pytest.param([], {"STS_SKIP_SSL": "true"}, id="STS_SKIP_SSL"),
    ],
)
def test_reference_cli_takes_its_own_tls_settings(pki, tls_reference, argv, env):
    base = {"STS_CLI_URL": tls_reference, "STS_CLI_SERVICE_TOKEN": ADMIN_TOKEN}
    filled = {k: v.format(ca=pki.ca_pem) for k, v in env.items()}
    out, err = io.StringIO(), io.StringIO()
    words = [w.format(ca=pki.ca_pem) for w in argv]
    code = reference_cli.main(["service-token", "list", *words], env={**base, **filled}, stdout=out, stderr=err)
    assert code == 0, err.getvalue()


def test_reference_cli_with_its_own_tls_settings_ignores_the_proxy(proxy):
    """As the real CLI's own transport (client.go): with STS_CA_CERT_PATH or --skip-ssl, HTTP_PROXY is not used."""
    target = f"http://127.0.0.1:{free_port()}"
    proxy_url = f"http://127.0.0.1:{proxy.server_address[1]}"
    base = {"STS_CLI_URL": target, "STS_CLI_SERVICE_TOKEN": ADMIN_TOKEN, "HTTP_PROXY": proxy_url}
    assert _run_reference_cli({**base, "STS_SKIP_SSL": "true"})[0] == reference_cli.EXIT_UNREACHABLE
    assert proxy.requested == []
    assert _run_reference_cli(base)[0] == 0  # without: through the proxy
    assert len(proxy.requested) == 2
