"""Throughput of the reference server, measured over loopback with concurrent clients.

    .venv/bin/python benchmarks/bench_server.py [--seconds 5] [--concurrency 16] [--processes 2]

Starts ``python -m sts_reference serve`` as a subprocess on a free 127.0.0.1 port with a
bootstrap admin token and a throw-away database, then measures, each for a bounded time:

* authenticated ``GET /api/server/status`` requests per second, twice: with httpx (what the
  suite uses) and with a minimal keep-alive HTTP/1.1 client that costs far less CPU per
  request, which shows how much of the httpx figure is the client's own limit;
* create+delete cycles per second: ``POST /api/security/tokens``, then ``GET`` the list to
  find the new id (the create response has none), then ``DELETE`` it.

Client load comes from ``--processes`` processes with ``--concurrency`` asyncio tasks each;
every task has its own connection (one httpx.AsyncClient per task: a shared client's pool
becomes the bottleneck well before the server does). The suite's runtime rests on this
server; the target is at least 2,000 authenticated requests per second on a 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvloop

REPO = Path(__file__).resolve().parents[1]
READY_PREFIX = "sts-reference listening on "


@dataclass
class Tally:
    done: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Load:
    url: str
    token: str
    operation: str
    seconds: float
    concurrency: int
    start_at: float  # time.time() at which every process starts, so that they overlap


Operation = Callable[[], Awaitable[bool]]


async def _httpx_status(load: Load, stack: contextlib.AsyncExitStack) -> Operation:
    client = await stack.enter_async_context(httpx.AsyncClient(base_url=load.url, timeout=30))
    headers = {"X-API-Key": load.token}

    async def status() -> bool:
        response = await client.get("/api/server/status", headers=headers)
        return response.status_code == 200

    return status


async def _raw_status(load: Load, stack: contextlib.AsyncExitStack) -> Operation:
    url = httpx.URL(load.url)
    assert url.host and url.port
    reader, writer = await asyncio.open_connection(url.host, url.port)
    stack.callback(writer.close)
    request = (
        f"GET /api/server/status HTTP/1.1\r\nHost: {url.host}:{url.port}\r\nX-API-Key: {load.token}\r\n\r\n"
    ).encode("ascii")

    async def status() -> bool:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await reader.readexactly(length)
        return head.startswith(b"HTTP/1.1 200 ")

    return status


async def _httpx_create_delete(load: Load, stack: contextlib.AsyncExitStack) -> Operation:
    client = await stack.enter_async_context(httpx.AsyncClient(base_url=load.url, timeout=30))
    headers = {"X-API-Key": load.token}

    async def create_delete() -> bool:
        # The list stays short because every cycle deletes what it made.
        name = f"bench-{secrets.token_hex(8)}"
        body = {"name": name, "roles": ["bench"]}
        created = await client.post("/api/security/tokens", headers=headers, json=body)
        if created.status_code != 200:
            return False
        listed = await client.get("/api/security/tokens", headers=headers)
        ids = [item["id"] for item in listed.json() if item["name"] == name]
        if len(ids) != 1:
            return False
        deleted = await client.delete(f"/api/security/tokens/{ids[0]}", headers=headers)
        return deleted.status_code == 204

    return create_delete


OPERATIONS: dict[str, tuple[str, Callable[[Load, contextlib.AsyncExitStack], Awaitable[Operation]]]] = {
    "status (httpx)": ("requests", _httpx_status),
    "status (raw)": ("requests", _raw_status),
    "create+delete": ("cycles", _httpx_create_delete),
}


async def _drive(load: Load) -> Tally:
    _, connect = OPERATIONS[load.operation]
    tally = Tally()
    async with contextlib.AsyncExitStack() as stack:
        operations = [await connect(load, stack) for _ in range(load.concurrency)]
        for operation in operations:  # warm every connection before the clock starts
            await operation()
        await asyncio.sleep(max(0.0, load.start_at - time.time()))
        deadline = time.perf_counter() + load.seconds

        async def worker(operation: Operation) -> None:
            while time.perf_counter() < deadline:
                began = time.perf_counter()
                try:
                    ok = await operation()
                except (httpx.HTTPError, OSError, asyncio.IncompleteReadError):
                    ok = False
                tally.latencies_ms.append((time.perf_counter() - began) * 1000)
                if ok:
                    tally.done += 1
                else:
                    tally.errors += 1

        await asyncio.gather(*(worker(operation) for operation in operations))
    return tally


def _process_main(load: Load) -> Tally:
    return uvloop.run(_drive(load))


def cpu_seconds(pid: int) -> float | None:
    """User+system CPU time the process has used (Linux /proc; None elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(url: str, token: str, operation: str, args: argparse.Namespace, server_pid: int) -> float:
    load = Load(url, token, operation, args.seconds, args.concurrency, time.time() + 1.0)
    context = multiprocessing.get_context("spawn")
    with context.Pool(args.processes) as pool:
        cpu_before = cpu_seconds(server_pid)
        tallies = pool.map(_process_main, [load] * args.processes)
        cpu_after = cpu_seconds(server_pid)
    done = sum(t.done for t in tallies)
    errors = sum(t.errors for t in tallies)
    latencies = sorted(latency for t in tallies for latency in t.latencies_ms)
    rate = done / args.seconds
    p50 = statistics.median(latencies) if latencies else float("nan")
    p99 = latencies[int(len(latencies) * 0.99)] if latencies else float("nan")
    unit, _ = OPERATIONS[operation]
    # Server CPU per operation does not depend on how busy the machine is, unlike the rate:
    # it says what one core could serve if the clients cost nothing.
    cpu = ""
    if cpu_before is not None and cpu_after is not None and done:
        per_op_us = (cpu_after - cpu_before) / (done + errors + load.concurrency * args.processes) * 1e6
        cpu = f"; server CPU {per_op_us:,.0f} us/{unit[:-1]} = {1e6 / per_op_us:,.0f} {unit}/s per core"
    print(
        f"{operation:>15}: {done:>7} {unit} in {args.seconds:g} s = {rate:>7,.0f} {unit}/s"
        f"  (latency p50 {p50:.1f} ms, p99 {p99:.1f} ms; errors {errors}{cpu})",
        flush=True,
    )
    return rate


def start_server(workdir: Path, token: str) -> tuple[subprocess.Popen[str], str]:
    config = workdir / "authentication.yaml"
    config.write_text(
        "stackstate:\n  authentication:\n    serviceToken:\n      bootstrap:\n"
        f"        token: {token}\n        roles: [stackstate-admin]\n        ttl: 1h\n",
        encoding="utf-8",
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sts_reference",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--auth-config",
            str(config),
            "--db",
            str(workdir / "bench.sqlite3"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.startswith(READY_PREFIX):
        process.kill()
        raise SystemExit(f"server did not start (said {line!r})")
    return process, line.removeprefix(READY_PREFIX)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--concurrency", type=int, default=16, help="tasks (connections) per client process")
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    args = parser.parse_args()
    token = "bench-" + secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="sts-bench-") as tmp:
        process, url = start_server(Path(tmp), token)
        try:
            print(
                f"server {url}; {args.processes} client process(es) x {args.concurrency} tasks; {os.cpu_count()} CPUs",
                flush=True,
            )
            for operation in OPERATIONS:
                measure(url, token, operation, args, process.pid)
        finally:
            process.terminate()
            process.wait(10)


if __name__ == "__main__":
    main()
