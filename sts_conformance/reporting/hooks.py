"""The pytest side of reporting and gating: collect every result, write the reports once,
set the exit status, print the verdict.

Registered by :mod:`sts_conformance.plugin` and, like it, passive outside conformance runs.
Every process (serial run, xdist controller, each worker) classifies its own failures in
``pytest_runtest_makereport``, where the exception is still at hand; only the controller
(the process without ``workerinput``) collects, writes ``reports/`` and sets the exit
status, from the reports xdist forwards to it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from sts_conformance.core.errors import HarnessError, ProfileError
from sts_conformance.core.redact import REDACTOR
from sts_conformance.core.requirements import catalogue, catalogue_version
from sts_conformance.reporting import JUNIT_NAME, remove_reports, start_failure_junit, write_reports
from sts_conformance.reporting.collect import KIND_PROPERTY, failure_kind, record_from_report
from sts_conformance.reporting.document import (
    RunInfo,
    build_report,
    git_commit,
    profile_for_report,
    public_url,
    server_info,
)
from sts_conformance.reporting.results import (
    EXIT_ERROR,
    EXIT_USAGE,
    RESULT_ERROR,
    HarnessProblem,
    PhaseRecord,
    RunOutcome,
    clip_details,
    clip_message,
)
from sts_conformance.run import STATE_KEY, finish_tokens, is_active, strict_gating
from sts_conformance.target.client import TlsSettings
from sts_conformance.target.profile import TargetProfile
from sts_conformance.target.settle import summary as settle_summary
from sts_conformance.target.throttle import TargetThrottled, read_totals

_MAX_WARNINGS = 50


class Reporting:
    """The controller's collection of one run's results; a plugin object registered per run."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.report_dir = report_dir(config)
        self.records: list[PhaseRecord] = []
        self.collection_errors: list[HarnessProblem] = []
        self.warnings: list[str] = []
        self.server: dict[str, Any] | None = None
        self.junit: Path | None = None
        self.doc: dict[str, Any] | None = None
        self.files: dict[str, Path] = {}
        self.write_error: str | None = None
        self.checks_ran = False

    def prepare(self) -> None:
        try:
            self.report_dir.mkdir(parents=True, exist_ok=True)
            remove_reports(self.report_dir)
        except OSError as exc:
            raise pytest.UsageError(f"--report-dir {self.report_dir}: cannot be used ({exc.strerror})") from None
        if not self.config.option.xmlpath and self.config.pluginmanager.has_plugin("junitxml"):
            # pytest's junitxml has already looked for --junitxml; point it into the report dir
            from _pytest import junitxml

            self.junit = self.report_dir / JUNIT_NAME
            self.junit.unlink(missing_ok=True)
            self.config.option.xmlpath = str(self.junit)
            junitxml.pytest_configure(self.config)
        elif self.config.option.xmlpath:
            self.junit = Path(self.config.option.xmlpath)

    # -- hooks of the controller ---------------------------------------------------------

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        state = self.config.stash[STATE_KEY]
        p = state.profile
        self.server = server_info(
            state.connection.url,
            p.api_path,
            state.connection.admin_token,
            state.connection.admin_form,
            timeout=min(p.request_timeout, 5.0),
            tls=TlsSettings.from_profile(p),
        )

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, Any, Any]:
        # --collect-only, --fixtures and the like never run checks: they get no report
        self.checks_ran = not session.config.option.collectonly
        return (yield)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.records.append(record_from_report(report))

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            text = report.longreprtext
            lines = [line.removeprefix("E").strip() for line in text.splitlines() if line.startswith("E ")]
            message = lines[-1] if lines else (text.strip().splitlines() or ["collection failed"])[-1]
            where = f"{report.nodeid} (collection)" if report.nodeid else "collection"
            self.collection_errors.append(HarnessProblem(where, clip_message(message) or "", clip_details(text) or ""))

    def pytest_warning_recorded(self, warning_message: Any, when: str, nodeid: str, location: Any) -> None:
        if len(self.warnings) < _MAX_WARNINGS:
            where = f"{nodeid}: " if nodeid else ""
            self.warnings.append(REDACTOR.mask(f"{where}{warning_message.message}"))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        # trylast: after xdist has shut its workers down, so every token they made is journalled
        finish_tokens(self.config)
        if self.checks_ran:
            session.exitstatus = self.finish(int(exitstatus))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.doc is None:
            return
        tr, doc = terminalreporter, self.doc
        v = doc["verdict"]
        result = v["result"]
        colour = {"pass": "green", "fail": "red"}.get(result, "yellow")
        tr.write_sep("=", "service-token conformance", **{colour: True})
        tr.write_line(
            f"verdict: {result.upper()} (exit status {v['exit_status']}) — target {doc['target']['name']!r} "
            f"at {doc['target']['url']}, strict {'on' if v.get('strict') else 'off'}",
            bold=True,
            **{colour: True},
        )
        for reason in v.get("reasons", []):
            tr.write_line(f"  {reason}")
        for warning in v.get("warnings", []):
            tr.write_line(f"  warning: {warning}", yellow=True)
        for level, by_status in doc["counts"]["requirements"].items():
            parts = [f"{n} {s}" for s, n in by_status.items() if n]
            tr.write_line(f"  {level:<6} {', '.join(parts) or 'no requirements'}")
        for cause in doc.get("root_causes", [])[:5]:
            tr.write_line(
                f"  root cause {cause['requirement']} ({cause['level']}), blocked {cause['blocked_checks']} check(s): "
                f"{_first_line(cause['reason'])}",
                red=True,
            )
        left = doc.get("leftovers") or []
        if left:
            tr.write_line(f"  {len(left)} token(s) created by this run could not be deleted from the target:", red=True)
            for item in left[:20]:
                shown = item["id"] if item["id"] is not None else "unknown"
                tr.write_line(f"    {item['name']!r} (id {shown}): {item['why']}")
            if len(left) > 20:
                tr.write_line(f"    … and {len(left) - 20} more (see conformance.json, 'leftovers')")
        if self.write_error:
            tr.write_line(self.write_error, red=True)
        else:
            tr.write_line("reports: " + ", ".join(_shown(p) for p in self.files.values()))

    # -- the verdict ---------------------------------------------------------------------

    def finish(self, exitstatus: int) -> int:
        state = self.config.stash[STATE_KEY]
        outcome = RunOutcome(
            strict=strict_gating(self.config),
            fail_inconclusive=state.profile.fail_on_inconclusive,
            interrupted=exitstatus == pytest.ExitCode.INTERRUPTED and not self.collection_errors,
            collection_errors=list(self.collection_errors),
        )
        info = RunInfo(
            catalogue_version=catalogue_version(),
            started_at=state.started_at,
            finished_at=time.time(),
            target=target_facts(state.profile, state.connection.url, self.server),
            profile=profile_for_report(state.profile),
            commit=git_commit(),
            workers=_workers(self.config),
            warnings=self.warnings,
            run_id=state.run_id,
            time_budget_s=state.time_budget,
            latency_ms=round(state.prepared.latency_s * 1000, 1),
            leftovers=[left.as_dict() for left in state.leftovers or []],
            throttling=read_totals(state.run_dir).as_dict(),
            settle=settle_summary(state.run_dir, state.profile.consistency),
        )
        doc = build_report(self.records, catalogue(), outcome, info)
        if exitstatus in (pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR):
            _force_error(doc, exitstatus, f"pytest ended the run with exit status {exitstatus}")
        self.doc = doc
        try:
            self.files = write_reports(doc, self.report_dir, junit=self.junit)
        except OSError as exc:
            self.write_error = f"could not write the reports to {self.report_dir}: {exc}"
            return EXIT_ERROR
        return int(doc["verdict"]["exit_status"])


REPORTING_KEY = pytest.StashKey[Reporting]()


def report_dir(config: pytest.Config) -> Path:
    path = Path(config.getoption("report_dir") or "reports")
    return path if path.is_absolute() else Path(config.invocation_params.dir) / path


def _is_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")


def _workers(config: pytest.Config) -> int:
    n = getattr(config.option, "numprocesses", None)
    return int(n) if isinstance(n, int) and getattr(config.option, "dist", "no") != "no" else 0


def _force_error(doc: dict[str, Any], status: int, reason: str) -> None:
    verdict = doc["verdict"]
    verdict["result"], verdict["exit_status"] = RESULT_ERROR, status
    verdict["reasons"].insert(0, reason)


def _no_server(error: str) -> dict[str, Any]:
    return {"reachable": False, "status": None, "version": None, "info": None, "error": error}


def target_facts(profile: TargetProfile, url: str | None, server: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "name": profile.name,
        "url": public_url(url or profile.url),
        "managed": profile.managed,
        "server": server or _no_server("not asked"),
    }


def _first_line(text: str | None, limit: int = 160) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# -- hooks of every process --------------------------------------------------------------------


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    # trylast: suites/conftest.py has activated the run by now
    if not _is_controller(config) or not is_active(config) or REPORTING_KEY in config.stash:
        return
    rep = Reporting(config)
    rep.prepare()
    config.stash[REPORTING_KEY] = rep
    config.pluginmanager.register(rep, "sts-conformance-reporting")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    # tryfirst makes this the outermost wrapper: it sees the report after xfail handling
    report = yield
    if report.failed and is_active(item.config):
        report.user_properties.append((KIND_PROPERTY, failure_kind(report, call)))
    return report


# -- a run that cannot start -------------------------------------------------------------------


def start_failed(config: pytest.Config, profile: TargetProfile | None, exc: HarnessError) -> int:
    """Write an error report for a run that ends before any check; returns its exit status.

    The run itself still ends the way the plugin ends it (a usage error, exit status 4);
    the report only replaces whatever an earlier run left in the report dir.
    """
    # what pytest makes of the plugin's UsageError; a target that throttled beyond the budget is the harness's
    status = EXIT_ERROR if isinstance(exc, TargetThrottled) else EXIT_USAGE
    if not _is_controller(config):
        return status
    message = REDACTOR.mask(str(exc))
    where = "profile" if isinstance(exc, ProfileError) else "target"
    if profile is not None:
        target, redacted = target_facts(profile, None, None), profile_for_report(profile)
        target["server"]["error"] = "the run did not start"
    else:
        target = {"name": "?", "url": "", "managed": False, "server": _no_server("the run did not start")}
        redacted = {"source": None}
    now = time.time()
    outcome = RunOutcome(collection_errors=[HarnessProblem(where, clip_message(message) or "", "")])
    info = RunInfo(catalogue_version(), now, now, target, redacted, commit=git_commit())
    doc = build_report([], catalogue(), outcome, info)
    _force_error(doc, status, message)
    directory = report_dir(config)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        remove_reports(directory)
        junit = Path(config.option.xmlpath) if config.option.xmlpath else directory / JUNIT_NAME
        start_failure_junit(junit, message, where)
        write_reports(doc, directory, junit=junit)
    except OSError as err:  # the run's own message still follows; say why there is no report
        sys.stderr.write(f"sts-conformance: no error report written to {directory}: {err}\n")
    return status
