"""The report writers on recorded runs: conformance.json, conformance.html, summary.md.

``recorded/`` holds two real runs against the embedded reference (see ``record.py``): a
serial one that passes and an xdist one (``-n 2``) with the ``x-api-key-ignored`` fault and
two known deviations, one still deviating (ST-AUTH-003) and one stale (ST-LIFE-004).
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any

import jsonschema
import pytest

from sts_conformance.core.requirements import Requirement
from sts_conformance.reporting import render_html, render_summary, write_reports
from sts_conformance.reporting.document import (
    RunInfo,
    build_report,
    describe_version,
    profile_for_report,
    public_url,
)
from sts_conformance.reporting.results import PhaseRecord, RunOutcome
from sts_conformance.target.profile import load_profile

from .support import SCHEMA, recorded_doc, recorded_records, statuses

RUNS = ["serial-pass", "xdist-fault"]


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def recorded_catalogue(doc: dict) -> dict[str, Requirement]:
    """The catalogue as it was when the run was recorded (it grows; the recording does not)."""
    return {r["id"]: Requirement(r["id"], r["level"], r["title"], r["source"], r["area"]) for r in doc["requirements"]}


def rebuild(name: str, *, strict: bool = False, extra: tuple[PhaseRecord, ...] = (), **run: Any) -> dict:
    """The report built again from the run's recorded phase records (and ``extra`` ones); ``run``
    sets further RunInfo fields."""
    doc = recorded_doc(name)
    info = RunInfo(
        catalogue_version=doc["suite"]["catalogue_version"],
        started_at=0.0,
        finished_at=1.0,
        target=doc["target"],
        profile=doc["profile"],
        commit=doc["suite"]["commit"],
        workers=doc["run"]["workers"],
        **run,
    )
    records = [*recorded_records(name), *extra]
    return build_report(records, recorded_catalogue(doc), RunOutcome(strict=strict), info)


@pytest.mark.parametrize("name", RUNS)
def test_recorded_report_matches_the_schema(validator, name):
    """What a run wrote is valid against the published schema, and so is a rebuild."""
    for doc in (recorded_doc(name), rebuild(name)):
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]
        assert errors == []


@pytest.mark.parametrize("name", RUNS)
def test_rebuild_from_records_gives_the_recorded_verdict(name):
    """The records alone (as the controller got them) give back every requirement's status."""
    recorded, rebuilt = recorded_doc(name), rebuild(name)
    assert statuses(rebuilt) == statuses(recorded)
    assert rebuilt["verdict"]["exit_status"] == recorded["verdict"]["exit_status"]
    assert rebuilt["counts"] == recorded["counts"] | _without_zeros(rebuilt["counts"], recorded["counts"])


def _without_zeros(rebuilt: dict, recorded: dict) -> dict:
    """The counts of statuses added since the recording (format 2.2: inconclusive), when they are all zero."""
    added: dict[str, dict] = {}
    for part, by_key in rebuilt.items():
        for key, value in by_key.items():
            if isinstance(value, dict):
                new = {s: n for s, n in value.items() if s not in recorded[part][key] and n == 0}
                added.setdefault(part, {})[key] = {**recorded[part][key], **new}
            elif key not in recorded[part] and value == 0:
                added.setdefault(part, dict(recorded[part]))[key] = value
    return added


def test_xdist_run_has_every_workers_results():
    """Under -n 2 the controller's report holds the tests of both workers, each once."""
    doc = recorded_doc("xdist-fault")
    tests = [t for r in doc["requirements"] for t in r["tests"]]
    assert {t.get("worker") for t in tests} == {"gw0", "gw1"}
    assert doc["run"]["workers"] == 2
    per_test = {t["nodeid"] for t in tests}
    assert sum(doc["counts"]["tests"].values()) == len(per_test)


def test_xdist_fault_run_statuses():
    """The faulty run: the X-API-Key deviation is expected and blocks what stands on it; a deleted token that
    keeps working fails ST-AUTH-007; the stale deviation fails the run."""
    doc = recorded_doc("xdist-fault")
    got = statuses(doc)
    assert got["ST-AUTH-002"] == "passed"
    assert got["ST-AUTH-003"] == "expected-failure"
    assert got["ST-AUTH-004"] == "blocked", "its X-API-Key cells stand on ST-AUTH-003"
    assert got["ST-AUTH-007"] == "failed"
    assert got["ST-LIFE-004"] == "unexpectedly-passing"
    assert (doc["verdict"]["result"], doc["verdict"]["exit_status"]) == ("fail", 1)
    [cause] = doc["root_causes"]
    assert cause["requirement"] == "ST-AUTH-003" and "ST-AUTH-004" in cause["blocked_requirements"]
    assert any("blocked by a known deviation" in w and "ST-AUTH-004" in w for w in doc["verdict"]["warnings"])
    failed = next(r for r in doc["requirements"] if r["id"] == "ST-AUTH-007")
    bad = [t for t in failed["tests"] if t["outcome"] == "failed"]
    assert bad and all(t.get("exchanges") and t.get("message") for t in bad)
    blocked = next(r for r in doc["requirements"] if r["id"] == "ST-AUTH-004")
    assert all(t["blocked_by"] == "ST-AUTH-003" for t in blocked["tests"] if t["outcome"] == "blocked")


def test_serial_run_records_skip_setting_and_open_behaviours():
    """Skips name their setting; open behaviours record what the target chose."""
    doc = recorded_doc("serial-pass")
    skipped = [r for r in doc["requirements"] if r["status"] == "skipped"]
    assert skipped and all(r["settings"] for r in skipped)
    assert "unauthenticated_status" in doc["open_behaviours"]
    assert doc["open_behaviours"]["unauthenticated_status"]["values"] == [401]
    assert doc["target"]["server"]["version"]


class _Page(HTMLParser):
    """The things a self-contained page must not have, and the ids it has."""

    def __init__(self) -> None:
        super().__init__()
        self.external: list[str] = []
        self.ids: set[str] = set()
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if a.get("id"):
            self.ids.add(str(a["id"]))
        for key in ("src", "href", "srcset", "data", "poster", "action", "xlink:href"):
            value = a.get(key)
            if value and not value.startswith("#"):  # a link within the page is fine
                self.external.append(f"<{tag} {key}={value}>")


@pytest.mark.parametrize("name", RUNS)
def test_html_is_self_contained(name):
    """The page loads nothing from elsewhere: no scripts, no links out, no url() or @import."""
    html = render_html(recorded_doc(name))
    page = _Page()
    page.feed(html)
    assert page.external == []
    assert page.scripts == 0
    assert not re.search(r"url\(|@import", html)


def test_html_shows_verdict_first_and_every_failure_with_its_exchange():
    """Verdict at the top; each failed requirement has a block with expected text, message, exchange."""
    doc = recorded_doc("xdist-fault")
    html = render_html(doc)
    body = html[html.index("<main>") :]
    assert body.index("FAIL") < body.index("Requirement matrix")
    page = _Page()
    page.feed(html)
    for req in doc["requirements"]:
        if req["status"] in ("failed", "unexpectedly-passing", "expected-failure"):
            assert f"req-{req['id']}" in page.ids
        assert f"m-{req['id']}" in page.ids
    assert "Expected:</b> Both header forms are accepted" in html  # a blocked requirement, shown with its cause
    assert "Root causes" in html and "Authorization matrix" in html
    assert "&gt; GET http://127.0.0.1:" in html  # a request line of an exchange, escaped
    assert "Remove the entry from known_deviations" in html


def test_html_escapes_what_the_target_sent():
    """A response body with markup is shown as text, never interpreted."""
    doc = recorded_doc("xdist-fault")
    req = next(r for r in doc["requirements"] if r["status"] == "failed")
    test = next(t for t in req["tests"] if t.get("exchanges"))
    test["exchanges"][-1]["response_body"] = '<script>alert("x")</script><img src="http://evil/">'
    html = render_html(doc)
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;" in html


@pytest.mark.parametrize(
    ("name", "first_line"),
    [
        ("serial-pass", "## ✅ Service-token conformance: PASS"),
        ("xdist-fault", "## ❌ Service-token conformance: FAIL"),
    ],
)
def test_summary_markdown(name, first_line):
    """summary.md opens with the verdict, counts per level, then the failing requirements."""
    doc = recorded_doc(name)
    text = render_summary(doc, {"conformance.html": "conformance.html"})
    lines = text.splitlines()
    assert lines[0] == first_line
    assert "| MUST |" in text and "| SHOULD |" in text
    assert "[conformance.html](conformance.html)" in text
    for req in doc["requirements"]:
        if req["status"] in ("failed", "unexpectedly-passing"):
            assert f"| {req['id']} | {req['level']} | {req['status']} |" in text
    assert len(lines) < 60  # short enough for a pull-request comment


def test_summary_cells_cannot_break_the_table():
    """A message with pipes and newlines stays inside its cell."""
    doc = recorded_doc("xdist-fault")
    req = next(r for r in doc["requirements"] if r["status"] == "failed")
    req["reason"] = "got | a pipe\nand a newline <b>"
    row = next(line for line in render_summary(doc).splitlines() if line.startswith(f"| {req['id']} "))
    assert row.count(" | ") == 3  # four cells
    assert "\\|" in row and "<b>" not in row


def test_write_reports_writes_the_three_files(tmp_path):
    """write_reports puts json, html and md in the report dir, readable by others (CI artefacts)."""
    doc = recorded_doc("serial-pass")
    files = write_reports(doc, tmp_path / "out")
    assert sorted(p.name for p in files.values()) == ["conformance.html", "conformance.json", "summary.md"]
    assert json.loads(files["conformance.json"].read_text(encoding="utf-8")) == doc
    assert all(p.stat().st_mode & 0o044 for p in files.values())
    assert not list((tmp_path / "out").glob(".*.tmp"))


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        (
            {"version": {"major": 6, "minor": 1, "patch": 2, "diff": "", "commit": "abc", "isDev": False}},
            "6.1.2 (commit abc)",
        ),
        (
            {"version": {"major": 6, "minor": 1, "patch": 2, "diff": "rc1", "commit": "a" * 40, "isDev": True}},
            "6.1.2-rc1 (commit aaaaaaaaaaaa) [dev]",
        ),
        ({"version": "7.0"}, "7.0"),
        ({"version": {"major": "6"}}, None),
        ([], None),
    ],
    ids=["plain", "diff-hash-dev", "string", "partial", "not-object"],
)
def test_server_version_text(body, shown):
    """The server's version is read from whatever parts of ServerInfo are there."""
    assert describe_version(body) == shown


def test_url_loses_credentials():
    """A target URL with user:password in it is reported without them."""
    assert public_url("https://user:hunter22@example.test:8443/x") == "https://example.test:8443/x"
    assert public_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080"


def test_profile_in_report_hides_values_taken_from_the_environment(tmp_path):
    """A secret the profile pulls into its launch command or URL is shown as its ${VAR} again."""
    path = tmp_path / "vendor.yaml"
    path.write_text(
        "name: vendor\n"
        "url: https://ops:${URL_PASS}@vendor.test:{port}\n"
        'launch: "vendor-server --port {port} --licence ${VENDOR_LICENCE}"\n'
        "bootstrap:\n  token: ${BOOT}\n",
        encoding="utf-8",
    )
    env = {"URL_PASS": "pa55w0rd-xyz", "VENDOR_LICENCE": "LIC-1234-5678-abcd", "BOOT": "boot-secret-0001"}
    data = profile_for_report(load_profile(path, environ=env), environ=env)
    text = json.dumps(data)
    assert data["launch"] == "vendor-server --port {port} --licence ${VENDOR_LICENCE}"
    assert data["url"] == "https://vendor.test:{port}"
    assert data["bootstrap"]["token"] == "<set>"
    assert not any(value in text for value in env.values())


def _inconclusive_record(nodeid: str, rid: str, reason: str) -> list[PhaseRecord]:
    return [
        PhaseRecord(nodeid=nodeid, when="setup", outcome="passed", requirements=[rid]),
        PhaseRecord(nodeid=nodeid, when="call", outcome="skipped", requirements=[rid], skip_reason=reason),
        PhaseRecord(nodeid=nodeid, when="teardown", outcome="passed", requirements=[rid]),
    ]


def test_inconclusive_must_is_named_in_every_report(validator):
    """A MUST whose check could not conclude is its own status in conformance.json (valid against the schema),
    the HTML report and summary.md, and the PASS says so instead of reading as a plain pass."""
    doc = recorded_doc("serial-pass")
    rid = next(r["id"] for r in doc["requirements"] if r["level"] == "MUST" and r["status"] == "passed")
    extra = _inconclusive_record("suites/test_x.py::test_late[a]", rid, "inconclusive: the call came 3 s late")
    rebuilt = rebuild("serial-pass", extra=tuple(extra))
    assert [e.message for e in validator.iter_errors(rebuilt)] == []
    req = next(r for r in rebuilt["requirements"] if r["id"] == rid)
    assert (req["status"], req["reason"]) == ("inconclusive", "the call came 3 s late")
    assert rebuilt["counts"]["requirements"]["MUST"]["inconclusive"] == 1
    verdict = rebuilt["verdict"]
    assert (verdict["result"], verdict["inconclusive"]) == ("pass", [rid])
    assert "inconclusive" in verdict["reasons"][-1] and rid in verdict["reasons"][-1]
    assert any(rid in w and "--strict" in w for w in verdict["warnings"])
    html = render_html(rebuilt)
    assert "could not conclude" in html and f'id="req-{rid}"' in html and "the call came 3 s late" in html
    summary = render_summary(rebuilt)
    assert f"| {rid} | MUST | inconclusive | the call came 3 s late |" in summary


def test_summary_names_each_skipped_requirement_with_its_reason():
    """summary.md lists every skipped and not-applicable requirement with the reason it was not judged."""
    doc = recorded_doc("serial-pass")
    unjudged = [r for r in doc["requirements"] if r["status"] in ("skipped", "not-applicable")]
    assert unjudged
    text = render_summary(doc)
    for r in unjudged:
        row = next(line for line in text.splitlines() if line.startswith(f"| {r['id']} | {r['level']} | {r['status']}"))
        assert r["reason"].split()[0] in row
