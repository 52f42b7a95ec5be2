"""How the reference CLI reaches the server: TLS trust and proxies, read the way the Go ``sts`` CLI reads them.

Two ways, as in the real CLI (``internal/client/client.go``):

- By default the certificate is checked against ``SSL_CERT_FILE`` and/or ``SSL_CERT_DIR``
  when either is set (they replace the default CA bundle, as Go's do on Linux), else against
  certifi's bundle; ``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY`` and ``NO_PROXY`` (either
  case, lower case winning) route requests through a proxy.
- With ``--skip-ssl``/``STS_SKIP_SSL`` (no certificate check), or a CA given with
  ``--ca-cert-path``/``STS_CA_CERT_PATH`` or ``--ca-cert-base64-data`` (added to the default
  bundle), the CLI builds its own transport: **the proxy variables are then ignored**.
  ``--skip-ssl`` wins over a CA; ``--ca-cert-path`` over ``--ca-cert-base64-data``.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field

import certifi
import httpx

TIMEOUT_SECONDS = 10.0
EXIT_READ_FILE = 5
EXIT_CONNECT = 4  # what a Go CLI whose trust store cannot load ends with: the connection check fails
EXIT_CLIENT_CREATE = 11


class TransportError(Exception):
    """The transport cannot be built (an unreadable CA, a bad proxy): message and exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


@dataclass(frozen=True)
class TlsSettings:
    """The CLI's own TLS settings (flags and environment): any of them means its own transport."""

    skip_ssl: bool = False
    ca_cert_path: str | None = None
    ca_cert_base64: str | None = field(default=None, repr=False)

    @property
    def own_transport(self) -> bool:
        return self.skip_ssl or bool(self.ca_cert_path) or bool(self.ca_cert_base64)


def _own_verify(tls: TlsSettings) -> ssl.SSLContext | bool:
    if tls.skip_ssl:
        return False
    if tls.ca_cert_path:
        try:
            with open(tls.ca_cert_path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise TransportError(
                f"cannot read the CA certificate {tls.ca_cert_path} ({exc.strerror or exc})", EXIT_READ_FILE
            ) from None
    else:
        try:
            data = base64.b64decode(tls.ca_cert_base64 or "", validate=True)
        except (binascii.Error, ValueError):
            raise TransportError("failed to decode the base64 CA certificate data", EXIT_CLIENT_CREATE) from None
    context = ssl.create_default_context(cafile=certifi.where())
    try:
        context.load_verify_locations(cadata=data.decode("ascii", "replace"))
    except (ssl.SSLError, ValueError):
        raise TransportError("failed to parse a self-signed or private CA certificate", EXIT_CLIENT_CREATE) from None
    return context


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
        raise TransportError(f"cannot load the CA certificates in {named} ({exc})", EXIT_CONNECT) from exc


def http_client(
    api_url: str, env: Mapping[str, str], headers: Mapping[str, str], tls: TlsSettings | None = None
) -> httpx.Client:
    """The client for every call: the CLI's own transport (no proxies) or TLS and proxies from ``env``."""
    if tls is not None and tls.own_transport:
        verify = _own_verify(tls) if api_url.startswith("https://") or tls.skip_ssl else True
        return httpx.Client(
            base_url=api_url, headers=dict(headers), timeout=TIMEOUT_SECONDS, verify=verify, trust_env=False
        )
    verify = trusted_certificates(env) if api_url.startswith("https://") else True
    try:
        mounts: dict[str, httpx.BaseTransport | None] = {
            pattern: None if proxy is None else httpx.HTTPTransport(proxy=proxy, verify=verify)
            for pattern, proxy in environment_proxies(env).items()
        }
    except (ValueError, ImportError) as exc:
        raise TransportError(f"cannot use the proxy set in the environment ({exc})", EXIT_CLIENT_CREATE) from exc
    return httpx.Client(
        base_url=api_url,
        headers=dict(headers),
        timeout=TIMEOUT_SECONDS,
        verify=verify,
        mounts=mounts,
        trust_env=False,
    )
