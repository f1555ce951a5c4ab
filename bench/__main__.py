"""python -m bench [--quick | --full] [--only recommender,site,events,checkout,memory]

Runs each hop against its bare baseline, A B A B, writes bench-results/report.md
and report.json and prints the summary table. Exits non-zero only when the
harness itself breaks, never because a target was missed.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench.config import FULL, QUICK, Mode
from bench.procs import REPO_ROOT
from bench.stats import Report, Section, Target

HOPS = ("recommender", "site", "events", "checkout", "memory")
MEMORY_LIMIT_MB = 150.0


def memory_section(memory: dict[str, float]) -> Section:
    section = Section("Memory (peak RSS per process, MB)")
    section.figures.update(memory)
    for name, value in memory.items():
        if "baseline" not in name:
            section.targets.append(Target(f"{name} peak RSS", value, MEMORY_LIMIT_MB, False, " MB"))
    return section


def hop_runner(name: str) -> Callable[[Mode, dict[str, float]], Section]:
    if name == "recommender":
        from bench import hop_recommender

        return hop_recommender.run
    if name == "site":
        from bench import hop_site

        return hop_site.run
    if name == "events":
        from bench import hop_events

        return hop_events.run
    from bench import hop_checkout

    return hop_checkout.run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small sizes, < 90 s (smoke check)")
    size.add_argument("--full", action="store_true", help="the sizes of the targets (default)")
    parser.add_argument("--only", default=",".join(HOPS), help="comma-separated hops")
    parser.add_argument("--out", default=str(REPO_ROOT / "bench-results"))
    args = parser.parse_args(argv)
    mode = QUICK if args.quick else FULL
    only = [h.strip() for h in args.only.split(",") if h.strip()]
    unknown = set(only) - set(HOPS)
    if unknown:
        parser.error(f"unknown hop(s) {', '.join(sorted(unknown))}; known: {', '.join(HOPS)}")
    if only == ["memory"]:
        # Memory is measured on the processes the other hops run.
        only = ["recommender", "site", "events", "memory"]

    started = time.monotonic()
    report = Report(
        mode=mode.name,
        machine={
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "system": platform.platform(terse=True),
        },
    )
    memory: dict[str, float] = {}
    failed = []
    for hop in only:
        if hop == "memory":
            continue
        print(f"bench: {hop} ({mode.name}) ...", flush=True)
        hop_started = time.monotonic()
        try:
            report.sections.append(hop_runner(hop)(mode, memory))
        except Exception:
            traceback.print_exc()
            failed.append(hop)
        print(f"bench: {hop} took {time.monotonic() - hop_started:.1f} s", flush=True)
    if "memory" in only and memory:
        report.sections.append(memory_section(memory))
    report.seconds = time.monotonic() - started
    md, js = report.write(Path(args.out))
    print()
    print(report.table())
    print(f"\nreport: {md} and {js} ({report.seconds:.0f} s)")
    if failed:
        print(f"bench: the harness failed on {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
