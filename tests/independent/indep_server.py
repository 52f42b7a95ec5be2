"""An independent service-token server, written from the public documentation only.

It exists to measure the conformance suite against an implementation nobody on the
project designed the checks around: a different architecture (stdlib ``http.server``,
a dict behind a lock, no framework) and different choices wherever the documentation
leaves one open. ``--defect NAME`` turns on one plausible developer mistake, to see
whether the suite notices it.

    python tests/independent/indep_server.py --host 127.0.0.1 --port 8080 \
        --auth-config fixtures/authentication.example.yaml [--defect NAME]

Choices where the documentation is open (see README.md beside this file):
ids are 64-bit "snowflake" integers (above 2**53), secrets are ``sto1.<base64url>.<check>``,
a missing credential is 401 but an unknown/expired/deleted one is 403, deleting an unknown
id is 204, duplicate live names are refused (400), an empty role list is refused, roles
are stored de-duplicated and sorted, expired tokens vanish from the list, the list is
sorted by name (case-folded), entries carry extra fields, the bootstrap token is not listed.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import secrets
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import yaml

DEFECTS = {
    "expiry-unit-seconds": "the validity check compares the expiry (ms) with the clock in seconds: nothing expires",
    "expiry-leeway-60s": "a token is still accepted for 60 s after its expiry (clock-skew leeway)",
    "list-first-100": "the list answers only the first 100 tokens (an undocumented page size)",
    "id-collision-same-ms": (
        "ids come from the millisecond clock alone: two creates in one ms share an id, the later overwrites"
    ),
    "roles-case-insensitive": "the manager role is matched case-insensitively (STACKSTATE-ADMIN may manage tokens)",
    "token-in-list": "list entries carry the secret",
    "duplicate-create-returns-existing": "creating a live name again answers 200 with the existing token's secret",
    "revoked-still-valid": "a deleted token keeps authenticating (an auth cache never invalidated)",
    "delete-id-float-precision": "the delete path's id is parsed through a float: large ids delete nothing",
    "create-201": "create answers 201 Created instead of the documented 200",
    "token-case-insensitive": "the presented secret is compared case-insensitively",
    "bootstrap-ttl-ignored": "the bootstrap token never expires",
}

#: the defects that need a secret kept in memory (a correct server keeps only its digest)
LEAKING_DEFECTS = ("token-in-list", "duplicate-create-returns-existing")
MANAGER_ROLES = frozenset({"stackstate-admin", "stackstate-k8s-admin"})
NAME_MAX = 128
BODY_MAX = 32 * 1024
INT64_MAX = 2**63 - 1

_DURATION_UNITS = {
    "ns": 1e-6,
    "nano": 1e-6,
    "nanos": 1e-6,
    "nanosecond": 1e-6,
    "nanoseconds": 1e-6,
    "us": 1e-3,
    "micro": 1e-3,
    "micros": 1e-3,
    "microsecond": 1e-3,
    "microseconds": 1e-3,
    "ms": 1,
    "milli": 1,
    "millis": 1,
    "millisecond": 1,
    "milliseconds": 1,
    "s": 1000,
    "second": 1000,
    "seconds": 1000,
    "m": 60_000,
    "minute": 60_000,
    "minutes": 60_000,
    "h": 3_600_000,
    "hour": 3_600_000,
    "hours": 3_600_000,
    "d": 86_400_000,
    "day": 86_400_000,
    "days": 86_400_000,
    "w": 604_800_000,
    "week": 604_800_000,
    "weeks": 604_800_000,
}


def parse_duration_ms(text) -> int:
    """A HOCON duration ("24h", "3 seconds", "3000ms", a bare number of ms) in milliseconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return int(text)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(text))
    if not match:
        raise ValueError(f"not a duration: {text!r}")
    number, unit = float(match.group(1)), match.group(2) or "ms"
    if unit not in _DURATION_UNITS:
        raise ValueError(f"unknown duration unit: {unit!r}")
    return int(number * _DURATION_UNITS[unit])


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Store:
    """Tokens by id, and an index of secret digests; one lock guards both."""

    def __init__(self, defect: str | None):
        self.defect = defect
        self.lock = threading.Lock()
        self.tokens: dict[int, dict] = {}
        self.by_digest: dict[str, int] = {}
        self.revoked_cache: dict[str, dict] = {}
        self.seq = 0
        self.last_ms = 0
        self.worker = secrets.randbelow(1024)

    def _new_id(self) -> int:
        ms = now_ms() - 1_288_834_974_657  # a snowflake epoch
        if self.defect == "id-collision-same-ms":
            return (ms << 22) | (self.worker << 12)
        if ms == self.last_ms:
            self.seq = (self.seq + 1) & 0xFFF
            if self.seq == 0:
                self.seq = 1
                while ms <= self.last_ms:
                    ms = now_ms() - 1_288_834_974_657
        else:
            # a sequence that starts at 1 in each millisecond: no id ends in zero bits, so a double
            # holds none of them exactly (the float-precision defect bites every id, not only the
            # ids of tokens made in the same millisecond as another)
            self.seq = 1
        self.last_ms = ms
        return (ms << 22) | (self.worker << 12) | self.seq

    @staticmethod
    def _new_secret() -> str:
        body = base64.urlsafe_b64encode(secrets.token_bytes(30)).decode()
        check = hashlib.blake2s(body.encode(), digest_size=4).hexdigest()
        return f"sto1.{body}.{check}"

    def _key(self, secret: str) -> str:
        if self.defect == "token-case-insensitive":
            return digest(secret.lower())
        return digest(secret)

    def create(self, name, roles, expiration, subject, secret=None, listed=True, kind="service"):
        with self.lock:
            self._purge()
            duplicate = next((t for t in self.tokens.values() if t["listed"] and t["name"] == name), None)
            if duplicate is not None and listed:
                if self.defect == "duplicate-create-returns-existing":
                    return duplicate, duplicate["secret_shown"]
                return None, None
            secret = secret or self._new_secret()
            token_id = self._new_id()
            now = now_ms()
            token = {
                "id": token_id,
                "name": name,
                "roles": roles,
                "expiration": expiration,
                "dedicatedSubject": subject,
                "createdAt": now,
                "lastUpdateTimestamp": now,
                "listed": listed,
                "kind": kind,
                "digest": self._key(secret),
                # kept only for the defects that leak it; a correct server never reads it
                "secret_shown": secret if self.defect in LEAKING_DEFECTS else None,
            }
            old = self.tokens.get(token_id)
            if old is not None:
                self.by_digest.pop(old["digest"], None)
            self.tokens[token_id] = token
            self.by_digest[token["digest"]] = token_id
            return token, secret

    def _alive(self, token, now) -> bool:
        expiration = token["expiration"]
        if expiration is None:
            return True
        if token["kind"] == "bootstrap" and self.defect == "bootstrap-ttl-ignored":
            return True
        if self.defect == "expiry-unit-seconds":
            return now // 1000 < expiration
        if self.defect == "expiry-leeway-60s":
            return now < expiration + 60_000
        return now < expiration

    def _purge(self):
        # expired tokens disappear from the list; keep them a minute for the auth answer
        now = now_ms()
        for token_id in [
            i
            for i, t in self.tokens.items()
            if t["expiration"] is not None and t["expiration"] + 60_000 < now and not self._alive(t, now)
        ]:
            token = self.tokens.pop(token_id)
            self.by_digest.pop(token["digest"], None)

    def authenticate(self, secret: str):
        key = self._key(secret)
        with self.lock:
            token_id = self.by_digest.get(key)
            token = self.tokens.get(token_id) if token_id is not None else None
            if token is None and self.defect == "revoked-still-valid":
                token = self.revoked_cache.get(key)
            if token is None or not self._alive(token, now_ms()):
                return None
            return token

    def listing(self):
        with self.lock:
            self._purge()
            now = now_ms()
            rows = [t for t in self.tokens.values() if t["listed"] and self._alive(t, now)]
        rows.sort(key=lambda t: (t["name"].casefold(), t["id"]))
        if self.defect == "list-first-100":
            rows = rows[:100]
        return rows

    def delete(self, token_id: int) -> bool:
        with self.lock:
            token = self.tokens.get(token_id)
            if token is None or not token["listed"]:
                return False
            del self.tokens[token_id]
            self.by_digest.pop(token["digest"], None)
            if self.defect == "revoked-still-valid":
                self.revoked_cache[token["digest"]] = token
            return True


def error_body(status: int, message: str, error_type: str = "InternalError") -> dict:
    return {
        "_type": "ErrorsResponse",
        "trackingKey": uuid.uuid4().hex,
        "serverTimestamp": now_ms(),
        "errors": [{"_type": error_type, "message": message, "errorCode": status}],
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "indep-sts/0.1"
    store: Store
    defect: str | None
    body: bytes

    def log_message(self, format, *args):
        pass  # never log request lines: they are harmless, but keep the output quiet

    # -- plumbing -------------------------------------------------------------

    def _send(self, status: int, body=None, headers: dict | None = None):
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if payload and self.command != "HEAD":
            self.wfile.write(payload)

    def _error(self, status: int, message: str, error_type: str = "InternalError", headers=None):
        self._send(status, error_body(status, message, error_type), headers)

    def _read_body(self):
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks += self.rfile.read(size)
                self.rfile.readline()
                if len(chunks) > BODY_MAX:
                    raise OverflowError
            return chunks
        if length is None:
            return b""
        size = int(length)
        if size > BODY_MAX:
            self.rfile.read(size)
            raise OverflowError
        return self.rfile.read(size)

    def _credential(self):
        """(kind, secret): kind is None (nothing presented), "bad" (unparseable) or "key"."""
        authorization = self.headers.get("Authorization")
        if authorization is not None:
            scheme, _, rest = authorization.strip().partition(" ")
            if scheme.lower() == "apikey":
                rest = rest.strip()
                return ("key", rest) if rest else ("bad", None)
        api_key = self.headers.get("X-API-Key")
        if api_key is not None:
            api_key = api_key.strip()
            return ("key", api_key) if api_key else ("bad", None)
        return (None, None)

    def _authenticate(self):
        """The calling token, or None after answering the refusal."""
        kind, secret = self._credential()
        if kind is None or kind == "bad":
            self._error(
                401, "Authentication required", "Unauthenticated", {"WWW-Authenticate": 'ApiKey realm="stackstate"'}
            )
            return None
        token = self.store.authenticate(secret)
        if token is None:
            self._error(403, "The presented credential is not valid", "InvalidCredentials")
            return None
        return token

    def _may_manage(self, token) -> bool:
        roles = token["roles"]
        if self.defect == "roles-case-insensitive":
            return any(r.lower() in MANAGER_ROLES for r in roles)
        return any(r in MANAGER_ROLES for r in roles)

    # -- routing --------------------------------------------------------------

    def _route(self, method: str):
        path = urlsplit(self.path).path
        if path in ("/api/server/status", "/api/server/info"):
            if method != "GET":
                return self._error(405, "Method not allowed", headers={"Allow": "GET"})
            if self._authenticate() is None:
                return None
            if path.endswith("status"):
                return self._send(200, {"status": "UP", "serverTimestamp": now_ms()})
            return self._send(
                200,
                {
                    "version": {"major": 6, "minor": 0, "patch": 0, "diff": "", "commit": "indep", "isDev": False},
                    "deploymentMode": "SelfHosted",
                    "applicationDomains": ["Observability"],
                    "platformVersion": "6.0.0",
                },
            )
        if path == "/api/security/tokens":
            if method not in ("GET", "POST"):
                return self._error(405, "Method not allowed", headers={"Allow": "GET, POST"})
            return self._tokens(method)
        match = re.fullmatch(r"/api/security/tokens/([^/]*)", path)
        if match:
            if method != "DELETE":
                return self._error(405, "Method not allowed", headers={"Allow": "DELETE"})
            return self._delete(match.group(1))
        return self._error(404, f"No such resource: {path}", "NotFound")

    def _manager(self):
        token = self._authenticate()
        if token is None:
            return None
        if not self._may_manage(token):
            self._error(403, "Missing permission to manage service tokens", "Forbidden")
            return None
        return token

    def _tokens(self, method: str):
        if method == "GET":
            if self._manager() is None:
                return None
            rows = []
            for token in self.store.listing():
                row = {
                    "_type": "ServiceToken",
                    "id": token["id"],
                    "name": token["name"],
                    "description": "",
                    "roles": list(token["roles"]),
                    "lastUpdateTimestamp": token["lastUpdateTimestamp"],
                    "createdAt": token["createdAt"],
                }
                if token["expiration"] is not None:
                    row["expiration"] = token["expiration"]
                if token["dedicatedSubject"]:
                    row["dedicatedSubject"] = token["dedicatedSubject"]
                if self.defect == "token-in-list" and token["secret_shown"]:
                    row["token"] = token["secret_shown"]
                rows.append(row)
            return self._send(200, rows)
        raw = self.body
        if self._manager() is None:
            return None
        try:
            request = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return self._error(400, "The body is not valid JSON", "BadRequest")
        problem = self._invalid(request)
        if problem:
            return self._error(400, problem, "BadRequest")
        expiration = request.get("expiryDate")
        if isinstance(expiration, str):
            expiration = int(expiration)
        if expiration is not None and expiration <= now_ms():
            return self._send(
                400,
                {
                    "_type": "ServiceTokenInvalidExpiryError",
                    "message": "The expiry date must lie in the future",
                },
            )
        roles = sorted(set(request["roles"]))
        subject = request.get("dedicatedSubject") or None
        token, secret = self.store.create(request["name"], roles, expiration, subject)
        if token is None:
            return self._error(
                400, f"A service token named {request['name']!r} already exists", "ServiceTokenNameExistsError"
            )
        body = {"name": token["name"], "token": secret}
        if token["expiration"] is not None:
            body["expiration"] = token["expiration"]
        return self._send(201 if self.defect == "create-201" else 200, body)

    @staticmethod
    def _invalid(request) -> str | None:
        if not isinstance(request, dict):
            return "The body must be a JSON object"
        name = request.get("name")
        if not isinstance(name, str) or not name.strip():
            return "name must be a non-empty string"
        if len(name) > NAME_MAX:
            return f"name must be at most {NAME_MAX} characters"
        roles = request.get("roles")
        if not isinstance(roles, list) or not all(isinstance(r, str) and r for r in roles):
            return "roles must be a list of non-empty strings"
        if not roles:
            return "a service token needs at least one role"
        expiration = request.get("expiryDate")
        if expiration is not None:
            if isinstance(expiration, str) and re.fullmatch(r"-?\d{1,19}", expiration):
                expiration = int(expiration)
            if isinstance(expiration, bool) or not isinstance(expiration, int):
                return "expiryDate must be an integer (epoch milliseconds)"
            if not -INT64_MAX - 1 <= expiration <= INT64_MAX:
                return "expiryDate is out of range"
        subject = request.get("dedicatedSubject")
        if subject is not None and not isinstance(subject, str):
            return "dedicatedSubject must be a string"
        return None

    def _delete(self, raw_id: str):
        if self._manager() is None:
            return None
        if self.defect == "delete-id-float-precision":
            try:
                token_id = int(float(raw_id))
            except ValueError:
                return self._error(400, "The id must be an integer", "BadRequest")
        else:
            if not re.fullmatch(r"-?\d{1,19}", raw_id) or not -INT64_MAX - 1 <= int(raw_id) <= INT64_MAX:
                return self._error(400, "The id must be a 64-bit integer", "BadRequest")
            token_id = int(raw_id)
        self.store.delete(token_id)
        return self._send(204)  # idempotent: an unknown id is gone already

    def _dispatch(self):
        self.body = b""
        try:
            # every body is read before answering, whatever the call: bytes left behind would be
            # read as the next request on this connection
            self.body = self._read_body()
        except OverflowError:
            self.close_connection = True
            return self._error(413, "Request body too large", "RequestTooLarge")
        except ValueError:
            self.close_connection = True
            return self._error(400, "Unreadable request body", "BadRequest")
        try:
            self._route("GET" if self.command == "HEAD" else self.command)
        except Exception:  # one answer for anything unforeseen
            self._error(500, "Internal error")

    # OPTIONS and other methods are left to the base class: 501, as RFC 9110 allows for a method
    # the server supports for no resource
    do_GET = do_HEAD = do_POST = do_DELETE = do_PUT = do_PATCH = _dispatch


def load_bootstrap(path: str) -> dict | None:
    with open(path, encoding="utf-8") as handle:
        values = yaml.safe_load(handle) or {}
    auth = ((values.get("stackstate") or {}).get("authentication")) or {}
    block = auth.get("serviceToken") or auth.get("servicetoken") or {}
    bootstrap = block.get("bootstrap")
    if not bootstrap or not bootstrap.get("token"):
        return None
    return {
        "token": str(bootstrap["token"]),
        "roles": [str(r) for r in bootstrap.get("roles") or []],
        "ttl_ms": parse_duration_ms(bootstrap.get("ttl", "24h")),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--auth-config")
    parser.add_argument("--defect", choices=sorted(DEFECTS))
    args = parser.parse_args(argv)
    store = Store(args.defect)
    if args.auth_config:
        try:
            bootstrap = load_bootstrap(args.auth_config)
        except (OSError, ValueError, yaml.YAMLError) as problem:
            print(f"indep-server: cannot read {args.auth_config}: {problem}", file=sys.stderr)
            return 2
        if bootstrap:
            store.create(
                "bootstrap",
                sorted(set(bootstrap["roles"])),
                now_ms() + bootstrap["ttl_ms"],
                None,
                secret=bootstrap["token"],
                listed=False,
                kind="bootstrap",
            )
    handler = type("BoundHandler", (Handler,), {"store": store, "defect": args.defect})
    server = ThreadingHTTPServer((args.host, args.port), handler)
    server.daemon_threads = True
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
