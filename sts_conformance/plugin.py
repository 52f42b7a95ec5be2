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
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest

from sts_conformance import __version__
from sts_conformance.checking import ahead, cli_runner, foundations, late_use
from sts_conformance.checking.fleet import DONE, DUE_GRACE_S, MAX_TTL_MS, READY, Fleet, Instance, plan, wait_for
from sts_conformance.checking.hypothesis_profiles import DEFAULT_TIME_BUDGET_S, FuzzBudget
from sts_conformance.checking.model.choices import held as held_choices
from sts_conformance.checking.reconfigure import Reconfigurer, announce
from sts_conformance.core import preconditions as pre
from sts_conformance.core.errors import HarnessError, ProfileError, TargetUnavailable
from sts_conformance.core.redact import REDACTOR, install_logging_filter
from sts_conformance.core.requirements import catalogue
from sts_conformance.run import STATE_KEY, RunState, finish_tokens, is_active
from sts_conformance.target import servertime, together
from sts_conformance.target.client import EXCHANGES, ApiClient, AuthForm, Exchange
from sts_conformance.target.connect import Connection, ManagedProcess, connect
from sts_conformance.target.inflight import IDS, IDS_LOCK
from sts_conformance.target.profile import KnownDeviation, TargetProfile, load_profile, resolve_profile_path
from sts_conformance.target.settle import BOOTSTRAP, SETTLE
from sts_conformance.target.throttle import THROTTLE, TargetThrottled, record_file
from sts_conformance.tokens import interrupts
from sts_conformance.tokens.journal import Journal
from sts_conformance.tokens.ledger import TokenLedger
from sts_conformance.tokens.prepare import Credential, Prepared, prepare
from sts_conformance.tokens.sweep import run_prefix

# Reports in reports/ and the run's verdict and exit status live in their own plugin module; so
# do the judging of server errors no check noticed (ST-ERR-001) and of answers anywhere in a check
# that carry a secret the run holds (ST-ONCE-006).
pytest_plugins = [
    "sts_conformance.reporting.hooks",
    "sts_conformance.checking.server_errors",
    "sts_conformance.checking.leaks",
]


class _Resources:
    """What the controller started (processes, clients); closed once, last thing in the run."""

    def __init__(self) -> None:
        self._closers: list[Callable[[], None]] = []

    def add(self, closer: Callable[[], None]) -> None:
        self._closers.append(closer)

    def close(self) -> None:
        with interrupts.shielded():
            while self._closers:
                with contextlib.suppress(Exception):
                    self._closers.pop()()


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
    group.addoption(
        "--time-budget",
        metavar="SECONDS",
        type=_seconds,
        default=DEFAULT_TIME_BUDGET_S,
        help="against a slow target, run fewer generated examples so the run fits about this long; the "
        f"target's latency is measured at the start (default: {DEFAULT_TIME_BUDGET_S:g})",
    )


def _seconds(text: str) -> float:
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


def pytest_configure(config: pytest.Config) -> None:
    from sts_conformance.checking import hypothesis_profiles  # noqa: F401  registers quick/thorough before Hypothesis reads its options

    install_logging_filter()
    config.addinivalue_line(
        "markers", f"{pre.MARKER}(*requirements): the foundations (requirement ids) this check stands on"
    )
    for line in ahead.MARKERS:
        config.addinivalue_line("markers", line)


def activate(config: pytest.Config) -> None:
    """Turn the run into a conformance run: resolve the target once, in the controller."""
    if is_active(config):
        return
    # first of all: a SIGTERM from here on stops the run like Ctrl-C, with every cleanup
    interrupts.install()
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and "sts_connection" in workerinput:
        data = workerinput["sts_connection"]
        profile = load_profile(data["profile_path"])
        conn = Connection.from_workerinput(data["connection"])
        REDACTOR.register(conn.admin_token, profile.admin_token, profile.bootstrap.token, held=True)
        config.stash[STATE_KEY] = RunState(
            profile,
            conn,
            data["run_id"],
            Path(data["run_dir"]),
            workerinput.get("workerid", "gw"),
            prepared=Prepared.from_dict(data["prepared"]),
            has_instances=data["has_instances"],
            time_budget=config.getoption("time_budget"),
        )
        worker = workerinput.get("workerid", "gw")
        THROTTLE.configure(budget_s=config.getoption("time_budget"), record=record_file(Path(data["run_dir"]), worker))
        together.configure(profile.concurrency)
        ahead.configure(profile.checks_together)
        SETTLE.configure(profile.consistency, Path(data["run_dir"]))
        IDS.configure(Path(data["run_dir"]) / IDS_LOCK)
        config.add_cleanup(functools.partial(IDS.configure, None))
        return

    try:
        path = resolve_profile_path(config.getoption("target"))
        profile = load_profile(path)
    except HarnessError as exc:
        _report_start_failure(config, None, exc)
        raise pytest.UsageError(str(exc)) from None
    REDACTOR.register(profile.admin_token, profile.bootstrap.token, held=True)
    SETTLE.configure(profile.consistency, None)
    together.configure(profile.concurrency)
    ahead.configure(profile.checks_together)
    cli_problem = cli_runner.start_problem(profile.cli_command, profile.source) if profile.cli_command else None
    if cli_problem is not None:
        _report_start_failure(config, profile, ProfileError(cli_problem))
        raise pytest.UsageError(cli_problem) from None

    # Everything started from here on is stopped by this, also when the run is interrupted
    # while it starts (config cleanups run even then).
    resources = _Resources()
    config.add_cleanup(resources.close)
    process = None
    try:
        if profile.managed:
            process = ManagedProcess(profile)
            resources.add(process.stop)
            process.start()
            conn = connect(profile, process.url, process.token, strict_admin=False)
        else:
            assert profile.admin_token is not None
            conn = connect(profile, profile.url, profile.admin_token, strict_admin=True)
    except HarnessError as exc:
        resources.close()
        _stop_before_checks(config, profile, exc)

    REDACTOR.register(conn.admin_token, held=True)  # a launched target's admin is its fresh bootstrap token
    run_dir = Path(tempfile.mkdtemp(prefix="sts-run-"))
    SETTLE.configure(profile.consistency, run_dir)
    config.add_cleanup(functools.partial(shutil.rmtree, run_dir, ignore_errors=True))
    IDS.configure(run_dir / IDS_LOCK)  # (the workers of ``-n`` take the same file)
    config.add_cleanup(functools.partial(IDS.configure, None))
    fleet = None
    run_id = secrets.token_hex(3)
    if profile.managed:
        fleet = Fleet(profile, run_dir, conn.admin_form, name_prefix=run_prefix(run_id))
        resources.add(fleet.close)
        fleet.start(plan(profile))
    THROTTLE.configure(budget_s=config.getoption("time_budget"), record=record_file(run_dir, "main"))
    client = ApiClient.for_profile(profile, conn.url)
    resources.add(client.close)
    journal = Journal(run_dir / "journal-prep.jsonl", "prep")
    prep_ledger = TokenLedger(
        client, conn.admin_token, conn.admin_form, prefix=f"{run_prefix(run_id)}prep", run_dir=run_dir, journal=journal
    )
    state = RunState(
        profile,
        conn,
        run_id,
        run_dir,
        "main",
        process=process,
        prep_ledger=prep_ledger,
        has_instances=fleet is not None or profile.bootstrap.reconfigure is not None,
        time_budget=config.getoption("time_budget"),
    )
    config.stash[STATE_KEY] = state

    def finish_at_exit() -> None:
        finish_tokens(config)  # a no-op when the report already did it

    # registered after the resources: runs before they close (the target must still be up)
    config.add_cleanup(finish_at_exit)
    try:
        if profile.bootstrap.reconfigure is not None:
            # before the preparation: it restarts the deployment, and the checks' tokens come after it
            reconfigurer = Reconfigurer(profile, conn, run_dir, prep_ledger, announce)
            resources.add(reconfigurer.restore)  # also when the run is interrupted meanwhile
            reconfigurer.run()
        state.prepared = prepare(client, profile, prep_ledger)
        stop_late_use = late_use.start(profile, conn.url, state.prepared, run_dir, prep_ledger)
        resources.add(stop_late_use)
        state.before_sweep.append(stop_late_use)  # its wider tries make tokens: none after the sweep
        resources.add(foundations.start(profile, conn.url, state.prepared, run_dir))
    except HarnessError as exc:
        _stop_before_checks(config, profile, exc)
    except httpx.HTTPError as exc:
        error = TargetUnavailable(
            f"target {profile.name!r} stopped answering while the run was being prepared: {type(exc).__name__}: {exc}"
        )
        _report_start_failure(config, profile, error)
        raise pytest.UsageError(str(error)) from None


# -- reports (sts_conformance/reporting) ---------------------------------------------------


def _stop_before_checks(config: pytest.Config, profile: TargetProfile, exc: HarnessError) -> NoReturn:
    """End a run that cannot start: exit status 4 (a usage error), or 3 when the target throttled
    beyond the budget (a harness error, not a setting to fix)."""
    _report_start_failure(config, profile, exc)
    if isinstance(exc, TargetThrottled):
        pytest.exit(f"ERROR: {exc}", returncode=EXIT_HARNESS_ERROR)
    raise pytest.UsageError(str(exc)) from None


#: the exit status of a run stopped by the harness (the reports' EXIT_ERROR)
EXIT_HARNESS_ERROR = 3


def _report_start_failure(config: pytest.Config, profile: TargetProfile | None, exc: HarnessError) -> None:
    """Replace any earlier reports with an error report: this run stops before any check."""
    from sts_conformance.reporting.hooks import start_failed

    start_failed(config, profile, exc)


#: the modules that make a table once per process and judge it cell by cell (the authorization matrix,
#: the path variants, the ordinary mistakes): under ``-n`` all of a table's cells go to one worker, which
#: makes the table once instead of every worker making it again for its share
TABLE_MODULES = ("test_authorization_matrix.py", "test_path_variants.py", "test_server_errors.py")
#: the modules marked ``together`` (``checking/ahead.py``): with the profile's ``checks_together``, under
#: ``-n`` each goes to one worker whole, which makes its tokens once and runs its checks together. The
#: controller collects no checks, so the list is kept here (a test compares it to the marks).
TOGETHER_MODULES = (
    "test_auth_headers.py",
    "test_authorization_matrix.py",
    "test_cli_create_list_delete.py",
    "test_cli_error_paths.py",
    "test_cli_expiration.py",
    "test_cli_target_and_credentials.py",
    "test_credential_places.py",
    "test_expiration.py",
    "test_fuzz_names_roles.py",
    "test_lifecycle.py",
    "test_lifecycle_model.py",
    "test_one_time_display.py",
    "test_path_variants.py",
    "test_rights_under_use.py",
    "test_role_list_edges.py",
    "test_role_names_exact.py",
    "test_roles.py",
    "test_server_errors.py",
)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """xdist controller, ``-n`` with the default distribution: as ``load`` (each check where a worker is
    free), except that a table module, or one whose checks run together, goes to one worker whole
    (:func:`work_unit`). Check ids are unchanged."""
    if not is_active(config) or config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class TablesTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return TablesTogether(config, log)


def work_unit(nodeid: str) -> str:
    """What xdist hands to one worker together: a whole table module, or (with the profile's
    ``checks_together``) a whole module marked ``together``; else the one check."""
    module = nodeid.split("::", 1)[0]
    whole = TABLE_MODULES + (TOGETHER_MODULES if ahead.ENABLED else ())
    return module if module.rsplit("/", 1)[-1] in whole else nodeid


def held_back(session: pytest.Session) -> str | None:
    """Why the checks should no longer run ahead together: the target has already failed something (a
    foundation, a server error while the run was prepared, a check). Checks at once against a target that
    misbehaves could make one defect read as many (a race only simultaneous creates meet, more of the
    run's tokens alive at once than it lists); the rest then run in their turn, as with the setting off."""
    state = session.config.stash.get(STATE_KEY, None)
    prepared = state.prepared if state is not None else None
    if prepared is not None and prepared.failed:
        return f"a foundation failed while the run was prepared ({', '.join(sorted(prepared.failed))})"
    if prepared is not None and prepared.server_errors:
        return "the target answered with a server error while the run was prepared"
    if session.testsfailed:
        return f"{session.testsfailed} check(s) failed"
    return None


#: what the checks run ahead together need to know of this process's checks
AHEAD_PLAN = ahead.Plan(
    blocked=lambda item: setup_blocker(item) is not None,
    whole_module=lambda module: work_unit(f"{module}::") == module,
    held_back=held_back,
)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """A check of a module marked ``together``: run with the module's others when the first of them runs."""
    return ahead.call(pyfuncitem, AHEAD_PLAN)


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    ahead.forget(item)


def planned(request: pytest.FixtureRequest, where: str | None = None) -> tuple[list[pytest.Item], bool]:
    """The checks of the requesting fixture's module that this process runs and does not block at their
    setup, and whether that is known: not in an xdist worker, which is handed such checks one at a
    time (a table module excepted). For tokens made ahead for a module (``tokens/premade.py``).
    ``where`` (the module's ``__file__``) names the module for a fixture of session scope."""
    if where is not None:
        module = Path(where).resolve().relative_to(request.config.rootpath).as_posix()
    else:
        node = request.node.getparent(pytest.Module)
        assert node is not None, "planned() without where= serves a fixture of module scope or narrower"
        module = node.nodeid
    items = [i for i in request.session.items if i.nodeid.split("::", 1)[0] == module]
    items = [i for i in items if setup_blocker(i) is None]
    known = not hasattr(request.config, "workerinput") or all(work_unit(i.nodeid) == module for i in items)
    return items, known


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
        "prepared": state.prepared.as_dict(),
        "has_instances": state.has_instances,
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
    deviations: tuple[KnownDeviation, ...] = ()
    if is_active(config):
        deviations = config.stash[STATE_KEY].profile.known_deviations
        for d in deviations:
            if d.requirement is not None and d.requirement not in known:
                raise pytest.UsageError(
                    f"target profile {config.stash[STATE_KEY].profile.source}: known_deviations names an unknown "
                    f"requirement {d.requirement!r}"
                )
    for item in items:
        rids = []
        for mark in item.iter_markers("requirement"):
            if not mark.args or mark.args[0] not in known:
                raise pytest.UsageError(f"{item.nodeid}: requirement marker names an unknown requirement {mark.args!r}")
            rids.append(mark.args[0])
            item.user_properties.append(("requirement", mark.args[0]))
        _mark_deviation(item, rids, deviations)


def _names_check(item: pytest.Item, check: str) -> bool:
    """Whether a ``known_deviations`` entry's ``check`` names this test: its node id, its name or its parameter id."""
    callspec = getattr(item, "callspec", None)
    return check in (item.nodeid, item.name) or (callspec is not None and check == callspec.id)


def _mark_deviation(item: pytest.Item, rids: list[str], deviations: tuple[KnownDeviation, ...]) -> None:
    """Expect this check to fail when the profile declares it (or its requirement) a known deviation.

    An entry naming one check makes that check a strict expected failure: it passing makes the
    entry stale. An entry naming a requirement expects the requirement to fail, not each of its
    checks: a check of it that passes is no failure (pytest's non-strict xfail); the entry is
    stale only when none of the requirement's checks fails (reporting/results.py judges that).
    """
    for d in sorted(deviations, key=lambda d: d.check is None):  # an entry for one check first
        if d.check is not None:
            if _names_check(item, d.check) and (d.requirement is None or d.requirement in rids):
                item.add_marker(pytest.mark.xfail(reason=f"known deviation {d.label()}: {d.reason}", strict=True))
                return
        elif d.requirement in rids:
            item.add_marker(pytest.mark.xfail(reason=f"known deviation {d.requirement}: {d.reason}", strict=False))
            return


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
        self.prepared = state.prepared

    @property
    def managed(self) -> bool:
        return self.profile.managed

    def require_managed(self, what: str) -> None:
        if not self.managed:
            pytest.skip(f"{what} needs a managed target: profile setting 'launch' is not set")

    def credential(self, state: str) -> Credential:
        """A credential prepared at the start of the run (``prepare.VALID_MANAGER``, ...); never delete it."""
        return self.prepared.credential(state)

    def instance(self, label: str, stage: str = READY) -> Instance:
        """A bootstrap configuration taken through its scenario at the start of the run (``fleet.plan``)."""
        if not self.state.has_instances:
            pytest.skip(
                f"the bootstrap configuration {label!r} needs profile setting 'launch' (instances the suite "
                "starts) or 'bootstrap.reconfigure' (a deployment it may reconfigure)"
            )
        # a launched instance: its start, then (for DONE) its ttl; a reconfigured deployment's records
        # were written before any check started
        timeout = self.profile.launch_timeout + 10
        if stage == DONE:
            # (the never-used configuration waits out the bootstrap settle window besides its ttl)
            timeout += MAX_TTL_MS / 1000 + self.profile.consistency.window(BOOTSTRAP) + DUE_GRACE_S
        if self.profile.bootstrap.reconfigure is not None:
            timeout = 10.0
        return wait_for(self.state.run_dir, label, timeout, stage)

    def fuzz_budget(self) -> FuzzBudget:
        """What generated examples may cost: the run's ``--time-budget`` and the latency measured at its start."""
        return FuzzBudget(float(self.state.time_budget), self.prepared.latency_s)

    def instance_client(self, inst: Instance) -> ApiClient:
        return ApiClient.for_profile(self.profile, inst.url)

    @property
    def probe_path(self) -> str:
        """The call credentials are presented to: chosen at the start of the run (``probe.choose``)."""
        return self.prepared.probe_path or self.profile.probe_path

    def probe(self, token: str | None = None, form: AuthForm = AuthForm.X_API_KEY, **kw: Any):
        return self.client.probe(self.probe_path, token, form, **kw)

    def server_now_ms(self) -> int:
        """The server's clock: the Date header of an anonymous probe (1 s resolution), or as ``servertime`` says."""
        facts = self.prepared.clock_facts
        now = servertime.now_ms(self.client, self.profile.probe_path, facts, self.admin_token, self.admin_form)
        if now is None:
            raise AssertionError(
                f"the target sent no usable Date header (nor serverTimestamp) on {self.profile.probe_path}; "
                "expiry cannot be judged against the server's clock"
            )
        return now

    def wait_until_server_time(self, when_ms: int, max_wait_s: float = 15.0) -> int:
        """Sleep until the server's clock reads at least ``when_ms``; return that reading.

        The Date header truncates to the second, so a reading of ``D`` means the server's
        clock is in ``[D, D + 1s)``: once ``D >= when_ms`` the instant has surely passed.
        """
        when_ms += self.prepared.clock_facts.margin_ms  # a clock read less surely is waited on longer
        deadline = time.monotonic() + max_wait_s
        while True:
            now = self.server_now_ms()
            if now >= when_ms:
                return now
            if time.monotonic() > deadline:
                raise AssertionError(f"the server's clock did not reach {when_ms} within {max_wait_s:g}s (reads {now})")
            time.sleep(min(0.25, max(0.05, (when_ms - now) / 1000 / 2)))


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
    with ApiClient.for_profile(run_state.profile, run_state.connection.url) as c:
        yield Target(run_state, c)


@pytest.fixture(scope="session")
def ledger(target: Target, run_state: RunState) -> Iterator[TokenLedger]:
    """Creates, tracks and finally deletes this process's tokens (the controller sweeps up after all)."""
    worker = run_state.worker
    led = TokenLedger(
        target.client,
        target.admin_token,
        target.admin_form,
        prefix=f"{run_prefix(run_state.run_id)}{worker}",
        run_dir=run_state.run_dir,
        journal=Journal(run_state.run_dir / f"journal-{worker}.jsonl", worker),
        baseline=run_state.prepared.baseline,
    )
    yield led
    with interrupts.shielded():
        led.cleanup()  # what this leaves, the controller's final sweep tries again and reports


@pytest.fixture
def observe(request: pytest.FixtureRequest) -> Callable[[str, Any], None]:
    """Record what the target chose for a behaviour the documentation leaves open."""

    def record(key: str, value: Any) -> None:
        request.node.user_properties.append(("observation", json.dumps({"key": key, "value": value})))
        if is_active(request.config):  # held for the rest of the run (ST-FUZZ-005)
            held_choices(request.config.stash[STATE_KEY]).hold(key, value, request.node.nodeid)

    return record


# -- preconditions, and masking every report ----------------------------------------------------


def _own_requirements(item: pytest.Item) -> set[str]:
    return {str(m.args[0]) for m in item.iter_markers("requirement") if m.args}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Block a check whose declared foundation failed, before any of its fixtures runs."""
    EXCHANGES.clear()
    blocker = setup_blocker(item)
    if blocker is not None:
        raise blocker


def setup_blocker(item: pytest.Item) -> pre.Blocked | None:
    """What blocks ``item`` before any of its fixtures runs: a declared foundation that failed at the start."""
    if not is_active(item.config):
        return None
    prepared = item.config.stash[STATE_KEY].prepared
    own = _own_requirements(item)
    for requirement in pre.declared(item):
        why = prepared.blocked(requirement)
        if why is not None and requirement not in own:
            return pre.Blocked(requirement, why)
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if call.when == "call" and (seconds := ahead.own_seconds(item)) is not None:
        report.duration = seconds  # a check run ahead: its own call's time, not its turn's
    exchanges: list[Exchange] | None = None
    if report.skipped and call.excinfo is not None and isinstance(call.excinfo.value, pre.Blocked):
        blocker = call.excinfo.value
        if blocker.requirement in _own_requirements(item):
            # the foundation this check is about failed under it: that is its own failure, and
            # its evidence is what the start of the run saw, not what this check's fixtures did
            report.outcome = "failed"
            report.longrepr = f"{blocker.requirement} failed: {blocker.reason}"
            if is_active(item.config):
                seen = item.config.stash[STATE_KEY].prepared.evidence.get(blocker.requirement)
                exchanges = [Exchange(**e) for e in seen] if seen else None
    if report.failed and call.when in ("setup", "call"):
        exchanges = exchanges or EXCHANGES.snapshot()
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
