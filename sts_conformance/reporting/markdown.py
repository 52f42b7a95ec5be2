"""``summary.md``: a short verdict for a CI step summary or a pull-request comment."""

from __future__ import annotations

from typing import Any

from sts_conformance.reporting.results import (
    BLOCKED,
    ERROR,
    FAILED,
    INCONCLUSIVE,
    NOT_APPLICABLE,
    SKIPPED,
    STATUSES,
    UNEXPECTEDLY_PASSING,
)
from sts_conformance.target.settle import describe as describe_settle

_ICON = {"pass": "✅", "fail": "❌", "error": "⚠️"}
_MAX_LISTED = 25


def cell(value: Any) -> str:
    """Text safe inside a Markdown table cell (one line, no pipes, no HTML)."""
    text = " ".join(str("" if value is None else value).split())
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def first_line(text: str | None, limit: int = 160) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def render_summary(doc: dict[str, Any], files: dict[str, str] | None = None) -> str:
    v, target, suite = doc["verdict"], doc["target"], doc["suite"]
    server = (target.get("server") or {}).get("version") or "unknown"
    lines = [
        f"## {_ICON.get(v['result'], '')} Service-token conformance: {v['result'].upper()}",
        "",
        f"Target **{cell(target.get('name'))}** at `{cell(target.get('url'))}` (server version {cell(server)}) · "
        f"suite {cell(suite['version'])} (`{cell(suite['commit'])[:12]}`), catalogue {cell(suite['catalogue_version'])}"
        f" · exit status {v['exit_status']} · strict {'on' if v.get('strict') else 'off'}",
        "",
    ]
    lines += [f"- {cell(r)}" for r in v.get("reasons", [])]
    lines += [f"- ⚠️ {cell(w)}" for w in v.get("warnings", [])]
    lines += [f"- ℹ️ {cell(n)}" for n in describe_settle(doc.get("run", {}).get("settle") or {})]
    lines.append("")

    causes = doc.get("root_causes") or []
    if causes:
        lines.append("**Root causes** — fix these first; the checks they blocked could not run:")
        lines.append("")
        lines.append("| Requirement | Level | Blocked checks | What failed |")
        lines.append("|---|---|---:|---|")
        for c in causes[:_MAX_LISTED]:
            lines.append(
                f"| {c['requirement']} | {c['level']} | {c['blocked_checks']} | {cell(first_line(c.get('reason')))} |"
            )
        lines.append("")

    counts = doc["counts"]["requirements"]
    shown = [s for s in STATUSES if any(c.get(s) for c in counts.values())] or ["passed"]
    lines.append("| Level | " + " | ".join(shown) + " |")
    lines.append("|---|" + "---:|" * len(shown))
    for level, by_status in counts.items():
        lines.append(f"| {level} | " + " | ".join(str(by_status.get(s, 0)) for s in shown) + " |")
    lines.append("")

    bad = (FAILED, ERROR, UNEXPECTEDLY_PASSING, BLOCKED, INCONCLUSIVE)
    problems = [r for r in doc["requirements"] if r["status"] in bad]
    problems.sort(
        key=lambda r: (
            r["level"] != "MUST",
            r["status"] in (BLOCKED, INCONCLUSIVE),
            r["status"] == INCONCLUSIVE,
            r["status"] != FAILED,
            r["id"],
        )
    )
    if problems:
        lines.append("| Requirement | Level | Status | First message |")
        lines.append("|---|---|---|---|")
        for r in problems[:_MAX_LISTED]:
            lines.append(
                f"| {r['id']} | {r['level']} | {r['status']} | {cell(first_line(r.get('reason')) or r['title'])} |"
            )
        if len(problems) > _MAX_LISTED:
            lines.append(f"\n… and {len(problems) - _MAX_LISTED} more; see the HTML report.")
        lines.append("")
    unjudged = [r for r in doc["requirements"] if r["status"] in (SKIPPED, NOT_APPLICABLE)]
    if unjudged:
        lines.append("**Not judged in this run** — skipped or not applicable, and why:")
        lines.append("")
        lines.append("| Requirement | Level | Status | Reason |")
        lines.append("|---|---|---|---|")
        for r in sorted(unjudged, key=lambda r: (r["level"] != "MUST", r["status"], r["id"])):
            reason = first_line(r.get("reason"), 240) or "no reason given"
            lines.append(f"| {r['id']} | {r['level']} | {r['status']} | {cell(reason)} |")
        lines.append("")
    left = doc.get("leftovers") or []
    if left:
        lines.append(f"**{len(left)} token(s) created by this run could not be deleted** from the target:")
        lines.append("")
        for x in left[:_MAX_LISTED]:
            token = x["id"] if x["id"] is not None else "unknown"
            lines.append(f"- `{cell(x['name'])}` (id {token}): {cell(x['why'])}")
        lines.append("")
    if doc.get("harness_errors"):
        lines.append(f"Harness errors: {len(doc['harness_errors'])} (not counted as failed requirements).")
        lines.append("")
    if files:
        lines.append("Reports: " + ", ".join(f"[{name}]({path})" for name, path in files.items()))
        lines.append("")
    return "\n".join(lines)
