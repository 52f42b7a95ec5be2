"""The report document (``conformance.json``): what a run knows, in the documented shape.

The shape is described by ``sts_conformance/reporting/schemas/conformance-report.json`` and, for
people, by ``docs/report-format.md``. Change all three together and bump
:data:`FORMAT_VERSION`: the minor number for additions a reader may ignore, the major
number for anything that changes or removes what a reader relies on.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from sts_conformance import __version__
from sts_conformance.core.redact import REDACTOR
from sts_conformance.core.requirements import Requirement
from sts_conformance.reporting.results import PhaseRecord, RunOutcome, evaluate, mask_data
from sts_conformance.target import throttle
from sts_conformance.target.client import ApiClient, AuthForm, TlsSettings
from sts_conformance.target.profile import TargetProfile

FORMAT = "sts-conformance-report"
FORMAT_VERSION = "2.2"
SUITE_NAME = "sts-conformance"
_INFO_LIMIT = 4000


@dataclass
class RunInfo:
    """Facts about the run that do not come from the tests."""

    catalogue_version: str
    started_at: float
    finished_at: float
    target: dict[str, Any]
    profile: dict[str, Any]
    commit: str = "unknown"
    suite_version: str = __version__
    workers: int = 0
    warnings: list[str] = field(default_factory=list)
    run_id: str | None = None
    #: --time-budget, and the target's latency measured at the start (what sized the generated examples)
    time_budget_s: float | None = None
    latency_ms: float | None = None
    #: tokens the run created and could not delete (``Leftover.as_dict()``)
    leftovers: list[dict[str, Any]] = field(default_factory=list)
    #: how often and how long the target throttled the run (``ThrottleStats.as_dict()``; None: not known)
    throttling: dict[str, Any] | None = None
    #: lag measured and clock notes (``settle.summary``)
    settle: dict[str, Any] = field(default_factory=dict)


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_report(
    records: Iterable[PhaseRecord], catalogue: Mapping[str, Requirement], outcome: RunOutcome, info: RunInfo
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "suite": {
            "name": SUITE_NAME,
            "version": info.suite_version,
            "commit": info.commit,
            "catalogue_version": info.catalogue_version,
        },
        "run": {
            "id": info.run_id,
            "started_at": iso(info.started_at),
            "finished_at": iso(info.finished_at),
            "duration_s": round(max(0.0, info.finished_at - info.started_at), 3),
            "workers": info.workers,
            "python": platform.python_version(),
            "pytest": _pytest_version(),
            "warnings": [REDACTOR.mask(w) for w in info.warnings],
            "time_budget_s": info.time_budget_s,
            "latency_ms": info.latency_ms,
            "settle": info.settle,
        },
        "target": mask_data(info.target),
        "profile": mask_data(info.profile),
    }
    doc.update(evaluate(records, catalogue, outcome))
    doc["leftovers"] = mask_data(info.leftovers)
    if info.throttling is not None:
        _report_throttling(doc, info.throttling)
    if info.leftovers:
        doc["verdict"]["warnings"].append(
            f"{len(info.leftovers)} token(s) created by this run could not be deleted from the target "
            "(see 'leftovers'; sts-conformance-cleanup removes them later)"
        )
    return doc


def _report_throttling(doc: dict[str, Any], stats: dict[str, Any]) -> None:
    """The run's throttling in ``run.throttling``; a warning when there was any, and the cause first
    when the target throttled beyond the budget (the checks it stopped are harness errors)."""
    gave_up = stats.get("gave_up")
    doc["run"]["throttling"] = {k: v for k, v in stats.items() if k != "gave_up"}
    said = throttle.describe(stats)
    if said is not None:
        doc["verdict"]["warnings"].append(said)
    if gave_up:
        doc["verdict"]["reasons"].insert(0, f"harness error: {REDACTOR.mask(gave_up)}")


def _pytest_version() -> str:
    import pytest

    return pytest.__version__


# -- facts gathered by the controller ---------------------------------------------------------


def git_commit(where: Path | None = None) -> str:
    """The commit the suite runs from, or ``unknown`` (an installed copy, no git)."""
    where = where or Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and len(commit) >= 7 else "unknown"


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def profile_for_report(profile: TargetProfile, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The effective profile, secrets removed -- also those a ``${VAR}`` put into a command or URL.

    ``redacted()`` replaces the credential settings; a value the profile file pulls from the
    environment into another setting (``launch: "... --key ${VENDOR_KEY}"``) is shown as the
    reference again, and a URL loses any ``user:password@``.
    """
    env = os.environ if environ is None else environ
    try:
        text = Path(profile.source).read_text(encoding="utf-8")
    except (OSError, ValueError):
        text = ""
    values = {env[var]: var for var in set(_ENV_REF.findall(text)) if len(env.get(var, "")) >= 4}
    ordered = sorted(values, key=len, reverse=True)  # a value inside another is replaced last

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            for secret in ordered:
                value = value.replace(secret, "${" + values[secret] + "}")
            return value
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    data = clean(profile.redacted())
    if isinstance(data.get("url"), str):
        data["url"] = public_url(data["url"])
    return data


def public_url(url: str) -> str:
    """``url`` without credentials in it (``https://user:pass@host`` → ``https://host``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTOR.mask(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def server_info(
    url: str, api_path: str, token: str, form: AuthForm, *, timeout: float, tls: TlsSettings
) -> dict[str, Any]:
    """What ``GET {api}/server/info`` says with the admin credential; never raises."""
    result: dict[str, Any] = {"reachable": False, "status": None, "version": None, "info": None, "error": None}
    try:
        with ApiClient(url, api_path, timeout=timeout, tls=tls) as client:
            resp = client.server_info(token, form=form)
    except httpx.HTTPError as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        return mask_data(result)
    result["reachable"] = True
    result["status"] = resp.status_code
    if not resp.is_success:
        result["error"] = f"answered {resp.status_code}"
        return result
    try:
        body = resp.json()
    except ValueError:
        result["error"] = "the answer is not JSON"
        return result
    result["version"] = describe_version(body)
    if len(resp.content) <= _INFO_LIMIT:
        result["info"] = body
    return mask_data(result)


def describe_version(body: Any) -> str | None:
    """``5.2.1-abc (commit 1234abc)`` from a ServerInfo body, whatever parts of it are there."""
    if not isinstance(body, dict):
        return None
    version = body.get("version")
    if isinstance(version, str):
        return version
    if not isinstance(version, dict):
        return None
    numbers = [version.get(k) for k in ("major", "minor", "patch")]
    if not all(isinstance(n, int) for n in numbers):
        return None
    text = ".".join(str(n) for n in numbers)
    if isinstance(version.get("diff"), str) and version["diff"]:
        text += f"-{version['diff']}"
    commit = version.get("commit")
    if isinstance(commit, str) and commit:
        shown = commit[:12] if re.fullmatch(r"[0-9a-fA-F]{13,}", commit) else commit[:40]
        text += f" (commit {shown})"
    if version.get("isDev") is True:
        text += " [dev]"
    return text
