"""Run the reference server inside a test process.

``running_server()`` serves the real app with uvicorn on 127.0.0.1, on a free port, in a
background thread, and stops it on exit::

    with running_server(clock=FakeClock(1_700_000_000_000), auth_config=spec) as server:
        httpx.get(f"{server.url}/api/server/status", headers={"X-API-Key": spec.token})
        server.clock.advance(60_000)
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .app import DEFAULT_MANAGER_ROLES, create_app
from .clock import Clock, SystemClock
from .config import AuthConfig, BootstrapSpec
from .faults import FaultSet
from .server import ReferenceServer, bind_socket, url_for, uvicorn_config
from .store import TokenStore
from .variants import VariantSet

START_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class RunningServer:
    url: str
    """Base URL without a trailing slash, e.g. ``http://127.0.0.1:41235``; the API is under
    ``{url}/api``."""
    clock: Clock
    store: TokenStore
    faults: FaultSet
    variants: VariantSet
    bootstrap: BootstrapSpec | None

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"


@contextlib.contextmanager
def running_server(
    *,
    clock: Clock | None = None,
    auth_config: AuthConfig | BootstrapSpec | None = None,
    db_path: str | Path | None = None,
    faults: Iterable[str] | FaultSet = (),
    variants: Iterable[str] | VariantSet = (),
    manager_roles: Iterable[str] = DEFAULT_MANAGER_ROLES,
    stats_file: str | Path | None = None,
) -> Iterator[RunningServer]:
    """Serve the reference app until the block ends. ``db_path=None`` uses a throw-away
    database; pass the same path to two servers in turn to test a restart. ``stats_file``
    is ``serve --stats-file``: request counts written there while serving and at the end."""
    bootstrap = auth_config.bootstrap if isinstance(auth_config, AuthConfig) else auth_config
    fault_set = faults if isinstance(faults, FaultSet) else FaultSet(faults)
    variant_set = variants if isinstance(variants, VariantSet) else VariantSet(variants)
    clock = clock if clock is not None else SystemClock()
    store = TokenStore(db_path)
    try:
        app = create_app(
            store,
            clock,
            manager_roles=manager_roles,
            faults=fault_set,
            variants=variant_set,
            bootstrap=bootstrap,
            stats_file=stats_file,
        )
        sock = bind_socket("127.0.0.1", 0)
        ready = threading.Event()
        server = ReferenceServer(uvicorn_config(app), on_ready=ready.set)
        failure: list[BaseException] = []

        def serve() -> None:
            try:
                server.run(sockets=[sock])
            except BaseException as exc:  # SystemExit from a failed start-up included
                failure.append(exc)
            finally:
                ready.set()

        thread = threading.Thread(target=serve, name="sts-reference-server", daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while not ready.wait(0.01):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"reference server did not start in {START_TIMEOUT_S}s")
            if failure or not server.started:
                raise RuntimeError("reference server failed to start") from (failure[0] if failure else None)
            yield RunningServer(
                url=url_for(sock),
                clock=clock,
                store=store,
                faults=fault_set,
                variants=variant_set,
                bootstrap=bootstrap,
            )
        finally:
            server.request_stop()
            thread.join(START_TIMEOUT_S)
            sock.close()
    finally:
        store.close()
