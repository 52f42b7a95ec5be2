"""HTTP access to a target: the two ways of presenting a token, TLS, and a record of exchanges.

Every request and response goes into :data:`EXCHANGES` (masked, truncated), so that a
failed check can show what was sent and what came back without leaking a secret.

Every client the suite makes checks the target's certificate the way :class:`TlsSettings`
says, built from the profile in one place (:meth:`ApiClient.for_profile`): the profile's
``ca_bundle`` when set, else ``SSL_CERT_FILE``/``SSL_CERT_DIR`` from the environment, else
certifi's bundle; ``client_cert``/``client_key`` for an ingress that asks for one; nothing
with ``verify_tls: false``. Proxies come from the environment (``HTTPS_PROXY``,
``NO_PROXY``, ... through httpx's ``trust_env``).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import email.utils
import enum
import http.cookiejar
import importlib.util
import json
import os
import ssl
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from sts_conformance.core.errors import ProfileError
from sts_conformance.core.redact import REDACTOR
from sts_conformance.target.inflight import GATE, IDS
from sts_conformance.target.throttle import THROTTLE, THROTTLE_STATUSES, gives_up_on

if TYPE_CHECKING:
    from sts_conformance.target.profile import TargetProfile

TOKENS_PATH = "/security/tokens"
#: HTTP/2 where the target offers it (ALPN on TLS), as an ingress does, when h2 is installed
_HTTP2 = importlib.util.find_spec("h2") is not None
_BODY_EXCERPT = 800


class AuthForm(enum.Enum):
    """The two documented ways of presenting a service token."""

    AUTHORIZATION = "Authorization: ApiKey"
    X_API_KEY = "X-API-Key"

    def headers(self, token: str, *, scheme: str = "ApiKey", name_case: str | None = None) -> dict[str, str]:
        """Headers carrying ``token`` in this form; ``name_case`` rewrites the header name."""
        if self is AuthForm.AUTHORIZATION:
            name, value = "Authorization", f"{scheme} {token}"
        else:
            name, value = "X-API-Key", token
        if name_case == "lower":
            name = name.lower()
        elif name_case == "upper":
            name = name.upper()
        return {name: value}


@dataclass(frozen=True)
class Exchange:
    """One request and its response, secrets masked, bodies cut to an excerpt."""

    method: str
    url: str
    request_headers: dict[str, str]
    request_body: str
    status: int | None
    response_body: str
    error: str | None = None
    #: the response's headers as the server sent them (masked); the body above is the one it
    #: meant: decoded from any Content-Encoding and transfer coding, whatever the HTTP version
    response_headers: dict[str, str] = field(default_factory=dict)
    http_version: str | None = None

    def render(self) -> str:
        lines = [f"> {self.method} {self.url}"]
        lines += [f"> {k}: {v}" for k, v in self.request_headers.items()]
        if self.request_body:
            lines.append(f"> {self.request_body}")
        if self.error:
            lines.append(f"< (no response: {self.error})")
        else:
            lines.append(f"< {self.status}" + (f" ({self.http_version})" if self.http_version else ""))
            lines += [f"< {k}: {v}" for k, v in self.response_headers.items()]
            if self.response_body:
                lines.append(f"< {self.response_body}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "url": self.url,
            "request_headers": self.request_headers,
            "request_body": self.request_body,
            "status": self.status,
            "response_body": self.response_body,
            "error": self.error,
            "response_headers": self.response_headers,
            "http_version": self.http_version,
        }


#: where :meth:`ApiClient.request` leaves a response's masked :class:`Exchange` (``response.extensions``)
EXCHANGE_KEY = "sts_exchange"


def exchange_of(response: httpx.Response) -> Exchange | None:
    """The masked record of the request and ``response``, when the suite's client made it."""
    found = response.extensions.get(EXCHANGE_KEY)
    return found if isinstance(found, Exchange) else None


_SENSITIVE_HEADERS = {"authorization", "x-api-key", "x-api-token", "cookie", "set-cookie", "x-api-servicebearer"}


def _excerpt(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    text = REDACTOR.mask(text)
    return text if len(text) <= _BODY_EXCERPT else text[:_BODY_EXCERPT] + f"… ({len(text)} chars)"


def _mask_header(name: str, value: str) -> str:
    if name.lower() in _SENSITIVE_HEADERS:
        scheme, sep, rest = value.partition(" ")
        if name.lower() == "authorization" and sep:
            return f"{scheme} {REDACTOR.mask(rest) if REDACTOR.contains_secret(rest) else '<masked>'}"
        return REDACTOR.mask(value) if REDACTOR.contains_secret(value) else "<masked>"
    return REDACTOR.mask(value)


def _shown_response_headers(response: httpx.Response) -> dict[str, str]:
    shown: dict[str, str] = {}
    for name, value in response.headers.multi_items():
        masked = _mask_header(name, value)
        shown[name] = f"{shown[name]}, {masked}" if name in shown else masked
    return shown


def recorded_response(status: int, headers: list[tuple[str, str]], body: bytes) -> httpx.Response:
    """A response rebuilt from a record: the headers the server sent, the body it meant.

    ``body`` is already decoded (content and transfer codings undone), so the response is
    built without its coding headers and given them back afterwards: httpx would otherwise
    decode the body once more (gzip → DecodingError).
    """
    plain = [(k, v) for k, v in headers if k.lower() not in _CODING_HEADERS]
    response = httpx.Response(status, headers=plain, content=body)
    response.headers = httpx.Headers(headers)
    return response


def _carries_held_secret(response: httpx.Response) -> bool:
    """Whether an answer carries, in its body or any header, a service-token secret the run held when
    it came (issued earlier, or the admin's). A create's answer carries its own new secret, which the
    run registers only once the answer is in, so that one is not counted; nor is the ``token`` field of
    a create's answer at all: a new token given an earlier token's secret is ST-ONCE-004's finding."""
    body = response.text
    if response.request.method == "POST" and response.is_success:
        with contextlib.suppress(ValueError):
            doc = response.json()
            own = doc.get("token") if isinstance(doc, dict) else None
            if isinstance(own, str) and own:
                body = body.replace(own, "")
    texts = [body, *(f"{k}: {v}" for k, v in response.headers.multi_items())]
    return bool(REDACTOR.held_in(texts))


#: the headers that describe how a body travelled, not what it is
_CODING_HEADERS = {"content-encoding", "transfer-encoding", "content-length"}


class _NoCookies(http.cookiejar.CookieJar):
    """A cookie jar that keeps nothing: no cookie is carried from one credential's call to another's.

    A server may set a session cookie on an API-key call and honour it later; with a jar, a
    later anonymous or other-credential request of the suite would be authenticated by it.
    """

    def set_cookie(self, cookie: http.cookiejar.Cookie) -> None:
        return None

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None


#: the methods the token API uses, and those every HTTP server must support (RFC 9110 §9.1)
REQUIRED_METHODS = frozenset({"GET", "HEAD", "POST", "DELETE"})


@dataclass
class Sink:
    """Where one thread's exchanges go instead of the log of the running check.

    ``items`` collects the thread's exchanges (None: the shared log); ``server_errors`` and
    ``leaks`` collect what :meth:`ExchangeLog.note_server_error` and :meth:`ExchangeLog.note_leak`
    keep (None: the shared lists). An ``isolated`` sink is a whole check's own (a check run ahead,
    ``checking/ahead.py``): its snapshot shows its own exchanges only. A ``parent`` is the sink of
    the thread that started this one (calls sent together, ``together.py``): its exchanges come
    before this thread's in a snapshot.
    """

    items: list[Exchange] | None = None
    server_errors: list[Exchange] | None = None
    leaks: list[Exchange] | None = None
    muted: bool = False
    isolated: bool = False
    parent: Sink | None = None

    @classmethod
    def own(cls) -> Sink:
        """A sink that keeps everything of one check apart from the shared log."""
        return cls([], [], [], isolated=True)


_SHARED = Sink()


class ExchangeLog:
    """The recent exchanges of the test that is running in this process.

    A thread may send its exchanges to a :class:`Sink` of its own instead (:meth:`collected`,
    :meth:`isolated`); :meth:`restore` later makes a sink's contents the running check's.
    """

    def __init__(self, size: int = 12) -> None:
        self._items: collections.deque[Exchange] = collections.deque(maxlen=size)
        self._lock = threading.Lock()
        self._local = threading.local()
        #: the answers in the 5xx range since :meth:`clear_server_errors` (judged in server_errors.py)
        self._server_errors: collections.deque[Exchange] = collections.deque(maxlen=100)
        #: the answers that carried a held secret since :meth:`clear_leaks` (judged in leaks.py)
        self._leaks: collections.deque[Exchange] = collections.deque(maxlen=100)

    def sink(self) -> Sink:
        """The calling thread's sink (the shared one unless set)."""
        return getattr(self._local, "sink", _SHARED)

    @contextlib.contextmanager
    def _using(self, sink: Sink) -> Iterator[None]:
        before = self.sink()
        self._local.sink = sink
        try:
            yield
        finally:
            self._local.sink = before

    def add(self, item: Exchange) -> None:
        sink = self.sink()
        if sink.muted:
            return
        with self._lock:
            if sink.items is not None:
                sink.items.append(item)  # kept aside, shown in the order the calls were given (together.py)
            else:
                self._items.append(item)

    def note_server_error(self, item: Exchange) -> None:
        """Keep a request the target answered with a 5xx, as :meth:`server_errors` shows until cleared.

        A 501 to a method the API does not use and HTTP does not require (OPTIONS, PUT, PATCH) is
        not a server error: RFC 9110 makes every method but GET and HEAD optional and names 501 the
        answer for one a server supports on no resource (Python's ``http.server`` answers so).
        """
        sink = self.sink()
        if sink.muted or item.status is None or item.status < 500:
            return
        if item.status == 501 and item.method.upper() not in REQUIRED_METHODS:
            return
        with self._lock:
            (sink.server_errors if sink.server_errors is not None else self._server_errors).append(item)

    def note_leak(self, item: Exchange) -> None:
        """Keep a request whose answer carried a secret the run holds, as :meth:`leaks` shows until cleared."""
        sink = self.sink()
        if sink.muted:
            return
        with self._lock:
            (sink.leaks if sink.leaks is not None else self._leaks).append(item)

    def leaks(self) -> list[Exchange]:
        sink = self.sink()
        with self._lock:
            return list(sink.leaks if sink.leaks is not None else self._leaks)

    def clear_leaks(self) -> None:
        sink = self.sink()
        with self._lock:
            (sink.leaks if sink.leaks is not None else self._leaks).clear()

    def server_errors(self) -> list[Exchange]:
        sink = self.sink()
        with self._lock:
            return list(sink.server_errors if sink.server_errors is not None else self._server_errors)

    def clear_server_errors(self) -> None:
        sink = self.sink()
        with self._lock:
            (sink.server_errors if sink.server_errors is not None else self._server_errors).clear()

    @contextlib.contextmanager
    def muted(self) -> Iterator[None]:
        """Keep this thread's exchanges out of the log: background work (the bootstrap instances
        taken through their scenarios while checks run) must not show up as a check's evidence."""
        with self._using(dataclasses.replace(self.sink(), muted=True)):
            yield

    def is_muted(self) -> bool:
        return self.sink().muted

    @contextlib.contextmanager
    def collected(self, into: list[Exchange], *, parent: Sink | None = None) -> Iterator[None]:
        """This thread's exchanges go into ``into`` instead of the log, for a caller that adds them in the
        order its calls were given rather than the order answers came. ``parent`` is the caller's sink
        (another thread's): muted with it, its server errors and leaks kept where the caller keeps them."""
        up = parent if parent is not None else _SHARED
        sink = Sink(into, up.server_errors, up.leaks, muted=up.muted, parent=up)
        with self._using(sink):
            yield

    @contextlib.contextmanager
    def isolated(self, sink: Sink) -> Iterator[None]:
        """This thread's exchanges, server errors and leaks go into ``sink`` (:meth:`Sink.own`) alone."""
        with self._using(sink):
            yield

    def restore(self, sink: Sink) -> None:
        """Make what ``sink`` collected the running check's: its exchanges, server errors and leaks."""
        with self._lock:
            self._items.clear()
            self._items.extend(sink.items or ())
            self._server_errors.clear()
            self._server_errors.extend(sink.server_errors or ())
            self._leaks.clear()
            self._leaks.extend(sink.leaks or ())

    def clear(self) -> None:
        sink = self.sink()
        with self._lock:
            if sink.isolated and sink.items is not None:
                sink.items.clear()
            else:
                self._items.clear()

    def snapshot(self) -> list[Exchange]:
        """The recent exchanges; in a thread running calls together, ending with its own (see :meth:`collected`)."""
        with self._lock:
            return self._view(self.sink())[-(self._items.maxlen or 0) :]

    def _view(self, sink: Sink) -> list[Exchange]:
        if sink.items is None:
            return list(self._items)
        if sink.isolated:
            return list(sink.items)
        return self._view(sink.parent or _SHARED) + list(sink.items)


EXCHANGES = ExchangeLog()


def server_time_ms(response: httpx.Response) -> int | None:
    """The server's clock from the response's ``Date`` header (1 s resolution), in epoch ms."""
    value = response.headers.get("date")
    if not value:
        return None
    try:
        return int(email.utils.parsedate_to_datetime(value).timestamp() * 1000)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


#: where a certificate store may be named in the environment (OpenSSL's, Go's and Python's convention)
TLS_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR")
#: the proxy settings httpx, Go, curl and most CLIs read from the environment, in both spellings
PROXY_VARIABLES = tuple(
    v for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY") for v in (name, name.lower())
)


def _no_password() -> bytes:
    return b""  # an encrypted key fails to load instead of prompting on the terminal


@dataclass(frozen=True)
class TlsSettings:
    """How a client checks the target's certificate, and the certificate it shows itself.

    Paths are absolute (the profile resolved them). ``verify=False`` checks nothing.
    """

    verify: bool = True
    ca_bundle: str | None = None
    client_cert: str | None = None
    client_key: str | None = None

    @classmethod
    def from_profile(cls, profile: TargetProfile) -> TlsSettings:
        return cls(profile.verify_tls, profile.ca_bundle, profile.client_cert, profile.client_key)

    def trusted(self, environ: Mapping[str, str] | None = None) -> str:
        """What the target's certificate is checked against, in words, for messages."""
        env = os.environ if environ is None else environ
        if not self.verify:
            return "nothing (verify_tls is false)"
        if self.ca_bundle:
            return f"ca_bundle {self.ca_bundle}"
        named = [f"{v}={env[v]}" for v in TLS_VARIABLES if env.get(v)]
        return " and ".join(named) if named else "the certifi bundle of public CAs"

    def ssl_context(self, environ: Mapping[str, str] | None = None) -> ssl.SSLContext:
        """The context for httpx's ``verify``. Raises ProfileError naming a store that cannot be loaded."""
        env = os.environ if environ is None else environ
        if not self.verify:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif self.ca_bundle:
            ctx = self._load(f"ca_bundle {self.ca_bundle}", cafile=self.ca_bundle)
        elif env.get("SSL_CERT_FILE") or env.get("SSL_CERT_DIR"):
            # both, when both are set: as OpenSSL and Go read them (httpx alone would take only the file)
            ctx = self._load(
                self.trusted(env), cafile=env.get("SSL_CERT_FILE") or None, capath=env.get("SSL_CERT_DIR") or None
            )
        else:
            ctx = httpx.create_ssl_context(verify=True, trust_env=False)  # certifi's bundle
        if self.client_cert:
            try:
                ctx.load_cert_chain(self.client_cert, self.client_key, password=_no_password)
            except (OSError, ssl.SSLError) as exc:
                raise ProfileError(f"client_cert {self.client_cert} cannot be loaded ({exc})") from None
        return ctx

    @staticmethod
    def _load(what: str, *, cafile: str | None = None, capath: str | None = None) -> ssl.SSLContext:
        try:
            return ssl.create_default_context(cafile=cafile, capath=capath)
        except FileNotFoundError:
            raise ProfileError(f"{what}: no such file or directory") from None
        except (OSError, ssl.SSLError) as exc:
            raise ProfileError(f"{what}: cannot be loaded as PEM certificates ({exc})") from None

    def httpx_options(self, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
        """``verify`` and ``trust_env`` for an ``httpx.Client``: proxies still come from the environment."""
        return {"verify": self.ssl_context(environ), "trust_env": True}


class ApiClient:
    """A thin httpx client for one target: ``{url}`` and ``{url}{api_path}``.

    ``tls`` says how the target's certificate is checked (``verify`` is the short form of
    ``TlsSettings(verify=...)``); :meth:`for_profile` builds the client a profile describes.
    """

    def __init__(
        self,
        url: str,
        api_path: str = "/api",
        *,
        timeout: float = 10.0,
        tls: TlsSettings | None = None,
        verify: bool = True,
    ):
        self.url = url.rstrip("/")
        self.api_url = self.url + api_path
        self.tls = tls if tls is not None else TlsSettings(verify=verify)
        # no cookie jar: each request carries the credential it names and nothing else
        self._options: dict[str, Any] = {
            "timeout": timeout,
            "follow_redirects": False,
            "cookies": _NoCookies(),
            **self.tls.httpx_options(),
        }
        self._http = httpx.Client(http2=_HTTP2, **self._options)
        #: how many DELETE requests this client has sent (any credential): a token made earlier may be gone
        self.deletes_sent = 0
        # httpx's synchronous HTTP/2 connection is not safe to share between threads (two threads'
        # frames interleave: an ingress answers 400): only the thread that made this client speaks
        # HTTP/2 through it; requests from other threads (requests sent together, background checks)
        # go through a pool of HTTP/1.1 connections, made when first needed
        self._owner = threading.get_ident()
        self._http1: httpx.Client | None = None
        self._http1_lock = threading.Lock()

    @classmethod
    def for_profile(cls, profile: TargetProfile, url: str | None = None) -> ApiClient:
        """A client for the profile's target (at ``url`` when given: a launched instance's own)."""
        return cls(
            profile.url if url is None else url,
            profile.api_path,
            timeout=profile.request_timeout,
            tls=TlsSettings.from_profile(profile),
        )

    def close(self) -> None:
        self._http.close()
        if self._http1 is not None:
            self._http1.close()

    def _client(self) -> httpx.Client:
        """The httpx client for the calling thread (see ``__init__``)."""
        if not _HTTP2 or threading.get_ident() == self._owner:
            return self._http
        with self._http1_lock:
            if self._http1 is None:
                self._http1 = httpx.Client(http2=False, **self._options)
            return self._http1

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- raw access ---------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        form: AuthForm = AuthForm.X_API_KEY,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        content: bytes | str | None = None,
        api: bool = True,
        repeated: Sequence[tuple[str, str]] = (),
    ) -> httpx.Response:
        """Send one request; ``path`` is below the API root unless ``api`` is false.

        ``repeated`` are header lines sent after the others as they are, so a name may come twice
        (two credentials in one request)."""
        url = (self.api_url if api else self.url) + path
        if method.upper() == "DELETE":
            self.deletes_sent += 1
        all_headers: dict[str, str] = {}
        if token is not None:
            all_headers.update(form.headers(token))
        if headers:
            all_headers.update(headers)
        body: bytes | None
        if json_body is not None:
            body = json.dumps(json_body).encode()
            all_headers.setdefault("Content-Type", "application/json")
        elif isinstance(content, str):
            body = content.encode()
        else:
            body = content
        shown_headers = {k: _mask_header(k, v) for k, v in all_headers.items()}
        wire: dict[str, str] | list[tuple[str, str]] = all_headers
        if repeated:
            wire = [*all_headers.items(), *repeated]
            for k, v in repeated:
                shown = _mask_header(k, v)
                shown_headers[k] = f"{shown_headers[k]} | {shown}" if k in shown_headers else shown
        attempt = 0
        while True:
            THROTTLE.pace()
            creates = IDS.creating() if IDS.may_create(method) else contextlib.nullcontext()
            with creates, GATE.passing():
                response = self._send(method, url, wire, body, shown_headers)
            if response.status_code not in THROTTLE_STATUSES or gives_up_on(response, attempt):
                THROTTLE.answered()
                break
            # 429/503: the target asks to come back later and did nothing; waited out and sent
            # again (a create too), never judged -- or TargetThrottled past the run's budget
            attempt += 1
            response.close()
            THROTTLE.wait(response, attempt, f"{method} {path}")
        exchange = Exchange(
            method,
            url,
            shown_headers,
            _excerpt(body or b""),
            response.status_code,
            _excerpt(response.content),
            response_headers=_shown_response_headers(response),
            http_version=response.http_version,
        )
        EXCHANGES.add(exchange)
        EXCHANGES.note_server_error(exchange)
        if _carries_held_secret(response):
            EXCHANGES.note_leak(exchange)
        response.extensions[EXCHANGE_KEY] = exchange  # this response's own record, whatever other threads send
        return response

    def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str] | list[tuple[str, str]],
        body: bytes | None,
        shown_headers: dict[str, str],
    ) -> httpx.Response:
        http = self._client()
        try:
            try:
                return http.request(method, url, headers=headers, content=body)
            except (httpx.ReadError, httpx.RemoteProtocolError):
                # A server may close a kept-alive connection after an error answer without
                # saying so; a GET changes nothing and a DELETE of one id acts at most once
                # (RFC 9110 §9.2.2, idempotent), so they are sent once more on a fresh
                # connection. A POST is never resent here: that could create twice.
                if method.upper() not in ("GET", "DELETE"):
                    raise
                return http.request(method, url, headers=headers, content=body)
        except httpx.HTTPError as exc:
            EXCHANGES.add(Exchange(method, url, shown_headers, _excerpt(body or b""), None, "", type(exc).__name__))
            raise

    # -- the documented calls ------------------------------------------------------------

    def create_token(self, token: str, body: Any, **kw: Any) -> httpx.Response:
        return self.request("POST", TOKENS_PATH, token=token, json_body=body, **kw)

    def list_tokens(self, token: str, **kw: Any) -> httpx.Response:
        return self.request("GET", TOKENS_PATH, token=token, **kw)

    def delete_token(self, token: str, token_id: int | str, **kw: Any) -> httpx.Response:
        return self.request("DELETE", f"{TOKENS_PATH}/{token_id}", token=token, **kw)

    def server_info(self, token: str | None, **kw: Any) -> httpx.Response:
        return self.request("GET", "/server/info", token=token, **kw)

    def probe(
        self, path: str, token: str | None = None, form: AuthForm = AuthForm.X_API_KEY, **kw: Any
    ) -> httpx.Response:
        """GET the profile's probe path (relative to the target url, not the API root)."""
        return self.request("GET", path, token=token, form=form, api=False, **kw)
