"""Reading pytest's reports: one :class:`PhaseRecord` per report, in whichever process gets it.

The worker that ran a test still has the exception, so it decides *why* a phase failed
(:func:`failure_kind`) and puts that into the report's ``user_properties``, which survive
xdist's serialisation. The controller then reads everything else from the report alone.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from sts_conformance.core.errors import TargetUnavailable
from sts_conformance.core.preconditions import Blocked
from sts_conformance.reporting.results import (
    KIND_HARNESS,
    KIND_TARGET,
    KIND_UNREACHABLE,
    KIND_XPASS,
    PhaseRecord,
    clip_details,
    clip_message,
    mask_data,
)

#: the user property that carries :func:`failure_kind` from the worker to the controller
KIND_PROPERTY = "failure_kind"
_XPASS_PREFIX = "[XPASS(strict)]"
#: the plugin's xfail reason: ``known deviation ST-CLI-013: …`` or ``known deviation ST-CLI-013 (check zero-date): …``
_DEVIATION_PREFIX = re.compile(r"^known deviation (?:ST-[A-Z]+-\d{3})? ?(?:\(check .*?\))?:\s+")
_UNREACHABLE = (httpx.ConnectError, httpx.ConnectTimeout, TargetUnavailable)


def failure_kind(report: pytest.TestReport, call: pytest.CallInfo[None]) -> str:
    """Why a phase failed: the target's fault, the harness's, or no target to talk to."""
    if isinstance(report.longrepr, str) and report.longrepr.startswith(_XPASS_PREFIX):
        return KIND_XPASS
    exc = call.excinfo.value if call.excinfo is not None else None
    if isinstance(exc, _UNREACHABLE):
        return KIND_UNREACHABLE
    # a check blocked by its own requirement's foundation failed on the target (plugin.py)
    if call.when == "call" or isinstance(exc, AssertionError | pytest.fail.Exception | Blocked):
        return KIND_TARGET
    return KIND_HARNESS


def _skip_reason(longrepr: Any) -> str | None:
    # skips carry (path, line, reason); xdist turns the tuple into a list on the way
    if isinstance(longrepr, tuple | list) and len(longrepr) == 3:
        reason = str(longrepr[2])
        return reason.removeprefix("Skipped: ").removeprefix("Skipped:").strip()
    return None


def _crash_message(report: pytest.TestReport) -> str | None:
    crash = getattr(report.longrepr, "reprcrash", None)
    message = getattr(crash, "message", None)
    if isinstance(message, str) and message.strip():
        return message
    text = report.longreprtext
    if not text:
        return None
    if text.startswith(_XPASS_PREFIX):
        return text
    # a longrepr the plugin had to mask is a plain string: pytest's "E   " lines carry the message
    lines = [line[1:].strip() for line in text.splitlines() if line.startswith("E ")]
    if lines:
        return "\n".join(lines)
    return next((line for line in reversed(text.splitlines()) if line.strip()), None)


def _worker(report: pytest.TestReport) -> str | None:
    node = getattr(report, "node", None)  # set by xdist on the controller
    gateway = getattr(node, "gateway", None)
    return str(gateway.id) if gateway is not None else None


def record_from_report(report: pytest.TestReport) -> PhaseRecord:
    rec = PhaseRecord(
        nodeid=report.nodeid,
        when=report.when or "call",
        outcome=report.outcome,
        duration=float(getattr(report, "duration", 0.0) or 0.0),
        worker=_worker(report),
    )
    for key, value in report.user_properties:
        if key == "requirement":
            rec.requirements.append(str(value))
        elif key == "observation":
            rec.observations.append(mask_data(_loads(value, {"key": "?", "value": value})))
        elif key == "exchanges":
            rec.exchanges = mask_data(_loads(value, []))
        elif key == KIND_PROPERTY:
            rec.kind = str(value)
    wasxfail = getattr(report, "wasxfail", None)
    if wasxfail is not None:
        rec.wasxfail = clip_message(_DEVIATION_PREFIX.sub("", str(wasxfail).removeprefix("reason: ")))
    if report.skipped:
        rec.skip_reason = clip_message(_skip_reason(report.longrepr))
    if report.failed or (report.skipped and wasxfail is not None):
        rec.message = clip_message(_crash_message(report))
        rec.details = clip_details(report.longreprtext)
    return rec


def _loads(value: Any, default: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return default
