"""Serving the reference app with uvicorn: the ``serve`` command and the test helper both
go through ``ReferenceServer``."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
from collections.abc import Callable, Generator
from types import FrameType

import uvicorn
from starlette.types import ASGIApp


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket on ``host``:``port`` (0 picks a free port). Binding here,
    before uvicorn starts, is what lets the caller learn the port chosen."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[
        0
    ]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def url_for(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def uvicorn_config(app: ASGIApp) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        # The app sets Date from its own clock; uvicorn's would disagree with a fake clock.
        date_header=False,
        server_header=False,
        proxy_headers=False,
        # Leave logging set-up to the caller (a test run or the serve command).
        log_config=None,
        timeout_graceful_shutdown=5,
    )


class ReferenceServer(uvicorn.Server):
    """uvicorn's server with three changes: a callback once it is listening, a stop that
    takes effect at once (not at the next 0.1 s tick) so tests can start and stop many
    servers, and signal handling that stops cleanly instead of re-raising the signal
    after shutdown (which would turn Ctrl-C into a non-zero exit)."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None] | None = None) -> None:
        super().__init__(config)
        self._on_ready = on_ready
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        await super().startup(sockets)
        if self.started and not self.should_exit and self._on_ready is not None:
            self._on_ready()

    async def main_loop(self) -> None:
        assert self._wake is not None
        while not self.should_exit:
            with contextlib.suppress(TimeoutError):
                # The timeout only bounds how long a should_exit set without request_stop
                # (e.g. by uvicorn itself) goes unnoticed.
                await asyncio.wait_for(self._wake.wait(), timeout=0.5)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn's own shutdown sleeps a fixed 0.1 s and polls every 0.1 s; this one does
        # the same steps but polls briefly, so an idle server stops in milliseconds.
        loop = asyncio.get_running_loop()
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        deadline = loop.time() + (self.config.timeout_graceful_shutdown or 5)
        state = self.server_state
        while (state.connections or state.tasks) and not self.force_exit:
            if loop.time() > deadline:
                for task in state.tasks:
                    task.cancel(msg="graceful shutdown timed out")
                break
            await asyncio.sleep(0.002)
        for server in self.servers:
            await server.wait_closed()
        if not self.force_exit:
            await self.lifespan.shutdown()

    def request_stop(self) -> None:
        """Ask the server to stop; safe from any thread and from a signal handler."""
        self.should_exit = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(wake.set)

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handle(signum: int, frame: FrameType | None) -> None:
            if self.should_exit and signum == signal.SIGINT:
                self.force_exit = True  # a second Ctrl-C skips waiting for connections
            self.request_stop()

        originals = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, original in originals.items():
                signal.signal(sig, original)
