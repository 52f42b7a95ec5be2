"""What travels on the wire reaches the checks as the server meant it (issue 18).

Compressed, chunked and HTTP/2 answers are read and recorded once, decoded once; a 429 or 503
is waited out and the call sent again, never judged; and no cookie a server sets for one
credential is ever sent with another.
"""

from __future__ import annotations

import email.utils
import gzip
import json
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import respx

from sts_conformance.checking.cli_runner import CliResult, throttled
from sts_conformance.checking.fleet import carried
from sts_conformance.core.redact import REDACTOR
from sts_conformance.target import client as client_module
from sts_conformance.target.client import EXCHANGES, ApiClient, AuthForm, exchange_of, recorded_response
from sts_conformance.target.throttle import (
    BARE_503_RETRIES,
    TargetThrottled,
    Throttle,
    ThrottleStats,
    backoff_s,
    read_totals,
    record_file,
    retry_after_s,
)
from sts_conformance.tokens.journal import ANSWERED, INTENT, Journal, read_events
from sts_conformance.tokens.ledger import TokenLedger

ADMIN = "wire-admin-0123456789abcdef"
BASE = "http://target.test"
API = f"{BASE}/api/security/tokens"
SECRET = "svctok-wireWIREwire0123456789abcdefXYZ"


@pytest.fixture(autouse=True)
def own_throttle(monkeypatch: pytest.MonkeyPatch) -> Throttle:
    """Each test paces its own client: the process's pace is not shared with other tests."""
    mine = Throttle(budget_s=30.0)
    monkeypatch.setattr(client_module, "THROTTLE", mine)
    return mine


# -- a raw HTTP/1.1 server: exactly the bytes a test gives ----------------------------------------


class RawServer:
    """Answers each connection's requests with the given raw responses, in turn, and keeps what was sent."""

    def __init__(self, answers: list[bytes]) -> None:
        self.answers = list(answers)
        self.requests: list[bytes] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while self.answers:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                while self.answers:
                    head = b""
                    while b"\r\n\r\n" not in head:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        head += chunk
                    if not head:
                        break
                    self.requests.append(head)
                    conn.sendall(self.answers.pop(0))

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw_server() -> Iterator[type[RawServer]]:
    made: list[RawServer] = []

    def make(answers: list[bytes]) -> RawServer:
        server = RawServer(answers)
        made.append(server)
        return server

    yield make  # type: ignore[misc]
    for server in made:
        server.close()


def _chunked(body: bytes, size: int = 7) -> bytes:
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


def _raw(status: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
    head = f"HTTP/1.1 {status}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    return head.encode("latin-1") + body


LISTING = [{"id": 7, "name": "n", "roles": [], "expiration": None, "note": f"echo {SECRET}"}]
ENCODINGS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": lambda data: gzip.compress(data),
    "deflate": lambda data: zlib.compress(data),
}


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
@pytest.mark.parametrize("framing", ["chunked", "content-length"])
def test_compressed_and_chunked_answers_read_once(raw_server, encoding, framing):
    """A gzip/deflate body, chunked or not: the check reads the JSON the server meant, the record keeps
    the headers it sent, and a record rebuilt into a response reads the same (no second decoding)."""
    body = ENCODINGS[encoding](json.dumps(LISTING).encode())
    framed = _chunked(body) if framing == "chunked" else body
    length = ("Transfer-Encoding", "chunked") if framing == "chunked" else ("Content-Length", str(len(body)))
    server = raw_server(
        [_raw("200 OK", [("Content-Type", "application/json"), ("Content-Encoding", encoding), length], framed)]
    )
    REDACTOR.register(SECRET)
    with ApiClient(server.url) as c:
        resp = c.list_tokens(ADMIN)
    assert resp.json() == LISTING
    ex = exchange_of(resp)
    assert ex is not None and ex.response_headers["content-encoding"] == encoding
    assert json.loads(ex.response_body.replace(REDACTOR.mask(SECRET), SECRET)) == LISTING
    assert ex.http_version == "HTTP/1.1"
    again = recorded_response(resp.status_code, list(resp.headers.multi_items()), resp.content)
    assert again.json() == LISTING and again.headers["content-encoding"] == encoding
    assert carried(again, None, frozenset({SECRET})) == ["1 secret(s) issued earlier in the run (in clear)"]


def test_a_recorded_gzip_answer_is_not_decoded_twice():
    """The matrix's records (status, headers as sent, decoded body) rebuild into a response that reads."""
    headers = [("content-type", "application/json"), ("content-encoding", "gzip"), ("content-length", "31")]
    rebuilt = recorded_response(401, headers, b'{"message": "unauthorized"}')
    assert rebuilt.json() == {"message": "unauthorized"}
    assert rebuilt.headers.get_list("content-encoding") == ["gzip"]
    with pytest.raises(httpx.DecodingError):  # what the matrix did before: httpx decodes again
        httpx.Response(401, headers=headers, content=b'{"message": "unauthorized"}')


# -- throttling ---------------------------------------------------------------------------------------


def _date(offset_s: float = 0.0) -> str:
    return email.utils.formatdate(time.time() + offset_s, usegmt=True)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "3"}, 3.0),
        ({"Retry-After": "0"}, 0.0),
        ({}, None),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "Sat, 05 Dec 2026 10:00:10 GMT", "Date": "Sat, 05 Dec 2026 10:00:00 GMT"}, 10.0),
        ({"Retry-After": "Sat, 05 Dec 2026 09:59:50 GMT", "Date": "Sat, 05 Dec 2026 10:00:00 GMT"}, 0.0),
    ],
    ids=["seconds", "zero", "absent", "unreadable", "date-ahead-of-server-date", "date-past"],
)
def test_retry_after_read_in_seconds_or_as_an_http_date(headers, expected):
    """Retry-After as delta-seconds or an HTTP-date, the date against the answer's own Date header."""
    assert retry_after_s(httpx.Response(429, headers=headers)) == expected


def test_backoff_without_retry_after_grows_and_is_bounded():
    waits = [backoff_s(n) for n in range(1, 12)]
    assert waits[0] <= 0.05 and waits[3] > waits[0] and max(waits) <= 5.0


@pytest.mark.parametrize(
    "throttle",
    [
        httpx.Response(429, headers={"Retry-After": "0"}),
        httpx.Response(429, headers={"Retry-After": _date(), "Date": _date()}),
        httpx.Response(429),
        httpx.Response(503, headers={"Retry-After": "0"}),
        httpx.Response(503),
    ],
    ids=["429-seconds", "429-http-date", "429-bare", "503-seconds", "503-bare"],
)
def test_throttled_calls_are_sent_again_and_counted(own_throttle, throttle):
    """Every call, a create too, is sent again after a throttled answer; the check sees only the answer."""
    with respx.mock(assert_all_mocked=True) as mock:
        route = mock.post(API).mock(side_effect=[throttle, httpx.Response(200, json={"name": "n", "token": SECRET})])
        with ApiClient(BASE) as c:
            EXCHANGES.clear()
            resp = c.create_token(ADMIN, {"name": "n", "roles": []})
    assert resp.status_code == 200 and route.call_count == 2
    assert [e.status for e in EXCHANGES.snapshot()] == [200], "a throttled answer is no check's evidence"
    assert own_throttle.stats.responses == 1 and own_throttle.stats.statuses == {str(throttle.status_code): 1}


def test_throttled_create_is_journalled_once_before_it_is_first_sent(tmp_path):
    """The journal line written before the create stays the only one; the create sent again makes the token."""
    listing = [{"id": 5, "name": "stsct-r1-gw0-t-1", "roles": []}]
    with respx.mock(assert_all_mocked=True) as mock:
        post = mock.post(API).mock(
            side_effect=[httpx.Response(429, headers={"Retry-After": "0"}), httpx.Response(200, json={"token": SECRET})]
        )
        mock.get(API).mock(return_value=httpx.Response(200, json=listing))
        with ApiClient(BASE) as c:
            journal = Journal(tmp_path / "journal-gw0.jsonl", "gw0")
            ledger = TokenLedger(c, ADMIN, AuthForm.X_API_KEY, prefix="stsct-r1-gw0", run_dir=tmp_path, journal=journal)
            tok = ledger.create("t")
    assert post.call_count == 2 and tok.id == 5
    events = [e["e"] for e in read_events(tmp_path)]
    assert events[:2] == [INTENT, ANSWERED] and events.count(INTENT) == 1, events


def test_throttling_beyond_the_budget_is_a_harness_error_naming_it(own_throttle):
    """A Retry-After longer than the time the run may still wait ends the call with TargetThrottled at once."""
    own_throttle.configure(budget_s=5.0)
    with respx.mock(assert_all_mocked=True) as mock:
        mock.get(API).mock(return_value=httpx.Response(429, headers={"Retry-After": "3600"}))
        with ApiClient(BASE) as c, pytest.raises(TargetThrottled) as raised:
            c.list_tokens(ADMIN)
    message = str(raised.value)
    assert "GET /security/tokens answered 429 (Retry-After '3600')" in message
    assert "--time-budget" in message and "no verdict" in message
    assert own_throttle.stats.gave_up == message


def test_a_503_without_retry_after_that_persists_is_the_checks_to_judge(monkeypatch):
    """A 503 with no Retry-After through a few seconds of backoff may be a broken server: the check gets it."""
    monkeypatch.setattr("sts_conformance.target.throttle.backoff_s", lambda attempt, rng=None: 0.0)
    with respx.mock(assert_all_mocked=True) as mock:
        route = mock.get(API).mock(return_value=httpx.Response(503))
        with ApiClient(BASE) as c:
            assert c.list_tokens(ADMIN).status_code == 503
    assert route.call_count == 1 + BARE_503_RETRIES


def test_a_cleanup_waits_to_its_own_deadline_once_the_budget_is_spent(own_throttle):
    own_throttle.configure(budget_s=0.0)
    with respx.mock(assert_all_mocked=True) as mock:
        mock.delete(f"{API}/5").mock(side_effect=[httpx.Response(429), httpx.Response(204)])
        with ApiClient(BASE) as c, own_throttle.until(time.monotonic() + 30):
            assert c.delete_token(ADMIN, 5).status_code == 204


def test_every_process_counts_its_throttling_and_the_run_sums_them(tmp_path):
    """Each process writes its figures to the run directory; the controller adds them up."""
    for process, waits in (("main", [0.5]), ("gw0", [0.25, 1.0])):
        t = Throttle()
        t.configure(record=record_file(tmp_path, process))
        for w in waits:
            t.stats.add("429", w)
        t._write(t.stats.as_dict())
    total = read_totals(tmp_path)
    assert total == ThrottleStats(3, {"429": 3}, 1.75, 1.0)


def test_a_cli_call_answered_429_counts_as_throttled():
    said = "❌ could not connect to http://x/api: 429 Too Many Requests"
    assert throttled(CliResult(("sts",), 1, "", said, "UTC", 0.1))
    assert not throttled(CliResult(("sts",), 1, "", "❌ 401 Unauthorized", "UTC", 0.1))


# -- cookies --------------------------------------------------------------------------------------------


def test_no_cookie_set_for_one_credential_is_sent_with_another():
    """A session cookie a server sets on an API-key call never goes with a later request."""
    with respx.mock(assert_all_mocked=True) as mock:
        mock.get(f"{BASE}/api/server/info").mock(
            return_value=httpx.Response(200, json={}, headers={"Set-Cookie": "SESSION=abc; Path=/"})
        )
        status = mock.get(f"{BASE}/api/server/status").mock(return_value=httpx.Response(401))
        with ApiClient(BASE) as c:
            c.server_info(ADMIN)
            c.probe("/api/server/status")
    assert "cookie" not in status.calls.last.request.headers


# -- HTTP/2 through a real ingress ------------------------------------------------------------------------


def test_http2_gzip_answers_through_nginx(tmp_path: Path):
    """The reference (gzip variant) behind nginx with HTTP/2: the client negotiates h2 and reads each answer once."""
    from .tls_support import Nginx, external_reference, make_pki, nginx_binary

    binary = nginx_binary()
    if binary is None:
        pytest.skip("nginx is not installed: the HTTP/2 ingress test needs it (apt-get install nginx-light)")
    if not client_module._HTTP2:
        pytest.skip("h2 is not installed: the suite's client speaks HTTP/1.1 only (pip install 'httpx[http2]')")
    pki = make_pki(tmp_path / "pki")
    with external_reference(tmp_path / "reference", extra_args=("--variant", "gzip")) as reference:
        nginx = Nginx(binary, tmp_path / "nginx", pki, reference.port).start()
        try:
            from sts_conformance.target.client import TlsSettings

            with ApiClient(nginx.url, tls=TlsSettings(ca_bundle=str(pki.ca_pem))) as c:
                resp = c.list_tokens(reference.token)
        finally:
            nginx.stop()
    assert resp.status_code == 200 and isinstance(resp.json(), list)
    ex = exchange_of(resp)
    assert ex is not None and ex.http_version == "HTTP/2"
    assert ex.response_headers.get("content-encoding") == "gzip"


def test_requests_sent_together_through_an_http2_ingress_all_arrive_whole(tmp_path: Path):
    """httpx's synchronous HTTP/2 connection is not safe between threads (frames of two requests interleave
    and nginx answers 400): creates sent together go out from their threads over HTTP/1.1 and all succeed,
    while the thread that made the client still speaks HTTP/2."""
    from sts_conformance.target.client import TlsSettings
    from sts_conformance.target.together import run_together

    from .tls_support import Nginx, external_reference, make_pki, nginx_binary

    binary = nginx_binary()
    if binary is None:
        pytest.skip("nginx is not installed: the HTTP/2 ingress test needs it (apt-get install nginx-light)")
    if not client_module._HTTP2:
        pytest.skip("h2 is not installed: the suite's client speaks HTTP/1.1 only (pip install 'httpx[http2]')")
    pki = make_pki(tmp_path / "pki")
    with external_reference(tmp_path / "reference") as reference:
        nginx = Nginx(binary, tmp_path / "nginx", pki, reference.port).start()
        try:
            with ApiClient(nginx.url, tls=TlsSettings(ca_bundle=str(pki.ca_pem))) as c:
                first = c.list_tokens(reference.token)
                bodies = [{"name": f"together-{i}", "roles": ["stackstate-guest"]} for i in range(12)]
                made = run_together(
                    [lambda b=b: c.create_token(reference.token, b) for b in bodies],  # type: ignore[misc]
                    limit=8,
                )
                listed = c.list_tokens(reference.token).json()
        finally:
            nginx.stop()
    assert [r.status_code for r in made] == [200] * len(bodies)
    assert {b["name"] for b in bodies} <= {i.get("name") for i in listed}
    assert {r.http_version for r in made} == {"HTTP/1.1"}
    assert first.http_version == "HTTP/2"


def test_a_target_that_throttles_beyond_the_budget_ends_the_run_with_exit_3(raw_server, tmp_path: Path):
    """Throttled from its first call for longer than --time-budget: a harness error naming it, no verdict."""
    from .suite_run import run_suites

    busy = _raw("429 Too Many Requests", [("Retry-After", "3600"), ("Content-Length", "0")], b"")
    server = raw_server([busy] * 20)
    profile = tmp_path / "busy.yaml"
    profile.write_text(f"name: busy\nurl: {server.url}\nadmin_token: abcdefgh12345678\n", encoding="utf-8")
    run = run_suites("--target", str(profile), "--time-budget", "30", report_dir=tmp_path / "reports", timeout=120)
    assert run.returncode == 3, run.stdout[-2000:] + run.stderr[-2000:]
    assert "throttled the run for longer than it may wait" in run.stdout + run.stderr
    doc = json.loads((tmp_path / "reports" / "conformance.json").read_text(encoding="utf-8"))
    assert doc["verdict"]["exit_status"] == 3
    assert not [r for r in doc["requirements"] if r["status"] == "failed"]
