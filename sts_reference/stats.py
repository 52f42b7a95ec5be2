"""Request counts, for benchmarks and for tests that check that nothing was left behind.

``serve --stats-file PATH`` counts every request and writes the counts to PATH as JSON::

    {"requests": 12,
     "by_route": {"GET /api/server/status": 3, "POST /api/security/tokens": 4,
                  "DELETE /api/security/tokens/{id}": 4, "other": 1},
     "by_status": {"200": 7, "204": 4, "404": 1},
     "tokens_created": 4,
     "tokens_alive": 0,
     "written_at_ms": 1700000000000}

``by_route`` names the route template (``DELETE /api/security/tokens/{id}``); a request to
any other path, or with a method the path does not serve, counts under ``other``.
``tokens_created`` counts creates answered with a 2xx (the bootstrap token is not one);
``tokens_alive`` is how many stored tokens other than the bootstrap token there are when the
file is written; ``written_at_ms`` is the machine's wall clock (not the server's clock).

The file is written at start-up, then by a background task at most every
``WRITE_INTERVAL_S`` while the counts change, and once more at shutdown. Each write goes to a
temporary file in the same directory that is then renamed over PATH, so a reader never sees
a half-written file. Counting itself is a few dictionary updates per request; no request
waits for the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("sts_reference")

WRITE_INTERVAL_S = 0.5
OTHER = "other"
CREATE_ROUTE = "POST /api/security/tokens"
DELETE_ROUTE = "DELETE /api/security/tokens/{id}"

_ROUTES = {
    ("GET", "/api/security/tokens"): "GET /api/security/tokens",
    ("POST", "/api/security/tokens"): CREATE_ROUTE,
    ("GET", "/api/server/info"): "GET /api/server/info",
    ("GET", "/api/server/status"): "GET /api/server/status",
}
_DELETE_PREFIX = "/api/security/tokens/"


def route_key(method: str, path: str) -> str:
    """The route a request is counted under: ``"METHOD template"``, or ``"other"``."""
    key = _ROUTES.get((method, path))
    if key is not None:
        return key
    if method == "DELETE" and path.startswith(_DELETE_PREFIX):
        token_id = path[len(_DELETE_PREFIX) :]
        if token_id and "/" not in token_id:
            return DELETE_ROUTE
    return OTHER


class RequestStats:
    """Counts of the requests one server has answered."""

    def __init__(self) -> None:
        self.requests = 0
        self.by_route: Counter[str] = Counter()
        self.by_status: Counter[str] = Counter()
        self.tokens_created = 0
        self.changed = asyncio.Event()
        """Set whenever a count changes; the writer clears it when it writes."""

    def record(self, route: str, status: int | None) -> None:
        """Count one request to ``route``, answered with ``status`` (None: no answer was sent)."""
        self.requests += 1
        self.by_route[route] += 1
        if status is not None:
            self.by_status[str(status)] += 1
            if route == CREATE_ROUTE and 200 <= status < 300:
                self.tokens_created += 1
        self.changed.set()

    def snapshot(self, tokens_alive: int) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "by_route": dict(sorted(self.by_route.items())),
            "by_status": dict(sorted(self.by_status.items())),
            "tokens_created": self.tokens_created,
            "tokens_alive": tokens_alive,
            "written_at_ms": time.time_ns() // 1_000_000,
        }


def count_requests(app: ASGIApp, stats: RequestStats) -> ASGIApp:
    """``app``, with every HTTP request it answers counted in ``stats``."""

    async def counted(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        status: int | None = None

        async def send_counting(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await app(scope, receive, send_counting)
        finally:
            stats.record(route_key(scope["method"], scope["path"]), status)

    return counted


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` through a temporary file and a rename."""
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temp)
        raise


class StatsWriter:
    """Writes ``stats`` to ``path`` while the server runs: an async context manager for the
    app's lifespan. ``tokens_alive`` is asked for the number of live non-bootstrap tokens at
    each write."""

    def __init__(self, stats: RequestStats, path: str | os.PathLike[str], *, tokens_alive: Callable[[], int]) -> None:
        self.stats = stats
        self.path = Path(path)
        self._tokens_alive = tokens_alive
        self._task: asyncio.Task[None] | None = None

    def write(self) -> None:
        try:
            text = json.dumps(self.stats.snapshot(self._tokens_alive()), indent=2) + "\n"
            write_atomically(self.path, text)
        except (OSError, ValueError) as exc:
            logger.warning("cannot write the stats file %s: %s", self.path, exc)

    async def _keep_writing(self) -> None:
        while True:
            await self.stats.changed.wait()
            self.stats.changed.clear()
            self.write()
            await asyncio.sleep(WRITE_INTERVAL_S)

    async def __aenter__(self) -> StatsWriter:
        self.write()
        self._task = asyncio.create_task(self._keep_writing(), name="sts-reference-stats")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.write()
