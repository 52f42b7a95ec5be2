"""What one run of the conformance suites costs: wall time, and requests and tokens counted at the target.

    .venv/bin/python benchmarks/bench_run.py [--runs 3] [-n WORKERS] [--delay-ms MS] [--fault NAME] [--budget S]

Runs ``python -m pytest suites`` exactly as a user does, against the embedded reference
deployment launched by the suite (a copy of ``fixtures/targets/reference.yaml`` whose launch
adds the reference's ``--stats-file``, and ``--delay-ms`` to answer like a distant cluster,
``--fault`` to be a defective target). Every instance the run launches writes its counts; they
are summed. Wall time depends on the machine and what else runs on it; requests and tokens
do not (beyond the spread of generated examples), so they are the figures to compare.

Prints one line per run and the medians; ``--json PATH`` also writes them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]


def profile(directory: Path, *, delay_ms: int, fault: str | None) -> Path:
    data = yaml.safe_load((REPO / "fixtures" / "targets" / "reference.yaml").read_text(encoding="utf-8"))
    launch = f"{data['launch']} --stats-file {directory / 'stats-{port}.json'}"
    if delay_ms:
        launch += f" --delay-ms {delay_ms}"
        data["request_timeout"] = max(10.0, delay_ms / 1000 * 20)
    if fault:
        launch += f" --fault {fault}"
    data["launch"] = launch
    path = directory / "bench.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def one_run(args: argparse.Namespace) -> dict[str, Any]:
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
            str(profile(directory, delay_ms=args.delay_ms, fault=args.fault)),
            "--report-dir",
            str(directory / "reports"),
            "--time-budget",
            str(args.budget),
        ]
        if args.workers:
            cmd += ["-n", str(args.workers)]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("STS_", "PYTEST_"))}
        started = time.monotonic()
        done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
        wall = time.monotonic() - started
        report = json.loads((directory / "reports" / "conformance.json").read_text(encoding="utf-8"))
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
        "requests": requests,
        "tokens_created": tokens,
        "tokens_left": alive,
        "tokens_left_on_launched_instances": alive_elsewhere,
        "latency_ms": report["run"].get("latency_ms"),
        "failed_requirements": sorted(r["id"] for r in report["requirements"] if r["status"] == "failed"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="how many runs (default 3)")
    parser.add_argument("-n", dest="workers", default=None, help="pytest-xdist workers (e.g. 2, 8, auto)")
    parser.add_argument("--delay-ms", type=int, default=0, help="the reference answers this much later (default 0)")
    parser.add_argument("--fault", default=None, help="run against the reference with this fault")
    parser.add_argument("--budget", type=float, default=120.0, help="--time-budget of each run (default 120)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    results = []
    for i in range(args.runs):
        result = one_run(args)
        results.append(result)
        print(f"run {i + 1}: {json.dumps(result)}", flush=True)
    summary = {key: statistics.median(r[key] for r in results) for key in ("wall_s", "requests", "tokens_created")}
    setup = {"runs": args.runs, "workers": args.workers or 0, "delay_ms": args.delay_ms, "fault": args.fault}
    print(f"median over {args.runs} run(s) ({json.dumps(setup)}): {json.dumps(summary)}")
    if args.json:
        args.json.write_text(json.dumps({"setup": setup, "runs": results, "median": summary}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
