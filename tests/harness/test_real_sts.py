"""The product's own `sts` CLI (v3.3.6, built from its public source) against the embedded reference.

The build lives beside the clone, in ``../shared/real-sts/`` (``STS_REAL_CLI`` names an unpacked
binary instead); without either these tests skip, saying so. `.ci/run` runs the whole suite with it
through ``fixtures/targets/real-sts.example.yaml``; here the CLI suite runs with that profile's
declaration and without it: the one known defect (ST-CLI-013's zero date) is the only failure.
"""

from __future__ import annotations

import json
import lzma
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .suite_run import ROOT

pytestmark = pytest.mark.slow

BUILD = ROOT.parent / "shared" / "real-sts" / "sts-v3.3.6-linux-amd64.xz"
PROFILE = ROOT / "fixtures" / "targets" / "real-sts.example.yaml"
ZERO_DATE = "suites/cli/test_cli_expiration.py::test_given_expiration_never_becomes_no_expiration[zero-date]"


@pytest.fixture(scope="module")
def real_sts(tmp_path_factory: pytest.TempPathFactory) -> str:
    given = os.environ.get("STS_REAL_CLI")
    if given:
        return given
    if not BUILD.is_file():
        pytest.skip(f"no build of the real sts CLI at {BUILD} (nor STS_REAL_CLI): not checked against it")
    binary = tmp_path_factory.mktemp("real-sts") / "sts"
    with lzma.open(BUILD) as src, binary.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    binary.chmod(0o755)
    return str(binary)


def _run_cli_suite(tmp_path: Path, profile: Path, binary: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    reports = tmp_path / "reports"
    options = ["-q", "-p", "no:cacheprovider", "--report-dir", str(reports), "--target", str(profile)]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "suites/cli", *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "STS_REAL_CLI": binary},
    )
    return done, json.loads((reports / "conformance.json").read_text(encoding="utf-8"))


def _by_status(doc: dict, status: str) -> list[str]:
    return [r["id"] for r in doc["requirements"] if r["status"] == status]


def test_real_cli_passes_with_its_declared_deviation(tmp_path, real_sts):
    """With the zero-date case declared, the run passes; ST-CLI-013's other cases still pass and are checked."""
    done, doc = _run_cli_suite(tmp_path, PROFILE, real_sts)
    assert done.returncode == 0, done.stdout[-3000:]
    assert _by_status(doc, "expected-failure") == ["ST-CLI-013"]
    assert _by_status(doc, "failed") == [] and _by_status(doc, "unexpectedly-passing") == []
    cases = {t["nodeid"]: t["outcome"] for r in doc["requirements"] if r["id"] == "ST-CLI-013" for t in r["tests"]}
    assert cases.pop(ZERO_DATE) == "expected-failure"
    assert cases and set(cases.values()) == {"passed"}, cases


def test_real_cli_without_the_declaration_fails_only_st_cli_013(tmp_path, real_sts):
    """Without the declaration, the zero-date case is the run's only failure."""
    text = PROFILE.read_text(encoding="utf-8")
    undeclared = tmp_path / "real-sts-undeclared.yaml"
    undeclared.write_text(text[: text.index("known_deviations:")], encoding="utf-8")
    done, doc = _run_cli_suite(tmp_path, undeclared, real_sts)
    assert done.returncode == 1, done.stdout[-3000:]
    assert _by_status(doc, "failed") == ["ST-CLI-013"]
    failed = [t["nodeid"] for r in doc["requirements"] for t in r["tests"] if t["outcome"] == "failed"]
    assert failed == [ZERO_DATE]
