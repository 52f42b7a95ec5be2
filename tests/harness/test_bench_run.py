"""benchmarks/bench_run.py: its options, the profile each run launches, which code a
side-by-side run imports, and its tables. No run is timed here: the runs are faked."""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from sts_reference.faults import FAULTS

REPO = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run", REPO / "benchmarks" / "bench_run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


bench = _load()


def result(wall: float, requests: int = 1000, tokens: int = 160, load: float = 1.0) -> dict[str, Any]:
    return {"wall_s": wall, "requests": requests, "tokens_created": tokens, "load_1min": load}


# ---- options ------------------------------------------------------------------------------


def test_one_setup_by_default() -> None:
    args = bench.parse_args(["-n", "8", "--create-delay-ms", "600"])
    assert args.runs == 3
    assert bench.chosen_setups(args) == [("setup", bench.Setup(workers="8", create_delay_ms=600))]


def test_table_measures_every_row_twice_by_default() -> None:
    args = bench.parse_args(["--table"])
    assert args.runs == 2
    setups = dict(bench.chosen_setups(args))
    assert list(setups) == list(bench.ROWS)
    assert {(s.create_delay_ms, s.delay_ms) for s in setups.values()} == {(0, 0), (150, 0), (600, 0), (0, 150)}
    assert {s.workers for s in setups.values()} == {None, "8"}


def test_rows_pick_setups_of_the_table() -> None:
    args = bench.parse_args(["--table", "--rows", "create-600,create-600-n8", "--runs", "1"])
    assert [key for key, _ in bench.chosen_setups(args)] == ["create-600", "create-600-n8"]
    assert args.runs == 1


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["--table", "--rows", "create-6000"], "unknown row create-6000"),
        (["--rows", "create-0"], "--rows picks setups of --table"),
        (["--table", "-n", "8"], "--table measures its own setups"),
        (["--create-delay-ms", "-1"], "must be 0..60000 milliseconds"),
        (["--delay-ms", "soon"], "not a whole number of milliseconds"),
        (["--runs", "0"], "must be a whole number of at least 1"),
    ],
)
def test_bad_options_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str], complaint: str) -> None:
    with pytest.raises(SystemExit) as exited:
        bench.parse_args(argv)
    assert exited.value.code == 2
    assert complaint in capsys.readouterr().err


def test_an_unknown_revision_is_one_error_before_any_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--against", "no-such-revision-here", "--runs", "1"]) == 2
    captured = capsys.readouterr()
    assert "not a commit" in captured.err and "run 1" not in captured.out


def test_setup_options_measure_the_same_setup_again() -> None:
    for setup in bench.ROWS.values():
        args = bench.parse_args(shlex.split(setup.options()))
        assert bench.chosen_setups(args) == [("setup", setup)]


# ---- the profile --------------------------------------------------------------------------


def test_profile_adds_the_delays_and_the_stats_file(tmp_path: Path) -> None:
    setup = bench.Setup(workers="8", delay_ms=150, create_delay_ms=600, fault="delete-not-revoking")
    data = yaml.safe_load(bench.profile(tmp_path, setup, bench.Side("working tree", REPO)).read_text())
    launch = data["launch"]
    assert launch.startswith(bench.REFERENCE_LAUNCH)  # the tree's own server, as its profile launches it
    assert "--delay-ms 150" in launch and "--create-delay-ms 600" in launch
    assert "--fault delete-not-revoking" in launch and "--stats-file" in launch
    assert data["request_timeout"] >= 15  # 20 answers' worth of the slowest call


def test_a_base_side_launches_the_working_trees_server(tmp_path: Path) -> None:
    base = tmp_path / "base"
    (base / "fixtures" / "targets").mkdir(parents=True)
    (base / "fixtures" / "targets" / "reference.yaml").write_text(
        (REPO / "fixtures" / "targets" / "reference.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    data = yaml.safe_load(bench.profile(tmp_path, bench.ROWS["create-600"], bench.Side("base", base)).read_text())
    assert data["launch"].startswith(bench.server_command(REPO))
    assert "--create-delay-ms 600" in data["launch"]


def test_a_base_profile_that_does_not_launch_the_reference_is_refused(tmp_path: Path) -> None:
    base = tmp_path / "base"
    (base / "fixtures" / "targets").mkdir(parents=True)
    (base / "fixtures" / "targets" / "reference.yaml").write_text("launch: ./start-server {port}\n", encoding="utf-8")
    with pytest.raises(bench.BenchError, match="does not start with"):
        bench.profile(tmp_path, bench.Setup(), bench.Side("base", base))


def test_the_server_command_runs_the_chosen_tree_whatever_the_path(tmp_path: Path) -> None:
    """A base's run works in the base's tree with PYTHONPATH naming it; its launch must still
    start the working tree's server, where ``python -m sts_reference`` would not."""
    impostor = tmp_path / "sts_reference"
    impostor.mkdir()
    (impostor / "__init__.py").write_text("", encoding="utf-8")
    (impostor / "__main__.py").write_text("print('impostor')\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    python = shlex.quote(sys.executable)

    def shell(command: str) -> str:
        done = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        return done.stdout

    assert shell(f"{python} -m sts_reference faults").strip() == "impostor"  # what the test guards against
    listed = shell(bench.server_command(REPO).format(python=python) + "faults")
    assert "impostor" not in listed and next(iter(FAULTS)) in listed


# ---- which code a side imports --------------------------------------------------------------


def test_a_tree_without_its_own_packages_is_refused(tmp_path: Path) -> None:
    """Imports that would fall through to the venv's installed copy are caught before any run."""
    with pytest.raises(bench.BenchError, match="would be imported from"):
        bench.check_imports(bench.Side("empty", tmp_path))


def test_an_exported_revision_imports_its_own_code(tmp_path: Path) -> None:
    root = bench.export_revision(bench.resolve_revision("HEAD"), tmp_path)
    files = bench.check_imports(bench.Side("HEAD", root))
    assert set(files) == {"sts_conformance", "sts_reference"}
    assert all(Path(file).resolve().is_relative_to(root.resolve()) for file in files.values())


# ---- measuring and the tables ---------------------------------------------------------------


def test_sides_alternate_within_each_run() -> None:
    calls: list[tuple[str, str]] = []

    def fake_run(setup: Any, side: Any, budget: float) -> dict[str, Any]:
        calls.append((setup.describe(), side.name))
        return result(1.0)

    sides = [bench.Side("base", REPO), bench.Side("working tree", REPO)]
    measured = bench.measure(list(bench.ROWS.items())[:2], sides, 2, 60.0, run=fake_run)
    first, second = bench.ROWS["create-0"].describe(), bench.ROWS["create-150"].describe()
    assert calls == [(first, "base"), (first, "working tree")] * 2 + [(second, "base"), (second, "working tree")] * 2
    assert [len(per_side[0]) for _, _, per_side in measured] == [2, 2]


def test_ratio_table_divides_the_working_tree_by_the_base() -> None:
    base = [result(100.0, 1100, 180), result(90.0, 1100, 180)]
    current = [result(40.0, 1050, 170), result(50.0, 1050, 170)]
    table = bench.ratio_table([("create-600", bench.ROWS["create-600"], base, current)], "d9870b8")
    header, rule, row = table.splitlines()
    assert "wall d9870b8" in header and rule.startswith("|---")
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[0] == "create-600: 600 ms a create, serial"
    assert cells[1] == "95.0 (100.0 / 90.0)" and cells[2] == "45.0 (40.0 / 50.0)"
    assert cells[3] == "0.47×"
    assert cells[4] == "1,100 → 1,050 (0.95×)" and cells[5] == "180 → 170 (0.94×)"


def test_figures_table_shows_every_run_and_the_load() -> None:
    runs = [result(12.0, 1142, 175, load=3.5), result(14.0, 1140, 175, load=6.0)]
    table = bench.figures_table([("away-150-n8", bench.ROWS["away-150-n8"], runs)])
    row = table.splitlines()[2]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[0] == "away-150-n8: a target 150 ms away, instant creates, -n 8"
    assert cells[1] == "`-n 8 --delay-ms 150`"
    assert cells[2:] == ["1,141", "175", "12.0 / 14.0", "13.0", "3.5 / 6.0"]


def test_json_of_a_faked_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "bench.json"
    monkeypatch.setattr(
        bench, "measure", lambda setups, sides, runs, budget: [(k, s, [[result(2.0)] * runs]) for k, s in setups]
    )
    assert bench.main(["--create-delay-ms", "150", "--runs", "2", "--json", str(out)]) == 0
    written = json.loads(out.read_text())
    (only,) = written["setups"]
    assert only["setup"]["create_delay_ms"] == 150
    assert only["sides"]["working tree"]["median"] == {"wall_s": 2.0, "requests": 1000, "tokens_created": 160}


def test_a_failed_runs_reports_are_kept(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "conformance.json").write_text("{}", encoding="utf-8")
    kept = bench.keep_reports(reports, "1 failed, 120 passed")
    try:
        assert (kept / "conformance.json").read_text() == "{}"
        assert (kept / "pytest-output.txt").read_text() == "1 failed, 120 passed"
    finally:
        shutil.rmtree(kept)
