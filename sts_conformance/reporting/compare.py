"""``sts-conformance-compare``: several runs side by side, requirement by target.

Takes the ``conformance.json`` of each run (one per vendor, release or deployment) and
writes ``comparison.md`` and ``comparison.html`` to ``--out``. Each run's suite version,
commit and catalogue version head its column; runs of different suite or catalogue
versions are still compared, but under a warning at the top of both files and on stderr,
because a requirement id may not mean the same in both.

Exit status: 0 the comparison was written; 2 bad arguments or an input that is not a
readable conformance report of a format this command knows.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sts_conformance.reporting import FORMAT, FORMAT_VERSION, write_text
from sts_conformance.reporting.html import badge, e, page
from sts_conformance.reporting.markdown import cell
from sts_conformance.reporting.results import (
    BLOCKED,
    ERROR,
    EXPECTED_FAILURE,
    FAILED,
    INCONCLUSIVE,
    NOT_APPLICABLE,
    NOT_RUN,
    PASSED,
    SKIPPED,
    UNEXPECTEDLY_PASSING,
)

MARKDOWN_NAME = "comparison.md"
HTML_NAME = "comparison.html"
ABSENT = "absent"  # the requirement is not in that run's catalogue
#: report formats this command reads: 1.x (no "blocked" status yet) and the current one
READABLE_MAJORS = ("1", FORMAT_VERSION.split(".")[0])

_SYMBOL = {
    PASSED: "✅ passed",
    FAILED: "❌ failed",
    BLOCKED: "⛔ blocked",
    INCONCLUSIVE: "❓ inconclusive",
    ERROR: "⚠️ error",
    SKIPPED: "⏭️ skipped",
    NOT_APPLICABLE: "➖ n/a",
    EXPECTED_FAILURE: "🟣 known deviation",
    UNEXPECTEDLY_PASSING: "❗ unexpectedly passing",
    NOT_RUN: "· not run",
    ABSENT: "— not in catalogue",
}


class CompareError(Exception):
    """An input the command cannot use; the message names the file."""


@dataclass
class Run:
    label: str
    path: Path
    doc: dict[str, Any]

    @property
    def statuses(self) -> dict[str, str]:
        return {r["id"]: r["status"] for r in self.doc["requirements"]}

    def version_key(self) -> tuple[str, str]:
        return (self.doc["suite"]["version"], self.doc["suite"]["catalogue_version"])


def load_run(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CompareError(f"{path}: cannot be read ({exc.strerror})") from None
    except ValueError as exc:
        raise CompareError(f"{path}: not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CompareError(f'{path}: not a conformance report (no "format": "{FORMAT}")')
    major = str(doc.get("format_version", "")).split(".")[0]
    if major not in READABLE_MAJORS:
        raise CompareError(
            f"{path}: report format {doc.get('format_version')!r}; this command reads formats "
            f"{', '.join(m + '.x' for m in READABLE_MAJORS)} (use the sts-conformance release that wrote it)"
        )
    for key in ("suite", "target", "verdict", "requirements", "run"):
        if key not in doc:
            raise CompareError(f"{path}: the report has no {key!r} section")
    return doc


def label_runs(docs: Sequence[tuple[Path, dict[str, Any]]], labels: Sequence[str]) -> list[Run]:
    """A column heading per run: ``--label`` when given, else the target's name, made unique."""
    if labels and len(labels) != len(docs):
        raise CompareError(f"{len(labels)} --label value(s) for {len(docs)} report(s): give one per report or none")
    names = list(labels) or [str(doc["target"].get("name") or path.stem) for path, doc in docs]
    if not labels:
        base = list(names)
        for i, (_, doc) in enumerate(docs):
            if base.count(base[i]) > 1:
                names[i] = f"{base[i]} ({doc['run'].get('started_at', '')[:16].replace('T', ' ')})"
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if names.count(name) > 1:
            seen[name] = seen.get(name, 0) + 1
            names[i] = f"{name} #{seen[name]}"
    return [Run(name, path, doc) for name, (path, doc) in zip(names, docs, strict=True)]


def mixed_versions(runs: Sequence[Run]) -> list[str]:
    """Why these runs should not be read as like with like (empty when they can)."""
    problems = []
    suites = {r.doc["suite"]["version"] for r in runs}
    if len(suites) > 1:
        problems.append("suite versions differ: " + ", ".join(f"{r.label}: {r.doc['suite']['version']}" for r in runs))
    cats = {r.doc["suite"]["catalogue_version"] for r in runs}
    if len(cats) > 1:
        problems.append(
            "requirement catalogue versions differ: "
            + ", ".join(f"{r.label}: {r.doc['suite']['catalogue_version']}" for r in runs)
        )
    formats = {r.doc.get("format_version") for r in runs}
    if len(formats) > 1:
        problems.append(
            "report formats differ: " + ", ".join(f"{r.label}: {r.doc.get('format_version')}" for r in runs)
        )
    return problems


@dataclass
class Row:
    id: str
    level: str
    title: str
    cells: list[str]
    level_differs: bool

    @property
    def differs(self) -> bool:
        return len({c for c in self.cells if c != ABSENT}) > 1


def matrix(runs: Sequence[Run]) -> list[Row]:
    order: dict[str, dict[str, Any]] = {}
    for run in runs:
        for req in run.doc["requirements"]:
            order.setdefault(req["id"], req)
    rows = []
    for rid, first in order.items():
        levels = {r["level"] for run in runs for r in run.doc["requirements"] if r["id"] == rid}
        cells = [run.statuses.get(rid, ABSENT) for run in runs]
        rows.append(Row(rid, "/".join(sorted(levels)), first.get("title", ""), cells, len(levels) > 1))
    return rows


def _server_version(doc: dict[str, Any]) -> str:
    return str((doc["target"].get("server") or {}).get("version") or "unknown")


def _header_rows(runs: Sequence[Run]) -> list[tuple[str, list[str]]]:
    return [
        ("Target", [str(r.doc["target"].get("name", "")) for r in runs]),
        ("URL", [str(r.doc["target"].get("url", "")) for r in runs]),
        ("Server version", [_server_version(r.doc) for r in runs]),
        ("Verdict", [f"{r.doc['verdict']['result'].upper()} (exit {r.doc['verdict']['exit_status']})" for r in runs]),
        ("Suite version", [str(r.doc["suite"]["version"]) for r in runs]),
        ("Suite commit", [str(r.doc["suite"].get("commit", "unknown"))[:12] for r in runs]),
        ("Catalogue version", [str(r.doc["suite"]["catalogue_version"]) for r in runs]),
        ("Report format", [str(r.doc.get("format_version")) for r in runs]),
        ("Strict", ["on" if r.doc["verdict"].get("strict") else "off" for r in runs]),
        ("Started", [str(r.doc["run"].get("started_at", "")) for r in runs]),
        ("Report", [str(r.path) for r in runs]),
    ]


def _counts(run: Run, level: str) -> str:
    by = run.doc.get("counts", {}).get("requirements", {}).get(level, {})
    shown = [f"{n} {s}" for s, n in by.items() if n]
    return ", ".join(shown) or "—"


def render_markdown(runs: Sequence[Run], problems: Sequence[str]) -> str:
    out = ["# Service-token conformance: comparison", ""]
    if problems:
        out.append("> [!WARNING]")
        out.append("> **MIXED VERSIONS — these results are not directly comparable.** A requirement id may")
        out.append("> not mean the same thing in every column. Re-run with one suite release to compare.")
        out += [f"> - {cell(p)}" for p in problems]
        out.append("")
    labels = [cell(r.label) for r in runs]
    out.append("| | " + " | ".join(labels) + " |")
    out.append("|---|" + "---|" * len(runs))
    for name, values in _header_rows(runs):
        out.append(f"| {name} | " + " | ".join(cell(v) for v in values) + " |")
    for level in ("MUST", "SHOULD"):
        out.append(f"| {level} | " + " | ".join(cell(_counts(r, level)) for r in runs) + " |")
    out.append("")
    rows = matrix(runs)
    differing = sum(1 for row in rows if row.differs)
    out.append(f"{len(rows)} requirements; {differing} differ between the runs (marked ≠).")
    out.append("")
    out.append("| Requirement | Level | | " + " | ".join(labels) + " | What is required |")
    out.append("|---|---|---|" + "---|" * len(runs) + "---|")
    for row in rows:
        level = row.level + (" ⚠️" if row.level_differs else "")
        cells = " | ".join(_SYMBOL.get(c, c) for c in row.cells)
        out.append(f"| {row.id} | {level} | {'≠' if row.differs else ''} | {cells} | {cell(row.title)} |")
    out.append("")
    return "\n".join(out)


def render_html(runs: Sequence[Run], problems: Sequence[str]) -> str:
    body = ['<h1 style="margin-top:24px">Service-token conformance: comparison</h1>']
    if problems:
        body.append(
            '<div class="banner">MIXED VERSIONS — these results are not directly comparable: a requirement id may '
            "not mean the same thing in every column. Re-run with one suite release to compare.<ul>"
            + "".join(f"<li>{e(p)}</li>" for p in problems)
            + "</ul></div>"
        )
    heads = "".join(f"<th>{e(r.label)}</th>" for r in runs)
    facts = []
    for name, values in _header_rows(runs):
        facts.append(f"<tr><th>{e(name)}</th>" + "".join(f"<td><code>{e(v)}</code></td>" for v in values) + "</tr>")
    for level in ("MUST", "SHOULD"):
        facts.append(f"<tr><th>{level}</th>" + "".join(f"<td>{e(_counts(r, level))}</td>" for r in runs) + "</tr>")
    body.append(f"<h2>Runs</h2><table><tr><th></th>{heads}</tr>{''.join(facts)}</table>")
    rows = matrix(runs)
    differing = sum(1 for row in rows if row.differs)
    lines = []
    for row in rows:
        cells = "".join(f"<td>{badge(c, 'not in catalogue') if c == ABSENT else badge(c)}</td>" for c in row.cells)
        warn = ' <span class="badge s-error">level differs</span>' if row.level_differs else ""
        lines.append(
            f'<tr><td class="id"><code>{e(row.id)}</code></td><td><span class="level">{e(row.level)}</span>{warn}</td>'
            f"<td>{'≠' if row.differs else ''}</td>{cells}<td>{e(row.title)}</td></tr>"
        )
    body.append(
        f"<h2>Requirements ({len(rows)}; {differing} differ, marked ≠)</h2>"
        f"<table><tr><th>Requirement</th><th>Level</th><th></th>{heads}<th>What is required</th></tr>"
        f"{''.join(lines)}</table>"
    )
    body.append(f"<footer>compared {len(runs)} {FORMAT} files</footer>")
    return page("Service-token conformance: comparison", "\n".join(body))


def compare(paths: Sequence[Path], out: Path, labels: Sequence[str] = ()) -> tuple[dict[str, Path], list[str]]:
    docs = [(p, load_run(p)) for p in paths]
    runs = label_runs(docs, labels)
    problems = mixed_versions(runs)
    out.mkdir(parents=True, exist_ok=True)
    files = {MARKDOWN_NAME: out / MARKDOWN_NAME, HTML_NAME: out / HTML_NAME}
    write_text(files[MARKDOWN_NAME], render_markdown(runs, problems))
    write_text(files[HTML_NAME], render_html(runs, problems))
    return files, problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sts-conformance-compare",
        description="Compare conformance runs side by side: one column per conformance.json, one row per requirement.",
    )
    parser.add_argument("reports", nargs="+", type=Path, metavar="conformance.json")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="where comparison.md/.html go")
    parser.add_argument(
        "--label", action="append", default=[], metavar="NAME", help="column heading, once per report, in order"
    )
    args = parser.parse_args(argv)
    try:
        files, problems = compare(args.reports, args.out, args.label)
    except CompareError as exc:
        print(f"sts-conformance-compare: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"sts-conformance-compare: cannot write to {args.out}: {exc}", file=sys.stderr)
        return 2
    for problem in problems:
        print(f"WARNING: mixed versions, results not directly comparable: {problem}", file=sys.stderr)
    print("\n".join(str(p) for p in files.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
