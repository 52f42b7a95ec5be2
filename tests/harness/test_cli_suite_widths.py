"""Every CLI check against the reference CLI with its table at 80 columns, at 200 and at 40.

The real ``sts`` CLI lays its ``list`` table out for the terminal's width (80 into a pipe) and
wraps long cells onto continuation lines. The CLI suites read the table into a pipe and in a
200-column pseudo-terminal, and read data from ``-o json`` where the CLI offers it; here the
whole CLI suite runs against the reference with every table it prints forced to one width
(the reference CLI reads ``COLUMNS`` when stdout is no terminal), so each CLI check sees wrapped
cells (80, 40) and unwrapped ones (200), and must pass in each.
"""

from __future__ import annotations

import json

import pytest

from .suite_run import ROOT, run_suites

pytestmark = pytest.mark.slow

WIDTHS = {"80": None, "200": 200, "40": 40}


@pytest.mark.parametrize("width", WIDTHS)
def test_every_cli_check_passes_at_this_width(tmp_path, width):
    profile = (ROOT / "fixtures" / "targets" / "reference.yaml").read_text(encoding="utf-8")
    columns = WIDTHS[width]
    if columns is not None:
        profile = profile.replace('command: "{python} -m', f'command: "env COLUMNS={columns} {{python}} -m')
    path = tmp_path / "reference.yaml"
    path.write_text(profile, encoding="utf-8")

    done = run_suites("--target", str(path), "--ignore-glob=suites/test_*.py", report_dir=tmp_path / "reports")

    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    report = json.loads((tmp_path / "reports" / "conformance.json").read_text(encoding="utf-8"))
    cli = {r["id"]: r["status"] for r in report["requirements"] if r["id"].startswith("ST-CLI-")}
    assert cli and set(cli.values()) == {"passed"}, cli
    wrapped = report["open_behaviours"]["cli_list_wrapped_rows"]["values"]
    piped = next(v for v in wrapped if v["layout"] == "text")
    assert (piped["wrapped"] > 0) == (columns != 200), piped  # the 15-digit ids wrap below 80 columns
