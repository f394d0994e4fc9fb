"""Initial-sync feed rate: page through Dataverse's actuals over HTTP and feed the flow queue, with the
next page read ahead and without, in the same run.

The source is the Dataverse simulator in a process of its own (benchmarks/simulator_process.py), at
a fixed latency per call, holding the actuals: as with a real Dataverse, rendering a page of 5,000
rows is the source's work, not ours, and it can overlap with ours only if we ask for the page before
we need it. (With the simulator in this process the two shared one event loop and one core, so
reading ahead could not overlap anything.) The flow's function is paused, so the figure is the feed
alone; the landed figure (initial_sync_landed) lets it run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from functions.catalog import CATALOG
from sandbox.environment import Sandbox, SandboxOptions
from shared.maps import TableMap
from shared.operations.initial_sync import initial_sync, source_pages
from shared.operations.pause import pause
from shared.runtime import Runtime

MAP = "actuals"
PAGE_SIZE = 5000


@dataclass
class FeedResult:
    rows: int
    seconds: float
    pages: int
    prefetch: bool

    @property
    def per_second(self) -> float:
        return self.rows / self.seconds


async def warm_source(runtime: Runtime, table_map: TableMap) -> None:
    """One row of the same query, untimed: the simulator orders a query's rows on its first page and
    keeps that order, and the first run measured should not be the only one to pay for it."""
    async for _ in source_pages(runtime, table_map, page_size=1):
        break


async def measure(urls: tuple[str, str], rows: int, *, prefetch: bool) -> FeedResult:
    sandbox = Sandbox(SandboxOptions(remote_simulators=urls))
    await sandbox.start()
    try:
        assert sandbox.runtime is not None and sandbox.runtime.switch is not None
        table_map = CATALOG.by_name(MAP)
        await pause(sandbox.runtime.switch, table_map)
        await warm_source(sandbox.runtime, table_map)
        started = time.perf_counter()
        run = await initial_sync(sandbox.runtime, table_map, page_size=PAGE_SIZE, prefetch=prefetch)
        seconds = time.perf_counter() - started
        queued = sandbox.bus.entity(table_map.flow_queue).active_count
        if run.counts["fed"] != rows or queued != rows:
            raise RuntimeError(f"fed {run.counts['fed']}, queued {queued}, expected {rows}")
        return FeedResult(rows, seconds, run.counts["pages"], prefetch)
    finally:
        await sandbox.stop()
