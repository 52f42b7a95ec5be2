"""The reference ``sts service-token`` CLI.

A small Python stand-in for the ``service-token`` commands of StackState's ``sts`` CLI
(GitHub: StackVista/stackstate-cli), written to behave like it wherever its public source
says what it does. It ships with the reference deployment so that the CLI conformance suites
have a CLI to run when a target profile names no other one::

    sts-ref-cli service-token create --name N --roles a,b [--roles c] [--expiration yyyy-MM-dd]
                                     [--dedicatedSubject S]
    sts-ref-cli service-token list
    sts-ref-cli service-token delete --id ID        # or -i ID; a positional id is refused

Every command accepts ``-o text|json`` (``--output``) and ``--no-color``, and first calls
``GET {api}/server/info``, then the token call.

Target and credentials (flags beat environment beat the config file, setting by setting)
    ``--url`` / ``STS_CLI_URL``, ``--api-path`` / ``STS_CLI_API_PATH`` (default ``/api``),
    ``--service-token`` / ``STS_CLI_SERVICE_TOKEN`` (sent as ``X-API-Key``), ``--api-token`` /
    ``STS_CLI_API_TOKEN`` (sent as ``X-API-Token``); both token kinds at once is an error. A
    config file is read only when named with ``--config PATH``, in the real CLI's format
    (``contexts: [{name, context: {url, service-token, api-token, api-path}}]``,
    ``current-context``); ``--context``/``-c``/``STS_CLI_CONTEXT`` picks another context. The
    real CLI also reads ``~/.config/stackstate-cli/config.yaml`` by default; this one never
    does, so a developer's own configuration cannot steer a run.

TLS and proxies
    See :mod:`sts_reference.cli_transport`: ``SSL_CERT_FILE``/``SSL_CERT_DIR`` and the proxy
    variables by default; ``--skip-ssl``/``STS_SKIP_SSL``, ``--ca-cert-path``/
    ``STS_CA_CERT_PATH`` or ``--ca-cert-base64-data`` make the CLI build its own transport,
    which ignores the proxy variables.

Output
    Success lines on stdout, failures on stderr. With colour (stdout a terminal, ``NO_COLOR``
    unset, ``TERM`` not ``dumb``, no ``--no-color``) they start with ✅ / ❌, without it with
    ``[SUCCESS]`` / ``[ERROR]``, the rest of the message with an upper-case first letter.
    ``create`` prints ``Service token created: <token>`` followed by an empty line, as the real
    CLI does. ``-o json`` prints ``{"service-token": …}``, ``{"service-tokens": […]}``,
    ``{"deleted-service-token": id}``, errors as ``{"error": true, "error-message": …}``.
    ``list`` prints the table of :mod:`sts_reference.cli_table` (ID, NAME, EXPIRATION, ROLES,
    DEDICATED_SUBJECT; sorted by name; roles as ``[a b]``; an absent value as ``-``; the
    expiration as a local date, empty when there is none), wrapped to the terminal's width:
    the size of the terminal stdout is, else ``COLUMNS`` (this CLI only), else 80.

``--expiration yyyy-MM-dd`` is read as 00:00 UTC of that day; any other text is a flag error.
``0001-01-01`` is sent as it is (the real CLI takes that date for "no expiration" and sends
none: the fault ``cli-zero-date-no-expiry`` reproduces that).

Exit codes (``internal/common/exit_codes.go``)
    0 success; 1 no URL or credential, or both token kinds; 3 a flag error (unknown or missing
    flag, a bad ``--expiration`` or ``--id``, a positional delete id) or an HTTP error on the
    token call; 4 any failure of ``server/info`` (a 401, another error status, no answer);
    5 an unreadable CA file; 11 a CA that cannot be used.

``--fault NAME`` (before the command group; repeatable) switches on a CLI fault from
``sts_reference.faults.CLI_FAULTS``, for the suite's own kill matrix.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from http import HTTPStatus
from pathlib import Path
from typing import Any, NoReturn, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
import yaml

from .cli_table import FALLBACK_WIDTH, render_table
from .cli_transport import TlsSettings, TransportError, environment_proxies, http_client  # noqa: F401
from .faults import CLI_FAULTS, CliFaultSet

EXIT_OK = 0
EXIT_CONFIG = 1
EXIT_HTTP_ERROR = 3
EXIT_USAGE = 3  # flag errors: the real CLI's CommandFailedRequirementExitCode
EXIT_AUTH = 4  # any failure of server/info: ConnectErrorExitCode
EXIT_UNREACHABLE = 4

DEFAULT_API_PATH = "/api"
USER_AGENT = "sts-reference-cli"
LIST_HEADER = ("id", "name", "expiration", "roles", "dedicated_Subject")
#: the fields of the API's ServiceToken and ServiceTokenCreatedResponse models: others are dropped
TOKEN_FIELDS = ("id", "lastUpdateTimestamp", "name", "description", "expiration", "roles", "dedicatedSubject")
CREATED_FIELDS = ("name", "token", "expiration")
_REQUIRED_FIELDS = ("name", "roles", "token")

_DATE_FORMAT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS_PER_DAY = 86_400_000
_CYAN = "36"
_TRUE = ("1", "t", "true", "yes", "y", "on")


class CliError(Exception):
    """A failure reported as ``[ERROR] <message>`` (plus an optional detail block) with an exit code."""

    def __init__(self, message: str, exit_code: int, detail: str = "", usage: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.detail = detail
        self.usage = usage


@dataclass(frozen=True)
class Target:
    """Where to send requests and the credential to send with them."""

    api_url: str
    header: str
    secret: str = field(repr=False)
    tls: TlsSettings = field(default_factory=TlsSettings)


# --- Arguments --------------------------------------------------------------------------


def expiration_to_epoch_ms(text: str) -> int:
    """Read ``yyyy-MM-dd`` as 00:00:00 UTC of that day, in epoch milliseconds.

    Raises ``argparse.ArgumentTypeError`` for any other format or an impossible date.
    """
    if not _DATE_FORMAT.fullmatch(text):
        raise argparse.ArgumentTypeError(f'parsing time "{text}" as "2006-01-02": not a date in the format yyyy-MM-dd')
    year, month, day = (int(part) for part in text.split("-"))
    shift = 0
    if year == 0:  # Go reads year 0 (a leap year, 366 days before 0001-01-01); Python's dates start at 1
        year, shift = 4, -(366 + 3 * 365)  # 0004 is a leap year too: same months, same days
    try:
        ordinal = date(year, month, day).toordinal() + shift
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f'parsing time "{text}": {exc}') from None
    return (ordinal - _EPOCH.date().toordinal()) * _MS_PER_DAY


#: 0001-01-01, Go's zero time
ZERO_DATE_MS = expiration_to_epoch_ms("0001-01-01")


def _roles(text: str) -> list[str]:
    """One ``--roles`` value read as a CSV record, as pflag's string slices are: spaces are kept."""
    if text == "":
        return []
    try:
        return next(csv.reader([text], strict=True), [])
    except csv.Error as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma separated list ({exc})") from None


def _token_id(text: str) -> int:
    """An int64 the way Go's ``strconv.ParseInt(s, 0, 64)`` reads it (0x, 0o, 0b and 0 prefixes)."""
    body = text[1:] if text[:1] in "+-" else text
    base, digits = 10, body
    if body[:2].lower() in ("0x", "0o", "0b"):
        base, digits = {"x": 16, "o": 8, "b": 2}[body[1].lower()], body[2:]
    elif len(body) > 1 and body.startswith("0"):
        base, digits = 8, body[1:]
    if base != 10 or "_" in digits:
        digits = digits.replace("_", "") if not digits.startswith("_") and "__" not in digits else "!"
    try:
        value = int(("-" if text.startswith("-") else "") + digits, base)
    except ValueError:
        raise argparse.ArgumentTypeError(f'strconv.ParseInt: parsing "{text}": invalid syntax') from None
    if not -(2**63) <= value < 2**63:
        raise argparse.ArgumentTypeError(f'strconv.ParseInt: parsing "{text}": value out of range')
    return value


class _Parser(argparse.ArgumentParser):
    """argparse with cobra's failure: a flag error (exit 3) instead of argparse's exit 2."""

    def error(self, message: str) -> NoReturn:
        raise CliError(message, EXIT_USAGE, usage=self.format_usage())


def _add_common_options(parser: argparse.ArgumentParser, default: Any) -> None:
    # Accepted before or after the subcommand, as cobra's persistent flags are. The root parser
    # holds the defaults; below it, ``SUPPRESS`` keeps an absent option from overwriting one given earlier.
    group = parser.add_argument_group("target and output")
    group.add_argument("--url", default=default, help="server URL (env STS_CLI_URL)")
    group.add_argument("--api-path", default=default, help="API path on the server (env STS_CLI_API_PATH; /api)")
    group.add_argument("--service-token", default=default, metavar="TOKEN", help="service token (X-API-Key)")
    group.add_argument("--api-token", default=default, metavar="TOKEN", help="personal API token (X-API-Token)")
    group.add_argument("--config", default=default, metavar="PATH", help="config file (the real CLI's format)")
    group.add_argument("-c", "--context", default=default, help="context of the config file (env STS_CLI_CONTEXT)")
    group.add_argument("-o", "--output", choices=("text", "json"), default=default, help="output format")
    group.add_argument("--no-color", action="store_true", default=default, help="never use colour")
    group.add_argument("--skip-ssl", action="store_true", default=default, help="no certificate check (STS_SKIP_SSL)")
    group.add_argument("--ca-cert-path", default=default, metavar="PATH", help="CA file (env STS_CA_CERT_PATH)")
    group.add_argument("--ca-cert-base64-data", default=default, metavar="DATA", help="CA, base64-encoded PEM")


def build_parser() -> argparse.ArgumentParser:
    root = _Parser(prog="sts-ref-cli", description="Reference `sts service-token` commands.", allow_abbrev=False)
    _add_common_options(root, default=None)
    root.add_argument(
        "--fault",
        dest="faults",
        action="append",
        default=[],
        choices=sorted(CLI_FAULTS),
        help="a CLI fault (tests only)",
    )
    groups = root.add_subparsers(dest="group", metavar="COMMAND", required=True, parser_class=_Parser)

    tokens = groups.add_parser("service-token", help="manage service tokens", allow_abbrev=False)
    _add_common_options(tokens, default=argparse.SUPPRESS)
    commands = tokens.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)

    create = commands.add_parser("create", help="create a service token", allow_abbrev=False)
    create.add_argument("-n", "--name", help="name of the service token")
    create.add_argument("--roles", action="extend", type=_roles, help="roles, comma separated; repeatable")
    create.add_argument("--expiration", type=expiration_to_epoch_ms, metavar="yyyy-MM-dd", help="expiry date")
    create.add_argument("--dedicatedSubject", dest="dedicated_subject", default="", help="dedicated subject")
    create.set_defaults(run=_create, required=("name", "roles"))

    listing = commands.add_parser("list", help="list service tokens", allow_abbrev=False)
    listing.set_defaults(run=_list, required=())

    delete = commands.add_parser("delete", help="delete a service token by id", allow_abbrev=False)
    delete.add_argument("positional", nargs="*", help=argparse.SUPPRESS)  # cobra accepts and ignores them
    delete.add_argument("-i", "--id", dest="id", type=_token_id, help="id of the service token")
    delete.set_defaults(run=_delete, required=("id",))

    for command in (create, listing, delete):
        command.set_defaults(command_parser=command)
        _add_common_options(command, default=argparse.SUPPRESS)
    return root


def _check_required(args: argparse.Namespace) -> None:
    missing = [name for name in args.required if getattr(args, name) is None]
    if missing:
        names = ", ".join(f'"{name}"' for name in missing)
        raise CliError(f"required flag(s) {names} not set", EXIT_USAGE, usage=args.command_parser.format_usage())


# --- Settings ---------------------------------------------------------------------------


def _read_config(path: str, context: str | None) -> dict[str, str]:
    """The chosen context of a config file in the real CLI's format."""
    try:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read config file {path}: {exc}", EXIT_CONFIG) from None
    except yaml.YAMLError as exc:
        # only the position: PyYAML's own message quotes the line, which may hold a token
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise CliError(f"cannot read config file {path}: not valid YAML{where}", EXIT_CONFIG) from None
    contexts = loaded.get("contexts") if isinstance(loaded, dict) else None
    if not isinstance(contexts, list):
        raise CliError(f"config file {path} has no list of contexts", EXIT_CONFIG)
    wanted = context or loaded.get("current-context")
    for entry in contexts:
        if isinstance(entry, dict) and entry.get("name") == wanted and isinstance(entry.get("context"), dict):
            return {k: str(v) for k, v in entry["context"].items() if isinstance(v, str | bool) and v != ""}
    raise CliError(f"config file {path} has no context named {wanted!r}", EXIT_CONFIG)


def resolve_target(args: argparse.Namespace, env: Mapping[str, str]) -> Target:
    """Combine flags, environment and config file into a ``Target``, setting by setting."""
    context = args.context or env.get("STS_CLI_CONTEXT")
    config = _read_config(args.config, context) if args.config else {}
    flags = {
        "url": args.url,
        "api-path": args.api_path,
        "service-token": args.service_token,
        "api-token": args.api_token,
    }

    def setting(key: str) -> str | None:
        variable = "STS_CLI_" + key.upper().replace("-", "_")
        return flags[key] or env.get(variable) or config.get(key) or None

    url = setting("url")
    if not url:
        raise CliError("no URL: give --url, set STS_CLI_URL or name a config file with --config", EXIT_CONFIG)
    if not url.startswith(("http://", "https://")):
        raise CliError(f"the URL {url!r} must start with http:// or https://", EXIT_CONFIG)
    api_path = setting("api-path") or DEFAULT_API_PATH
    api_url = url.rstrip("/") + "/" + api_path.strip("/")
    service_token, api_token = setting("service-token"), setting("api-token")
    if service_token and api_token:
        raise CliError("can not use both an API token and a service token; give only one", EXIT_CONFIG)
    if not (service_token or api_token):
        raise CliError("no credential: give --service-token or --api-token, or set STS_CLI_SERVICE_TOKEN", EXIT_CONFIG)
    tls = TlsSettings(
        skip_ssl=bool(args.skip_ssl)
        or env.get("STS_SKIP_SSL", "").lower() in _TRUE
        or config.get("skip-ssl") == "True",
        ca_cert_path=args.ca_cert_path or env.get("STS_CA_CERT_PATH") or None,
        ca_cert_base64=args.ca_cert_base64_data or config.get("ca-cert-base64-data") or None,
    )
    if service_token:
        return Target(api_url, "X-API-Key", service_token, tls)
    return Target(api_url, "X-API-Token", api_token or "", tls)


# --- Output -----------------------------------------------------------------------------


def local_zone(env: Mapping[str, str]) -> tzinfo | None:
    """The zone ``list`` prints dates in, chosen as Go chooses it; ``None`` means the system's own zone.

    ``TZ`` unset: the system zone; ``TZ=""``: UTC; ``TZ=Name``, ``:Name`` or a zone file path:
    that zone; a ``TZ`` naming no zone (a POSIX rule such as ``CET-1CEST``): UTC.
    """
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
        pass
    return UTC


def epoch_ms_to_local_date(ms: int, zone: tzinfo | None) -> str:
    """``yyyy-MM-dd`` of an epoch-millisecond instant in ``zone`` (``None``: system zone)."""
    try:
        return (_EPOCH + timedelta(milliseconds=ms)).astimezone(zone).date().isoformat()
    except (OverflowError, ValueError):
        return str(ms)


def go_string(value: Any) -> str:
    """A value as the real CLI's ``ToString`` prints it: nothing as ``-``, lists as ``[a b]``."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + " ".join(go_string(v) if not isinstance(v, str) else v for v in value) + "]"
    if isinstance(value, float) and value.is_integer():
        return f"{value:.0f}"
    return str(value)


def go_json(document: Any) -> str:
    """JSON as Go's ``json.MarshalIndent(v, "", "  ")`` writes it: keys sorted, <, > and & escaped."""
    text = json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True)
    for char, escaped in (
        ("&", "\\u0026"),
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escaped)
    return text


def model(item: Any, fields: Sequence[str]) -> dict[str, Any]:
    """An API object as the CLI's generated Go model keeps it: known fields only, absent optional ones left out."""
    if not isinstance(item, dict):
        raise CliError("unreadable response body (not an object)", EXIT_HTTP_ERROR)
    return {k: item.get(k) for k in fields if item.get(k) is not None or k in _REQUIRED_FIELDS}


def terminal_width(out: TextIO, env: Mapping[str, str]) -> int:
    """The table's width: the terminal's when stdout is one, else ``COLUMNS``, else 80."""
    if out.isatty():
        try:
            return os.get_terminal_size(out.fileno()).columns or FALLBACK_WIDTH
        except (OSError, ValueError, AttributeError):
            pass
    columns = env.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else FALLBACK_WIDTH


@dataclass
class Printer:
    out: TextIO
    err: TextIO
    json_mode: bool
    color: bool
    zone: tzinfo | None
    width: int = FALLBACK_WIDTH

    def date(self, epoch_ms: Any) -> str:
        """An expiration as a local date; an empty cell for none."""
        return "" if not isinstance(epoch_ms, int) else epoch_ms_to_local_date(epoch_ms, self.zone)

    def line(self, text: str) -> None:
        print(text, file=self.out)

    def symbol(self, kind: str) -> str:
        return (
            {"success": "✅", "error": "❌"}[kind] if self.color else {"success": "[SUCCESS]", "error": "[ERROR]"}[kind]
        )

    def success(self, text: str) -> None:
        self.line(f"{self.symbol('success')} {text[:1].upper()}{text[1:]}")

    def json(self, document: Mapping[str, Any]) -> None:
        self.line(go_json(document))

    def failure(self, error: CliError) -> None:
        if self.json_mode:
            print(go_json({"error": True, "error-message": error.message}), file=self.err)
            return
        message = error.message[:1].upper() + error.message[1:]
        print(f"{self.symbol('error')} {message}", file=self.err)
        if error.detail:
            print(error.detail, file=self.err)
        if error.usage:
            self.line(error.usage.rstrip("\n"))


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
    """The error body as the real CLI shows it: JSON as YAML, plain text as it is, else nothing."""
    kind = response.headers.get("content-type", "")
    if kind == "application/json":
        try:
            return yaml.safe_dump(response.json(), sort_keys=False, allow_unicode=True).rstrip("\n")
        except ValueError:
            return ""
    if kind.split(";")[0].strip() == "text/plain":
        return response.text
    return ""


def _send(client: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    try:
        return client.request(method, path, **kwargs)
    except httpx.TransportError as exc:
        reason = str(exc) or type(exc).__name__
        raise CliError(f"{method} {path}: {reason}", EXIT_HTTP_ERROR) from exc


def _connect(client: httpx.Client, target: Target) -> None:
    """The real CLI's first step: ``GET /server/info``; any failure is a connect error (exit 4)."""
    try:
        response = client.get("/server/info")
    except httpx.TransportError as exc:
        raise CliError(
            f"could not connect to {target.api_url} due to {exc or type(exc).__name__}: ", EXIT_AUTH
        ) from exc
    if response.status_code == HTTPStatus.UNAUTHORIZED:
        raise CliError(
            f"authentication failed when connecting to {target.api_url}: {_status_line(response)}\n"
            "For more information: https://l.stackstate.com/cli-invalid-api-token",
            EXIT_AUTH,
        )
    if not response.is_success:
        raise CliError(f"could not connect to {target.api_url} ({_status_line(response)})", EXIT_AUTH)


def _json_result(response: httpx.Response) -> Any:
    if not response.is_success:
        raise CliError(_status_line(response), EXIT_HTTP_ERROR, _error_detail(response))
    try:
        return response.json()
    except ValueError as exc:
        raise CliError(f"unreadable response body ({exc})", EXIT_HTTP_ERROR) from exc


# --- Commands ---------------------------------------------------------------------------


def _create(client: httpx.Client, args: argparse.Namespace, printer: Printer) -> None:
    body: dict[str, Any] = {"name": args.name, "roles": args.roles, "dedicatedSubject": args.dedicated_subject}
    if args.expiration is not None and not (
        args.faults.on("cli-zero-date-no-expiry") and args.expiration == ZERO_DATE_MS
    ):
        body["expiryDate"] = args.expiration
    created = model(_json_result(_send(client, "POST", "/security/tokens", json=body)), CREATED_FIELDS)
    if not isinstance(created.get("token"), str):
        raise CliError("unreadable response body (no token in it)", EXIT_HTTP_ERROR)
    if printer.json_mode:
        printer.json({"service-token": created})
    else:
        printer.success(f"Service token created: {created['token']}\n")


def _list(client: httpx.Client, args: argparse.Namespace, printer: Printer) -> None:
    answer = _json_result(_send(client, "GET", "/security/tokens"))
    if not isinstance(answer, list):
        raise CliError("unreadable response body (not a list of tokens)", EXIT_HTTP_ERROR)
    tokens = sorted((model(item, TOKEN_FIELDS) for item in answer), key=lambda t: str(t.get("name") or ""))
    if printer.json_mode:
        printer.json({"service-tokens": tokens})
        return
    if not tokens:
        printer.line("No service tokens found.")
        return
    rows = [
        [
            go_string(t.get("id")),
            go_string(t.get("name") or ""),
            printer.date(t.get("expiration")),
            go_string(t.get("roles")),
            go_string(t.get("dedicatedSubject")),
        ]
        for t in tokens
    ]
    paint = _CYAN if printer.color else None
    for line in render_table(LIST_HEADER, rows, printer.width, paint_header=paint):
        printer.line(line)


def _delete(client: httpx.Client, args: argparse.Namespace, printer: Printer) -> None:
    response = _send(client, "DELETE", f"/security/tokens/{args.id}")
    if not response.is_success:
        raise CliError(_status_line(response), EXIT_HTTP_ERROR, _error_detail(response))
    if printer.json_mode:
        printer.json({"deleted-service-token": args.id})
    else:
        printer.success(f"Service token deleted: {args.id}")


# --- Entry point ------------------------------------------------------------------------


def main(
    argv: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run one command and return its exit code.

    ``env``, ``stdout`` and ``stderr`` default to the process's own; tests pass their own so
    that nothing global is touched.
    """
    env = os.environ if env is None else env
    out = sys.stdout if stdout is None else stdout
    err = sys.stderr if stderr is None else stderr
    json_mode = _json_requested(argv if argv is not None else sys.argv[1:])
    printer = Printer(out, err, json_mode, False, None)
    try:
        try:
            with redirect_stdout(out), redirect_stderr(err):
                args = build_parser().parse_args(argv)
        except SystemExit as exit_:  # --help
            return exit_.code if isinstance(exit_.code, int) else EXIT_OK
        args.faults = CliFaultSet(args.faults)
        printer = Printer(out, err, args.output == "json", _wants_color(args, env, out), local_zone(env))
        printer.width = terminal_width(out, env)
        _check_required(args)
        target = resolve_target(args, env)
        headers = {target.header: target.secret, "Accept": "application/json", "User-Agent": USER_AGENT}
        try:
            client = http_client(target.api_url, env, headers, target.tls)
        except TransportError as exc:
            raise CliError(exc.message, exc.exit_code) from None
        with client:
            _connect(client, target)
            args.run(client, args, printer)
    except CliError as error:
        printer.failure(error)
        return error.exit_code
    return EXIT_OK


def _json_requested(argv: Sequence[str]) -> bool:
    """Whether the line asks for JSON, for errors found before the line is fully read."""
    words = list(argv)
    return any(
        w in ("-ojson", "--output=json", "-o=json") or (w in ("-o", "--output") and words[i + 1 : i + 2] == ["json"])
        for i, w in enumerate(words)
    )


if __name__ == "__main__":
    sys.exit(main())
