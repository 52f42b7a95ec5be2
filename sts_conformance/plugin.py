"""The pytest plugin: options, the target, fixtures, and masking of every report.

Registered once by the root ``conftest.py``. It stays passive until a conformance
directory (``suites/``) calls :func:`activate` from its own ``pytest_configure``: then the
controller process reads the profile, launches a managed target or checks an external
one, and hands the connection to xdist workers. A broken profile or an unusable target
ends the run with one message and exit status 4, before any check runs.
"""

from __future__ import annotations

import contextlib
import functools
import json
import secrets
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from . import __version__
from .client import EXCHANGES, ApiClient, AuthForm, server_time_ms
from .errors import HarnessError
from .profile import TargetProfile, load_profile, resolve_profile_path
from .redact import REDACTOR, install_logging_filter
from .requirements import catalogue
from .target import Connection, ManagedProcess, connect
from .tokens import TokenLedger, run_prefix

STATE_KEY = pytest.StashKey["RunState"]()

# Reports in reports/ and the run's verdict and exit status live in their own plugin module.
pytest_plugins = ["sts_conformance.reporting.hooks"]


@dataclass
class RunState:
    """What a run knows about its target; one per process (controller and each worker)."""

    profile: TargetProfile
    connection: Connection
    run_id: str
    run_dir: Path
    worker: str
    started_at: float = field(default_factory=time.time)
    process: ManagedProcess | None = None


# -- options and configuration ----------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sts-conformance", "service-token conformance")
    group.addoption(
        "--target",
        metavar="PROFILE",
        default=None,
        help="target profile (YAML) to run against; default: $STS_TARGET, else the embedded "
        "reference deployment (fixtures/targets/reference.yaml)",
    )
    group.addoption(
        "--report-dir",
        metavar="DIR",
        default="reports",
        help="where conformance reports are written (default: reports/)",
    )


def pytest_configure(config: pytest.Config) -> None:
    from . import hypothesis_profiles  # noqa: F401  registers quick/thorough before Hypothesis reads its options

    install_logging_filter()


def strict_gating(config: pytest.Config) -> bool:
    """SHOULD failures fail the run only under pytest's own ``--strict`` (ini ``strict``)."""
    return bool(config.getini("strict"))


def is_active(config: pytest.Config) -> bool:
    return STATE_KEY in config.stash


def activate(config: pytest.Config) -> None:
    """Turn the run into a conformance run: resolve the target once, in the controller."""
    if is_active(config):
        return
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and "sts_connection" in workerinput:
        data = workerinput["sts_connection"]
        profile = load_profile(data["profile_path"])
        conn = Connection.from_workerinput(data["connection"])
        REDACTOR.register(conn.admin_token, profile.admin_token, profile.bootstrap.token)
        config.stash[STATE_KEY] = RunState(
            profile, conn, data["run_id"], Path(data["run_dir"]), workerinput.get("workerid", "gw")
        )
        _install_sigterm()
        return

    try:
        path = resolve_profile_path(config.getoption("target"))
        profile = load_profile(path)
    except HarnessError as exc:
        _report_start_failure(config, None, exc)
        raise pytest.UsageError(str(exc)) from None
    REDACTOR.register(profile.admin_token, profile.bootstrap.token)

    process = None
    try:
        if profile.managed:
            process = ManagedProcess(profile).start()
            conn = connect(profile, process.url, process.token, strict_admin=False)
        else:
            assert profile.admin_token is not None
            conn = connect(profile, profile.url, profile.admin_token, strict_admin=True)
    except HarnessError as exc:
        if process is not None:
            process.stop()
        _report_start_failure(config, profile, exc)
        raise pytest.UsageError(str(exc)) from None

    run_dir = Path(tempfile.mkdtemp(prefix="sts-run-"))
    state = RunState(profile, conn, secrets.token_hex(3), run_dir, "main", process=process)
    config.stash[STATE_KEY] = state
    if process is not None:
        config.add_cleanup(process.stop)
    config.add_cleanup(functools.partial(shutil.rmtree, run_dir, ignore_errors=True))
    _install_sigterm()


# -- reports (sts_conformance/reporting) ---------------------------------------------------


def _report_start_failure(config: pytest.Config, profile: TargetProfile | None, exc: HarnessError) -> None:
    """Replace any earlier reports with an error report: this run stops before any check."""
    from .reporting.hooks import start_failed

    start_failed(config, profile, exc)


def _install_sigterm() -> None:
    """SIGTERM ends the run like Ctrl-C, so cleanup (token deletes, process stop) still runs."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    with contextlib.suppress(ValueError):  # not in the main thread
        signal.signal(signal.SIGTERM, handler)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: give each worker the target's connection (never written to disk)."""
    config = node.config
    if not is_active(config):
        return
    state = config.stash[STATE_KEY]
    node.workerinput["sts_connection"] = {
        "profile_path": state.profile.source,
        "connection": state.connection.as_workerinput(),
        "run_id": state.run_id,
        "run_dir": str(state.run_dir),
    }


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    if not is_active(config):
        return None
    state = config.stash[STATE_KEY]
    kind = "managed (launched by the suite)" if state.profile.managed else "external"
    return [
        f"sts-conformance {__version__}: target {state.profile.name!r} at {state.connection.url} [{kind}]",
        f"profile: {state.profile.source}; run id {state.run_id}",
    ]


# -- collection ---------------------------------------------------------------------------


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    known = catalogue()
    deviations = {}
    if is_active(config):
        deviations = {d.requirement: d.reason for d in config.stash[STATE_KEY].profile.known_deviations}
    for item in items:
        for mark in item.iter_markers("requirement"):
            if not mark.args or mark.args[0] not in known:
                raise pytest.UsageError(f"{item.nodeid}: requirement marker names an unknown requirement {mark.args!r}")
            rid = mark.args[0]
            item.user_properties.append(("requirement", rid))
            if rid in deviations:
                item.add_marker(pytest.mark.xfail(reason=f"known deviation {rid}: {deviations[rid]}", strict=True))


# -- the target as fixtures -----------------------------------------------------------


class Target:
    """The target under test, as the checks see it."""

    def __init__(self, state: RunState, client: ApiClient):
        self.state = state
        self.profile = state.profile
        self.expect = state.profile.expect
        self.url = state.connection.url
        self.admin_token = state.connection.admin_token
        self.admin_form = state.connection.admin_form
        self.client = client

    @property
    def managed(self) -> bool:
        return self.profile.managed

    def require_managed(self, what: str) -> None:
        if not self.managed:
            pytest.skip(f"{what} needs a managed target: profile setting 'launch' is not set")

    def probe(self, token: str | None = None, form: AuthForm = AuthForm.X_API_KEY, **kw: Any):
        return self.client.probe(self.profile.probe_path, token, form, **kw)

    def server_now_ms(self) -> int:
        """The server's clock, from the Date header of an anonymous probe (1 s resolution)."""
        resp = self.probe()
        now = server_time_ms(resp)
        if now is None:
            raise AssertionError(
                f"the target sent no usable Date header on {self.profile.probe_path}; "
                "expiry cannot be judged against the server's clock"
            )
        return now

    def wait_until_server_time(self, when_ms: int, max_wait_s: float = 15.0) -> int:
        """Sleep until the server's clock reads at least ``when_ms``; return that reading.

        The Date header truncates to the second, so a reading of ``D`` means the server's
        clock is in ``[D, D + 1s)``: once ``D >= when_ms`` the instant has surely passed.
        """
        deadline = time.monotonic() + max_wait_s
        while True:
            now = self.server_now_ms()
            if now >= when_ms:
                return now
            if time.monotonic() > deadline:
                raise AssertionError(f"the server's clock did not reach {when_ms} within {max_wait_s:g}s (reads {now})")
            time.sleep(min(0.25, max(0.05, (when_ms - now) / 1000 / 2)))

    @contextlib.contextmanager
    def launch(
        self, *, roles: list[str] | None = None, ttl: str | None = None, key: str | None = None
    ) -> Iterator[ManagedProcess]:
        """Start a further instance of a managed target with its own bootstrap settings."""
        self.require_managed("launching an instance with other bootstrap settings")
        proc = ManagedProcess(self.profile, roles=roles, ttl=ttl, key=key)
        try:
            proc.start()
        except HarnessError as exc:
            pytest.fail(f"could not launch a further instance of the target: {exc}", pytrace=False)
        try:
            yield proc
        finally:
            proc.stop()


@pytest.fixture(scope="session")
def run_state(pytestconfig: pytest.Config) -> RunState:
    if not is_active(pytestconfig):
        pytest.skip("not a conformance run: the target fixtures are only active under suites/")
    return pytestconfig.stash[STATE_KEY]


@pytest.fixture(scope="session")
def profile(run_state: RunState) -> TargetProfile:
    return run_state.profile


@pytest.fixture(scope="session")
def target(run_state: RunState) -> Iterator[Target]:
    p = run_state.profile
    with ApiClient.for_profile(p, run_state.connection.url) as c:
        yield Target(run_state, c)


@pytest.fixture(scope="session")
def ledger(target: Target, run_state: RunState) -> Iterator[TokenLedger]:
    """Creates, tracks and finally deletes this worker's tokens."""
    led = TokenLedger(
        target.client,
        target.admin_token,
        target.admin_form,
        prefix=f"{run_prefix(run_state.run_id)}{run_state.worker}",
        lock_path=run_state.run_dir / "create.lock",
    )
    yield led
    problems = led.cleanup()
    if problems:
        import warnings

        warnings.warn("some tokens created by this run could not be deleted: " + "; ".join(problems), stacklevel=1)


@pytest.fixture
def observe(request: pytest.FixtureRequest) -> Callable[[str, Any], None]:
    """Record what the target chose for a behaviour the documentation leaves open."""

    def record(key: str, value: Any) -> None:
        request.node.user_properties.append(("observation", json.dumps({"key": key, "value": value})))

    return record


# -- masking every report -------------------------------------------------------------------


def pytest_runtest_setup(item: pytest.Item) -> None:
    EXCHANGES.clear()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed and call.when in ("setup", "call"):
        exchanges = EXCHANGES.snapshot()
        if exchanges:
            report.sections.append(
                ("HTTP exchanges (most recent last)", "\n\n".join(e.render() for e in exchanges[-6:]))
            )
            report.user_properties.append(("exchanges", json.dumps([e.as_dict() for e in exchanges[-6:]])))
    _mask_report(report)
    return report


def _mask_report(report: pytest.TestReport) -> None:
    if report.longrepr is not None:
        text = str(report.longrepr)
        if REDACTOR.contains_secret(text):
            if isinstance(report.longrepr, tuple):  # skip reports: (path, line, reason)
                path, line, reason = report.longrepr
                report.longrepr = (path, line, REDACTOR.mask(reason))
            else:
                report.longrepr = REDACTOR.mask(text)
    report.sections = [(title, REDACTOR.mask(body)) for title, body in report.sections]
    report.user_properties = [(k, REDACTOR.mask(v) if isinstance(v, str) else v) for k, v in report.user_properties]
