"""A test-only pytest plugin (``-p tests.reporting.report_probe``) to look inside a suite run.

Environment variables, each off unless set:

- ``STS_PROBE_SECRETS=DIR``: every process (controller and each xdist worker) writes the
  secrets its redactor knows to ``DIR/secrets-<pid>.txt`` at session end, so a test can
  prove that none of them reached the reports.
- ``STS_PROBE_RECORD=FILE``: the controller writes every phase record it built, one JSON
  object a line (the recorded runs under ``recorded/``).
- ``STS_PROBE_BREAK=TEXT``: the setup of every test whose id contains TEXT raises a
  ``RuntimeError`` -- a harness failure, as a broken fixture would be.
- ``STS_PROBE_STOP_TARGET=TEXT``: before the first test whose id contains TEXT, the managed
  target is stopped -- a target that goes away in the middle of a run.
- ``STS_PROBE_INCONCLUSIVE=TEXT``: every test whose id contains TEXT ends, before its own
  body, as a check that could not conclude (a skip ``inconclusive: …``, as the checks raise it).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

# The harness is imported inside the hooks: ``-p`` loads this module before the root
# conftest registers the plugin, and an early import would keep pytest from rewriting it.


class Probe:
    def __init__(self, config: pytest.Config):
        self.config = config
        self.records: list[str] = []

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        broken = os.environ.get("STS_PROBE_BREAK")
        if broken and broken in item.nodeid:
            raise RuntimeError("report probe: a fixture of the harness broke")
        unsure = os.environ.get("STS_PROBE_INCONCLUSIVE")
        if unsure and unsure in item.nodeid:
            pytest.skip("inconclusive: report probe: the calls came too late to decide")
        stop = os.environ.get("STS_PROBE_STOP_TARGET")
        from sts_conformance.plugin import STATE_KEY, is_active

        if stop and stop in item.nodeid and is_active(self.config):
            process = self.config.stash[STATE_KEY].process
            if process is not None:
                process.stop()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        from sts_conformance.reporting.collect import record_from_report

        if not hasattr(self.config, "workerinput"):
            self.records.append(json.dumps(record_from_report(report).as_dict(), ensure_ascii=False))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        from sts_conformance.core.redact import REDACTOR

        secrets_dir = os.environ.get("STS_PROBE_SECRETS")
        if secrets_dir:
            path = Path(secrets_dir) / f"secrets-{os.getpid()}.txt"
            path.write_text("".join(s + "\n" for s in sorted(REDACTOR.secrets())), encoding="utf-8")
        record = os.environ.get("STS_PROBE_RECORD")
        if record and not hasattr(self.config, "workerinput"):
            Path(record).write_text("".join(r + "\n" for r in self.records), encoding="utf-8")


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(Probe(config), "sts-report-probe")
