"""The bootstrap token's configuration: authentication.yaml in the Helm values shape."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sts_reference.config import (
    DEFAULT_TTL_MS,
    AuthConfig,
    BootstrapSpec,
    ConfigError,
    load_auth_config,
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "authentication.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


HELM_SHAPE = """\
    stackstate:
      authentication:
        serviceToken:
          bootstrap:
            token: 0123456789abcdef0123456789abcdef
            roles:
              - stackstate-power-user
            ttl: 30m
"""


@pytest.mark.parametrize("spelling", ["serviceToken", "servicetoken"])
def test_config_reads_bootstrap_in_either_spelling(tmp_path: Path, spelling: str) -> None:
    """The Helm chart's serviceToken and the seed document's servicetoken both work."""
    path = write(tmp_path, HELM_SHAPE.replace("serviceToken", spelling))
    assert load_auth_config(path) == AuthConfig(
        bootstrap=BootstrapSpec(
            token="0123456789abcdef0123456789abcdef",
            roles=["stackstate-power-user"],
            ttl_ms=30 * 60 * 1000,
        )
    )


def test_config_ttl_defaults_to_24_hours(tmp_path: Path) -> None:
    """ttl is optional and defaults to 24h, as the current docs say."""
    path = write(tmp_path, HELM_SHAPE.replace("            ttl: 30m\n", ""))
    spec = load_auth_config(path).bootstrap
    assert spec is not None and spec.ttl_ms == DEFAULT_TTL_MS == 24 * 3600 * 1000


def test_config_accepts_both_spellings_when_identical(tmp_path: Path) -> None:
    """Giving the same section under both spellings is harmless."""
    body = textwrap.dedent(HELM_SHAPE)
    section = body[body.index("    serviceToken:") :]
    path = write(tmp_path, body + section.replace("serviceToken", "servicetoken"))
    spec = load_auth_config(path).bootstrap
    assert spec is not None and spec.roles == ["stackstate-power-user"]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "# only a comment\n",
        "stackstate:\n  other: 1\n",
        "stackstate:\n  authentication:\n    keycloak: {url: x}\n",
        "stackstate:\n  authentication:\n    serviceToken:\n      bootstrap:\n",
    ],
    ids=["empty file", "comment only", "no authentication", "no serviceToken", "null bootstrap"],
)
def test_config_without_bootstrap_section_configures_none(tmp_path: Path, text: str) -> None:
    """A values file without a bootstrap section is valid and creates no token."""
    assert load_auth_config(write(tmp_path, text)) == AuthConfig(bootstrap=None)


def test_config_allows_empty_roles_and_bare_number_ttl(tmp_path: Path) -> None:
    """An empty role list is stored as given; a bare number ttl is milliseconds (HOCON)."""
    text = "stackstate: {authentication: {serviceToken: {bootstrap: "
    text += "{token: abc, roles: [], ttl: 90000}}}}\n"
    assert load_auth_config(write(tmp_path, text)).bootstrap == BootstrapSpec("abc", [], 90_000)


def test_config_secret_stays_out_of_repr() -> None:
    """Printing a spec (in a log line or an assertion) never shows the secret."""
    spec = BootstrapSpec(token="do-not-print-me", roles=["r"])
    assert "do-not-print-me" not in repr(spec)
    assert "do-not-print-me" not in repr(AuthConfig(spec))


def bootstrap(body: str) -> str:
    """A values file whose bootstrap mapping is ``body`` (already indented YAML lines)."""
    head = "stackstate:\n  authentication:\n    serviceToken:\n      bootstrap:\n"
    return head + textwrap.indent(textwrap.dedent(body), " " * 8)


BOOTSTRAP_KEY = "stackstate.authentication.serviceToken.bootstrap"


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("stackstate: [1\n", "not valid YAML"),
        ("- a\n- b\n", "top level must be a mapping"),
        ("stackstate: 5\n", "stackstate must be a mapping"),
        ("stackstate:\n  authentication:\n    serviceToken: on\n", "serviceToken must be a mapping"),
        (bootstrap("").replace("bootstrap:\n", "bootstrap: abc\n"), "bootstrap must be a mapping"),
        (bootstrap("roles: [a]\n"), f"{BOOTSTRAP_KEY}.token is required"),
        (bootstrap("token: ''\nroles: [a]\n"), "token must not be empty"),
        (bootstrap("token:\nroles: [a]\n"), "token must be a string, got null"),
        (bootstrap("token: 12345\nroles: [a]\n"), "token must be a string, got a number"),
        (bootstrap("token: 'a b'\nroles: [a]\n"), "visible ASCII"),
        (bootstrap("token: 'tökén'\nroles: [a]\n"), "visible ASCII"),
        (bootstrap("token: abc\n"), f"{BOOTSTRAP_KEY}.roles is required"),
        (bootstrap("token: abc\nroles: stackstate-admin\n"), "roles must be a list of strings"),
        (bootstrap("token: abc\nroles: [admin, 7]\n"), "roles[1] must be a string"),
        (bootstrap("token: abc\nroles: [a]\nttl: 24 hrs\n"), "ttl: invalid duration '24 hrs'"),
        (bootstrap("token: abc\nroles: [a]\nttl: 0s\n"), "greater than zero"),
        (bootstrap("token: abc\nroles: [a]\nttl: true\n"), "ttl must be a duration string"),
        (bootstrap("token: abc\nroles: [a]\ntll: 1h\n"), "unknown key(s) tll"),
        (bootstrap("token: abc\ntoken: def\nroles: [a]\n"), "duplicate key 'token'"),
        (
            bootstrap("token: abc\nroles: [a]\n") + "    servicetoken:\n      bootstrap: {token: other, roles: [a]}\n",
            "both given and differ",
        ),
    ],
    ids=[
        "not YAML",
        "top level is a list",
        "stackstate is a number",
        "serviceToken is a boolean",
        "bootstrap is a string",
        "token missing",
        "token empty",
        "token null",
        "token unquoted number",
        "token with a space",
        "token not ASCII",
        "roles missing",
        "roles a string",
        "role not a string",
        "ttl unknown unit",
        "ttl zero",
        "ttl boolean",
        "misspelt ttl key",
        "duplicate key",
        "both spellings differ",
    ],
)
def test_config_refused_with_message_naming_file_and_key(tmp_path: Path, text: str, complaint: str) -> None:
    """Every malformed config is one ConfigError that names the file and what is wrong."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_auth_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert complaint in message
    assert "\n" not in message


def test_config_missing_file_refused(tmp_path: Path) -> None:
    """A path that does not exist is a ConfigError, not an OSError."""
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_auth_config(tmp_path / "absent.yaml")


def test_config_binary_file_refused(tmp_path: Path) -> None:
    """A file that is not UTF-8 text is a ConfigError."""
    path = tmp_path / "authentication.yaml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_auth_config(path)
