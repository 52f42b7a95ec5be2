"""``conformance.html``: one self-contained page (no scripts, fonts or images from elsewhere).

Read top to bottom: the verdict, the facts of the run, the counts, every failure with what
was expected and the HTTP exchange that showed it, then the whole requirement matrix.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from html import escape
from pathlib import Path
from string import Template
from typing import Any

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
    STATUSES,
    UNEXPECTEDLY_PASSING,
)
from sts_conformance.target.settle import describe as describe_settle

_TEMPLATE = Path(__file__).with_name("page.html")
_OPEN_EXCHANGES = 2

STATUS_LABELS = {
    PASSED: "passed",
    FAILED: "failed",
    BLOCKED: "blocked",
    INCONCLUSIVE: "inconclusive",
    ERROR: "error",
    SKIPPED: "skipped",
    NOT_APPLICABLE: "not applicable",
    EXPECTED_FAILURE: "known deviation",
    UNEXPECTEDLY_PASSING: "unexpectedly passing",
    NOT_RUN: "not run",
}


@functools.cache
def _template() -> Template:
    return Template(_TEMPLATE.read_text(encoding="utf-8"))


def page(title: str, body: str) -> str:
    """The shared page skeleton (styles inline) around ``body``."""
    return _template().substitute(title=escape(title), body=body)


def e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def badge(status: str, text: str | None = None) -> str:
    return f'<span class="badge s-{e(status)}">{e(text or STATUS_LABELS.get(status, status))}</span>'


def render_exchange(ex: dict[str, Any]) -> str:
    req = [f"> {ex.get('method', '?')} {ex.get('url', '')}"]
    req += [f"> {k}: {v}" for k, v in (ex.get("request_headers") or {}).items()]
    if ex.get("request_body"):
        req.append(f"> {ex['request_body']}")
    if ex.get("error"):
        resp = [f"< (no response: {ex['error']})"]
    else:
        version = f" ({ex['http_version']})" if ex.get("http_version") else ""
        resp = [f"< {ex.get('status')}{version}"]
        resp += [f"< {k}: {v}" for k, v in (ex.get("response_headers") or {}).items()]
        if ex.get("response_body"):
            resp.append(f"< {ex['response_body']}")
    return f'<pre class="req">{e(chr(10).join(req))}</pre><pre class="resp">{e(chr(10).join(resp))}</pre>'


def _verdict(doc: dict[str, Any]) -> str:
    v = doc["verdict"]
    result = v["result"]
    target = doc["target"]
    sub = (
        f"target <b>{e(target.get('name'))}</b> at <code>{e(target.get('url'))}</code> · exit status "
        f"{e(v['exit_status'])} · strict {'on' if v.get('strict') else 'off'}"
        + ("" if v.get("complete") else " · <b>partial run</b>")
    )
    items = "".join(f"<li>{e(r)}</li>" for r in v.get("reasons", []))
    warns = "".join(f"<li>{e(w)}</li>" for w in v.get("warnings", []))
    return (
        f'<header class="verdict verdict-{e(result)}">'
        f'<h1>Service-token conformance</h1><div class="word">{e(result.upper())}</div>'
        f'<div class="sub">{sub}</div>'
        + (f"<ul>{items}</ul>" if items else "")
        + (f'<ul class="warnings">{warns}</ul>' if warns else "")
        + "</header>"
    )


def _facts(doc: dict[str, Any]) -> str:
    suite, run, target = doc["suite"], doc["run"], doc["target"]
    server = target.get("server") or {}
    if server.get("version"):
        server_text = e(server["version"])
    elif server.get("error"):
        server_text = f'<span class="muted">unknown ({e(server["error"])})</span>'
    else:
        server_text = '<span class="muted">unknown</span>'
    rows = [
        (
            "Target",
            f"{e(target.get('name'))} — <code>{e(target.get('url'))}</code> "
            f"({'managed: launched by the suite' if target.get('managed') else 'external'})",
        ),
        ("Server version", server_text),
        ("Suite", f"{e(suite['name'])} {e(suite['version'])}, commit <code>{e(suite['commit'])}</code>"),
        ("Requirement catalogue", f"version {e(suite['catalogue_version'])}"),
        (
            "Run",
            f"{e(run['started_at'])} → {e(run['finished_at'])} ({e(run['duration_s'])} s, "
            + (f"{e(run['workers'])} workers" if run.get("workers") else "serial")
            + ")",
        ),
        ("Profile", f"<code>{e(doc['profile'].get('source'))}</code>"),
    ]
    return '<dl class="facts">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>"


def _counts(doc: dict[str, Any]) -> str:
    counts = doc["counts"]["requirements"]
    head = "".join(f'<th class="num">{badge(s)}</th>' for s in STATUSES)
    rows = []
    for level, by_status in counts.items():
        cells = "".join(
            f'<td class="num{" zero" if not by_status.get(s) else ""}">{by_status.get(s, 0)}</td>' for s in STATUSES
        )
        total = sum(by_status.values())
        rows.append(f'<tr><th>{e(level)}</th>{cells}<td class="num">{total}</td></tr>')
    return f'<table class="counts"><tr><th>Level</th>{head}<th class="num">total</th></tr>{"".join(rows)}</table>'


def _problem_kind(req: dict[str, Any]) -> str:
    if req["status"] == UNEXPECTEDLY_PASSING:
        return "xpass"
    if req["status"] in (BLOCKED, INCONCLUSIVE):
        return "error"
    if req["status"] == ERROR:
        return "error"
    if req["status"] == EXPECTED_FAILURE:
        return "xfail"
    return "warning" if req["level"] != "MUST" else "fail"


def _root_causes(doc: dict[str, Any]) -> str:
    causes = doc.get("root_causes") or []
    if not causes:
        return ""
    rows = "".join(
        f'<tr><td class="id"><a href="#req-{e(c["requirement"])}"><code>{e(c["requirement"])}</code></a></td>'
        f'<td><span class="level level-{e(c["level"])}">{e(c["level"])}</span></td>'
        f'<td class="num">{e(c["blocked_checks"])}</td><td class="num">{len(c["blocked_requirements"])}</td>'
        f"<td>{e(_first_line(c.get('reason')))}</td></tr>"
        for c in causes
    )
    return (
        f'<h2 id="root-causes">Root causes ({len(causes)})</h2>'
        '<p class="muted">Foundations that failed, and how many checks could not run because of them. '
        "Fix these first: the checks they blocked are reported as blocked, not as failures of their own.</p>"
        '<table class="causes"><tr><th>Requirement</th><th>Level</th><th class="num">Blocked checks</th>'
        f'<th class="num">Of requirements</th><th>What failed</th></tr>{rows}</table>'
    )


def _first_line(text: str | None, limit: int = 200) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _leftovers(doc: dict[str, Any]) -> str:
    left = doc.get("leftovers") or []
    if not left:
        return ""
    rows = "".join(
        f"<tr><td><code>{e(x['name'])}</code></td><td>{e(x['id'] if x['id'] is not None else 'unknown')}</td>"
        f"<td>{e(x['why'])}</td></tr>"
        for x in left
    )
    return (
        f'<h2 id="leftovers">Tokens left on the target ({len(left)})</h2>'
        '<p class="muted">Created by this run and not deleted; <code>sts-conformance-cleanup</code> removes '
        "those named with the run's prefix.</p>"
        f"<table><tr><th>Name</th><th>Id</th><th>Why it is left</th></tr>{rows}</table>"
    )


def _problem(req: dict[str, Any]) -> str:
    kind = _problem_kind(req)
    shown = [t for t in req["tests"] if t["outcome"] in (FAILED, ERROR, UNEXPECTEDLY_PASSING, EXPECTED_FAILURE)]
    if req["status"] in (BLOCKED, INCONCLUSIVE):
        shown = [t for t in req["tests"] if t["outcome"] == req["status"]][:3]
    parts = [
        f'<article class="problem kind-{kind}" id="req-{e(req["id"])}">',
        f'<h3>{e(req["id"])} <span class="level level-{e(req["level"])}">{e(req["level"])}</span> '
        f"{badge(req['status'])}</h3>",
        f'<p class="expected"><b>Expected:</b> {e(req["title"])}</p>',
        f'<div class="source">Source: {e(req["source"])}</div>',
    ]
    if req["status"] in (EXPECTED_FAILURE, UNEXPECTEDLY_PASSING) and req.get("reason"):
        parts.append(f'<p class="expected"><b>Known deviation:</b> {e(req["reason"])}</p>')
    if req["status"] == UNEXPECTEDLY_PASSING and not any(t["outcome"] == UNEXPECTEDLY_PASSING for t in shown):
        parts.append(
            '<pre class="msg">None of its checks failed although the profile lists this requirement as a known '
            "deviation. Remove the entry from known_deviations.</pre>"
        )
    if req.get("blocks"):
        blocks = req["blocks"]
        parts.append(
            f'<p class="expected"><b>Root cause:</b> {e(blocks["checks"])} check(s) of '
            f"{len(blocks['requirements'])} requirement(s) could not run because this failed: "
            + ", ".join(f'<a href="#m-{e(r)}">{e(r)}</a>' for r in blocks["requirements"])
            + "</p>"
        )
        if not shown and req.get("reason"):
            parts.append(f'<pre class="msg">{e(req["reason"])}</pre>')
    for t in shown:
        parts.append(_test_block(t))
    parts.append("</article>")
    return "".join(parts)


def _test_block(t: dict[str, Any]) -> str:
    meta = f"{badge(t['outcome'])} {e(t.get('phase', 'call'))} · {e(t.get('duration_s'))} s"
    if t.get("worker"):
        meta += f" · {e(t['worker'])}"
    out = [f'<div class="test"><div class="nodeid"><code>{e(t["nodeid"])}</code></div><div class="meta">{meta}</div>']
    if t["outcome"] == UNEXPECTEDLY_PASSING:
        out.append(
            '<div class="label">What happened</div><pre class="msg">The check passed although the profile lists '
            "it as a known deviation. Remove the entry from known_deviations.</pre>"
        )
    elif t["outcome"] == BLOCKED:
        out.append('<div class="label">Why it could not run</div>')
        out.append(f'<pre class="msg">{e(t.get("reason"))}</pre>')
    elif t["outcome"] == INCONCLUSIVE:
        out.append('<div class="label">Why it could not conclude (it ran; the target was not judged)</div>')
        out.append(f'<pre class="msg">{e(t.get("reason"))}</pre>')
    elif t.get("message"):
        out.append('<div class="label">What went wrong (expected vs. got)</div>')
        out.append(f'<pre class="msg">{e(t["message"])}</pre>')
    exchanges = t.get("exchanges") or []
    if exchanges:
        # the last exchanges are the ones the failure is about; earlier ones are context
        out.append(f'<div class="label">HTTP exchanges, most recent last ({len(exchanges)})</div>')
        earlier, last = exchanges[:-_OPEN_EXCHANGES], exchanges[-_OPEN_EXCHANGES:]
        if earlier:
            out.append(f"<details><summary>{len(earlier)} earlier exchange(s)</summary>")
            out.extend(render_exchange(x) for x in earlier)
            out.append("</details>")
        out.extend(render_exchange(x) for x in last)
    if t.get("details"):
        out.append(f"<details><summary>Full report from pytest</summary><pre>{e(t['details'])}</pre></details>")
    out.append("</div>")
    return "".join(out)


def _problems(doc: dict[str, Any]) -> str:
    reqs = doc["requirements"]
    failed = [r for r in reqs if r["status"] == FAILED]
    should = "failing the run: --strict" if doc["verdict"].get("strict") else "warnings; --strict fails the run"
    order: list[tuple[str, Iterable[dict[str, Any]]]] = [
        ("MUST requirements that failed", (r for r in failed if r["level"] == "MUST")),
        ("Known deviations that passed unexpectedly", (r for r in reqs if r["status"] == UNEXPECTEDLY_PASSING)),
        ("Requirements that could not be judged", (r for r in reqs if r["status"] == ERROR)),
        ("Requirements blocked by a failed foundation", (r for r in reqs if r["status"] == BLOCKED)),
        (
            "Requirements whose checks could not conclude (inconclusive: not judged, "
            + ("failing the run)" if _inconclusive_fails(doc) else "--strict or fail_on_inconclusive fails the run)"),
            sorted((r for r in reqs if r["status"] == INCONCLUSIVE), key=lambda r: r["level"] != "MUST"),
        ),
        (
            f"SHOULD requirements that failed ({should})",
            (r for r in reqs if r["status"] == FAILED and r["level"] == "SHOULD"),
        ),
    ]
    out = []
    for heading, group in order:
        items = [_problem(r) for r in group]
        if items:
            out.append(f"<h2>{e(heading)} ({len(items)})</h2>" + "".join(items))
    errors = doc.get("harness_errors") or []
    if errors:
        out.append(f"<h2>Harness errors ({len(errors)})</h2>")
        out.append(
            '<p class="muted">Problems of the suite or its environment, not of the target: they make the run an '
            "error and are never counted as failed requirements.</p>"
        )
        for err in errors:
            out.append(
                f'<article class="problem kind-error"><h3><code>{e(err["where"])}</code></h3>'
                f'<pre class="msg">{e(err["message"])}</pre>'
                + (
                    f"<details><summary>Details</summary><pre>{e(err['details'])}</pre></details>"
                    if err.get("details")
                    else ""
                )
                + "</article>"
            )
    return "".join(out)


def _inconclusive_fails(doc: dict[str, Any]) -> bool:
    return bool(doc["verdict"].get("strict") or (doc.get("profile") or {}).get("fail_on_inconclusive"))


def _test_summary(tests: list[dict[str, Any]]) -> str:
    if not tests:
        return '<span class="muted">none</span>'
    counts: dict[str, int] = {}
    for t in tests:
        counts[t["outcome"]] = counts.get(t["outcome"], 0) + 1
    return ", ".join(f"{n} {STATUS_LABELS.get(s, s)}" for s, n in counts.items())


def _note(req: dict[str, Any]) -> str:
    status, reason = req["status"], req.get("reason") or ""
    if status in (FAILED, ERROR, UNEXPECTEDLY_PASSING, BLOCKED, INCONCLUSIVE):
        first = reason.splitlines()[0].removeprefix("AssertionError: ") if reason else ""
        if len(first) > 120:
            first = first[:119] + "…"
        return f'<a href="#req-{e(req["id"])}">details</a> {e(first)}'
    if status in (SKIPPED, NOT_APPLICABLE):
        settings = req.get("settings") or []
        text = e(reason)
        if settings:
            text += " <b>(setting: " + ", ".join(f"<code>{e(s)}</code>" for s in settings) + ")</b>"
        return text
    if status == EXPECTED_FAILURE:
        return f'<a href="#req-{e(req["id"])}">known deviation</a>: {e(reason)}'
    return ""


def _matrix(doc: dict[str, Any]) -> str:
    rows = []
    area = None
    for req in doc["requirements"]:
        if req["area"] != area:
            area = req["area"]
            rows.append(f'<tr class="area"><td colspan="6">{e(area)}</td></tr>')
        rows.append(
            f'<tr id="m-{e(req["id"])}"><td class="id"><code>{e(req["id"])}</code></td>'
            f'<td><span class="level level-{e(req["level"])}">{e(req["level"])}</span></td>'
            f"<td>{badge(req['status'])}</td><td>{e(req['title'])}</td>"
            f'<td>{_test_summary(req["tests"])}</td><td class="note">{_note(req)}</td></tr>'
        )
    return (
        '<table class="matrix"><colgroup><col style="width:9em"><col style="width:5em"><col style="width:12.5em"><col>'
        '<col style="width:8em"><col style="width:30%"></colgroup>'
        "<tr><th>Requirement</th><th>Level</th><th>Status</th><th>What is required</th><th>Tests</th>"
        f"<th>Note</th></tr>{''.join(rows)}</table>"
    )


_CELL = re.compile(r"test_authorization_matrix\.py::test_authorization\[([^/\]]+)/([^/\]]+)/([^\]]+)\]$")
_ECHO = re.compile(r"test_authorization_matrix\.py::test_no_response_echoes_a_secret\[([^/\]]+)/([^\]]+)\]$")
#: how the matrix reads best: accepted states first, then the refused ones; the calls as a client makes them
_ROW_ORDER = (
    "valid-manager",
    "valid-unprivileged",
    "deleted-manager",
    "deleted-unprivileged",
    "expired-manager",
    "expired-unprivileged",
    "unknown",
    "malformed",
    "none",
    "bootstrap-expired",
)
_COLUMN_ORDER = ("probe", "server-info", "list", "create", "delete", "no secret echoed")
_MARKS = {
    PASSED: ("✓", "as documented"),
    FAILED: ("✗", "failed"),
    BLOCKED: ("⊘", "blocked by a failed foundation"),
    INCONCLUSIVE: ("?", "inconclusive"),
    ERROR: ("!", "could not be judged"),
    SKIPPED: ("·", "skipped"),
    NOT_APPLICABLE: ("·", "not applicable"),
    EXPECTED_FAILURE: ("✗", "known deviation"),
    UNEXPECTEDLY_PASSING: ("!", "unexpectedly passing"),
}


def authorization_matrix(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The authorization matrix's results as rows x columns x header forms, from the tests' node ids."""
    cells: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    states: list[str] = []
    calls: list[str] = []
    forms: list[str] = []
    seen: set[str] = set()
    for req in doc["requirements"]:
        for t in req["tests"]:
            if t["nodeid"] in seen:
                continue
            seen.add(t["nodeid"])
            m = _CELL.search(t["nodeid"])
            echo = _ECHO.search(t["nodeid"])
            if m:
                state, call, form = m.groups()
            elif echo:
                (state, form), call = echo.groups(), "no secret echoed"
            else:
                continue
            for value, order in ((state, states), (call, calls), (form, forms)):
                if value not in order:
                    order.append(value)
            cells.setdefault((state, call), {})[form] = {**t, "requirement": req["id"]}
    if not cells:
        return None
    states.sort(key=lambda v: _ROW_ORDER.index(v) if v in _ROW_ORDER else len(_ROW_ORDER))
    calls.sort(key=lambda v: _COLUMN_ORDER.index(v) if v in _COLUMN_ORDER else len(_COLUMN_ORDER))
    forms.sort()
    return {"states": states, "calls": calls, "forms": forms, "cells": cells}


def _auth_matrix(doc: dict[str, Any]) -> str:
    matrix = authorization_matrix(doc)
    if matrix is None:
        return ""
    forms = matrix["forms"]
    head = "".join(f"<th>{e(c)}</th>" for c in matrix["calls"])
    rows = []
    for state in matrix["states"]:
        tds = []
        for call in matrix["calls"]:
            by_form = matrix["cells"].get((state, call), {})
            marks = []
            for form in forms:
                t = by_form.get(form)
                if t is None:
                    marks.append('<span class="mark muted">–</span>')
                    continue
                mark, word = _MARKS.get(t["outcome"], ("?", t["outcome"]))
                tip = f"{form}: {word} ({t['requirement']})"
                if t.get("message") or t.get("reason"):
                    tip += " — " + _first_line(t.get("message") or t.get("reason"), 160)
                link = f"#req-{t['requirement']}" if t["outcome"] not in (PASSED, SKIPPED, NOT_APPLICABLE) else None
                inner = f'<span class="mark o-{e(t["outcome"])}" title="{e(tip)}">{mark}</span>'
                marks.append(f'<a href="{e(link)}">{inner}</a>' if link else inner)
            tds.append(f'<td class="cell">{" ".join(marks)}</td>')
        rows.append(f"<tr><th>{e(state)}</th>{''.join(tds)}</tr>")
    legend = "; ".join(f"{mark} {word}" for mark, word in dict.fromkeys(_MARKS.values()))
    return (
        '<h2 id="authorization">Authorization matrix</h2>'
        f'<p class="muted">Each credential state (rows) on each call (columns), one mark per header form '
        f"({' | '.join(e(f) for f in forms)}). A valid manager token must be accepted everywhere; an unprivileged "
        "one on the probe and server info only; every other state nowhere. The last column: no response of the row "
        f"carried a secret. Marks: {e(legend)}. Hover a mark for its requirement and message; a mark that is not "
        "a pass links to its requirement's details.</p>"
        f'<table class="authz"><tr><th>credential</th>{head}</tr>{"".join(rows)}</table>'
    )


def _known_deviations(doc: dict[str, Any]) -> str:
    reqs = [r for r in doc["requirements"] if r["status"] == EXPECTED_FAILURE]
    if not reqs:
        return ""
    return f"<h2>Known deviations, still deviating ({len(reqs)})</h2>" + "".join(_problem(r) for r in reqs)


def _observed_values(values: list[Any]) -> str:
    """Few short values inline; many or long ones (per-case records) folded, one a line."""
    shown = [json.dumps(v, ensure_ascii=False) for v in values]
    if len(shown) <= 3 and sum(map(len, shown)) <= 200:
        return "<code>" + e(", ".join(shown)) + "</code>"
    first = shown[0] if len(shown[0]) <= 80 else shown[0][:79] + "…"
    return (
        f"<details><summary><code>{e(first)}</code> … ({len(shown)} value{'s' if len(shown) > 1 else ''})</summary>"
        f"<pre>{e(chr(10).join(shown))}</pre></details>"
    )


def _behaviours(doc: dict[str, Any]) -> str:
    observed = doc.get("open_behaviours") or {}
    if not observed:
        return ""
    pins = (doc.get("profile") or {}).get("expect") or {}
    rows = []
    for key, b in observed.items():
        pin = pins.get(key)
        rows.append(
            f"<tr><td><code>{e(key)}</code></td><td>{_observed_values(b.get('values', []))}</td>"
            f"<td>{'<code>' + e(json.dumps(pin)) + '</code>' if pin is not None else '<span class=muted>—</span>'}"
            f'</td><td class="num">{len(b.get("tests", []))}</td></tr>'
        )
    return (
        '<h2 id="behaviours">Open behaviours observed</h2>'
        '<p class="muted">What the target chose where the public documentation leaves the behaviour open. The '
        "profile's <code>expect</code> section pins a choice; unpinned, every plausible choice is accepted.</p>"
        "<table><tr><th>Behaviour</th><th>Observed</th><th>Pinned by the profile (expect)</th>"
        f'<th class="num">Tests</th></tr>{"".join(rows)}</table>'
    )


def render_html(doc: dict[str, Any]) -> str:
    target = doc["target"].get("name", "?")
    body = [
        _verdict(doc),
        _facts(doc),
        _root_causes(doc),
        "<h2>Requirements by level</h2>",
        _counts(doc),
        _problems(doc),
        _leftovers(doc),
        _auth_matrix(doc),
        _known_deviations(doc),
        f'<h2 id="matrix">Requirement matrix ({len(doc["requirements"])})</h2>',
        _matrix(doc),
        _behaviours(doc),
    ]
    warnings = doc["run"].get("warnings") or []
    if warnings:
        body.append("<h2>Warnings from the run</h2><ul>" + "".join(f"<li>{e(w)}</li>" for w in warnings) + "</ul>")
    lagged = describe_settle(doc["run"].get("settle") or {})
    if lagged:
        body.append('<h2 id="settle">Lag and clock</h2><ul>' + "".join(f"<li>{e(n)}</li>" for n in lagged) + "</ul>")
    body.append(
        '<h2 id="profile">Effective profile (secrets removed)</h2>'
        f"<pre>{e(json.dumps(doc['profile'], indent=2, ensure_ascii=False))}</pre>"
    )
    body.append(
        f"<footer>{e(doc['format'])} format {e(doc['format_version'])} · the same results are in conformance.json "
        "(machine-readable), summary.md and junit.xml</footer>"
    )
    return page(f"{doc['verdict']['result'].upper()} — service-token conformance of {target}", "\n".join(body))
