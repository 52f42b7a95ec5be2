"""Reports of a conformance run: ``conformance.json``, ``conformance.html``, ``summary.md``.

(``junit.xml`` is pytest's own.) The controller builds them once, at the end of the run,
from every test's reports (:mod:`.hooks`); the format is described in
``docs/report-format.md`` and by the JSON Schema ``schemas/conformance-report.json``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

from sts_conformance.reporting.document import FORMAT, FORMAT_VERSION, build_report
from sts_conformance.reporting.html import render_html
from sts_conformance.reporting.markdown import render_summary
from sts_conformance.reporting.results import NOT_APPLICABLE_PREFIX

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "JSON_NAME",
    "REPORT_FILES",
    "build_report",
    "not_applicable",
    "remove_reports",
    "render_html",
    "render_summary",
    "start_failure_junit",
    "write_reports",
    "write_text",
]

JSON_NAME = "conformance.json"
HTML_NAME = "conformance.html"
SUMMARY_NAME = "summary.md"
JUNIT_NAME = "junit.xml"
#: the files this package writes (junit.xml is written by pytest)
REPORT_FILES = (JSON_NAME, HTML_NAME, SUMMARY_NAME)


def not_applicable(reason: str) -> None:
    """Skip a check that does not apply to this target; reported as "not applicable".

    Name the setting, like any skip: ``not_applicable("expect.duplicate_names is 'refused'")``.
    """
    pytest.skip(f"{NOT_APPLICABLE_PREFIX} {reason}")


def write_text(path: Path, text: str) -> None:
    """Write through a temporary file, so a reader never sees half a report."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would hide the reports from CI artefact steps
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


def write_reports(doc: dict[str, Any], report_dir: Path, *, junit: Path | None = None) -> dict[str, Path]:
    """Write the three report files; returns them by name (with junit.xml when given)."""
    report_dir.mkdir(parents=True, exist_ok=True)
    files = {JSON_NAME: report_dir / JSON_NAME, HTML_NAME: report_dir / HTML_NAME}
    if junit is not None:
        files[JUNIT_NAME] = junit
    links = {name: (p.name if p.parent == report_dir else str(p)) for name, p in files.items()}
    write_text(files[JSON_NAME], json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    write_text(files[HTML_NAME], render_html(doc))
    summary = report_dir / SUMMARY_NAME
    write_text(summary, render_summary(doc, links))
    files[SUMMARY_NAME] = summary
    return files


def start_failure_junit(path: Path, message: str, where: str) -> None:
    """A ``junit.xml`` for a run that stopped before any check: one test case in error, with the
    message, so a CI step that reads JUnit shows why instead of the last run's results or nothing."""
    from xml.etree import ElementTree as ET

    suite = ET.Element("testsuite", name="sts-conformance", tests="1", errors="1", failures="0", skipped="0", time="0")
    case = ET.SubElement(suite, "testcase", classname="sts-conformance.start", name=f"start ({where})", time="0")
    error = ET.SubElement(case, "error", message=message.splitlines()[0] if message else "the run did not start")
    error.text = message
    root = ET.Element("testsuites")
    root.append(suite)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n")


def remove_reports(report_dir: Path) -> None:
    """Remove a previous run's reports, so a run that cannot finish leaves none that look current."""
    for name in REPORT_FILES:
        (report_dir / name).unlink(missing_ok=True)
