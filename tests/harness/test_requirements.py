"""The requirement catalogue and the suites agree: every requirement has a check, every check a requirement."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sts_conformance.requirements import LEVELS, catalogue

SUITES = Path(__file__).resolve().parents[2] / "suites"
_MARKER = re.compile(r"requirement\(\s*[\"'](ST-[A-Z]+-\d{3})[\"']")
_TEST = re.compile(r"^\s*def (test_\w+)\(", re.M)


def _named_in_suites() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted(SUITES.rglob("test_*.py")):
        for rid in _MARKER.findall(path.read_text(encoding="utf-8")):
            found.setdefault(rid, []).append(path.name)
    # the authorization matrix computes each cell's requirement: read them from its parameters
    from suites import test_authorization_matrix as matrix

    for param in matrix.CELLS:
        for mark in param.marks:
            if mark.name == "requirement":
                found.setdefault(str(mark.args[0]), []).append("test_authorization_matrix.py")
    return found


def test_every_requirement_has_a_check():
    """No catalogue entry is left without a test that names it."""
    missing = sorted(set(catalogue()) - set(_named_in_suites()))
    assert not missing, f"requirements without a check in suites/: {missing}"


def test_every_check_names_a_known_requirement():
    """A requirement marker never names an id the catalogue does not have."""
    unknown = {rid: files for rid, files in _named_in_suites().items() if rid not in catalogue()}
    assert not unknown, f"suites name requirements missing from the catalogue: {unknown}"


@pytest.mark.parametrize("path", sorted(SUITES.rglob("test_*.py")), ids=lambda p: p.name)
def test_every_suite_test_carries_a_requirement(path):
    """Each test function in a suite module traces to a requirement (as many markers as tests, at least)."""
    text = path.read_text(encoding="utf-8")
    tests = _TEST.findall(text)
    markers = re.findall(r"mark\.requirement\(", text) + re.findall(r"pytestmark\s*=.*requirement", text)
    assert len(markers) >= len(tests), f"{path.name}: {len(tests)} tests but {len(markers)} requirement markers"


def test_catalogue_entries_are_complete():
    """Every entry has a level, a one-line title and a source."""
    for rid, req in catalogue().items():
        assert req.level in LEVELS, rid
        assert req.title and "\n" not in req.title, rid
        assert req.source, rid
