"""TLS settings: the profile keys, the one place that builds them for httpx, and start-up messages.

The target here is the reference server behind a small TLS forwarder with a throw-away
private CA (no nginx needed; ``test_tls_ingress.py`` puts a real nginx in front).
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sts_conformance.core.errors import ProfileError, TargetUnavailable
from sts_conformance.reporting.document import server_info
from sts_conformance.target.client import ApiClient, TlsSettings
from sts_conformance.target.connect import connect
from sts_conformance.target.profile import load_profile, parse_profile
from sts_reference.config import BootstrapSpec
from sts_reference.testing import RunningServer, running_server

from .tls_support import ADMIN_TOKEN, Pki, TlsFrontend, make_pki

BASE = "name: t\nurl: https://127.0.0.1:9\nadmin_token: abcdefgh1234\n"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def reference() -> Iterator[RunningServer]:
    spec = BootstrapSpec(token=ADMIN_TOKEN, roles=["stackstate-admin"], ttl_ms=3_600_000)
    with running_server(auth_config=spec) as srv:
        yield srv


def _profile(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "profiles" / "t.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# -- the profile keys ---------------------------------------------------------------------------


def test_relative_paths_start_at_the_profile_file(tmp_path, pki):
    """ca_bundle, client_cert and client_key may be relative to the profile's own directory."""
    (tmp_path / "certs").mkdir()
    for name, source in (("ca.pem", pki.ca_pem), ("me.pem", pki.client_cert), ("me.key", pki.client_key)):
        (tmp_path / "certs" / name).write_bytes(source.read_bytes())
    text = BASE + "ca_bundle: ../certs/ca.pem\nclient_cert: ../certs/me.pem\nclient_key: ../certs/me.key\n"
    profile = load_profile(_profile(tmp_path, text))
    assert Path(profile.ca_bundle or "") == (tmp_path / "certs" / "ca.pem").resolve()
    assert Path(profile.client_key or "").read_bytes() == pki.client_key.read_bytes()
    shown = profile.redacted()
    assert (shown["ca_bundle"], shown["client_cert"]) == (profile.ca_bundle, profile.client_cert)


def test_ca_bundle_from_the_environment(tmp_path, pki):
    """``${VAR}`` works for paths too: a CI job points ca_bundle at a secret file."""
    profile = load_profile(_profile(tmp_path, BASE + "ca_bundle: ${MY_CA}\n"), environ={"MY_CA": str(pki.ca_pem)})
    assert profile.ca_bundle == str(pki.ca_pem)


def _not_pem(tmp_path: Path) -> str:
    path = tmp_path / "ca.der"
    path.write_bytes(b"\x30\x82\x01\x0a not a PEM file")
    return str(path)


def _garbled_pem(tmp_path: Path) -> str:
    path = tmp_path / "garbled.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n")
    return str(path)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        pytest.param(
            lambda tmp, pki: "ca_bundle: missing.pem", r"ca_bundle .*missing\.pem: no such file", id="missing"
        ),
        pytest.param(lambda tmp, pki: f"ca_bundle: {tmp}", "ca_bundle .*is a directory", id="directory"),
        pytest.param(lambda tmp, pki: f"ca_bundle: {_not_pem(tmp)}", "ca_bundle .*not a PEM file", id="not-pem"),
        pytest.param(
            lambda tmp, pki: f"ca_bundle: {_garbled_pem(tmp)}",
            "ca_bundle .*no certificate that can be read",
            id="garbled",
        ),
        pytest.param(
            lambda tmp, pki: f"ca_bundle: {pki.ca_pem}\nverify_tls: false",
            "ca_bundle is set but verify_tls is false",
            id="with-verify-off",
        ),
        pytest.param(
            lambda tmp, pki: f"client_key: {pki.client_key}", "client_key is set without client_cert", id="key-alone"
        ),
        pytest.param(
            lambda tmp, pki: f"client_cert: {pki.client_cert}", "client_cert holds no matching private key", id="no-key"
        ),
        pytest.param(
            lambda tmp, pki: f"client_cert: {pki.client_cert}\nclient_key: {pki.server_key}",
            "client_key does not match client_cert",
            id="other-key",
        ),
        pytest.param(
            lambda tmp, pki: f"client_cert: {pki.client_cert}\nclient_key: {pki.ca_pem}",
            "client_key .*not a PEM file with a PRIVATE KEY",
            id="key-is-a-certificate",
        ),
    ],
)
def test_unusable_tls_file_is_a_profile_error_naming_the_key(tmp_path, pki, setting, message):
    """A TLS file that cannot be used stops the run before any request, naming the key."""
    with pytest.raises(ProfileError, match=message):
        load_profile(_profile(tmp_path, BASE + setting(tmp_path, pki) + "\n"))


def test_encrypted_client_key_is_refused_without_prompting(tmp_path, pki):
    """A key with a pass phrase would make OpenSSL ask on the terminal; the profile refuses it instead."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(pki.client_key.read_bytes(), password=None)
    locked = tmp_path / "locked.key"
    locked.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pass phrase"),
        )
    )
    with pytest.raises(ProfileError, match="client_key is an encrypted private key"):
        load_profile(_profile(tmp_path, BASE + f"client_cert: {pki.client_cert}\nclient_key: {locked}\n"))


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["STS_CLI_URL"], "never yours"),
        (["sts_cli_service_token"], "never yours"),
        (["HOME"], "throw-away directory"),
        (["XDG_CONFIG_HOME"], "throw-away directory"),
        (["TZ"], "sets it for every call"),
        (["1BAD"], "not an environment variable name"),
        ("JAVA_HOME", "must be a list of strings"),
    ],
)
def test_cli_env_refuses_what_the_suite_controls(names, message):
    """cli.env can add variables, never the CLI's target, credential, home or the suite's own settings."""
    with pytest.raises(ProfileError, match=f"cli.env.*{message}"):
        parse_profile({"name": "t", "url": "http://h", "admin_token": "x", "cli": {"env": names}}, environ={})


def test_cli_env_cannot_name_the_certificate_store_when_ca_bundle_is_set(pki):
    data = {"name": "t", "url": "https://h", "admin_token": "x", "ca_bundle": str(pki.ca_pem)}
    with pytest.raises(ProfileError, match="ca_bundle is set, and the CLI gets it as SSL_CERT_FILE"):
        parse_profile({**data, "cli": {"env": ["SSL_CERT_FILE"]}}, environ={})
    profile = parse_profile({**data, "cli": {"env": ["JAVA_HOME", "KUBECONFIG", "JAVA_HOME"]}}, environ={})
    assert profile.cli_env == ("JAVA_HOME", "KUBECONFIG")
    assert profile.redacted()["cli"]["env"] == ["JAVA_HOME", "KUBECONFIG"]


def test_defaults_leave_tls_to_the_environment():
    profile = parse_profile({"name": "t", "url": "https://h", "admin_token": "x"}, environ={})
    assert (profile.ca_bundle, profile.client_cert, profile.client_key, profile.cli_env) == (None, None, None, ())
    assert TlsSettings.from_profile(profile) == TlsSettings()


# -- one place builds the TLS settings -----------------------------------------------------------


def _subjects(ctx: ssl.SSLContext) -> set[str]:
    """The organisation names of the CAs ``ctx`` trusts."""
    names = set()
    for cert in ctx.get_ca_certs():
        subject: Any = cert["subject"]  # ((("organizationName", "..."),), ...)
        for rdn in subject:
            names |= {str(value) for key, value in rdn if key == "organizationName"}
    return names


def test_ca_bundle_replaces_the_default_trust(pki):
    ctx = TlsSettings(ca_bundle=str(pki.ca_pem)).ssl_context(environ={"SSL_CERT_FILE": str(pki.other_ca_pem)})
    assert _subjects(ctx) == {"sts-conformance test CA"}
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname


def test_without_ca_bundle_the_environment_names_the_trust(pki, tmp_path):
    """SSL_CERT_FILE and SSL_CERT_DIR are read as OpenSSL reads them; without them, certifi's bundle."""
    ctx = TlsSettings().ssl_context(environ={"SSL_CERT_FILE": str(pki.ca_pem)})
    assert _subjects(ctx) == {"sts-conformance test CA"}
    assert len(TlsSettings().ssl_context(environ={}).get_ca_certs()) > 50
    with pytest.raises(ProfileError, match=r"SSL_CERT_FILE=.*nowhere\.pem: no such file"):
        TlsSettings().ssl_context(environ={"SSL_CERT_FILE": str(tmp_path / "nowhere.pem")})


def test_verify_false_checks_nothing_and_client_cert_is_loaded(pki):
    ctx = TlsSettings(verify=False, client_cert=str(pki.client_cert), client_key=str(pki.client_key)).ssl_context()
    assert ctx.verify_mode == ssl.CERT_NONE and not ctx.check_hostname


def _profile_for(url: str, **settings: object):
    return parse_profile({"name": "tls", "url": url, "admin_token": ADMIN_TOKEN, **settings}, environ={})


# -- start-up against a TLS target ----------------------------------------------------------------


def test_connect_with_ca_bundle(pki, reference, monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with TlsFrontend(pki, int(reference.url.rsplit(":", 1)[1])) as front:
        profile = _profile_for(front.url, ca_bundle=str(pki.ca_pem))
        conn = connect(profile, front.url, ADMIN_TOKEN, strict_admin=True)
        # every other client of the run is built from the profile the same way
        with ApiClient.for_profile(profile, conn.url) as client:
            assert client.server_info(ADMIN_TOKEN).status_code == 200
        info = server_info(
            conn.url, "/api", ADMIN_TOKEN, conn.admin_form, timeout=5, tls=TlsSettings.from_profile(profile)
        )
        assert info["reachable"] and info["status"] == 200, "the report's server info uses the profile's CA too"


@pytest.mark.parametrize(
    ("trusted", "message"),
    [
        pytest.param(
            None,
            r"could not be verified against the certifi bundle .*set ca_bundle: /path/to/ca\.pem .*"
            r"or export SSL_CERT_FILE=/path/to/ca\.pem",
            id="no-ca",
        ),
        pytest.param(
            "ca_bundle",
            r"is not issued by a CA in ca_bundle .*other-ca\.pem .*put the CA that issued it",
            id="ca_bundle",
        ),
        pytest.param(
            "SSL_CERT_FILE", r"could not be verified against SSL_CERT_FILE=.*other-ca\.pem", id="SSL_CERT_FILE"
        ),
    ],
)
def test_untrusted_certificate_at_start_is_one_message_naming_the_setting(
    pki, reference, monkeypatch, trusted, message
):
    """A certificate error at start-up says which setting to use, not only 'certificate verify failed'."""
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    settings = {}
    if trusted == "ca_bundle":
        settings["ca_bundle"] = str(pki.other_ca_pem)
    elif trusted == "SSL_CERT_FILE":
        monkeypatch.setenv("SSL_CERT_FILE", str(pki.other_ca_pem))
    with (
        TlsFrontend(pki, int(reference.url.rsplit(":", 1)[1])) as front,
        pytest.raises(TargetUnavailable, match=message) as info,
    ):
        connect(_profile_for(front.url, **settings), front.url, ADMIN_TOKEN, strict_admin=True)
    assert "\n" not in str(info.value)


def test_host_name_not_in_the_certificate_says_so(pki, reference):
    """A certificate for another name is not fixed by a CA: the message says to use the right host name."""
    with TlsFrontend(pki, int(reference.url.rsplit(":", 1)[1]), other_name=True) as front:
        profile = _profile_for(front.url, ca_bundle=str(pki.ca_pem))
        with pytest.raises(
            TargetUnavailable, match=r"is not valid for that host name.*use a host name the certificate"
        ):
            connect(profile, front.url, ADMIN_TOKEN, strict_admin=True)


def test_mutual_tls_uses_client_cert_and_names_it_when_missing(pki, reference):
    """An ingress that asks for a client certificate gets client_cert/client_key; without them, the message says so."""
    with TlsFrontend(pki, int(reference.url.rsplit(":", 1)[1]), require_client_cert=True) as front:
        with pytest.raises(TargetUnavailable, match=r"client certificate.*set client_cert and client_key"):
            connect(_profile_for(front.url, ca_bundle=str(pki.ca_pem)), front.url, ADMIN_TOKEN, strict_admin=True)
        profile = _profile_for(
            front.url, ca_bundle=str(pki.ca_pem), client_cert=str(pki.client_cert), client_key=str(pki.client_key)
        )
        conn = connect(profile, front.url, ADMIN_TOKEN, strict_admin=True)
        with ApiClient.for_profile(profile, conn.url) as client:
            assert client.list_tokens(ADMIN_TOKEN).status_code == 200
