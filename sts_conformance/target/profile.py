"""Target profiles: what the suite runs against, built in one place and one order.

Order of precedence (later wins): built-in defaults, the profile file, environment
variables, command-line options. Every key is documented in ``fixtures/targets/README.md``.
A bad profile raises :class:`ProfileError` naming the file and the key, before any
traffic is sent.
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sts_conformance.core.errors import ProfileError
from sts_conformance.target.settle import Consistency, parse_consistency

#: The profile used when no target is given: the embedded reference deployment.
DEFAULT_PROFILE = Path(__file__).resolve().parents[2] / "fixtures" / "targets" / "reference.yaml"

#: Environment variable naming a profile when ``--target`` is not given.
TARGET_ENV = "STS_TARGET"

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_TOP_KEYS = {
    "name",
    "description",
    "url",
    "api_path",
    "launch",
    "launch_timeout",
    "admin_token",
    "roles",
    "probe_path",
    "request_timeout",
    "concurrency",
    "checks_together",
    "verify_tls",
    "ca_bundle",
    "client_cert",
    "client_key",
    "bootstrap",
    "expect",
    "known_deviations",
    "fail_on_inconclusive",
    "cli",
    "consistency",
    "scale_on_external",
}
_AUTH_STATUSES = (401, 403)
#: the most requests a profile may let one process have in flight together (``concurrency``)
MAX_CONCURRENCY = 64
#: the bootstrap key spellings: the Helm chart's, and the product page's lower-case one
KEY_SPELLINGS = ("serviceToken", "servicetoken")
_CHOICE_KEYS: dict[str, tuple[str, ...]] = {
    # open behaviour -> the values a profile may pin; "either" accepts any of them
    "duplicate_names": ("allowed", "refused", "either"),
    "empty_roles": ("accepted", "refused", "either"),
    "unknown_roles": ("accepted", "refused", "either"),
    "expired_in_list": ("kept", "removed", "either"),
    "roles_compare": ("set", "exact"),
    "scheme_case": ("insensitive", "sensitive", "either"),
}
#: how ``sts service-token delete`` takes the id: the real CLI's ``--id ID``, the docs' positional ``ID``
CLI_DELETE_FORMS = ("option", "positional", "either")
#: environment variables ``cli.env`` may not name, and why: the suite sets them itself for every call
CLI_ENV_RESERVED = {
    "HOME": "the CLI's home is a throw-away directory, so your own sts configuration is never read",
    "XDG_CONFIG_HOME": "the CLI's home is a throw-away directory, so your own sts configuration is never read",
    "PATH": "the suite always passes PATH",
    "LANG": "the suite sets it for every call",
    "LC_ALL": "the suite sets it for every call",
    "TZ": "the suite sets it for every call (some checks choose the zone)",
    "NO_COLOR": "the suite sets it for every call",
}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PEM_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"
_PEM_PRIVATE_KEY = re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")


@dataclass(frozen=True)
class Expectations:
    """How the target resolves what the public documentation leaves open.

    The defaults accept every plausible behaviour; a profile pins one to make it a check.
    """

    #: status codes accepted when a token is missing, unknown, expired or deleted
    unauthenticated_status: tuple[int, ...] = _AUTH_STATUSES
    #: status codes accepted when a valid token lacks the permission
    forbidden_status: tuple[int, ...] = _AUTH_STATUSES
    #: status codes accepted when deleting an id that does not exist (None: any non-5xx)
    delete_unknown_status: tuple[int, ...] | None = None
    #: status codes accepted when no credential or a malformed one is presented (None: 400 or any
    #: of ``unauthenticated_status``: a server may reject a header it cannot parse as a bad request)
    malformed_status: tuple[int, ...] | None = None
    duplicate_names: str = "either"
    empty_roles: str = "either"
    unknown_roles: str = "either"
    expired_in_list: str = "either"
    roles_compare: str = "set"
    scheme_case: str = "either"

    def malformed_statuses(self) -> tuple[int, ...]:
        """What may refuse a missing or malformed credential: pinned, or 400 and the unauthenticated statuses."""
        if self.malformed_status is not None:
            return self.malformed_status
        return (400, *(s for s in self.unauthenticated_status if s != 400))


@dataclass(frozen=True)
class BootstrapSettings:
    """The bootstrap token: what a managed launch configures, or what an external one has."""

    #: roles given to the admin bootstrap token of a managed launch (also: expected roles)
    roles: tuple[str, ...] = ("stackstate-admin",)
    #: ttl written into the managed launch's authentication.yaml (long enough for the run)
    ttl: str = "2h"
    #: key spelling used in authentication.yaml: ``serviceToken`` (Helm chart) or ``servicetoken``
    key: str = "serviceToken"
    #: the key spellings the deployment is checked to read (ST-BOOT-004 checks ``servicetoken`` only when
    #: listed): both on a managed target; ``serviceToken`` alone on an external one (current charts
    #: read only that, so checking the other costs a rollout and warns on every chart deployment)
    key_spellings: tuple[str, ...] = KEY_SPELLINGS
    #: external targets only: the configured bootstrap token (``${ENV}`` expanded)
    token: str | None = None
    #: ttl spellings exercised by the bootstrap TTL checks (launched instances, or reconfigurations)
    ttl_spellings: tuple[str, ...] = ("3s", "3000ms", "3 seconds")
    #: external targets: a shell command that applies the authentication.yaml ``{auth_config}`` to the
    #: deployment and returns once it serves it (helm upgrade ... && kubectl rollout status ...)
    reconfigure: str | None = None
    #: seconds to wait, after ``reconfigure`` returned, for the deployment to answer and take the admin token
    reconfigure_timeout: float = 900.0
    #: a shell command run once after the reconfigurations, that puts the deployment back as it was
    restore: str | None = None


@dataclass(frozen=True)
class KnownDeviation:
    """A deviation the profile declares: a whole requirement, or one check (``check``: its node
    id, its name or its parameter id), optionally narrowed to the checks of ``requirement``."""

    requirement: str | None
    reason: str
    check: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"requirement": self.requirement, "reason": self.reason}
        if self.check is not None:
            out["check"] = self.check
        return out

    def label(self) -> str:
        """How the deviation is named in messages: ``ST-CLI-013``, ``ST-CLI-013 (check zero-date)``."""
        if self.check is None:
            return str(self.requirement)
        return f"{self.requirement} (check {self.check})" if self.requirement else f"(check {self.check})"


@dataclass(frozen=True)
class TargetProfile:
    name: str
    url: str
    source: str = "<built-in>"
    description: str = ""
    api_path: str = "/api"
    launch: str | None = None
    launch_timeout: float = 30.0
    admin_token: str | None = field(default=None, repr=False)
    #: the environment variable ``admin_token`` was read from (``${VAR}`` in the file), for messages
    admin_token_variable: str | None = None
    manager_role: str = "stackstate-admin"
    unprivileged_role: str = "stackstate-guest"
    probe_path: str = "/api/server/status"
    request_timeout: float = 10.0
    #: at most this many independent requests of one process in flight together (1: one at a time)
    concurrency: int = 8
    #: the checks of the modules marked ``together`` run at once when the first runs (``checking/ahead.py``)
    checks_together: bool = False
    verify_tls: bool = True
    #: PEM file of the CA certificate(s) the target's certificate is checked against (absolute path)
    ca_bundle: str | None = None
    #: PEM client certificate (and key, unless ``client_key`` is set) for an ingress that asks for one
    client_cert: str | None = None
    client_key: str | None = None
    bootstrap: BootstrapSettings = BootstrapSettings()
    expect: Expectations = Expectations()
    known_deviations: tuple[KnownDeviation, ...] = ()
    #: a requirement whose checks could not conclude (``inconclusive``) fails the run, as under ``--strict``
    fail_on_inconclusive: bool = False
    cli_command: str | None = None
    #: ``option`` (``delete --id ID``), ``positional`` (``delete ID``) or ``either`` (``--id`` first)
    cli_delete_form: str = "either"
    #: further environment variables copied to the CLI from the suite's environment when set
    cli_env: tuple[str, ...] = ()
    #: how long an effect of a create or delete may take to show (``settle.py``)
    consistency: Consistency = field(default_factory=Consistency)
    #: an external target: whether the run may create the ~1,000 tokens of the list-scale check (ST-LIFE-020);
    #: a managed target always runs it (it is the suite's own throw-away deployment)
    scale_on_external: bool = False

    @property
    def managed(self) -> bool:
        return self.launch is not None

    def redacted(self) -> dict[str, Any]:
        """The effective profile as plain data, secrets replaced, for reports."""
        return {
            "name": self.name,
            "source": self.source,
            "description": self.description,
            "url": self.url,
            "api_path": self.api_path,
            "launch": self.launch,
            "managed": self.managed,
            "admin_token": "<set>" if self.admin_token else None,
            "roles": {"manager": self.manager_role, "unprivileged": self.unprivileged_role},
            "probe_path": self.probe_path,
            "request_timeout": self.request_timeout,
            "concurrency": self.concurrency,
            "checks_together": self.checks_together,
            "verify_tls": self.verify_tls,
            "ca_bundle": self.ca_bundle,
            "client_cert": self.client_cert,
            "client_key": self.client_key,
            "bootstrap": {
                "roles": list(self.bootstrap.roles),
                "ttl": self.bootstrap.ttl,
                "key": self.bootstrap.key,
                "key_spellings": list(self.bootstrap.key_spellings),
                "token": "<set>" if self.bootstrap.token else None,
                "ttl_spellings": list(self.bootstrap.ttl_spellings),
                "reconfigure": self.bootstrap.reconfigure,
                "reconfigure_timeout": self.bootstrap.reconfigure_timeout,
                "restore": self.bootstrap.restore,
            },
            "expect": {
                "unauthenticated_status": list(self.expect.unauthenticated_status),
                "forbidden_status": list(self.expect.forbidden_status),
                "delete_unknown_status": (
                    None if self.expect.delete_unknown_status is None else list(self.expect.delete_unknown_status)
                ),
                "malformed_status": list(self.expect.malformed_statuses()),
                **{k: getattr(self.expect, k) for k in _CHOICE_KEYS},
            },
            "known_deviations": [d.as_dict() for d in self.known_deviations],
            "fail_on_inconclusive": self.fail_on_inconclusive,
            "cli": {"command": self.cli_command, "delete_form": self.cli_delete_form, "env": list(self.cli_env)},
            "consistency": self.consistency.as_dict(),
            "scale_on_external": self.scale_on_external,
        }


def resolve_profile_path(option: str | None, environ: Mapping[str, str] | None = None) -> Path:
    """The profile to use: ``--target``, else ``$STS_TARGET``, else the embedded reference."""
    env = os.environ if environ is None else environ
    chosen = option or env.get(TARGET_ENV) or None
    return Path(chosen) if chosen else DEFAULT_PROFILE


def load_profile(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> TargetProfile:
    """Read, expand and validate a target profile (YAML; JSON is valid YAML)."""
    env = os.environ if environ is None else environ
    p = Path(path)
    where = str(p.resolve()) if p.exists() else str(p)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProfileError(f"target profile {where}: no such file") from None
    except OSError as exc:
        raise ProfileError(f"target profile {where}: cannot be read ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None)
        raise ProfileError(
            f"target profile {where}: not valid YAML{at}" + (f" ({problem})" if problem else "")
        ) from None
    if not isinstance(data, dict):
        raise ProfileError(f"target profile {where}: expected a mapping of settings at the top level")
    return parse_profile(data, source=where, environ=env)


def parse_profile(
    data: Mapping[str, Any], *, source: str = "<built-in>", environ: Mapping[str, str] | None = None
) -> TargetProfile:
    env = os.environ if environ is None else environ
    r = _Reader(data, source, env)
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise ProfileError(
            f"target profile {source}: unknown key {unknown[0]!r} (known keys: {', '.join(sorted(_TOP_KEYS))})"
        )

    name = r.required("name")
    url = r.required("url").rstrip("/")
    if not re.match(r"^https?://[^/\s]+", url.replace("{port}", "1")):
        raise ProfileError(f"target profile {source}: url must start with http:// or https://, got {url!r}")
    launch = r.string("launch")
    if launch is not None and not launch.strip():
        raise ProfileError(f"target profile {source}: launch must be a non-empty command")
    if "{port}" in url and launch is None:
        raise ProfileError(f"target profile {source}: url contains {{port}} but no launch command is set")
    admin_token = r.string("admin_token", secret=True)
    refs = _ENV_REF.findall(data["admin_token"]) if isinstance(data.get("admin_token"), str) else []
    if launch is None and not admin_token:
        raise ProfileError(
            f"target profile {source}: admin_token is required for a target without launch "
            "(a service token allowed to manage service tokens; use ${ENV_VAR} to keep it out of the file)"
        )

    api_path = r.path("api_path", "/api")
    probe_path = r.path("probe_path", "/api/server/status")

    roles = r.mapping("roles")
    rr = _Reader(roles, source, env, prefix="roles.")
    _reject_unknown(roles, {"manager", "unprivileged"}, source, "roles.")

    bs = r.mapping("bootstrap")
    br = _Reader(bs, source, env, prefix="bootstrap.")
    _reject_unknown(
        bs,
        {
            "roles",
            "ttl",
            "key",
            "key_spellings",
            "token",
            "ttl_spellings",
            "reconfigure",
            "reconfigure_timeout",
            "restore",
        },
        source,
        "bootstrap.",
    )
    defaults = BootstrapSettings()
    key = br.string("key") or defaults.key
    if key not in ("serviceToken", "servicetoken"):
        raise ProfileError(f"target profile {source}: bootstrap.key must be serviceToken or servicetoken")
    # a managed target is the suite's own launch: both spellings; a deployment only what its chart reads
    spellings = br.string_list("key_spellings", KEY_SPELLINGS if launch is not None else KEY_SPELLINGS[:1])
    if not spellings or any(k not in KEY_SPELLINGS for k in spellings) or len(set(spellings)) != len(spellings):
        raise ProfileError(
            f"target profile {source}: bootstrap.key_spellings must list serviceToken and/or servicetoken, "
            f"each once, got {spellings!r}"
        )
    bootstrap = BootstrapSettings(
        roles=tuple(br.string_list("roles", defaults.roles)),
        ttl=br.string("ttl") or defaults.ttl,
        key=key,
        key_spellings=tuple(spellings),
        token=br.string("token", secret=True),
        ttl_spellings=tuple(br.string_list("ttl_spellings", defaults.ttl_spellings)),
        reconfigure=br.string("reconfigure"),
        reconfigure_timeout=br.number("reconfigure_timeout", defaults.reconfigure_timeout),
        restore=br.string("restore"),
    )
    for key_name in ("reconfigure", "restore"):
        command = getattr(bootstrap, key_name)
        if command is not None and not command.strip():
            raise ProfileError(f"target profile {source}: bootstrap.{key_name} must be a non-empty command")
    if bootstrap.reconfigure is not None:
        if launch is not None:
            raise ProfileError(
                f"target profile {source}: bootstrap.reconfigure is for an external target; a target with "
                "launch gets its bootstrap settings from the suite at each launch"
            )
        if "{auth_config}" not in bootstrap.reconfigure:
            raise ProfileError(
                f"target profile {source}: bootstrap.reconfigure must name {{auth_config}}, the "
                "authentication.yaml the suite writes for the deployment to apply"
            )
    if bootstrap.restore is not None and bootstrap.reconfigure is None:
        raise ProfileError(f"target profile {source}: bootstrap.restore needs bootstrap.reconfigure")

    ex = r.mapping("expect")
    er = _Reader(ex, source, env, prefix="expect.")
    known_expect = {
        "unauthenticated_status",
        "forbidden_status",
        "delete_unknown_status",
        "malformed_status",
        *_CHOICE_KEYS,
    }
    _reject_unknown(ex, known_expect, source, "expect.")
    choices = {}
    for key_name, allowed in _CHOICE_KEYS.items():
        value = er.string(key_name)
        if value is not None:
            if value not in allowed:
                raise ProfileError(
                    f"target profile {source}: expect.{key_name} must be one of {', '.join(allowed)}, got {value!r}"
                )
            choices[key_name] = value
    expect = Expectations(
        unauthenticated_status=er.statuses("unauthenticated_status", _AUTH_STATUSES) or _AUTH_STATUSES,
        forbidden_status=er.statuses("forbidden_status", _AUTH_STATUSES) or _AUTH_STATUSES,
        delete_unknown_status=er.statuses("delete_unknown_status", None),
        malformed_status=er.statuses("malformed_status", None),
        **choices,
    )

    deviations = []
    raw_dev = data.get("known_deviations") or []
    if not isinstance(raw_dev, list):
        raise ProfileError(f"target profile {source}: known_deviations must be a list")
    for i, entry in enumerate(raw_dev):
        where = f"target profile {source}: known_deviations[{i}]"
        if not isinstance(entry, dict) or not (
            isinstance(entry.get("requirement"), str) or isinstance(entry.get("check"), str)
        ):
            raise ProfileError(
                f"{where} needs a 'requirement' id or a 'check' (node id or parameter id), and a 'reason'"
            )
        unknown = sorted(str(k) for k in entry if k not in ("requirement", "check", "reason"))
        if unknown:
            raise ProfileError(f"{where}: unknown key(s) {', '.join(unknown)} (known: requirement, check, reason)")
        for key in ("requirement", "check"):
            if key in entry and (not isinstance(entry[key], str) or not entry[key].strip()):
                raise ProfileError(f"{where}: '{key}' must be a non-empty string")
        reason = entry.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise ProfileError(f"{where} needs a non-empty 'reason'")
        requirement = entry["requirement"].strip() if "requirement" in entry else None
        check = entry["check"].strip() if "check" in entry else None
        deviations.append(KnownDeviation(requirement, reason.strip(), check))

    verify_tls = r.boolean("verify_tls", True)
    scale_on_external = r.boolean("scale_on_external", False)
    if scale_on_external and launch is not None:
        raise ProfileError(
            f"target profile {source}: scale_on_external is for an external target; a target with launch "
            "always runs the list-scale check (it is the suite's own deployment)"
        )
    base_dir = _base_dir(source)
    ca_bundle = r.pem_file("ca_bundle", base_dir, _PEM_CERTIFICATE, "CERTIFICATE")
    if ca_bundle is not None and not verify_tls:
        raise ProfileError(
            f"target profile {source}: ca_bundle is set but verify_tls is false, so it would not be used; "
            "remove one of them"
        )
    if ca_bundle is not None:
        _check_ca_bundle(ca_bundle, source)
    client_cert = r.pem_file("client_cert", base_dir, _PEM_CERTIFICATE, "CERTIFICATE")
    client_key = r.pem_file("client_key", base_dir, _PEM_PRIVATE_KEY, "PRIVATE KEY")
    if client_key is not None and client_cert is None:
        raise ProfileError(f"target profile {source}: client_key is set without client_cert")
    if client_cert is not None:
        _check_client_pair(client_cert, client_key, source)

    cli = r.mapping("cli")
    _reject_unknown(cli, {"command", "delete_form", "env"}, source, "cli.")
    cr = _Reader(cli, source, env, prefix="cli.")
    cli_command = cr.string("command")
    cli_delete_form = cr.string("delete_form") or "either"
    if cli_delete_form not in CLI_DELETE_FORMS:
        raise ProfileError(
            f"target profile {source}: cli.delete_form must be one of {', '.join(CLI_DELETE_FORMS)}, "
            f"got {cli_delete_form!r}"
        )
    cli_env = cr.string_list("env", ())
    for var in cli_env:
        why = _refused_cli_variable(var, ca_bundle is not None)
        if why:
            raise ProfileError(f"target profile {source}: cli.env cannot name {var!r}: {why}")

    return TargetProfile(
        name=name,
        url=url,
        source=source,
        description=r.string("description") or "",
        api_path=api_path,
        launch=launch,
        launch_timeout=r.number("launch_timeout", 30.0),
        admin_token=admin_token,
        admin_token_variable=refs[0] if len(refs) == 1 else None,
        manager_role=rr.string("manager") or "stackstate-admin",
        unprivileged_role=rr.string("unprivileged") or "stackstate-guest",
        probe_path=probe_path,
        request_timeout=r.number("request_timeout", 10.0),
        concurrency=r.count("concurrency", 8, MAX_CONCURRENCY),
        checks_together=r.boolean("checks_together", False),
        verify_tls=verify_tls,
        ca_bundle=ca_bundle,
        client_cert=client_cert,
        client_key=client_key,
        bootstrap=bootstrap,
        expect=expect,
        known_deviations=tuple(deviations),
        fail_on_inconclusive=r.boolean("fail_on_inconclusive", False),
        cli_command=cli_command,
        cli_delete_form=cli_delete_form,
        cli_env=tuple(dict.fromkeys(cli_env)),
        consistency=parse_consistency(data.get("consistency"), source),
        scale_on_external=scale_on_external,
    )


def _base_dir(source: str) -> Path:
    """Where relative paths in a profile start: the profile file's directory (else the working directory)."""
    path = Path(source)
    return path.parent if path.is_file() else Path.cwd()


def _check_ca_bundle(path: str, source: str) -> None:
    try:
        ssl.create_default_context(cafile=path)
    except ssl.SSLError as exc:
        raise ProfileError(
            f"target profile {source}: ca_bundle {path} holds no certificate that can be read ({exc.reason or exc})"
        ) from None


def _no_password() -> bytes:
    return b""  # an encrypted key then fails to load instead of prompting on the terminal


def _check_client_pair(cert: str, key: str | None, source: str) -> None:
    if b"ENCRYPTED" in Path(key or cert).read_bytes():
        raise ProfileError(
            f"target profile {source}: {'client_key' if key else 'client_cert'} is an encrypted private key; "
            "give the key without a pass phrase (keep the file itself secret)"
        )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        ctx.load_cert_chain(cert, key, password=_no_password)
    except ssl.SSLError as exc:
        what = "client_key does not match client_cert" if key else "client_cert holds no matching private key"
        raise ProfileError(
            f"target profile {source}: {what} ({exc.reason or exc}); "
            "give the certificate in client_cert and its private key in client_key (both PEM)"
        ) from None


def _refused_cli_variable(var: str, has_ca_bundle: bool) -> str | None:
    if not _ENV_NAME.match(var):
        return "not an environment variable name"
    if var.upper().startswith("STS_CLI_"):
        return "the suite gives the CLI its target and credential itself, never yours"
    if var in CLI_ENV_RESERVED:
        return CLI_ENV_RESERVED[var]
    if has_ca_bundle and var in ("SSL_CERT_FILE", "SSL_CERT_DIR", "STS_CA_CERT_PATH"):
        return "ca_bundle is set, and the CLI gets it as SSL_CERT_FILE and STS_CA_CERT_PATH"
    return None


def _reject_unknown(section: Mapping[str, Any], known: set[str], source: str, prefix: str) -> None:
    unknown = sorted(set(section) - known)
    if unknown:
        raise ProfileError(
            f"target profile {source}: unknown key {prefix}{unknown[0]} (known: {', '.join(sorted(known))})"
        )


class _Reader:
    """Typed access to one section of a profile, with messages that name the key."""

    def __init__(self, data: Mapping[str, Any], source: str, env: Mapping[str, str], prefix: str = ""):
        self.data, self.source, self.env, self.prefix = data, source, env, prefix

    def _fail(self, key: str, what: str) -> ProfileError:
        return ProfileError(f"target profile {self.source}: {self.prefix}{key} {what}")

    def _expand(self, key: str, value: str, secret: bool) -> str:
        def sub(m: re.Match[str]) -> str:
            var = m.group(1)
            if var not in self.env:
                raise self._fail(key, f"refers to ${{{var}}}, which is not set in the environment")
            return self.env[var]

        return _ENV_REF.sub(sub, value)

    def string(self, key: str, *, required: bool = False, secret: bool = False) -> str | None:
        value = self.data.get(key)
        if value is None:
            if required:
                raise self._fail(key, "is required")
            return None
        if not isinstance(value, str):
            raise self._fail(key, f"must be a string, got {type(value).__name__}")
        value = self._expand(key, value, secret)
        if required and not value.strip():
            raise self._fail(key, "must not be empty")
        return value

    def required(self, key: str) -> str:
        value = self.string(key, required=True)
        assert value is not None
        return value

    def path(self, key: str, default: str) -> str:
        value = self.string(key) or default
        if not value.startswith("/"):
            raise self._fail(key, f"must start with '/', got {value!r}")
        return value.rstrip("/") if value != "/" else ""

    def number(self, key: str, default: float) -> float:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise self._fail(key, f"must be a positive number of seconds, got {value!r}")
        return float(value)

    def count(self, key: str, default: int, most: int) -> int:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
            raise self._fail(key, f"must be a whole number from 1 to {most}, got {value!r}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self._fail(key, f"must be true or false, got {value!r}")
        return value

    def pem_file(self, key: str, base_dir: Path, marker: bytes | re.Pattern[bytes], kind: str) -> str | None:
        """An existing, readable PEM file (``kind`` block in it); a relative path starts at ``base_dir``."""
        value = self.string(key)
        if value is None:
            return None
        if not value.strip():
            raise self._fail(key, "must be the path of a PEM file")
        path = Path(os.path.abspath(base_dir / Path(value).expanduser()))  # an absolute value stays as it is
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise self._fail(key, f"{path}: no such file") from None
        except IsADirectoryError:
            raise self._fail(key, f"{path}: is a directory, not a PEM file") from None
        except OSError as exc:
            raise self._fail(key, f"{path}: cannot be read ({exc.strerror})") from None
        found = marker.search(data) if isinstance(marker, re.Pattern) else marker in data
        if not found:
            raise self._fail(key, f"{path}: not a PEM file with a {kind} in it (no '-----BEGIN {kind}-----' line)")
        return str(path)

    def mapping(self, key: str) -> Mapping[str, Any]:
        value = self.data.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self._fail(key, "must be a mapping")
        return value

    def string_list(self, key: str, default: tuple[str, ...]) -> list[str]:
        value = self.data.get(key)
        if value is None:
            return list(default)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._fail(key, "must be a list of strings")
        return [self._expand(key, v, False) for v in value]

    def statuses(self, key: str, default: tuple[int, ...] | None) -> tuple[int, ...] | None:
        value = self.data.get(key)
        if value is None:
            return default
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value]
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(v, int) and not isinstance(v, bool) and 100 <= v <= 599 for v in value)
        ):
            raise self._fail(key, "must be an HTTP status code or a list of them")
        return tuple(value)
