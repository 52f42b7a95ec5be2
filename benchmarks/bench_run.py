"""What one run of the conformance suites costs: wall time, and requests and tokens counted at the target.

    .venv/bin/python benchmarks/bench_run.py [--runs 3] [-n WORKERS] [--delay-ms MS]
        [--create-delay-ms MS] [--fault NAME] [--checks-together] [--budget S] [--json PATH]
    .venv/bin/python benchmarks/bench_run.py --table [--rows KEY,KEY...] [--runs 2] [--json PATH]
    .venv/bin/python benchmarks/bench_run.py --against REV [--table ...] [same options]

Runs ``python -m pytest suites`` exactly as a user does, against the embedded reference
deployment launched by the suite (a copy of ``fixtures/targets/reference.yaml`` whose launch
adds the reference's ``--stats-file``, ``--delay-ms`` to answer like a distant cluster,
``--create-delay-ms`` to answer each create that much later, like a server hashing new
secrets with a slow hash, and ``--fault`` to be a defective target). Every instance the run
launches writes its counts; they are summed. Wall time depends on the machine and what else
runs on it; requests and tokens do not (beyond the spread of generated examples), so they
are the figures to compare across machines. Each run also records the machine's load average
when it started: on a shared machine, read the wall times beside it.

Three modes:

* one setup (the default): one line per run and the medians;
* ``--table``: the default run in each setup of :data:`ROWS` (instant, 150 ms and 600 ms
  creates, and a target 150 ms away, each serial and with ``-n 8``), every run's wall time,
  the medians, requests and tokens, as a Markdown table; ``--rows`` picks some of them;
* ``--against REV`` (a commit, tag or branch of this repository): the same setups measured
  side by side for REV and for the working tree, on the same machine, REV then working tree
  for each run in turn, with the ratios working tree / REV. REV is exported with
  ``git archive`` into a temporary directory and its suites run from there with
  ``PYTHONPATH`` set to it, so they import REV's own harness and plugin (checked before any
  run; this venv's editable install of the working tree comes after ``PYTHONPATH``). Both
  sides run against the working tree's reference server (REV may predate
  ``--create-delay-ms``): the launch command of each side's own profile is kept, with its
  ``python -m sts_reference`` pointed at the working tree's package.

``--json PATH`` also writes every run's figures. A run that fails (a false failure under
load, say) keeps its reports and terminal output in a ``sts-bench-failed-*`` directory under
the temporary directory, named in its figures as ``kept_reports``. Nothing here asserts a time; the figures
are for people to read (the README's performance table).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
#: how a profile's launch starts the reference; side-by-side runs replace it (see server_command)
REFERENCE_LAUNCH = "{python} -m sts_reference "
#: the packages a side's run must import from its own tree
OWN_PACKAGES = ("sts_conformance", "sts_reference")
USAGE_ERROR = 2


@dataclasses.dataclass(frozen=True)
class Setup:
    """What one run is measured against: the reference's options and the pytest-xdist workers."""

    workers: str | None = None
    delay_ms: int = 0
    create_delay_ms: int = 0
    fault: str | None = None
    #: the profile's ``checks_together`` (the working tree's side only: an older revision has no such key)
    checks_together: bool = False

    def describe(self) -> str:
        parts = []
        if self.delay_ms:
            parts.append(f"a target {self.delay_ms} ms away")
        parts.append(f"{self.create_delay_ms} ms a create" if self.create_delay_ms else "instant creates")
        if self.fault:
            parts.append(f"fault {self.fault}")
        parts.append(f"-n {self.workers}" if self.workers else "serial")
        if self.checks_together:
            parts.append("checks together")
        return ", ".join(parts)

    def options(self) -> str:
        """The bench_run.py options that measure this setup alone."""
        words = []
        if self.workers:
            words += ["-n", self.workers]
        if self.delay_ms:
            words += ["--delay-ms", str(self.delay_ms)]
        if self.create_delay_ms:
            words += ["--create-delay-ms", str(self.create_delay_ms)]
        if self.fault:
            words += ["--fault", self.fault]
        if self.checks_together:
            words += ["--checks-together"]
        return " ".join(words)


#: the setups of ``--table`` (issue 25): the default run with creates taking 0, 150 and 600 ms,
#: and against a target 150 ms away, each serial and with 8 workers
ROWS: dict[str, Setup] = {
    "create-0": Setup(),
    "create-150": Setup(create_delay_ms=150),
    "create-600": Setup(create_delay_ms=600),
    "away-150": Setup(delay_ms=150),
    "create-0-n8": Setup(workers="8"),
    "create-150-n8": Setup(workers="8", create_delay_ms=150),
    "create-600-n8": Setup(workers="8", create_delay_ms=600),
    "away-150-n8": Setup(workers="8", delay_ms=150),
}


@dataclasses.dataclass(frozen=True)
class Side:
    """Whose suites run (``suites_root``) and whose reference server they launch (``server_root``)."""

    name: str
    suites_root: Path
    server_root: Path = REPO

    @property
    def own_server(self) -> bool:
        return self.suites_root.resolve() == self.server_root.resolve()


class BenchError(Exception):
    """A benchmark that cannot be run as asked; the message says why."""


# ---- the profile each run launches --------------------------------------------------------


def server_command(server_root: Path) -> str:
    """A launch prefix that runs ``server_root``'s reference server, whatever the working
    directory and ``PYTHONPATH`` of the suite that launches it (``-m`` would put the working
    directory first on the path, and a baseline's run works in the baseline's tree)."""
    code = "import sys; sys.path.insert(0, sys.argv.pop(1)); from sts_reference.__main__ import main; sys.exit(main())"
    return f"{{python}} -c {shlex.quote(code)} {shlex.quote(str(server_root))} "


def profile(directory: Path, setup: Setup, side: Side) -> Path:
    """Write the run's profile into ``directory``: ``side``'s own ``reference.yaml`` with the
    setup's options (and ``--stats-file``) added to its launch, which runs the reference
    server of ``side.server_root``."""
    source = side.suites_root / "fixtures" / "targets" / "reference.yaml"
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    launch = str(data["launch"])
    if not side.own_server:
        if not launch.startswith(REFERENCE_LAUNCH):
            raise BenchError(f"{source}: launch does not start with {REFERENCE_LAUNCH.strip()!r}: {launch!r}")
        launch = server_command(side.server_root) + launch[len(REFERENCE_LAUNCH) :]
    launch += f" --stats-file {shlex.quote(str(directory / 'stats-{port}.json'))}"
    if setup.delay_ms:
        launch += f" --delay-ms {setup.delay_ms}"
    if setup.create_delay_ms:
        launch += f" --create-delay-ms {setup.create_delay_ms}"
    slowest_s = (setup.delay_ms + setup.create_delay_ms) / 1000
    if slowest_s:
        data["request_timeout"] = max(float(data.get("request_timeout", 10.0)), 10.0, slowest_s * 20)
    if setup.fault:
        launch += f" --fault {shlex.quote(setup.fault)}"
    data["launch"] = launch
    if setup.checks_together and side.own_server:
        data["checks_together"] = True
    path = directory / "bench.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


# ---- one run ------------------------------------------------------------------------------


def run_environment(side: Side) -> dict[str, str]:
    """The environment of a run: the user's, less the suite's settings, with ``PYTHONPATH``
    naming the side's tree first when it is not this one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STS_", "PYTEST_"))}
    if side.suites_root.resolve() != REPO:
        env["PYTHONPATH"] = os.pathsep.join([str(side.suites_root), *filter(None, [env.get("PYTHONPATH")])])
    return env


def check_imports(side: Side) -> dict[str, str]:
    """Where a run of ``side`` imports the harness and the reference from; BenchError unless
    both come from the side's own tree."""
    code = "import json, " + ", ".join(OWN_PACKAGES) + "; print(json.dumps({"
    code += ", ".join(f"{name!r}: {name}.__file__" for name in OWN_PACKAGES) + "}))"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=side.suites_root,
        env=run_environment(side),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"{side.name}: cannot import {', '.join(OWN_PACKAGES)}: {done.stderr.strip()[-500:]}")
    files: dict[str, str] = json.loads(done.stdout)
    root = side.suites_root.resolve()
    for name, file in files.items():
        if not Path(file).resolve().is_relative_to(root):
            raise BenchError(f"{side.name}: {name} would be imported from {file}, not from {root}")
    return files


def one_run(setup: Setup, side: Side, budget: float) -> dict[str, Any]:
    """Run the suites of ``side`` once against the reference in ``setup``; the figures."""
    with tempfile.TemporaryDirectory(prefix="sts-bench-") as tmp:
        directory = Path(tmp)
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "suites",
            "-q",
            "-p",
            "no:cacheprovider",
            "--target",
            str(profile(directory, setup, side)),
            "--report-dir",
            str(directory / "reports"),
            "--time-budget",
            str(budget),
        ]
        if setup.workers:
            cmd += ["-n", setup.workers]
        load = os.getloadavg()[0]
        started = time.monotonic()
        done = subprocess.run(
            cmd, cwd=side.suites_root, env=run_environment(side), capture_output=True, text=True, check=False
        )
        wall = time.monotonic() - started
        report_path = directory / "reports" / "conformance.json"
        if not report_path.is_file():
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
            raise BenchError(f"{side.name}: the run wrote no report (exit status {done.returncode}):\n{tail}")
        report = json.loads(report_path.read_text(encoding="utf-8"))
        kept = keep_reports(directory / "reports", done.stdout + done.stderr) if done.returncode != 0 else None
        main = f"stats-{report['target']['url'].rsplit(':', 1)[1]}"
        requests = tokens = alive = alive_elsewhere = 0
        for path in directory.glob("stats-*.json"):
            stats = json.loads(path.read_text(encoding="utf-8"))
            requests += stats["requests"]
            tokens += stats["tokens_created"]
            if path.stem == main:
                alive += stats["tokens_alive"]
            else:  # further instances: what a launch command that keeps its data would keep
                alive_elsewhere += stats["tokens_alive"]
    return {
        "exit_status": done.returncode,
        "wall_s": round(wall, 1),
        "load_1min": round(load, 2),
        "requests": requests,
        "tokens_created": tokens,
        "tokens_left": alive,
        "tokens_left_on_launched_instances": alive_elsewhere,
        "latency_ms": report["run"].get("latency_ms"),
        "failed_requirements": sorted(r["id"] for r in report["requirements"] if r["status"] == "failed"),
        **({"kept_reports": str(kept)} if kept else {}),
    }


def keep_reports(reports: Path, output: str) -> Path:
    """A copy of a failed run's reports and terminal output (secrets masked by the suite, as
    it shows them to a user), kept after the run's temporary directory goes: a failure while
    benchmarking is a finding to read, not just a slower figure."""
    kept = Path(tempfile.mkdtemp(prefix="sts-bench-failed-"))
    shutil.copytree(reports, kept, dirs_exist_ok=True)
    (kept / "pytest-output.txt").write_text(output, encoding="utf-8")
    return kept


def medians(results: Sequence[dict[str, Any]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in results) for key in ("wall_s", "requests", "tokens_created")}


# ---- tables -------------------------------------------------------------------------------


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _walls(results: Sequence[dict[str, Any]]) -> str:
    return " / ".join(f"{r['wall_s']:.1f}" for r in results)


def _ratio(current: float, base: float) -> str:
    return f"{current / base:.2f}×" if base else "–"


def figures_table(rows: Sequence[tuple[str, Setup, Sequence[dict[str, Any]]]]) -> str:
    """One setup a line: its runs' wall times, their median, requests and tokens (medians)."""
    lines = [
        "| setup | options | requests | tokens | wall, each run (s) | wall, median (s) | load at start |",
        "|---|---|---:|---:|---|---:|---|",
    ]
    for key, setup, results in rows:
        median = medians(results)
        loads = " / ".join(f"{r['load_1min']:.1f}" for r in results)
        lines.append(
            f"| {key}: {setup.describe()} | `{setup.options()}` | {_number(median['requests'])} | "
            f"{_number(median['tokens_created'])} | {_walls(results)} | {median['wall_s']:.1f} | {loads} |"
        )
    return "\n".join(lines)


def ratio_table(
    rows: Sequence[tuple[str, Setup, Sequence[dict[str, Any]], Sequence[dict[str, Any]]]], base_name: str
) -> str:
    """Side by side: per setup, the base's and the working tree's figures (medians) and the
    ratios working tree / base of wall time, requests and tokens."""
    lines = [
        f"| setup | wall {base_name} (s) | wall working tree (s) | wall ratio | requests {base_name} → working "
        f"tree (ratio) | tokens {base_name} → working tree (ratio) |",
        "|---|---|---|---:|---|---|",
    ]
    for key, setup, base, current in rows:
        b, c = medians(base), medians(current)
        lines.append(
            f"| {key}: {setup.describe()} | {b['wall_s']:.1f} ({_walls(base)}) | "
            f"{c['wall_s']:.1f} ({_walls(current)}) | "
            f"{_ratio(c['wall_s'], b['wall_s'])} | {_number(b['requests'])} → {_number(c['requests'])} "
            f"({_ratio(c['requests'], b['requests'])}) | {_number(b['tokens_created'])} → "
            f"{_number(c['tokens_created'])} ({_ratio(c['tokens_created'], b['tokens_created'])}) |"
        )
    return "\n".join(lines)


# ---- the base revision --------------------------------------------------------------------


def resolve_revision(revision: str) -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"--against {revision!r}: not a commit of the repository at {REPO}")
    return done.stdout.strip()


def export_revision(commit: str, directory: Path) -> Path:
    """The tree of ``commit`` (``git archive``) written under ``directory``; its path."""
    archive = subprocess.run(["git", "archive", "--format=tar", commit], cwd=REPO, capture_output=True, check=False)
    if archive.returncode != 0:
        raise BenchError(f"git archive {commit} failed: {archive.stderr.decode(errors='replace').strip()}")
    root = directory / commit[:12]
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        if hasattr(tarfile, "data_filter"):  # Python 3.11.4 and later
            tar.extractall(root, filter="data")
        else:  # the archive is git's own, of this repository
            tar.extractall(root)
    return root


# ---- command line -------------------------------------------------------------------------


def _rows(text: str) -> list[str]:
    keys = [key.strip() for key in text.split(",") if key.strip()]
    unknown = [key for key in keys if key not in ROWS]
    if unknown or not keys:
        raise argparse.ArgumentTypeError(
            f"unknown row {', '.join(unknown) or repr(text)}; known rows: {', '.join(ROWS)}"
        )
    return keys


def _milliseconds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of milliseconds: {text!r}") from None
    if not 0 <= value <= 60_000:
        raise argparse.ArgumentTypeError(f"must be 0..60000 milliseconds: {value}")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench_run.py",
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--runs", type=_positive, default=None, help="runs per setup (default 3; 2 with --table)")
    parser.add_argument("-n", dest="workers", default=None, help="pytest-xdist workers (e.g. 2, 8, auto)")
    parser.add_argument(
        "--delay-ms", type=_milliseconds, default=0, help="the reference answers this much later (default 0)"
    )
    parser.add_argument(
        "--create-delay-ms",
        type=_milliseconds,
        default=0,
        help="the reference answers each create this much later still, like a slow hash (default 0)",
    )
    parser.add_argument("--fault", default=None, help="run against the reference with this fault")
    parser.add_argument(
        "--checks-together",
        action="store_true",
        help="the working tree's runs with the profile's checks_together: true (an older revision's without)",
    )
    parser.add_argument("--budget", type=float, default=120.0, help="--time-budget of each run (default 120)")
    parser.add_argument("--table", action="store_true", help="measure the setups of the performance table (see --rows)")
    parser.add_argument(
        "--rows",
        type=_rows,
        default=None,
        metavar="KEY,KEY...",
        help=f"with --table, only these setups (default all: {', '.join(ROWS)})",
    )
    parser.add_argument(
        "--against",
        metavar="REV",
        default=None,
        help="also measure this git revision's suites, side by side with the working tree, and print ratios",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    single = args.workers or args.delay_ms or args.create_delay_ms or args.fault
    if args.table and single:
        parser.error("--table measures its own setups; -n, --delay-ms, --create-delay-ms and --fault are for one setup")
    if args.rows and not args.table:
        parser.error("--rows picks setups of --table")
    if args.runs is None:
        args.runs = 2 if args.table else 3
    return args


def chosen_setups(args: argparse.Namespace) -> list[tuple[str, Setup]]:
    if args.table:
        return [
            (key, dataclasses.replace(ROWS[key], checks_together=args.checks_together)) for key in (args.rows or ROWS)
        ]
    setup = Setup(args.workers, args.delay_ms, args.create_delay_ms, args.fault, args.checks_together)
    return [("setup", setup)]


def measure(
    setups: Sequence[tuple[str, Setup]],
    sides: Sequence[Side],
    runs: int,
    budget: float,
    run: Callable[[Setup, Side, float], dict[str, Any]] = one_run,
) -> list[tuple[str, Setup, list[list[dict[str, Any]]]]]:
    """Every setup ``runs`` times, the sides one after the other within each run; per setup,
    the results of each side."""
    measured = []
    for key, setup in setups:
        per_side: list[list[dict[str, Any]]] = [[] for _ in sides]
        for i in range(runs):
            for results, side in zip(per_side, sides, strict=True):
                result = run(setup, side, budget)
                results.append(result)
                print(f"{key} ({setup.describe()}), {side.name}, run {i + 1}: {json.dumps(result)}", flush=True)
        measured.append((key, setup, per_side))
    return measured


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    setups = chosen_setups(args)
    sides = [Side("working tree", REPO)]
    try:
        with tempfile.TemporaryDirectory(prefix="sts-bench-base-") as tmp:
            if args.against:
                commit = resolve_revision(args.against)
                base = Side(args.against, export_revision(commit, Path(tmp)))
                sides.insert(0, base)
                for side in sides:
                    print(f"{side.name}: imports {json.dumps(check_imports(side))}", flush=True)
            print(f"uptime: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}", flush=True)
            measured = measure(setups, sides, args.runs, args.budget)
    except BenchError as exc:
        print(f"bench_run: error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    if args.against:
        print(ratio_table([(key, setup, base, current) for key, setup, (base, current) in measured], args.against))
    elif args.table:
        print(figures_table([(key, setup, results) for key, setup, (results,) in measured]))
    else:
        (_, setup, (results,)) = measured[0]
        summary = medians(results)
        described = {"runs": args.runs, "workers": setup.workers or 0, "delay_ms": setup.delay_ms}
        described |= {"create_delay_ms": setup.create_delay_ms, "fault": setup.fault}
        print(f"median over {args.runs} run(s) ({json.dumps(described)}): {json.dumps(summary)}")
    if args.json:
        written = {
            "against": args.against,
            "setups": [
                {
                    "key": key,
                    "setup": dataclasses.asdict(setup),
                    "sides": {
                        side.name: {"runs": res, "median": medians(res)}
                        for side, res in zip(sides, per_side, strict=True)
                    },
                }
                for key, setup, per_side in measured
            ],
        }
        args.json.write_text(json.dumps(written, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
