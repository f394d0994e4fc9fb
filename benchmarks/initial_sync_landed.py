"""100,000 rows landed: an initial sync of Dataverse's actuals, timed until Finance has every one.

What an administrator waits for is not the feed but the last row in the target. `initial-sync
actuals` runs with the flow live: pages of 5,000 msdyn_actual rows are read from the Dataverse
simulator and fed to `flow-actuals` while the local host drains it, looking up each actual's project,
company, currency and category (once each, then cached) and staging it in ProjActualsImports in the
Finance simulator. Both simulators run in a process of their own and answer every call after a fixed
latency, so this process spends only what the functions would. The clock runs from the start of the
sync until the simulator process counts every row staged.

Why actuals: they are Project Operations' volume table (every time entry, expense and journal line
becomes actuals, so an environment holds far more of them than projects or workers), they take the
widest map with four lookups, and they are the rows the end-to-end figure writes one message at a
time, so the two figures are comparable. Finance writes that find the Finance limiter full go as one
`$batch` (shared/clients/finance_batch.py), which a backlog like this one is.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from benchmarks import initial_sync_feed as feed
from benchmarks.end_to_end import STAGING
from benchmarks.initial_sync_feed import MAP, PAGE_SIZE, FeedResult, warm_source
from benchmarks.simulator_process import SimulatorProcess
from functions.catalog import CATALOG
from sandbox.environment import Sandbox, SandboxOptions
from shared.clients.finance import FinanceClient
from shared.operations.initial_sync import initial_sync

# How often the simulator process is asked for the staged count: the landed time's resolution.
POLL_SECONDS = 0.1


@dataclass
class LandedResult:
    rows: int
    latency_ms: float
    sessions: int
    fed_seconds: float
    landed_seconds: float
    dataverse_calls: int
    finance_calls: int
    batch_requests: int
    batched_rows: int
    single_writes: int
    parked: int
    cpu_seconds: float

    @property
    def per_second(self) -> float:
        return self.rows / self.landed_seconds

    @property
    def fed_per_second(self) -> float:
        return self.rows / self.fed_seconds

    @property
    def seconds_per_100k(self) -> float:
        return self.landed_seconds * 100_000 / self.rows

    @property
    def calls_per_row(self) -> float:
        return (self.dataverse_calls + self.finance_calls) / self.rows

    @property
    def cpu_ms_per_row(self) -> float:
        """This process's CPU a row: the functions' and the feed's, the simulators' being elsewhere."""
        return self.cpu_seconds * 1000 / self.rows

    @property
    def limit_per_second(self) -> float:
        """What latency and sessions allow: every session always waiting on one call."""
        return self.sessions / (self.latency_ms / 1000) / self.calls_per_row

    @property
    def share_of_limit(self) -> float:
        return self.per_second / self.limit_per_second


async def measure(simulators: SimulatorProcess, rows: int, sessions: int) -> LandedResult:
    sandbox = Sandbox(SandboxOptions(max_concurrent_sessions=sessions, remote_simulators=simulators.urls))
    await sandbox.start()
    try:
        assert sandbox.runtime is not None
        runtime = sandbox.runtime
        table_map = CATALOG.by_name(MAP)
        await warm_source(runtime, table_map)
        await asyncio.to_thread(simulators.ask, clear=True)
        fed_at: list[float] = []
        cpu_started = time.process_time()
        started = time.perf_counter()
        feeding = asyncio.create_task(initial_sync(runtime, table_map, page_size=PAGE_SIZE))
        feeding.add_done_callback(lambda _: fed_at.append(time.perf_counter()))
        deadline = started + 900
        while True:
            stats = await asyncio.to_thread(simulators.ask, [STAGING])
            if stats.rows[STAGING] >= rows:
                break
            if feeding.done() and feeding.exception() is not None:
                raise RuntimeError("the initial sync failed") from feeding.exception()
            if time.perf_counter() > deadline:
                raise TimeoutError(f"only {stats.rows[STAGING]} of {rows} actuals in Finance after 900 s")
            await asyncio.sleep(POLL_SECONDS)
        landed_seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
        run = await feeding
        await sandbox.wait_quiet(120)
        parked = len(await runtime.engine.state.list_parked())
        if run.counts["fed"] != rows or stats.rows[STAGING] != rows:
            raise RuntimeError(f"fed {run.counts['fed']}, staged {stats.rows[STAGING]}, expected {rows}")
        client = runtime.engine.finance
        figures = client.batches.figures if isinstance(client, FinanceClient) and client.batches else None
        return LandedResult(
            rows=rows,
            latency_ms=simulators.latency_ms,
            sessions=sessions,
            fed_seconds=fed_at[0] - started,
            landed_seconds=landed_seconds,
            dataverse_calls=stats.dataverse_requests,
            finance_calls=stats.finance_requests,
            batch_requests=figures.batch_requests if figures else 0,
            batched_rows=figures.batch_rows if figures else 0,
            single_writes=figures.single if figures else 0,
            parked=parked,
            cpu_seconds=cpu_seconds,
        )
    finally:
        await sandbox.stop()


@dataclass
class InitialSyncFigures:
    fed_in_turn: FeedResult
    fed_ahead: FeedResult
    landed: LandedResult


def run(rows: int = 100_000, latency_ms: float = 20.0, sessions: int = 32) -> InitialSyncFigures:
    """The feed without and with reading ahead (flow paused), then the landed run, against one
    simulator process: the feeds write nothing, so the landed run starts from the same rows."""
    with SimulatorProcess(latency_ms, actuals=rows) as simulators:
        in_turn = asyncio.run(feed.measure(simulators.urls, rows, prefetch=False))
        ahead = asyncio.run(feed.measure(simulators.urls, rows, prefetch=True))
        landed = asyncio.run(measure(simulators, rows, sessions))
    return InitialSyncFigures(in_turn, ahead, landed)
