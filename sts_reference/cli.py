"""The reference ``sts service-token`` CLI.

A small Python stand-in for the ``service-token`` commands of StackState's ``sts`` CLI. It
ships with the reference deployment so that the CLI conformance suites have a CLI to run
when a target profile names no other one::

    sts-ref-cli service-token create --name N --roles a,b [--roles c] [--expiration yyyy-MM-dd]
    sts-ref-cli service-token list
    sts-ref-cli service-token delete ID          # or: delete --id ID / delete -i ID

Every command accepts ``-o text|json`` and ``--no-color``. Like the real CLI, every
command first calls ``GET {api}/server/info``, then the token call.

Target and credentials
    Each setting comes from the first of these that has it (an empty value counts as unset):

    1. flags: ``--url``, ``--api-path``, ``--service-token`` or ``--api-token``
    2. environment: ``STS_CLI_URL``, ``STS_CLI_API_PATH``, ``STS_CLI_SERVICE_TOKEN`` or
       ``STS_CLI_API_TOKEN``
    3. config file, only when named by ``--config PATH`` or ``$STS_CLI_CONFIG``: a flat YAML
       mapping with the keys ``url``, ``api-path``, ``service-token``, ``api-token``
    4. ``api-path`` defaults to ``/api``

    The credential is taken as a whole from the first source that has one, so
    ``--api-token`` on the command line beats ``STS_CLI_SERVICE_TOKEN``; one source naming
    both kinds is a usage error. A service token is sent in ``X-API-Key``, an API token in
    ``X-API-Token``. No config file is read unless one is named, so a developer's own
    ``sts`` configuration can never steer a run.

TLS and proxies
    Read from the environment, as the Go CLI reads them: the server's certificate is checked
    against ``SSL_CERT_FILE`` and/or ``SSL_CERT_DIR`` when either is set (they replace the
    default CA bundle; an ``SSL_CERT_FILE`` that cannot be loaded is exit 5), else against
    certifi's bundle. ``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY`` and ``NO_PROXY`` (either
    case, lower case winning, as Python reads them) route requests through a proxy the way
    httpx does. There is no client-certificate option, as there is none in the real CLI.

Output
    Results go to stdout, failures to stderr as ``❌ <message>`` (or, with ``-o json``, as
    ``{"error": true, "error-message": ...}``). Nothing secret is printed except the token
    shown once by ``create``. Colour (table header, the new token) is used only when stdout
    is a terminal, ``NO_COLOR`` is unset (any value counts, even empty), ``TERM`` is not
    ``dumb``, the output is text and ``--no-color`` is not given. The ✅/❌ markers stay.

    ``list`` prints expirations as dates in the local time zone, chosen the way the Go CLI
    chooses it: ``TZ`` unset means the system zone; ``TZ=""`` means UTC; ``TZ=Name``,
    ``TZ=:Name`` or ``TZ=/path/to/zonefile`` name a zone; a ``TZ`` that names no zone
    (for example a POSIX rule such as ``CET-1CEST``) falls back to UTC.

Exit codes
    0  success
    2  usage: unknown or missing flags, no URL or credential, a malformed or impossible
       ``--expiration``, an unreadable config file. Nothing has been sent.
    3  a token call was answered with an HTTP error (``❌ 404 Not Found``) or an
       unreadable body
    4  ``GET {api}/server/info`` was refused: 401 (the credential is missing, unknown,
       expired or deleted) or any other error status
    5  the server could not be reached: connection refused, DNS failure, timeout, TLS error

    Where the real ``sts`` differs: it exits 3 for flag errors (including a bad
    ``--expiration``) and 4 for an unreachable server; with colour off it prints
    ``[SUCCESS]``/``[ERROR]`` instead of ✅/❌; and it merges the credential field by field,
    so an API token from one source and a service token from another is an error there.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import ssl
import sys
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from http import HTTPStatus
from pathlib import Path
from typing import Any, NoReturn, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
import yaml

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_HTTP_ERROR = 3
EXIT_AUTH = 4
EXIT_UNREACHABLE = 5

DEFAULT_API_PATH = "/api"
TIMEOUT_SECONDS = 10.0
USER_AGENT = "sts-reference-cli"
CONFIG_KEYS = ("url", "api-path", "service-token", "api-token")

_DATE_FORMAT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS_PER_DAY = 86_400_000
_INT64 = range(-(2**63), 2**63)
_CYAN = "36"
_BOLD = "1"


class CliError(Exception):
    """A failure reported as ``❌ <message>`` (plus an optional detail block) with an exit code."""

    def __init__(self, message: str, exit_code: int, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.detail = detail


@dataclass(frozen=True)
class Target:
    """Where to send requests and the credential to send with them."""

    api_url: str
    header: str
    secret: str = field(repr=False)

    @property
    def credential_kind(self) -> str:
        return "service token" if self.header == "X-API-Key" else "API token"


# --- Arguments --------------------------------------------------------------------------


def expiration_to_epoch_ms(text: str) -> int:
    """Read ``yyyy-MM-dd`` as 00:00:00 UTC of that day, in epoch milliseconds.

    Raises ``argparse.ArgumentTypeError`` for any other format or an impossible date.
    """
    if not _DATE_FORMAT.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a date in the format yyyy-MM-dd")
    try:
        day = date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a valid date ({exc})") from None
    return (day - _EPOCH.date()).days * _MS_PER_DAY


def _roles(text: str) -> list[str]:
    """``--roles a,b`` gives two roles; the flag may be repeated."""
    return [role.strip() for role in text.split(",") if role.strip()]


def _token_id(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a service token id") from None
    if value not in _INT64:
        raise argparse.ArgumentTypeError(f"{text!r} is out of range for a service token id")
    return value


def _add_common_options(parser: argparse.ArgumentParser, default: Any) -> None:
    # The options are accepted before or after the subcommand, as cobra allows. The root
    # parser holds the defaults; below it, ``SUPPRESS`` keeps an absent option from
    # overwriting a value given earlier on the line.
    group = parser.add_argument_group("target and output")
    group.add_argument("--url", default=default, help="server URL (env STS_CLI_URL)")
    group.add_argument("--api-path", default=default, help="API path on the server (env STS_CLI_API_PATH; /api)")
    group.add_argument(
        "--service-token",
        default=default,
        metavar="TOKEN",
        help="service token, sent in X-API-Key (env STS_CLI_SERVICE_TOKEN)",
    )
    group.add_argument(
        "--api-token",
        default=default,
        metavar="TOKEN",
        help="personal API token, sent in X-API-Token (env STS_CLI_API_TOKEN)",
    )
    group.add_argument("--config", default=default, metavar="PATH", help="YAML config file (env STS_CLI_CONFIG)")
    group.add_argument("-o", "--output", choices=("text", "json"), default=default, help="output format")
    group.add_argument("--no-color", action="store_true", default=default, help="never use colour")


def build_parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="sts-ref-cli",
        description="Reference implementation of the `sts service-token` commands.",
        allow_abbrev=False,
    )
    _add_common_options(root, default=None)
    groups = root.add_subparsers(dest="group", metavar="COMMAND", required=True)

    tokens = groups.add_parser("service-token", help="manage service tokens", allow_abbrev=False)
    _add_common_options(tokens, default=argparse.SUPPRESS)
    commands = tokens.add_subparsers(dest="command", metavar="COMMAND", required=True)

    create = commands.add_parser("create", help="create a service token", allow_abbrev=False)
    create.add_argument("--name", required=True, help="name of the service token")
    create.add_argument(
        "--roles",
        required=True,
        action="extend",
        type=_roles,
        help="comma separated roles; may be repeated",
    )
    create.add_argument(
        "--expiration",
        type=expiration_to_epoch_ms,
        metavar="yyyy-MM-dd",
        help="expiry date, read as 00:00 UTC of that day",
    )
    create.set_defaults(run=_create, command_parser=create)

    listing = commands.add_parser("list", help="list service tokens", allow_abbrev=False)
    listing.set_defaults(run=_list, command_parser=listing)

    delete = commands.add_parser("delete", help="delete a service token by id", allow_abbrev=False)
    delete.add_argument("id", nargs="?", type=_token_id, help="id of the service token")
    delete.add_argument("-i", "--id", dest="id_option", type=_token_id, metavar="ID", help="same as ID")
    delete.set_defaults(run=_delete, command_parser=delete)

    for command in (create, listing, delete):
        _add_common_options(command, default=argparse.SUPPRESS)
    return root


# --- Settings ---------------------------------------------------------------------------


def _read_config(path: str, fail: Callable[[str], NoReturn]) -> dict[str, str]:
    try:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read config file {path}: {exc}")
    except yaml.YAMLError as exc:
        # Only the position: PyYAML's own message quotes the line, which may hold a token.
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        fail(f"cannot read config file {path}: not valid YAML{where}")
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        fail(f"config file {path} must be a mapping with keys {', '.join(CONFIG_KEYS)}")
    unknown = sorted(str(key) for key in loaded if key not in CONFIG_KEYS)
    if unknown:
        fail(f"config file {path} has unknown keys {', '.join(unknown)} (known: {', '.join(CONFIG_KEYS)})")
    not_text = sorted(key for key, value in loaded.items() if not isinstance(value, str | None))
    if not_text:
        fail(f"config file {path}: {', '.join(not_text)} must be text")
    return {key: value for key, value in loaded.items() if value}


def resolve_target(args: argparse.Namespace, env: Mapping[str, str]) -> Target:
    """Combine flags, environment and config file into a ``Target`` (see the module doc)."""
    fail: Callable[[str], NoReturn] = args.command_parser.error
    config_path = args.config or env.get("STS_CLI_CONFIG")
    config = _read_config(config_path, fail) if config_path else {}
    sources = [
        (
            "the command line",
            {
                "url": args.url,
                "api-path": args.api_path,
                "service-token": args.service_token,
                "api-token": args.api_token,
            },
        ),
        (
            "the environment",
            {
                "url": env.get("STS_CLI_URL"),
                "api-path": env.get("STS_CLI_API_PATH"),
                "service-token": env.get("STS_CLI_SERVICE_TOKEN"),
                "api-token": env.get("STS_CLI_API_TOKEN"),
            },
        ),
        (f"config file {config_path}", config),
    ]

    def first(key: str) -> str | None:
        return next((values[key] for _, values in sources if values.get(key)), None)

    url = first("url")
    if not url:
        fail("no server URL: give --url, set STS_CLI_URL or put url in the config file")
    if not url.startswith(("http://", "https://")):
        fail(f"the URL {url!r} must start with http:// or https://")
    api_path = first("api-path") or DEFAULT_API_PATH
    api_url = url.rstrip("/") + "/" + api_path.strip("/")

    for source, values in sources:
        service_token, api_token = values.get("service-token"), values.get("api-token")
        if service_token and api_token:
            fail(f"{source} gives both a service token and an API token; give only one")
        if service_token:
            return Target(api_url, "X-API-Key", service_token)
        if api_token:
            return Target(api_url, "X-API-Token", api_token)
    fail(
        "no credential: give --service-token or --api-token, set STS_CLI_SERVICE_TOKEN or "
        "STS_CLI_API_TOKEN, or put service-token or api-token in the config file"
    )


# --- Output -----------------------------------------------------------------------------


def local_zone(env: Mapping[str, str]) -> tzinfo | None:
    """The zone ``list`` prints dates in; ``None`` means the system's own zone."""
    name = env.get("TZ")
    if name is None:
        return None
    name = name.removeprefix(":")
    try:
        if name.startswith("/"):
            with open(name, "rb") as zone_file:
                return ZoneInfo.from_file(zone_file, key=name)
        if name:
            return ZoneInfo(name)
    except (OSError, ValueError, ZoneInfoNotFoundError):
        pass  # like Go: a TZ that names no zone means UTC
    return UTC


def epoch_ms_to_local_date(ms: int, zone: tzinfo | None) -> str:
    """``yyyy-MM-dd`` of an epoch-millisecond instant in ``zone`` (``None``: system zone)."""
    try:
        return (_EPOCH + timedelta(milliseconds=ms)).astimezone(zone).date().isoformat()
    except (OverflowError, ValueError):
        return str(ms)


def _display_width(text: str) -> int:
    # East Asian wide characters take two terminal columns, combining marks none.
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 0 if unicodedata.combining(ch) else 1 for ch in text)


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Columns padded to their widest cell and joined by `` | ``; no trailing blanks."""
    widths = [max(map(_display_width, column)) for column in zip(header, *rows, strict=True)]
    return [
        " | ".join(
            cell + " " * (width - _display_width(cell)) for cell, width in zip(row, widths, strict=True)
        ).rstrip()
        for row in (header, *rows)
    ]


def _go_list(values: Any) -> str:
    """Roles the way Go prints a string slice: ``[a b]``."""
    return "[" + " ".join(str(value) for value in values or []) + "]"


@dataclass
class Printer:
    out: TextIO
    err: TextIO
    json_mode: bool
    color: bool
    zone: tzinfo | None

    def date(self, epoch_ms: int | None) -> str:
        """An expiration as a local date; an empty cell for none."""
        return "" if epoch_ms is None else epoch_ms_to_local_date(epoch_ms, self.zone)

    def paint(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color else text

    def line(self, text: str) -> None:
        print(text, file=self.out)

    def success(self, text: str) -> None:
        self.line(f"✅ {text}")

    def json(self, document: Mapping[str, Any]) -> None:
        self.line(json.dumps(document, indent=2, ensure_ascii=False))

    def failure(self, error: CliError) -> None:
        if self.json_mode:
            document = {"error": True, "error-message": error.message}
            print(json.dumps(document, indent=2, ensure_ascii=False), file=self.err)
            return
        print(f"❌ {error.message}", file=self.err)
        if error.detail:
            print(error.detail, file=self.err)


def _wants_color(args: argparse.Namespace, env: Mapping[str, str], out: TextIO) -> bool:
    return (
        args.output != "json"
        and not args.no_color
        and "NO_COLOR" not in env
        and env.get("TERM", "").lower() != "dumb"
        and out.isatty()
    )


# --- HTTP -------------------------------------------------------------------------------


def _status_line(response: httpx.Response) -> str:
    reason = response.reason_phrase
    if not reason:
        try:
            reason = HTTPStatus(response.status_code).phrase
        except ValueError:
            reason = ""
    return f"{response.status_code} {reason}".rstrip()


def _error_detail(response: httpx.Response) -> str:
    """A JSON error body, pretty-printed, as the real CLI shows it; otherwise nothing."""
    if "json" not in response.headers.get("content-type", ""):
        return ""
    try:
        return json.dumps(response.json(), indent=2, ensure_ascii=False)
    except ValueError:
        return ""


def _shown_url(client: httpx.Client) -> str:
    return str(client.base_url).rstrip("/")


def environment_proxies(env: Mapping[str, str]) -> dict[str, str | None]:
    """httpx's reading of the proxy variables, from ``env`` instead of the process environment.

    Keys are httpx mount patterns; a ``None`` value sends matching URLs direct (``NO_PROXY``).
    """
    values: dict[str, str] = {}
    for name, value in env.items():  # any case first, then lower case wins (urllib's rule)
        if value and name.lower().endswith("_proxy"):
            values[name.lower()[: -len("_proxy")]] = value
    for name, value in env.items():
        if name.endswith("_proxy"):
            if value:
                values[name.lower()[: -len("_proxy")]] = value
            else:
                values.pop(name.lower()[: -len("_proxy")], None)
    mounts: dict[str, str | None] = {}
    for scheme in ("http", "https", "all"):
        if values.get(scheme):
            proxy = values[scheme]
            mounts[f"{scheme}://"] = proxy if "://" in proxy else f"http://{proxy}"
    for host in (h.strip() for h in values.get("no", "").split(",")):
        if host == "*":
            return {}
        if not host:
            continue
        if "://" in host:
            mounts[host] = None
        elif _is_ip(host, 4):
            mounts[f"all://{host}"] = None
        elif _is_ip(host, 6):
            mounts[f"all://[{host}]"] = None
        elif host.lower() == "localhost":
            mounts[f"all://{host}"] = None
        else:
            mounts[f"all://*{host}"] = None
    return mounts


def _is_ip(host: str, version: int) -> bool:
    try:
        return ipaddress.ip_address(host.split("/")[0]).version == version
    except ValueError:
        return False


def trusted_certificates(env: Mapping[str, str]) -> ssl.SSLContext | bool:
    """The ``verify`` for httpx: ``SSL_CERT_FILE``/``SSL_CERT_DIR`` when set, else True (certifi)."""
    cafile, capath = env.get("SSL_CERT_FILE") or None, env.get("SSL_CERT_DIR") or None
    if cafile is None and capath is None:
        return True
    try:
        return ssl.create_default_context(cafile=cafile, capath=capath)
    except (OSError, ssl.SSLError) as exc:
        named = " and ".join(f"{k}={v}" for k, v in (("SSL_CERT_FILE", cafile), ("SSL_CERT_DIR", capath)) if v)
        raise CliError(f"cannot load the CA certificates in {named} ({exc})", EXIT_UNREACHABLE) from exc


def http_client(target: Target, env: Mapping[str, str], headers: Mapping[str, str]) -> httpx.Client:
    """The client for every call, with TLS trust and proxies taken from ``env`` (not ``os.environ``)."""
    verify = trusted_certificates(env) if target.api_url.startswith("https://") else True
    try:
        mounts: dict[str, httpx.BaseTransport | None] = {
            pattern: None if proxy is None else httpx.HTTPTransport(proxy=proxy, verify=verify)
            for pattern, proxy in environment_proxies(env).items()
        }
    except (ValueError, ImportError) as exc:
        raise CliError(f"cannot use the proxy set in the environment ({exc})", EXIT_UNREACHABLE) from exc
    return httpx.Client(
        base_url=target.api_url,
        headers=dict(headers),
        timeout=TIMEOUT_SECONDS,
        verify=verify,
        mounts=mounts,
        trust_env=False,
    )


def _send(client: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    try:
        return client.request(method, path, **kwargs)
    except httpx.TransportError as exc:
        reason = str(exc) or type(exc).__name__
        raise CliError(
            f"could not connect to {_shown_url(client)} ({type(exc).__name__}: {reason})",
            EXIT_UNREACHABLE,
        ) from exc


def _connect(client: httpx.Client, target: Target) -> None:
    """The real CLI's first step: ``GET /server/info``; any refusal ends the command."""
    response = _send(client, "GET", "/server/info")
    if response.status_code == HTTPStatus.UNAUTHORIZED:
        raise CliError(
            f"could not connect to {_shown_url(client)}: {_status_line(response)}: the "
            f"{target.credential_kind} was not accepted (missing, unknown, expired or deleted)",
            EXIT_AUTH,
            _error_detail(response),
        )
    if not response.is_success:
        raise CliError(
            f"could not connect to {_shown_url(client)}: {_status_line(response)}",
            EXIT_AUTH,
            _error_detail(response),
        )


def _json_result(response: httpx.Response) -> Any:
    if not response.is_success:
        raise CliError(_status_line(response), EXIT_HTTP_ERROR, _error_detail(response))
    try:
        return response.json()
    except ValueError as exc:
        raise CliError(f"unreadable response body ({exc})", EXIT_HTTP_ERROR) from exc


# --- Commands ---------------------------------------------------------------------------


def _create(client: httpx.Client, args: argparse.Namespace, printer: Printer) -> None:
    body: dict[str, Any] = {"name": args.name, "roles": args.roles}
    if args.expiration is not None:
        body["expiryDate"] = args.expiration
    created = _json_result(_send(client, "POST", "/security/tokens", json=body))
    if not isinstance(created, dict) or not isinstance(created.get("token"), str):
        raise CliError("unreadable response body (no token in it)", EXIT_HTTP_ERROR)
    if printer.json_mode:
        printer.json({"service-token": created})
    else:
        printer.success(f"Service token created: {printer.paint(created['token'], _BOLD)}")


def _list(client: httpx.Client, args: argparse.Namespace, printer: Printer) -> None:
    tokens = _json_result(_send(client, "GET", "/security/tokens"))
    if not isinstance(tokens, list) or not all(isinstance(t, dict) for t in tokens):
        raise CliError("unreadable response body (not a list of tokens)", EXIT_HTTP_ERROR)
    tokens.sort(key=lambda token: str(token.get("name", "")))
    if printer.json_mode:
        printer.json({"service-tokens": tokens})
        return
    if not tokens:
        printer.line("No service tokens found.")
        return
    rows = [
        [
            str(token.get("id", "")),
            str(token.get("name", "")),
            printer.date(token.get("expiration")),
            _go_list(token.get("roles")),
        ]
        for token in tokens
    ]
    header, *body = format_table(["ID", "NAME", "EXPIRATION", "ROLES"], rows)
    printer.line(printer.paint(header, _CYAN))
    for row in body:
        printer.line(row)


def _delete(client: httpx.Client, args: argparse.Namespace, printer: Printer) -> None:
    response = _send(client, "DELETE", f"/security/tokens/{args.token_id}")
    if not response.is_success:
        raise CliError(_status_line(response), EXIT_HTTP_ERROR, _error_detail(response))
    if printer.json_mode:
        printer.json({"deleted-service-token": args.token_id})
    else:
        printer.success(f"Service token deleted: {args.token_id}")


def _check_delete_id(args: argparse.Namespace) -> None:
    if args.run is not _delete:
        return
    given = [value for value in (args.id, args.id_option) if value is not None]
    if not given:
        args.command_parser.error("the id of the service token is required (ID or --id ID)")
    if len(given) == 2 and given[0] != given[1]:
        args.command_parser.error(f"two different ids given: {given[0]} and {given[1]}")
    args.token_id = given[0]


# --- Entry point ------------------------------------------------------------------------


def main(
    argv: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run one command and return its exit code.

    ``env``, ``stdout`` and ``stderr`` default to the process's own; tests pass their own
    so that nothing global is touched.
    """
    env = os.environ if env is None else env
    out = sys.stdout if stdout is None else stdout
    err = sys.stderr if stderr is None else stderr
    try:
        # argparse writes usage and help to the process streams; point them at ours.
        with redirect_stdout(out), redirect_stderr(err):
            args = build_parser().parse_args(argv)
            _check_delete_id(args)
            target = resolve_target(args, env)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE

    printer = Printer(out, err, args.output == "json", _wants_color(args, env, out), local_zone(env))
    headers = {target.header: target.secret, "Accept": "application/json", "User-Agent": USER_AGENT}
    try:
        with http_client(target, env, headers) as client:
            _connect(client, target)
            args.run(client, args, printer)
    except CliError as error:
        printer.failure(error)
        return error.exit_code
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
