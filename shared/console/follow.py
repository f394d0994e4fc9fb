"""initial-sync on the command line: start a run, then show rows fed and rows landed as they go.

Fed is what the run has read from the source and queued; landed is what the flow made of those rows
(written, skipped or parked), counted in the state store by whichever instance settled them. With
--wait the command follows until the run has fed everything and its rows have landed (or the flow's
queue is empty: a row queued twice by a resumed run lands once).
"""

from __future__ import annotations

import asyncio
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from shared.console.output import console, printable, run_counts

POLL_SECONDS = 1.0


async def follow_run(backend: Any, flow: str, options: dict[str, Any], *, wait: bool, quiet: bool) -> dict[str, Any]:
    out = console(stderr=True)
    bars = Progress(
        TextColumn("{task.description:<8}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=out,
        disable=quiet or not out.is_terminal,
        transient=False,
    )
    with bars:
        fed = bars.add_task("fed", total=None, detail="")
        landed = bars.add_task("landed", total=None, detail="", visible=wait)

        def show(run: dict[str, Any]) -> None:
            count = run["counts"].get("fed", 0)
            feeding = run["status"] == "running"
            bars.update(fed, completed=count, total=None if feeding else count, detail=run["status"])
            counts = run.get("landed") or {}
            if counts:
                detail = (
                    f"written {counts.get('written', 0):,} skipped {counts.get('skipped', 0):,} "
                    f"parked {counts.get('parked', 0):,}"
                )
                bars.update(landed, completed=counts.get("landed", 0), total=count, detail=detail)

        run = await backend.start_sync(flow, options, show)
        show(run)
        while wait and not run["done"] and run["status"] != "failed":
            await asyncio.sleep(POLL_SECONDS)
            run = await backend.run(run["id"])
            show(run)
    if not quiet:
        state = "done" if run["done"] else run["status"]
        print(printable(f"{run['id']} {run['flow']} {state}: {run_counts(run)}"))
        if not wait and not run["done"]:
            print(f"follow it: projops-sync initial-sync --status --run {run['id']} (or start with --wait)")
    return run
