"""TLS in front of the reference deployment, for the harness's own tests.

- :func:`make_pki`: a throw-away private CA (trustme) and a server certificate for 127.0.0.1;
- :class:`TlsFrontend`: a small TLS-terminating TCP forwarder in a thread, optionally
  asking for a client certificate (no nginx needed);
- :func:`external_reference`: ``python -m sts_reference serve --port 0`` as a separate
  process with a bootstrap admin token, as an operator would run it;
- :class:`Nginx`: a real nginx (HTTP/2 on its TLS listener) proxying to it, with its own
  prefix, config and temp directories, run as ``nginx -p DIR -c CONF -g 'daemon off;'``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import trustme

from sts_conformance.target.connect import free_port, write_auth_config

from .suite_run import ROOT

ADMIN_TOKEN = "tls-admin-bootstrap-0123456789abcdef"


@dataclass(frozen=True)
class Pki:
    ca: trustme.CA
    ca_pem: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    #: a second CA that issued nothing the servers use: trusting only it must fail
    other_ca_pem: Path
    #: a certificate from the private CA for another host name only (sts.example.test)
    other_name_cert: Path
    other_name_key: Path


def make_pki(directory: Path) -> Pki:
    """A private CA, a server certificate for 127.0.0.1/localhost and a client certificate."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="sts-conformance test CA")
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("conformance-client@example.test")
    paths = {name: directory / name for name in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")}
    ca.cert_pem.write_to_path(str(paths["ca.pem"]))
    # the chain in one file, leaf first, as nginx wants it
    paths["server.pem"].write_bytes(b"".join(blob.bytes() for blob in server.cert_chain_pems))
    server.private_key_pem.write_to_path(str(paths["server.key"]))
    client.cert_chain_pems[0].write_to_path(str(paths["client.pem"]))
    client.private_key_pem.write_to_path(str(paths["client.key"]))
    other = directory / "other-ca.pem"
    trustme.CA(organization_name="unrelated CA").cert_pem.write_to_path(str(other))
    named = ca.issue_cert("sts.example.test")
    named.cert_chain_pems[0].write_to_path(str(directory / "named.pem"))
    named.private_key_pem.write_to_path(str(directory / "named.key"))
    return Pki(
        ca,
        paths["ca.pem"],
        paths["server.pem"],
        paths["server.key"],
        paths["client.pem"],
        paths["client.key"],
        other,
        directory / "named.pem",
        directory / "named.key",
    )


class TlsFrontend:
    """Terminates TLS on 127.0.0.1:<port> and forwards the bytes to ``upstream_port``."""

    def __init__(self, pki: Pki, upstream_port: int, *, require_client_cert: bool = False, other_name: bool = False):
        self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        if other_name:
            self.ctx.load_cert_chain(str(pki.other_name_cert), str(pki.other_name_key))
        else:
            self.ctx.load_cert_chain(str(pki.server_cert), str(pki.server_key))
        if require_client_cert:
            self.ctx.verify_mode = ssl.CERT_REQUIRED
            self.ctx.load_verify_locations(cafile=str(pki.ca_pem))
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="tls-frontend", daemon=True)

    def __enter__(self) -> TlsFrontend:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.listener.close()

    def _accept(self) -> None:
        self.listener.settimeout(0.05)  # wake up to see the stop flag: close() does not end a blocked accept()
        while not self._stop.is_set():
            try:
                raw, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            conn = self.ctx.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):
            raw.close()
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        except OSError:
            conn.close()
            return
        done = threading.Event()

        def pipe(src: socket.socket, dst: socket.socket) -> None:
            with contextlib.suppress(OSError, ssl.SSLError):
                while data := src.recv(65536):
                    dst.sendall(data)
            done.set()

        threading.Thread(target=pipe, args=(upstream, conn), daemon=True).start()
        pipe(conn, upstream)
        done.wait(5)
        for s in (conn, upstream):
            with contextlib.suppress(OSError):
                s.close()


@dataclass
class ExternalReference:
    url: str
    port: int
    token: str
    proc: subprocess.Popen[str]


@contextlib.contextmanager
def external_reference(
    workdir: Path, token: str = ADMIN_TOKEN, extra_args: tuple[str, ...] = ()
) -> Iterator[ExternalReference]:
    """The reference deployment as its own process on a free port, bootstrap admin ``token``
    (``extra_args``: more ``serve`` options, e.g. ``--variant gzip``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    auth = write_auth_config(workdir / "authentication.yaml", token=token, roles=["stackstate-admin"], ttl="2h")
    proc = subprocess.Popen(
        [sys.executable, "-m", "sts_reference", "serve", "--port", "0", "--auth-config", str(auth), *extra_args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()  # "sts-reference listening on http://HOST:PORT"
        if "listening on" not in line:
            raise RuntimeError(f"the reference did not start: {line!r}")
        url = line.rsplit(" ", 1)[-1]
        yield ExternalReference(url, int(url.rsplit(":", 1)[1]), token, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


NGINX_CONF = """\
{user}worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    client_max_body_size 10m;
    server {{
        # HTTP/2 on the TLS listener, as an ingress has it (clients that speak only HTTP/1.1 still can)
        listen 127.0.0.1:{port} ssl http2;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-Proto https;
        }}
    }}
}}
"""


class Nginx:
    """A real nginx terminating TLS (HTTP/2 enabled) in front of ``upstream_port``."""

    def __init__(self, binary: str, prefix: Path, pki: Pki, upstream_port: int):
        self.binary, self.prefix = binary, prefix
        prefix.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.conf = prefix / "nginx.conf"
        self.conf.write_text(
            NGINX_CONF.format(
                # as root, nginx would run its worker as "nobody", who cannot use this private directory
                user="user root;\n" if os.geteuid() == 0 else "",
                prefix=prefix,
                port=self.port,
                cert=pki.server_cert,
                key=pki.server_key,
                upstream=upstream_port,
            ),
            encoding="utf-8",
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> Nginx:
        cmd = [self.binary, "-p", str(self.prefix), "-e", str(self.prefix / "error.log"), "-c", str(self.conf)]
        self.proc = subprocess.Popen(
            [*cmd, "-g", "daemon off;"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.proc.returncode}: {self.error_log()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nginx did not listen on {self.port} within {timeout:g}s: {self.error_log()}")

    def error_log(self) -> str:
        try:
            return (self.prefix / "error.log").read_text(encoding="utf-8", errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()  # SIGTERM: nginx's fast shutdown, master and worker
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def negotiated_protocol(url: str, ca_pem: Path) -> str | None:
    """The ALPN protocol the server picks when a client offers h2 and http/1.1."""
    host, port = url.removeprefix("https://").rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=str(ca_pem))
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection((host, int(port)), timeout=5) as raw, ctx.wrap_socket(raw, server_hostname=host) as s:
        return s.selected_alpn_protocol()


#: the certificate and proxy variables, blanked so that a run sees only what a test gives it
#: (an empty value counts as unset for Python, httpx and the reference CLI)
def neutral_environment(**given: str) -> dict[str, str]:
    from sts_conformance.target.client import PROXY_VARIABLES, TLS_VARIABLES

    return {**dict.fromkeys((*TLS_VARIABLES, *PROXY_VARIABLES), ""), "STS_TARGET": "", **given}
