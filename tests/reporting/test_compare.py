"""sts-conformance-compare: runs side by side, and mixed versions never mixed silently."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sts_conformance.reporting.compare import main

from .support import ROOT, recorded_doc


def save(tmp_path: Path, name: str, doc: dict) -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


@pytest.fixture
def two_runs(tmp_path: Path) -> list[Path]:
    return [save(tmp_path, "a", recorded_doc("serial-pass")), save(tmp_path, "b", recorded_doc("xdist-fault"))]


def test_matrix_requirement_by_target(tmp_path, two_runs, capsys):
    """One column per run, one row per requirement, each run's versions in the header."""
    assert main([*map(str, two_runs), "--out", str(tmp_path / "cmp")]) == 0
    md = (tmp_path / "cmp" / "comparison.md").read_text(encoding="utf-8")
    html = (tmp_path / "cmp" / "comparison.html").read_text(encoding="utf-8")
    faulty = "reference-x-api-key-ignored+delete-not-revoking"
    assert f"| | reference | {faulty} |" in md
    assert "| Suite version | 0.1.0 | 0.1.0 |" in md
    assert "| Catalogue version | 2 | 2 |" in md
    assert "MIXED VERSIONS" not in md and "MIXED VERSIONS" not in html
    row = next(line for line in md.splitlines() if line.startswith("| ST-AUTH-007 |"))
    assert "| ≠ | ✅ passed | ❌ failed |" in row
    row = next(line for line in md.splitlines() if line.startswith("| ST-AUTH-004 |"))
    assert "| ≠ | ✅ passed | ⛔ blocked |" in row
    row = next(line for line in md.splitlines() if line.startswith("| ST-LIFE-004 |"))
    assert "❗ unexpectedly passing" in row
    assert f"<th>{faulty}</th>" in html
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [("version", "0.2.0", "suite versions differ"), ("catalogue_version", "3", "catalogue versions differ")],
    ids=["suite-version", "catalogue-version"],
)
def test_mixed_versions_flagged_loudly(tmp_path, field, value, says, capsys):
    """Runs of different suite or catalogue versions get a warning in both files and on stderr."""
    other = recorded_doc("xdist-fault")
    other["suite"][field] = value
    paths = [save(tmp_path, "a", recorded_doc("serial-pass")), save(tmp_path, "b", other)]
    assert main([*map(str, paths), "--out", str(tmp_path / "cmp")]) == 0
    md = (tmp_path / "cmp" / "comparison.md").read_text(encoding="utf-8")
    html = (tmp_path / "cmp" / "comparison.html").read_text(encoding="utf-8")
    assert md.index("MIXED VERSIONS") < md.index("| ST-")  # above the matrix, not in a footnote
    assert says in md and says in html
    assert '<div class="banner">MIXED VERSIONS' in html
    assert "WARNING: mixed versions" in capsys.readouterr().err


def test_requirement_missing_from_one_catalogue(tmp_path):
    """An id one run's catalogue lacks is shown as such, not as a failure or a pass."""
    other = recorded_doc("xdist-fault")
    other["requirements"] = [r for r in other["requirements"] if r["id"] != "ST-LIFE-001"]
    paths = [save(tmp_path, "a", recorded_doc("serial-pass")), save(tmp_path, "b", other)]
    assert main([*map(str, paths), "--out", str(tmp_path / "cmp")]) == 0
    md = (tmp_path / "cmp" / "comparison.md").read_text(encoding="utf-8")
    row = next(line for line in md.splitlines() if line.startswith("| ST-LIFE-001 |"))
    assert "— not in catalogue" in row


def test_same_target_twice_gets_distinct_columns(tmp_path):
    """Two runs of one target (two releases) are told apart by their start time."""
    a, b = recorded_doc("serial-pass"), recorded_doc("serial-pass")
    b["run"]["started_at"] = "2030-01-02T03:04:05.000Z"
    paths = [save(tmp_path, "a", a), save(tmp_path, "b", b)]
    assert main([*map(str, paths), "--out", str(tmp_path / "cmp")]) == 0
    head = (tmp_path / "cmp" / "comparison.md").read_text(encoding="utf-8").splitlines()
    header = next(line for line in head if line.startswith("| | "))
    assert "reference (2030-01-02 03:04)" in header
    assert header.count("reference") == 2


def test_labels_name_the_columns(tmp_path, two_runs):
    """--label, once per report, heads the columns in order."""
    assert main([*map(str, two_runs), "--out", str(tmp_path / "c"), "--label", "v1", "--label", "v2"]) == 0
    assert "| | v1 | v2 |" in (tmp_path / "c" / "comparison.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("not json", "not JSON"),
        ('{"hello": 1}', "not a conformance report"),
        ('{"format": "sts-conformance-report", "format_version": "3.0"}', "report format '3.0'"),
    ],
    ids=["not-json", "other-json", "future-format"],
)
def test_bad_input_is_exit_2_naming_the_file(tmp_path, content, says, capsys):
    """An input that is not a report this command reads: exit 2, the file named, nothing written."""
    bad = tmp_path / "bad.json"
    bad.write_text(content, encoding="utf-8")
    assert main([str(bad), "--out", str(tmp_path / "cmp")]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and says in err
    assert not (tmp_path / "cmp").exists()


def test_label_count_must_match(tmp_path, two_runs, capsys):
    """One --label for two reports is refused."""
    assert main([*map(str, two_runs), "--out", str(tmp_path / "c"), "--label", "only"]) == 2
    assert "one per report" in capsys.readouterr().err


def test_installed_command(tmp_path, two_runs):
    """The console script declared in pyproject runs (the module form, as the script does)."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sts_conformance.reporting.compare",
            *map(str, two_runs),
            "--out",
            str(tmp_path / "cmp"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(tmp_path / "cmp" / "comparison.md"), str(tmp_path / "cmp" / "comparison.html")]
