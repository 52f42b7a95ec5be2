"""Targets: launching a managed deployment, and checking that a target can be used.

A *managed* target has a ``launch`` command: the suite picks a free port, writes an
``authentication.yaml`` in the documented Helm-values shape with a fresh admin bootstrap
token, starts the command, waits until the URL answers and stops it at the end. An
*external* target is used as it is, with the profile's ``admin_token``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from sts_conformance.core.errors import TargetUnavailable
from sts_conformance.core.redact import REDACTOR
from sts_conformance.target import settle
from sts_conformance.target.client import TOKENS_PATH, ApiClient, AuthForm, TlsSettings
from sts_conformance.target.profile import TargetProfile

_handed_out: set[int] = set()
_ports_lock = threading.Lock()


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now, and that this process has not handed out before.

    Several instances are launched at once, each told its port before it binds it: without
    the record, two of them could be given the same port, and the one that loses the race
    would leave the other answering in its place.
    """
    with _ports_lock:
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind((host, 0))
                port = int(s.getsockname()[1])
            if port not in _handed_out:
                _handed_out.add(port)
                return port
    raise TargetUnavailable("no free TCP port could be found for the target")


def new_bootstrap_secret() -> str:
    """A fresh bootstrap token: 32 hex digits, like the Helm chart's own test uses."""
    return secrets.token_hex(16)


def write_auth_config(
    path: Path, *, token: str, roles: Sequence[str], ttl: str | None, key: str = "serviceToken"
) -> Path:
    """Write ``authentication.yaml`` as an operator would for the Helm chart."""
    bootstrap: dict[str, object] = {"token": token, "roles": list(roles)}
    if ttl is not None:
        bootstrap["ttl"] = ttl
    doc = {"stackstate": {"authentication": {key: {"bootstrap": bootstrap}}}}
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    path.chmod(0o600)
    return path


class ManagedProcess:
    """One launched instance of a managed target, with its own bootstrap token."""

    def __init__(
        self,
        profile: TargetProfile,
        *,
        roles: Sequence[str] | None = None,
        ttl: str | None = None,
        key: str | None = None,
        token: str | None = None,
        extra_args: str = "",
    ):
        if profile.launch is None:
            raise ValueError("profile has no launch command")
        self.profile = profile
        self.token = token or new_bootstrap_secret()
        REDACTOR.register(self.token)
        self.roles = list(profile.bootstrap.roles if roles is None else roles)
        self.ttl = profile.bootstrap.ttl if ttl is None else ttl
        self.key = key or profile.bootstrap.key
        self.extra_args = extra_args
        self._dir = tempfile.TemporaryDirectory(prefix="sts-conformance-")
        self.workdir = Path(self._dir.name)
        self.port = 0
        self.url = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / "target.log"
        self.started_at_ms = 0

    def command(self) -> str:
        assert self.profile.launch is not None
        auth = write_auth_config(
            self.workdir / "authentication.yaml", token=self.token, roles=self.roles, ttl=self.ttl, key=self.key
        )
        cmd = self.profile.launch.format(
            port=self.port,
            auth_config=shlex.quote(str(auth)),
            python=shlex.quote(sys.executable),
            workdir=shlex.quote(str(self.workdir)),
        )
        return f"{cmd} {self.extra_args}".strip()

    def start(self) -> ManagedProcess:
        self.port = free_port()
        self.url = self.profile.url.format(port=self.port)
        try:
            cmd = self.command()
        except (KeyError, IndexError, ValueError) as exc:
            raise TargetUnavailable(
                f"target {self.profile.name!r}: launch command has an unknown placeholder {exc} "
                "(known: {port}, {auth_config}, {python}, {workdir})"
            ) from None
        log = self.log_path.open("wb")
        self.started_at_ms = int(time.time() * 1000)
        self.proc = subprocess.Popen(
            cmd,
            shell=True,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=str(Path.cwd()),
        )
        log.close()
        try:
            wait_until_answers(
                self.url + self.profile.probe_path,
                self.profile.launch_timeout,
                self.proc,
                self.log_tail,
                tls=TlsSettings.from_profile(self.profile),
                profile=self.profile,
            )
        except BaseException:
            self.stop()
            raise
        return self

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return REDACTOR.mask("\n".join(text.splitlines()[-lines:]))

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        self._dir.cleanup()

    def __enter__(self) -> ManagedProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_until_answers(
    url: str,
    timeout: float,
    proc: subprocess.Popen[bytes] | None = None,
    log_tail=lambda: "",
    *,
    tls: TlsSettings | None = None,
    profile: TargetProfile | None = None,
) -> None:
    """Poll ``url`` until any HTTP response comes back (401 counts: the server is up).

    A certificate the client does not trust ends the wait at once: the server is up, and
    waiting longer cannot help.
    """
    deadline = time.monotonic() + timeout
    delay = 0.02
    tls = tls or TlsSettings()
    problem: str | None = None
    with httpx.Client(timeout=2.0, **tls.httpx_options()) as http:
        while True:
            if proc is not None and proc.poll() is not None:
                tail = log_tail()
                raise TargetUnavailable(
                    f"launched target exited with status {proc.returncode} before answering at {url}"
                    + (f"; last output:\n{tail}" if tail else "")
                )
            try:
                http.get(url)
                return
            except httpx.HTTPError as exc:
                problem = tls_problem(exc, url, tls, profile)
                if problem is not None and _certificate_refused(exc):
                    raise TargetUnavailable(problem) from None
            if time.monotonic() > deadline:
                tail = log_tail()
                raise TargetUnavailable(
                    (problem or f"target did not answer at {url} within {timeout:g}s")
                    + (f"; last output:\n{tail}" if tail else "")
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)


@dataclass(frozen=True)
class Connection:
    """What every check needs to talk to the target: where, and the admin credential."""

    url: str
    admin_token: str
    admin_form: AuthForm

    def as_workerinput(self) -> dict[str, str]:
        return {"url": self.url, "admin_token": self.admin_token, "admin_form": self.admin_form.name}

    @classmethod
    def from_workerinput(cls, data: dict[str, str]) -> Connection:
        return cls(data["url"], data["admin_token"], AuthForm[data["admin_form"]])


def choose_admin_form(client: ApiClient, profile: TargetProfile, token: str) -> AuthForm | None:
    """The header form in which the admin credential works, X-API-Key first (as ``sts`` sends it).

    A form that lists tokens is preferred over one that only passes the probe, so a target
    that ignores one form on the token calls alone still gets a working admin client.
    """
    probe_ok = None
    for form in (AuthForm.X_API_KEY, AuthForm.AUTHORIZATION):
        try:
            if client.list_tokens(token, form=form).is_success:
                return form
            if probe_ok is None and client.probe(profile.probe_path, token, form).is_success:
                probe_ok = form
        except httpx.HTTPError:
            return probe_ok
    return probe_ok


def _ssl_error(exc: BaseException) -> ssl.SSLError | None:
    """The ``ssl`` error behind an httpx error (httpx and httpcore chain it as the cause)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _certificate_refused(exc: BaseException) -> bool:
    return isinstance(_ssl_error(exc), ssl.SSLCertVerificationError)


def tls_problem(exc: BaseException, url: str, tls: TlsSettings, profile: TargetProfile | None = None) -> str | None:
    """One message for a TLS failure reaching ``url``, naming the setting to change; None if it was not TLS."""
    err = _ssl_error(exc)
    if err is None:
        return None
    name = f"target {profile.name!r}" if profile is not None else "the target"
    where = f" in the profile {profile.source}" if profile is not None else " in the profile"
    if isinstance(err, ssl.SSLCertVerificationError):
        reason = err.verify_message or err.reason or str(err)
        if err.verify_code in (62, 64):  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
            return (
                f"{name}: the TLS certificate at {url} is not valid for that host name ({reason}); "
                f"use a host name the certificate names in url{where}"
            )
        if err.verify_code == 10:  # X509_V_ERR_CERT_HAS_EXPIRED
            return f"{name}: the TLS certificate at {url} has expired ({reason})"
        if tls.ca_bundle:
            return (
                f"{name}: the TLS certificate at {url} is not issued by a CA in ca_bundle {tls.ca_bundle} "
                f"({reason}); put the CA that issued it (and any intermediate CA) into that file"
            )
        return (
            f"{name}: the TLS certificate at {url} could not be verified against {tls.trusted()} ({reason}). "
            f"If a private CA issued it, set ca_bundle: /path/to/ca.pem (PEM){where}, "
            "or export SSL_CERT_FILE=/path/to/ca.pem"
        )
    reason = err.reason or str(err)
    if "CERTIFICATE_REQUIRED" in str(err).upper():
        return f"{name}: {url} asks for a client certificate ({reason}); set client_cert and client_key (PEM){where}"
    return (
        f"{name}: the TLS handshake with {url} failed ({reason}); check that the url's scheme is right "
        "(https:// only where the target speaks TLS)"
    )


def _credential(profile: TargetProfile) -> str:
    """How messages name the admin credential: with the variable its value came from, if any."""
    if profile.admin_token_variable:
        return f"admin_token (from ${{{profile.admin_token_variable}}})"
    return "admin_token"


def _not_found(profile: TargetProfile, url: str) -> str:
    """The probe path answered 404: a set-up mistake in the url or the paths, never the credential's."""
    probe_url = f"{url}{profile.probe_path}"
    api = profile.api_path.rstrip("/")
    hint = ""
    if api and url.rstrip("/").endswith(api):
        hint = (
            f" url ends in {api!r}, the API's own prefix: give the server's root as url "
            f"(the API is at url + api_path {profile.api_path!r}) and"
        )
    return (
        f"target {profile.name!r}: {probe_url} answered 404 Not Found, without a credential and with one: "
        f"there is no such call at that address (the wrong path, or another web server).{hint} check url, "
        f"api_path and probe_path in {profile.source}"
    )


def _may_not_manage(profile: TargetProfile, url: str, probe_status: int | None, listed: httpx.Response) -> str:
    tokens_url = f"{url}{profile.api_path}{TOKENS_PATH}"
    accepted = f"is accepted ({profile.probe_path} answered {probe_status})" if probe_status else "is accepted"
    if listed.status_code == 404:
        return (
            f"target {profile.name!r}: {_credential(profile)} {accepted}, but GET {tokens_url} answered 404 Not "
            f"Found: the token calls are not at that address; check api_path in {profile.source}"
        )
    return (
        f"target {profile.name!r}: {_credential(profile)} {accepted} but may not list service tokens "
        f"(GET {tokens_url} answered {listed.status_code}); the suite needs a service token with a role that "
        f"may manage service tokens (roles.manager: {profile.manager_role!r}; a {profile.unprivileged_role!r} "
        f"token cannot): give such a token as admin_token in {profile.source}"
    )


def connect(profile: TargetProfile, url: str, admin_token: str, *, strict_admin: bool) -> Connection:
    """Check that the target answers and that the admin credential is accepted.

    With ``strict_admin`` (external targets) a refused admin credential, or one that may not
    manage tokens, is a setup error; for a managed target the credential is the suite's own
    bootstrap token, so a refusal is the target's fault and is left to the checks to report.
    A probe path that answers 404 with and without the credential is a setup error either way.
    """
    tls = TlsSettings.from_profile(profile)
    with ApiClient(url, profile.api_path, timeout=profile.request_timeout, tls=tls) as client:
        try:
            anonymous = client.probe(profile.probe_path)
            if anonymous.status_code == 404 and client.probe(profile.probe_path, admin_token).status_code == 404:
                raise TargetUnavailable(_not_found(profile, url))
        except httpx.HTTPError as exc:
            raise TargetUnavailable(
                tls_problem(exc, url, tls, profile)
                or f"target {profile.name!r} is unreachable at {url}{profile.probe_path}: {type(exc).__name__}: {exc}"
            ) from None
        form = choose_admin_form(client, profile, admin_token)
        if form is None and not strict_admin:
            # a launched target may write its bootstrap token a moment after it starts answering
            form = settle.until(
                settle.BOOTSTRAP, lambda: choose_admin_form(client, profile, admin_token), lambda f: f is not None
            )
        if form is None:
            if strict_admin:
                hint = ""
                if anonymous.status_code == 400 and b"certificate" in anonymous.content.lower():
                    hint = "; it asks for a client certificate: set client_cert and client_key"
                raise TargetUnavailable(
                    f"target {profile.name!r} refused {_credential(profile)} on {profile.probe_path} in both header "
                    f"forms (anonymous call got {anonymous.status_code}); check the credential in {profile.source}"
                    + hint
                )
            form = AuthForm.X_API_KEY
        elif strict_admin:
            try:
                listed = client.list_tokens(admin_token, form=form)
            except httpx.HTTPError as exc:
                raise TargetUnavailable(
                    f"target {profile.name!r} stopped answering at the start: {type(exc).__name__}: {exc}"
                ) from None
            if not listed.is_success:
                probe_status = client.probe(profile.probe_path, admin_token, form).status_code
                raise TargetUnavailable(_may_not_manage(profile, url, probe_status, listed))
    return Connection(url, admin_token, form)
