"""Running the target's ``sts`` CLI, and reading what it prints.

The command comes from the profile's ``cli.command`` (a command line such as ``sts`` or
``{python} -m sts_reference.cli``; ``{python}`` is the interpreter running the suite). It
is split with :func:`shlex.split` and run without a shell, in a clean environment:

- only ``PATH``, ``LANG``/``LC_ALL``, ``TZ`` (UTC unless the check asks for a zone), ``NO_COLOR=1``,
  and ``HOME`` and ``XDG_CONFIG_HOME`` pointing into a fresh directory that is removed after
  the call, so a developer's own ``sts`` configuration can never leak in or steer a run;
- what it needs to reach the target as the suite does: the profile's ``ca_bundle`` as
  ``SSL_CERT_FILE`` (read by CLIs that use the system's trust, the reference CLI and ``sts``
  before v3.1) and as ``STS_CA_CERT_PATH`` (read by ``sts`` v3.1 and later, which then
  builds its own transport and ignores the proxy variables); without one,
  ``SSL_CERT_FILE``/``SSL_CERT_DIR`` from the suite's own environment; the proxy variables
  (:data:`~sts_conformance.target.client.PROXY_VARIABLES`) when set, and the variables the profile
  lists under ``cli.env`` when set; never an ``STS_CLI_*`` variable of the suite's environment;
- the target and the credential, either as ``STS_CLI_URL``/``STS_CLI_SERVICE_TOKEN`` (the
  default: the secret stays out of the process list) or as ``--url``/``--service-token``;
  ``STS_CLI_API_PATH`` when the API is not at the default ``/api``.

The CLI gets no client certificate: the ``sts`` CLI has no setting for one, so
``client_cert``/``client_key`` serve the suite's own HTTP client only.

Before the CLI checks, :meth:`CliRunner.check_reaches_target` runs one ``service-token
list``: a CLI that cannot be started, hangs, or never got an HTTP answer from the target
(TLS, proxy, DNS, connection refused) raises :class:`CliUnavailable`, a harness error
naming the setting to fix, instead of failing every CLI requirement.

stdout is a pipe, so the real CLI lays its table out for 80 columns; a call given
``columns=N`` runs with stdout on a pseudo-terminal N columns wide (and ``COLUMNS=N``), as
in a wide terminal window. After every call the throw-away home is searched for any secret
known to the run (:attr:`CliResult.home_secrets`).

stdin is closed, so a prompt cannot hang a run; a call that outlives its timeout is killed
and fails the check. Every credential handed to a run is registered for masking, and
:meth:`CliResult.describe` masks what it shows.

What the product's CLI prints, and what this module accepts:

- success lines start with ``✅`` or, with colour off (the real CLI under ``NO_COLOR``),
  ``[SUCCESS]``; failure lines with ``❌`` or ``[ERROR]``; ANSI colour codes are ignored;
- ``list`` prints a table ``ID | NAME | EXPIRATION | ROLES``, newer CLIs with a further
  ``DEDICATED_SUBJECT`` column, long cells wrapped onto continuation lines:
  :func:`~sts_conformance.checking.cli_table.parse_table` finds the columns by the header and joins
  wrapped cells back.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, TypeVar

from sts_conformance.checking.cli_table import (  # noqa: F401  (the table is read there; re-exported for the checks)
    NO_TOKENS,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    CliTable,
    TableError,
    cell_date,
    parse_roles,
    parse_table,
)
from sts_conformance.checking.cli_terminal import secrets_in_files, stdout_for
from sts_conformance.core.errors import HarnessError
from sts_conformance.core.redact import REDACTOR, fingerprint
from sts_conformance.target.client import PROXY_VARIABLES, TLS_VARIABLES
from sts_conformance.target.inflight import IDS
from sts_conformance.target.profile import CLI_ENV_RESERVED, TargetProfile
from sts_conformance.target.throttle import THROTTLE
from sts_conformance.tokens.ledger import OwnedToken, TokenLedger

SUCCESS_MARKERS = ("✅", "[SUCCESS]")
ERROR_MARKERS = ("❌", "[ERROR]")

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_MARKER = "|".join(re.escape(m) for m in SUCCESS_MARKERS)
_CREATED = re.compile(rf"^\s*(?:{_MARKER})\s*Service token created:\s*(\S+)\s*$")
_DELETED = re.compile(rf"^\s*(?:{_MARKER})\s*Service token deleted:\s*(\S+)\s*$")
_TOKEN_LIKE = re.compile(r"[A-Za-z0-9_\-.~+/=]{16,}")
_EXCERPT = 1500

T = TypeVar("T")


def _creating(args: Sequence[str]) -> contextlib.AbstractContextManager[None]:
    """A CLI command that may make a token is a create of the run (``inflight.IDS``), whatever sends it.

    Judged by the command's verb (``service-token VERB ...``), not by any word: a create whose name or
    role is the word ``list`` is still a create."""
    return contextlib.nullcontext() if tuple(args[1:2]) in (("delete",), ("list",)) else IDS.creating()


class CliUnavailable(HarnessError):
    """The command in ``cli.command`` could not be started, did not finish in time, or cannot reach the target.

    A harness error, not a failed requirement: it says nothing about how the CLI behaves.
    Inside a check, pytest still reports it as that check's failure.
    """


class CliTimedOut(CliUnavailable):
    """The CLI did not finish within the runner's timeout and was killed."""


def split_command(command: str, python: str = sys.executable) -> list[str]:
    """``cli.command`` as an argument vector, ``{python}`` replaced by the suite's interpreter."""
    try:
        argv = shlex.split(command.format(python=shlex.quote(python)))
    except (KeyError, IndexError) as exc:
        raise ValueError(f"cli.command {command!r} has an unknown placeholder {exc} (known: {{python}})") from None
    except ValueError as exc:
        raise ValueError(f"cli.command {command!r} cannot be split into words: {exc}") from None
    if not argv:
        raise ValueError("cli.command is empty")
    return argv


def start_problem(command: str, source: str) -> str | None:
    """Why ``cli.command`` cannot be started at all (no such program, not executable), or None.

    Found before any check, from the command alone: what the CLI then does with the target is
    for ``check_reaches_target`` and the checks.
    """
    try:
        program = split_command(command)[0]
    except ValueError as exc:
        return f"target profile {source}: {exc}"
    path = os.environ.get("PATH", os.defpath)
    if os.sep in program:
        if not os.path.isfile(program):
            return f"target profile {source}: cli.command {command!r}: {program} does not exist"
        if not os.access(program, os.X_OK):
            return f"target profile {source}: cli.command {command!r}: {program} is not executable (chmod +x)"
        return None
    if shutil.which(program, path=path) is None:
        return (
            f"target profile {source}: cli.command {command!r} cannot be started: {program!r} is not on PATH. "
            "Install the sts CLI, give its full path as cli.command, or leave cli.command out to skip the CLI checks"
        )
    return None


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def mask_token_like(text: str, keep: Iterable[str] = ()) -> str:
    """Mask every long token-shaped word except ``keep`` (for output a secret may hide in unparsed)."""
    kept = set(keep)
    return _TOKEN_LIKE.sub(lambda m: m.group(0) if m.group(0) in kept else "<unparsed-word>", REDACTOR.mask(text))


@dataclass(frozen=True)
class CliResult:
    """One finished CLI call. ``argv`` may carry a secret: show it only through :meth:`describe`."""

    argv: tuple[str, ...] = field(repr=False)
    exit_code: int
    stdout: str = field(repr=False)
    stderr: str = field(repr=False)
    tz: str
    duration: float
    #: fingerprints of the secrets known to the run found in files under the CLI's home after the call
    home_secrets: tuple[str, ...] = ()
    #: the terminal width the call ran with (None: stdout a pipe)
    columns: int | None = None

    @property
    def out(self) -> str:
        """stdout without colour codes."""
        return strip_ansi(self.stdout)

    @property
    def err(self) -> str:
        return strip_ansi(self.stderr)

    def shows(self, secret: str) -> bool:
        """Whether ``secret`` appears anywhere in what the call printed."""
        return bool(secret) and (secret in self.stdout or secret in self.stderr)

    def shown_secrets(self) -> list[str]:
        """Fingerprints of the secrets known to this process that the call printed."""
        return sorted({fingerprint(s) for s in REDACTOR.secrets() if self.shows(s)})

    def lines(self) -> list[str]:
        """Every line of stdout and stderr, colour removed."""
        return self.out.splitlines() + self.err.splitlines()

    def error_lines(self) -> list[str]:
        return [ln.strip() for ln in self.lines() if ln.strip().startswith(ERROR_MARKERS)]

    def command_line(self) -> str:
        """The call as a shell line, masked."""
        return REDACTOR.mask(shlex.join(self.argv))

    def describe(self, *, hide_unparsed: Iterable[str] | None = None) -> str:
        """What was run and what came back, masked, for a failure message.

        With ``hide_unparsed`` (the words to keep, e.g. this run's names), every other long
        token-shaped word is masked too: for output whose secret could not be parsed.
        """

        def show(text: str) -> str:
            text = strip_ansi(text)
            text = REDACTOR.mask(text) if hide_unparsed is None else mask_token_like(text, hide_unparsed)
            if len(text) > _EXCERPT:
                text = text[:_EXCERPT] + f"… ({len(text)} chars)"
            return text.rstrip("\n") or "(nothing)"

        width = f", a {self.columns}-column terminal" if self.columns else ""
        return (
            f"`{self.command_line()}` (TZ={self.tz}{width}) exited {self.exit_code} after {self.duration:.2f}s\n"
            f"--- stdout\n{show(self.stdout)}\n--- stderr\n{show(self.stderr)}"
        )


def inherited_environment(
    environ: Mapping[str, str], *, ca_bundle: str | None = None, allowed: Iterable[str] = ()
) -> dict[str, str]:
    """What the CLI takes over from the suite's environment: TLS trust, proxies, ``allowed`` names.

    With ``ca_bundle``, that file is ``SSL_CERT_FILE`` and ``STS_CA_CERT_PATH``, and the
    environment's own certificate settings are left out. ``STS_CLI_*`` and the variables the
    runner sets itself never pass.
    """
    names = [*PROXY_VARIABLES, *allowed] if ca_bundle else [*TLS_VARIABLES, *PROXY_VARIABLES, *allowed]
    env = {
        name: environ[name]
        for name in names
        if environ.get(name) and not name.upper().startswith("STS_CLI_") and name not in CLI_ENV_RESERVED
    }
    if ca_bundle:
        env.pop("SSL_CERT_DIR", None)
        env["SSL_CERT_FILE"] = ca_bundle
        env["STS_CA_CERT_PATH"] = ca_bundle  # sts v3.1+: its own transport then ignores the proxy variables
    return env


class CliRunner:
    """Runs the profile's CLI against one target with a clean environment."""

    def __init__(
        self,
        command: str,
        url: str,
        api_path: str = "/api",
        *,
        timeout: float = 30.0,
        lang: str = "C.UTF-8",
        ca_bundle: str | None = None,
        pass_env: Sequence[str] = (),
        environ: Mapping[str, str] | None = None,
    ):
        self.command = command
        self.argv = split_command(command)
        self.url = url.rstrip("/")
        self.api_path = api_path or "/"
        self.timeout = timeout
        self.lang = lang
        self.ca_bundle = ca_bundle
        #: taken from the suite's environment (``environ``, default ``os.environ``) once, here
        self.inherited = inherited_environment(
            os.environ if environ is None else environ, ca_bundle=ca_bundle, allowed=pass_env
        )
        self.pass_env = tuple(pass_env)

    @classmethod
    def from_profile(cls, profile: TargetProfile, url: str, environ: Mapping[str, str] | None = None) -> CliRunner:
        if not profile.cli_command:
            raise ValueError("the profile has no cli.command")
        # the CLI makes two calls (server info, then the token call), each up to the request timeout
        return cls(
            profile.cli_command,
            url,
            profile.api_path,
            timeout=2 * profile.request_timeout + 10,
            ca_bundle=profile.ca_bundle,
            pass_env=profile.cli_env,
            environ=environ,
        )

    def environment(self, home: str, *, tz: str, token: str | None, via: str) -> dict[str, str]:
        env = {
            **self.inherited,
            "PATH": os.environ.get("PATH", os.defpath),
            "LANG": self.lang,
            "LC_ALL": self.lang,
            "TZ": tz,
            "HOME": home,
            "XDG_CONFIG_HOME": os.path.join(home, ".config"),
            "NO_COLOR": "1",
        }
        if via == "env":
            env["STS_CLI_URL"] = self.url
            env["STS_CLI_API_PATH"] = self.api_path
            if token is not None:
                env["STS_CLI_SERVICE_TOKEN"] = token
        elif self.api_path != "/api":
            env["STS_CLI_API_PATH"] = self.api_path  # documented only as an environment variable
        return env

    def run(
        self,
        *args: str,
        token: str | None,
        output: str | None = None,
        tz: str = "UTC",
        via: str = "env",
        columns: int | None = None,
    ) -> CliResult:
        """Run ``<cli.command> ARGS [-o OUTPUT] [--url U --service-token T]`` and capture it.

        ``via`` says how target and credential are passed: ``env`` (``STS_CLI_*``) or ``flags``.
        ``columns``: stdout is a pseudo-terminal that many columns wide (default: a pipe).
        """
        if via not in ("env", "flags"):
            raise ValueError(f"via must be 'env' or 'flags', not {via!r}")
        REDACTOR.register(token)
        argv = [*self.argv, *args]
        if output is not None:
            argv += ["-o", output]
        if via == "flags":
            argv += ["--url", self.url]
            if token is not None:
                argv += ["--service-token", token]
        attempt = 0
        while True:
            with _creating(args):
                result = self._run_once(argv, token=token, tz=tz, via=via, columns=columns)
            if result.exit_code == 0 or not throttled(result):
                return result
            # the target throttled one of the CLI's calls (which then did nothing): run it again
            attempt += 1
            THROTTLE.wait_cli(attempt, f"the CLI command {' '.join(args[:2])}")

    def _run_once(self, argv: list[str], *, token: str | None, tz: str, via: str, columns: int | None) -> CliResult:
        with tempfile.TemporaryDirectory(prefix="sts-cli-home-") as home:
            env = self.environment(home, tz=tz, token=token, via=via)
            if columns is not None:
                env["COLUMNS"] = str(columns)
            started = time.monotonic()
            with stdout_for(columns) as (stdout, read_stdout):
                try:
                    proc = subprocess.Popen(
                        argv,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=stdout,
                        stderr=subprocess.PIPE,
                        start_new_session=True,
                    )
                except OSError as exc:
                    raise CliUnavailable(
                        f"the CLI named by profile setting cli.command ({self.command!r}) could not be started: "
                        f"{exc.strerror or exc}"
                    ) from None
                try:
                    raw_out, raw_err = proc.communicate(timeout=self.timeout)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    raw_out, raw_err = proc.communicate()
                    raw_out = read_stdout(raw_out)
                    hung = CliResult(
                        tuple(argv), -9, _decode(raw_out), _decode(raw_err), tz, time.monotonic() - started
                    )
                    raise CliTimedOut(
                        f"the CLI did not finish within {self.timeout:g}s and was killed\n{hung.describe()}"
                    ) from None
                raw_out = read_stdout(raw_out)
            leaks = secrets_in_files(home)
        return CliResult(
            tuple(argv),
            proc.returncode,
            _decode(raw_out),
            _decode(raw_err),
            tz,
            time.monotonic() - started,
            leaks,
            columns,
        )

    def check_reaches_target(self, token: str, *, verify_tls: bool = True) -> CliResult:
        """One ``service-token list`` with ``token``: does the CLI start and get an HTTP answer?

        Raises :class:`CliUnavailable` (one message, the setting to fix first) when the CLI
        cannot be started, does not finish, or its output shows it never got an answer from
        the target. Any answer at all (a table, a 401, a 500) passes: how the CLI then
        behaves is for the checks to judge.
        """
        __tracebackhide__ = True  # the message says it all; it is repeated on every CLI check
        try:
            result = self.run("service-token", "list", token=token)
        except CliTimedOut as exc:
            raise CliTimedOut(
                f"the CLI hung on its first call to {self.url}: {self._proxy_hint()}{self._given()}\n{exc}"
            ) from None
        except CliUnavailable as exc:
            raise CliUnavailable(str(exc)) from None  # raised here, its traceback stays hidden
        kind = no_answer_kind(result, self.url)
        if kind is None:
            return result
        if kind == "tls":
            advice = self._tls_hint(verify_tls)
        else:
            advice = f"the CLI got no HTTP answer from {self.url} ({_NO_ANSWER_WHAT[kind]}): {self._proxy_hint()}"
        raise CliUnavailable(
            f"{advice} The suite's own client reached the target; the CLI checks cannot run.{self._given()}\n"
            f"{result.describe()}"
        )

    def _tls_hint(self, verify_tls: bool) -> str:
        given = "ca_bundle" if self.ca_bundle else "SSL_CERT_FILE" if "SSL_CERT_FILE" in self.inherited else None
        if given is None:
            hint = (
                f"the CLI does not trust the TLS certificate of {self.url}: set ca_bundle in the profile (the CLI "
                "gets it as SSL_CERT_FILE and STS_CA_CERT_PATH), or export SSL_CERT_FILE (or SSL_CERT_DIR) before "
                "the run."
            )
        else:
            hint = (
                f"the CLI does not trust the TLS certificate of {self.url}, although it was given {given} as "
                + ("SSL_CERT_FILE and STS_CA_CERT_PATH" if self.ca_bundle else "SSL_CERT_FILE")
                + ": it reads neither, or its command line overrides them. Install the CA where that CLI looks "
                "for CAs, or list in cli.env the variable it reads."
            )
        if not verify_tls:
            hint += " (verify_tls: false applies to the suite's own client only.)"
        return hint

    @staticmethod
    def _proxy_hint() -> str:
        return (
            "check the proxy variables (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY, either case; passed to the "
            "CLI when set) and list in cli.env any other variable the CLI needs to reach the target."
        )

    def _given(self) -> str:
        names = sorted(self.inherited)
        if self.ca_bundle:
            names = ["SSL_CERT_FILE (ca_bundle)" if n == "SSL_CERT_FILE" else n for n in names]
        return f" Passed on to the CLI: {', '.join(names)}." if names else ""


_NO_ANSWER_WHAT = {
    "tls": "its TLS certificate check or handshake failed",
    "proxy": "its proxy could not be used",
    "dns": "the host name could not be resolved",
    "connection": "the connection failed",
}
# What CLIs print when no HTTP answer came: Python (httpx, ssl, requests), Go (net/http,
# crypto/x509, crypto/tls) and curl-style messages. Checked in this order.
_NO_ANSWER_PATTERNS = (
    (
        "tls",
        re.compile(
            r"certificate[ _]verify[ _]failed|x509:|\btls:|unknown authority|self[- ]signed certificate"
            r"|unable to get local issuer|\[SSL[:\]]|SSLError|handshake failure|certificate (?:required|unknown)",
            re.IGNORECASE,
        ),
    ),
    ("proxy", re.compile(r"proxyconnect|ProxyError|\bproxy\b", re.IGNORECASE)),
    (
        "dns",
        re.compile(
            r"no such host|name or service not known|name resolution|getaddrinfo|nodename nor servname",
            re.IGNORECASE,
        ),
    ),
    (
        "connection",
        re.compile(
            r"connection refused|ConnectError|ConnectTimeout|network is unreachable|no route to host"
            r"|i/o timeout|deadline exceeded|Client\.Timeout|connection reset|timed out|dial tcp",
            re.IGNORECASE,
        ),
    ),
)
_HTTP_STATUS = re.compile(
    r"\b(?:" + "|".join(f"{s.value} {re.escape(s.phrase)}" for s in HTTPStatus if s.value >= 200) + r")\b"
)


_THROTTLED = re.compile(r"\b429\b.{0,3}Too Many Requests", re.IGNORECASE)


def throttled(result: CliResult) -> bool:
    """The CLI failed because the target answered one of its calls 429 Too Many Requests."""
    return bool(_THROTTLED.search(strip_ansi(result.err)) or _THROTTLED.search(strip_ansi(result.out)))


def no_answer_kind(result: CliResult, url: str) -> str | None:
    """Why ``result`` shows that the CLI never got an HTTP answer: tls, proxy, dns, connection; else None.

    A run that exited 0 or shows an HTTP status line (``401 Unauthorized``) got an answer.
    The target's URL and host are taken out of the output first, so a host called
    ``proxy.example`` says nothing.
    """
    if result.exit_code == 0:
        return None
    text = "\n".join(result.lines())
    host = re.sub(r"^[a-z]+://", "", url).split("/", 1)[0]
    for word in sorted({url, host, host.rsplit(":", 1)[0]}, key=len, reverse=True):
        if word:
            text = text.replace(word, "<target>")
    if _HTTP_STATUS.search(text):
        return None
    return next((kind for kind, pattern in _NO_ANSWER_PATTERNS if pattern.search(text)), None)


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def concurrently(*calls: Callable[[], T]) -> list[T]:
    """Run independent calls (each a CLI process start) at once; results in the order given."""
    if len(calls) <= 1:
        return [c() for c in calls]
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(8, len(calls))) as pool:
        futures = [pool.submit(c) for c in calls]
        return [f.result() for f in futures]


# -- reading the output ---------------------------------------------------------------------


def created_secret(result: CliResult) -> str | None:
    """The token on the ``✅ Service token created: <token>`` line of stdout (registered for masking)."""
    for line in result.out.splitlines():
        m = _CREATED.match(line)
        if m:
            REDACTOR.register(m.group(1))
            return m.group(1)
    return None


def deleted_id(result: CliResult) -> str | None:
    """The id on the ``✅ Service token deleted: <id>`` line of stdout."""
    for line in result.out.splitlines():
        m = _DELETED.match(line)
        if m:
            return m.group(1)
    return None


def json_output(result: CliResult) -> Any:
    """stdout as one JSON document; every ``token`` value in it is registered for masking.

    Raises AssertionError (masked) when stdout is not JSON.
    """
    try:
        doc = json.loads(result.out)
    except ValueError:
        raise AssertionError(f"expected one JSON document on stdout\n{result.describe()}") from None
    _register_tokens(doc)
    return doc


def _register_tokens(doc: Any) -> None:
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key == "token" and isinstance(value, str):
                REDACTOR.register(value)
            else:
                _register_tokens(value)
    elif isinstance(doc, list):
        for value in doc:
            _register_tokens(value)


# -- creating through the CLI ------------------------------------------------------------------


@dataclass
class CliCreate:
    """A ``service-token create`` call, and the token it made as the ledger now tracks it."""

    result: CliResult
    name: str
    #: the secret the CLI printed (None when no secret could be read from its output)
    secret: str | None
    #: the token found in the API list under the name (None when nothing was created)
    token: OwnedToken | None
    document: Any = None

    def describe(self) -> str:
        return self.result.describe(hide_unparsed=None if self.secret else [self.name])


def create_with_cli(
    cli: CliRunner,
    ledger: TokenLedger,
    name: str,
    roles: Sequence[str],
    *,
    token: str,
    expiration: str | None = None,
    output: str | None = None,
    tz: str = "UTC",
    via: str = "env",
) -> CliCreate:
    """``service-token create`` through the CLI; whatever it creates is adopted by the ledger.

    ``name`` must come from ``ledger.name``: the token is found in the API list by it, so it
    is tracked and cleaned up even when the CLI fails or prints something unreadable.
    """
    args = ["service-token", "create", "--name", name, "--roles", ",".join(roles)]
    if expiration is not None:
        args += ["--expiration", expiration]
    result = cli.run(*args, token=token, output=output, tz=tz, via=via)
    secret: str | None = None
    document: Any = None
    if output == "json":
        with contextlib.suppress(AssertionError):
            document = json_output(result)
        inner = document.get("service-token") if isinstance(document, dict) else None
        value = inner.get("token") if isinstance(inner, dict) else None
        secret = value if isinstance(value, str) and value else None
    else:
        secret = created_secret(result)
    adopted = ledger.adopt(name, secret, roles=roles, expected=result.exit_code == 0)
    return CliCreate(result, name, secret, adopted, document)


def listed_by_api(
    ledger: TokenLedger, names: Iterable[str], *, expect: Iterable[str] = ()
) -> dict[str, list[dict[str, Any]]]:
    """The API list entries carrying each of ``names``; read again within the list's settle window
    until it shows every name in ``expect`` (tokens the CLI said it created)."""
    wanted, shown = set(names), set(expect)
    found: dict[str, list[dict[str, Any]]] = {n: [] for n in wanted}
    items = ledger.list_until(lambda items: shown <= {i.get("name") for i in items}) if shown else ledger.list_items()
    for item in items:
        if item.get("name") in wanted:
            found[item["name"]].append(item)
    return found
