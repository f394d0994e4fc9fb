"""`make sandbox`: run the whole integration locally and show what it did.

Exits 0 only if every expected record reached the other side with the expected values.
`make sandbox ARGS=--serve` keeps everything running and prints the URLs.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path

from sandbox.environment import Sandbox, demo_options
from sandbox.scenario import ScenarioResult, run_scenario
from shared.console.profile import write_profile
from shared.operations.check_maps import check_live
from shared.telemetry import FIGURES


def figures_table() -> str:
    header = f"{'flow':<22}{'events':>7}{'written':>9}{'retried':>9}{'parked':>8}{'p50 ms':>9}{'p95 ms':>9}  skipped"
    lines = [header, "-" * len(header)]
    for flow in sorted(FIGURES.flows):
        f = FIGURES.flows[flow]
        skipped = ", ".join(f"{reason} {count}" for reason, count in sorted(f.skipped.items())) or "-"
        p50, p95 = f.percentile(0.5), f.percentile(0.95)
        lines.append(
            f"{flow:<22}{f.events:>7}{f.written:>9}{f.retried:>9}{f.parked:>8}"
            f"{(p50 or 0):>9.1f}{(p95 or 0):>9.1f}  {skipped}"
        )
    return "\n".join(lines)


def expectations_table(result: ScenarioResult) -> str:
    lines = []
    for e in result.expectations:
        mark = "ok  " if e.problem is None else "MISSING"
        lines.append(f"  {mark} {e.flow:<20} {e.description}" + (f"\n         → {e.problem}" if e.problem else ""))
    return "\n".join(lines)


def serve_instructions(sandbox: Sandbox, profile: Path) -> None:
    """Write the command line's profile and say how to use it and the console."""
    assert sandbox.host is not None
    write_profile(
        profile, sandbox.cli_profile(), title="projops-sync command line -> this sandbox (holds its admin key)"
    )
    key = sandbox.host.function_key
    print()
    print(f"Admin API key        {key}")
    print(f"Web console          {sandbox.host.http_url}/api/admin/console?code={key}")
    print(f"Command line         export PROJOPS_PROFILE={profile.resolve()}")
    print("                     then, e.g.: projops-sync status; projops-sync parked; projops-sync pause actuals")
    print("Serving; press Ctrl+C to stop.", flush=True)


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="sandbox", description=__doc__)
    parser.add_argument("--serve", action="store_true", help="keep running after the demo and print the URLs")
    parser.add_argument("--verbose", action="store_true", help="log every settled event")
    parser.add_argument(
        "--profile",
        default=".sandbox/cli.env",
        help="with --serve: where to write the command line's settings (default .sandbox/cli.env)",
    )
    parser.add_argument(
        "--check-maps",
        action="store_true",
        help="only run check-maps against the simulators' $metadata (exits 1 on any mismatch)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")

    started = time.perf_counter()
    sandbox = Sandbox(demo_options())
    await sandbox.start()
    try:
        print(f"Dataverse simulator  {sandbox.dataverse.api_url}")
        print(f"Finance simulator    {sandbox.finance.data_url}")
        print(f"Functions host       {sandbox.host.http_url if sandbox.host else '-'}/api")
        if args.check_maps:
            assert sandbox.runtime is not None
            problems, report = await check_live(sandbox.runtime, sandbox.runtime.maps())
            print(report)
            return 1 if problems else 0
        result = await run_scenario(sandbox)
        parked = await sandbox.runtime.engine.state.list_parked() if sandbox.runtime else []
        print()
        print(figures_table())
        print()
        print("What landed where:")
        print(expectations_table(result))
        if parked:
            print()
            print(f"Parked events ({len(parked)}):")
            for p in parked:
                print(f"  {p.flow} {p.key}: {p.reason} — {p.error[:200]}")
        print()
        elapsed = time.perf_counter() - started
        if result.missing:
            print(f"FAILED: {len(result.missing)} expectation(s) not met ({elapsed:.1f} s)")
            return 1
        print(f"All {len(result.expectations)} flows delivered what was expected ({elapsed:.1f} s).")
        if args.serve:
            serve_instructions(sandbox, Path(args.profile))
            await asyncio.Event().wait()
        return 0
    finally:
        await sandbox.stop()


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main(sys.argv[1:])))
    except KeyboardInterrupt:
        sys.exit(130)
