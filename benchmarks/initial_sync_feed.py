"""Initial-sync feed rate: page through 100,000 Dataverse rows over HTTP and feed the flow queue.

The flow's function is paused, so the figure is the feed alone (dual-write's documented rate is
about 100 rows a minute per company); the rows then drain through the normal write path.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from functions.catalog import CATALOG
from sandbox.environment import Sandbox
from shared.operations.initial_sync import initial_sync
from shared.operations.pause import pause


@dataclass
class FeedResult:
    rows: int
    seconds: float
    pages: int

    @property
    def per_second(self) -> float:
        return self.rows / self.seconds


async def measure(rows: int = 100_000, page_size: int = 5000) -> FeedResult:
    sandbox = Sandbox()
    await sandbox.start()
    try:
        assert sandbox.runtime is not None and sandbox.runtime.switch is not None
        table_map = CATALOG.by_name("resource-roles")
        await pause(sandbox.runtime.switch, table_map)
        for n in range(rows):
            sandbox.dataverse.seed(
                "bookableresourcecategory", {"name": f"Role {n}", "msdyn_resourcecategorynumber": f"R{n:06d}"}
            )
        started = time.perf_counter()
        run = await initial_sync(sandbox.runtime, table_map, page_size=page_size)
        seconds = time.perf_counter() - started
        queued = sandbox.bus.entity(table_map.flow_queue).active_count
        if run.counts["fed"] != rows or queued != rows:
            raise RuntimeError(f"fed {run.counts['fed']}, queued {queued}, expected {rows}")
        return FeedResult(rows, seconds, run.counts["pages"])
    finally:
        await sandbox.stop()


def run(rows: int = 100_000) -> FeedResult:
    return asyncio.run(measure(rows))
