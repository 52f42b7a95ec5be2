"""Command line: ``python -m sts_reference serve|faults|variants`` (also installed as ``sts-reference``).

Exit status: 0 after a clean stop (Ctrl-C, SIGTERM); 2 for a bad option, a bad
authentication config or an unusable database, reported on stderr before listening;
1 when the address cannot be bound.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from .config import DEFAULT_MANAGER_ROLES, AuthConfig, ConfigError, load_auth_config
from .faults import FAULTS, FaultSet
from .variants import VARIANTS, VariantSet

# The web stack (starlette, uvicorn) is imported only once the options and the config have
# been checked, so that a bad start-up is reported quickly.

PROG = "sts-reference"
USAGE_ERROR = 2
READY_MESSAGE = "sts-reference listening on {url}"


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0..65535 (0 picks a free port): {value}")
    return value


def _role(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("a role name must not be empty")
    return text


def _delay(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of milliseconds: {text!r}") from None
    if not 0 <= value <= 60_000:
        raise argparse.ArgumentTypeError(f"must be 0..60000 milliseconds: {value}")
    return value


def _fault(text: str) -> str:
    if text not in FAULTS:
        raise argparse.ArgumentTypeError(f"unknown fault {text!r}; known faults: {', '.join(FAULTS)}")
    return text


def _variant(text: str) -> str:
    if text not in VARIANTS:
        raise argparse.ArgumentTypeError(f"unknown variant {text!r}; known variants: {', '.join(VARIANTS)}")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Reference deployment of the service-token API.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="run the server until Ctrl-C or SIGTERM",
        description=(
            "Serve the service-token API. Prints one line "
            f"'{READY_MESSAGE.format(url='http://HOST:PORT')}' to stdout once it accepts "
            "requests."
        ),
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    serve.add_argument("--port", type=_port, default=8080, help="port to bind, 0 for a free one (default 8080)")
    serve.add_argument(
        "--auth-config",
        metavar="PATH",
        help="authentication.yaml with stackstate.authentication.serviceToken.bootstrap",
    )
    serve.add_argument(
        "--db",
        metavar="PATH",
        help="SQLite file to keep tokens in across restarts (default: a throw-away file)",
    )
    serve.add_argument(
        "--manager-role",
        dest="manager_roles",
        action="append",
        type=_role,
        metavar="ROLE",
        help=f"role allowed to manage service tokens; repeatable (default: {', '.join(DEFAULT_MANAGER_ROLES)})",
    )
    serve.add_argument(
        "--fault",
        dest="faults",
        action="append",
        type=_fault,
        default=[],
        metavar="NAME",
        help="switch on a deliberate defect; repeatable (see the 'faults' command)",
    )
    serve.add_argument(
        "--variant",
        dest="variants",
        action="append",
        type=_variant,
        default=[],
        metavar="NAME",
        help="make another correct choice where the documentation leaves one open; repeatable "
        "(see the 'variants' command)",
    )
    serve.add_argument(
        "--stats-file",
        metavar="PATH",
        help="count requests and write the counts to PATH as JSON while they change and at shutdown",
    )
    serve.add_argument(
        "--delay-ms",
        type=_delay,
        default=0,
        metavar="MS",
        help="wait this long before answering each request, like a deployment far away (for benchmarks)",
    )
    serve.add_argument(
        "--create-delay-ms",
        type=_delay,
        default=0,
        metavar="MS",
        help="wait this long more before answering each create, like a server hashing secrets slowly (for benchmarks)",
    )
    serve.add_argument(
        "--clock-offset-ms",
        type=int,
        default=0,
        metavar="MS",
        help="run the server's clock this many milliseconds ahead (negative: behind) of the machine's",
    )
    commands.add_parser("faults", help="list the deliberate defects the server can run with")
    commands.add_parser("variants", help="list the other correct choices the server can make")
    return parser


def _fail(message: str, status: int = USAGE_ERROR) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)
    return status


def _list(catalogue: dict[str, str]) -> int:
    width = max(len(name) for name in catalogue)
    for name, description in catalogue.items():
        print(f"{name:<{width}}  {description}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    faults = FaultSet(args.faults)
    try:
        auth = load_auth_config(args.auth_config, faults) if args.auth_config else AuthConfig()
    except ConfigError as exc:
        return _fail(f"bad authentication config: {exc}")
    from .app import create_app
    from .clock import SkewedClock, SystemClock
    from .server import ReferenceServer, bind_socket, url_for, uvicorn_config
    from .store import StoreError, TokenStore

    try:
        store = TokenStore(args.db)
    except StoreError as exc:
        return _fail(str(exc))
    try:
        try:
            sock = bind_socket(args.host, args.port)
        except OSError as exc:
            return _fail(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", 1)
        app = create_app(
            store,
            SkewedClock(args.clock_offset_ms) if args.clock_offset_ms else SystemClock(),
            manager_roles=args.manager_roles or DEFAULT_MANAGER_ROLES,
            faults=faults,
            variants=VariantSet(args.variants),
            bootstrap=auth.bootstrap,
            stats_file=args.stats_file,
            delay_ms=args.delay_ms,
            create_delay_ms=args.create_delay_ms,
        )

        def announce() -> None:
            print(READY_MESSAGE.format(url=url_for(sock)), flush=True)

        logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
        logging.getLogger("sts_reference").setLevel(logging.INFO)
        server = ReferenceServer(uvicorn_config(app), on_ready=announce)
        server.run(sockets=[sock])
        sock.close()
        return 0 if server.started else 1
    finally:
        store.close()


def _stop_early(signum: int, frame: FrameType | None) -> None:
    # Until the server installs its own handlers, SIGTERM means the same as Ctrl-C.
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse has printed usage or help already
        return exc.code if isinstance(exc.code, int) else USAGE_ERROR
    if args.command == "faults":
        return _list(FAULTS)
    if args.command == "variants":
        return _list(VARIANTS)
    previous = signal.signal(signal.SIGTERM, _stop_early)
    try:
        return _serve(args)
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
