"""The requirement catalogue and the suites agree: every requirement has a check, every check a requirement."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from sts_conformance.core.requirements import LEVELS, catalogue, source_kind, source_parts, sources_markdown

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


# -- every requirement names the public text it rests on (issue 17) ------------------------------------

ROOT = Path(__file__).resolve().parents[2]
#: reference material beside the project (../shared, or beside a worktree's parent), when present
SHARED = next(
    (p for p in (ROOT.parent / "shared", ROOT.parent.parent / "shared") if p.is_dir()), ROOT.parent / "shared"
)


def test_every_source_part_names_a_kind_of_public_text():
    """Each part of each source starts with seed:, spec:, cli:, chart: stackstate-k8s or RFC."""
    for rid, req in catalogue().items():
        for part in source_parts(req.source):
            assert source_kind(part) is not None, f"{rid}: {part!r}"


@pytest.mark.parametrize(
    "source",
    ["left open by the public material: duplicate names", "docs: roles", "", "spec: x; common practice: y"],
    ids=["left-open", "docs", "empty", "second-part"],
)
def test_catalogue_with_a_source_naming_no_public_text_is_refused(tmp_path, source):
    """The loader refuses a requirement whose source names no kind of public text."""
    path = tmp_path / "requirements.yaml"
    entry = {"id": "ST-LIFE-001", "level": "SHOULD", "title": "t", "source": source}
    path.write_text(yaml.safe_dump({"version": 3, "requirements": [entry]}), encoding="utf-8")
    with pytest.raises(ValueError, match="names no public text"):
        catalogue(path)


def test_no_must_rests_on_what_the_sources_leave_open():
    """A behaviour the public texts leave open is at most a SHOULD."""
    left_open = [rid for rid, req in catalogue().items() if req.level == "MUST" and "left open" in req.source]
    assert not left_open


def _parts(kind: str) -> list[tuple[str, str]]:
    return [
        (rid, part) for rid, req in catalogue().items() for part in source_parts(req.source) if part.startswith(kind)
    ]


def test_seed_sources_name_a_section_of_the_product_page():
    """Every "seed:" part names a heading of the product page (checked against ../shared when present)."""
    page = SHARED / "seed" / "service-tokens.md"
    if not page.exists():
        pytest.skip(f"{page} is not here to check against")
    headings = {
        line.lstrip("#").strip() for line in page.read_text(encoding="utf-8").splitlines() if line.startswith("#")
    }
    for rid, part in _parts("seed: "):
        section = part.removeprefix("seed: ").split(" (")[0].strip()
        assert section in headings, f"{rid}: {section!r} is not a section of the product page"


def test_spec_sources_name_an_operation_or_model_of_the_spec():
    """Every "spec:" part names operations, models (Model.field), info or securitySchemes of the vendor spec."""
    path = SHARED / "service-tokens.openapi.yaml"
    if not path.exists():
        pytest.skip(f"{path} is not here to check against")
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    operations = {op["operationId"] for item in spec["paths"].values() for op in item.values() if "operationId" in op}
    schemas = spec["components"]["schemas"]
    for rid, part in _parts("spec: "):
        for name in part.removeprefix("spec: ").split(" (")[0].split(","):
            name = name.strip()
            if name == "info" or name in operations:
                continue
            if name.startswith("securitySchemes "):
                assert name.split()[1] in spec["components"]["securitySchemes"], f"{rid}: {name!r}"
                continue
            model, _, field = name.partition(".")
            assert model in schemas, f"{rid}: {name!r} names no operation or model of the spec"
            assert not field or field in schemas[model].get("properties", {}), f"{rid}: {name!r} has no such field"


def test_docs_sources_page_agrees_with_the_catalogue():
    """docs/sources.md is what `python -m sts_conformance.core.requirements` writes from the catalogue."""
    page = ROOT / "docs" / "sources.md"
    assert page.read_text(encoding="utf-8") == sources_markdown(), (
        "docs/sources.md is out of date: run `python -m sts_conformance.core.requirements > docs/sources.md`"
    )
