"""The bootstrap service token, read from an ``authentication.yaml`` Helm values file.

Shape (the Helm chart's spelling; the seed document's lower-case ``servicetoken`` is
accepted too)::

    stackstate:
      authentication:
        serviceToken:
          bootstrap:
            token: <secret>        # required, visible ASCII, no spaces
            roles: [stackstate-admin]   # required list of strings (may be empty)
            ttl: 24h               # optional HOCON duration, default 24h

Anything else in the file (other Helm values) is ignored. A file without the bootstrap
section is valid and configures no bootstrap token. Every problem is reported as one
``ConfigError`` naming the file and the key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from .durations import parse_duration
from .faults import FaultSet

NO_FAULTS = FaultSet(())

DEFAULT_TTL_MS = 24 * 60 * 60 * 1000

DEFAULT_MANAGER_ROLES = ("stackstate-admin",)
"""Roles that may manage service tokens unless the server is told otherwise; in current
releases only stackstate-admin holds the get/create/delete-service-tokens permissions."""

SPELLINGS = ("serviceToken", "servicetoken")
_BOOTSTRAP_KEYS = ("token", "roles", "ttl")

# Used only by the ttl faults: a duration with a one- or two-letter unit, and its unit.
_SHORT_TTL = re.compile(r"\s*[0-9.]+\s*(?:ns|us|ms|s|m|h|d)?\s*", re.ASCII)
_TTL_UNIT = re.compile(r"(?P<number>.*?[0-9.])\s*(?P<unit>[A-Za-z]+)\s*", re.ASCII)
_UNIT_BY_FIRST_LETTER = {"n": "ns", "u": "us", "m": "m", "s": "s", "h": "h", "d": "d"}


class ConfigError(Exception):
    """An authentication config that cannot be used; the message names the file and key."""


def check_token_text(token: object) -> str | None:
    """Return why ``token`` cannot be a configured secret, or None when it can.

    It has to travel in an HTTP header after ``ApiKey `` with surrounding whitespace
    trimmed, so only visible ASCII is allowed."""
    if not isinstance(token, str):
        return f"must be a string, got {_type_name(token)} (quote it in YAML)"
    if token == "":
        return "must not be empty"
    bad = sorted({c for c in token if not ("!" <= c <= "~")})
    if bad:
        return (
            "may contain only visible ASCII characters, since it is sent in an HTTP header; "
            f"found {', '.join(repr(c) for c in bad)}"
        )
    return None


@dataclass(frozen=True)
class BootstrapSpec:
    """The token created when the server starts. The secret is kept out of ``repr`` so
    that printing a spec (or a failing assertion about one) never shows it."""

    token: str = field(repr=False)
    roles: list[str] = field(default_factory=list)
    ttl_ms: int = DEFAULT_TTL_MS

    def __post_init__(self) -> None:
        problem = check_token_text(self.token)
        if problem:
            raise ValueError(f"bootstrap token {problem}")
        if not isinstance(self.roles, list) or not all(isinstance(r, str) for r in self.roles):
            raise ValueError("bootstrap roles must be a list of strings")
        if not isinstance(self.ttl_ms, int) or isinstance(self.ttl_ms, bool) or self.ttl_ms < 1:
            raise ValueError(f"bootstrap ttl_ms must be a positive int, got {self.ttl_ms!r}")


@dataclass(frozen=True)
class AuthConfig:
    bootstrap: BootstrapSpec | None = None


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys: PyYAML would silently keep the last one,
    and a second ``token:`` line is far more likely a mistake than an intent."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
        except TypeError:
            continue  # unhashable key; construct_mapping reports it
        if duplicate:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def load_auth_config(path: str | os.PathLike[str], faults: FaultSet = NO_FAULTS) -> AuthConfig:
    """Read ``path`` and return the bootstrap token it configures, if any. ``faults`` are
    the server's deliberate defects (see ``faults.py``); a few of them misread the config."""
    where = os.fspath(path)
    try:
        with open(where, encoding="utf-8") as handle:
            text = handle.read()
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read the file: {exc.strerror or exc}") from None
    try:
        document = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader: plain data only
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML: {_yaml_problem(exc)}") from None
    try:
        return parse_auth_config(document, faults)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is not None:
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    return str(problem)


def parse_auth_config(document: object, faults: FaultSet = NO_FAULTS) -> AuthConfig:
    """Build an AuthConfig from an already-parsed values document (ConfigError messages
    name the key but not a file)."""
    if document is None:
        return AuthConfig()
    if not isinstance(document, dict):
        raise ConfigError(f"the top level must be a mapping, got {_type_name(document)}")
    section: object = document
    key_path = ""
    for key in ("stackstate", "authentication"):
        section = _child(section, key, key_path)
        key_path = f"{key_path}{key}."
        if section is None:
            return AuthConfig()
    assert isinstance(section, dict)
    spellings = SPELLINGS[:1] if faults.on("servicetoken-key-ignored") else SPELLINGS
    present = [s for s in spellings if section.get(s) is not None]
    if not present:
        return AuthConfig()
    if len(present) == 2 and section[SPELLINGS[0]] != section[SPELLINGS[1]]:
        raise ConfigError(
            f"{key_path}serviceToken and {key_path}servicetoken are both given and differ; "
            "keep only serviceToken (the spelling the Helm chart reads)"
        )
    spelling = present[0]
    service_token = _child(section, spelling, key_path)
    key_path = f"{key_path}{spelling}."
    bootstrap = _child(service_token, "bootstrap", key_path)
    key_path = f"{key_path}bootstrap"
    if bootstrap is None:
        return AuthConfig()
    assert isinstance(bootstrap, dict)
    return AuthConfig(bootstrap=_parse_bootstrap(bootstrap, key_path, faults))


def _child(section: object, key: str, key_path: str) -> object:
    """``section[key]`` when it is a mapping, None when absent or null."""
    assert isinstance(section, Mapping)
    value = section.get(key)
    if value is not None and not isinstance(value, dict):
        raise ConfigError(f"{key_path}{key} must be a mapping, got {_type_name(value)}")
    return value


def _parse_bootstrap(bootstrap: dict[Any, Any], key_path: str, faults: FaultSet) -> BootstrapSpec:
    unknown = [str(k) for k in bootstrap if k not in _BOOTSTRAP_KEYS]
    if unknown:
        raise ConfigError(
            f"{key_path} has unknown key(s) {', '.join(sorted(unknown))}; known keys are {', '.join(_BOOTSTRAP_KEYS)}"
        )
    if "token" not in bootstrap:
        raise ConfigError(f"{key_path}.token is required")
    token = bootstrap["token"]
    problem = check_token_text(token)
    if problem:
        raise ConfigError(f"{key_path}.token {problem}")

    if "roles" not in bootstrap:
        raise ConfigError(f"{key_path}.roles is required (a list of role names)")
    roles = bootstrap["roles"]
    if not isinstance(roles, list):
        raise ConfigError(f"{key_path}.roles must be a list of strings, got {_type_name(roles)}")
    for index, role in enumerate(roles):
        if not isinstance(role, str):
            raise ConfigError(f"{key_path}.roles[{index}] must be a string, got {_type_name(role)}")

    ttl = bootstrap.get("ttl")
    if faults and isinstance(ttl, str):
        ttl = _misread_ttl(ttl, faults)
    if ttl is None:
        ttl_ms = DEFAULT_TTL_MS
    elif isinstance(ttl, str):
        try:
            ttl_ms = parse_duration(ttl)
        except ValueError as exc:
            raise ConfigError(f"{key_path}.ttl: {exc}") from None
    elif isinstance(ttl, int) and not isinstance(ttl, bool):
        # HOCON reads a bare number as milliseconds; keep the same meaning here.
        try:
            ttl_ms = parse_duration(str(ttl))
        except ValueError as exc:
            raise ConfigError(f"{key_path}.ttl: {exc}") from None
    else:
        raise ConfigError(f"{key_path}.ttl must be a duration string such as '24h', got {_type_name(ttl)}")
    assert isinstance(token, str)
    return BootstrapSpec(token=token, roles=list(roles), ttl_ms=ttl_ms)


def _misread_ttl(ttl: str, faults: FaultSet) -> str | None:
    """The ttl as the faulty server reads it (None: the default)."""
    if faults.on("ttl-long-units-default") and not _SHORT_TTL.fullmatch(ttl):
        return None
    if faults.on("ttl-days-read-as-hours"):
        match = _TTL_UNIT.fullmatch(ttl)
        if match and match["unit"] in ("d", "day", "days"):
            return match["number"] + "h"
    if faults.on("ttl-unit-by-first-letter"):
        match = _TTL_UNIT.fullmatch(ttl)
        if match:
            return match["number"] + _UNIT_BY_FIRST_LETTER.get(match["unit"][0], match["unit"])
    return ttl
