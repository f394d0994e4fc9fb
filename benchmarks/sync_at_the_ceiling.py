"""A 100,000-row initial sync into Dataverse under service protection, as a share of the ceiling.

`initial-sync workers` pages Finance's workers and feeds flow-workers; the flow runs on the local
host and upserts each worker into the Dataverse simulator, which enforces the documented service
protection limits for the integration's identity, scaled in time (a 30 s window instead of 300 s,
the budgets with it: the documented rates, 20 requests and 4 busy seconds a second, 52 at once). How
long Dataverse works on a row is not published; the simulator charges `ROW_MS` per row and
`REQUEST_MS` per request (inferred), so the execution-time limit is the one that binds, as it is for
bulk writes in Dataverse. The ceiling is what the limits allow one identity in requests of
`dataverse_bulk_rows` rows; the figure is rows/s from the start of the feed until the last row is in
Dataverse, divided by it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from functions.catalog import CATALOG
from sandbox.dataverse.protection import ServiceProtection
from sandbox.environment import Sandbox, SandboxOptions
from shared.clients.dataverse import DataverseClient
from shared.host_json import max_concurrent_sessions
from shared.operations.initial_sync import initial_sync

SCALE = 0.1
ROW_MS = 8.0
REQUEST_MS = 20.0
# The sessions the deployed host runs at once, and with them the buckets (host.json).
SESSIONS = max_concurrent_sessions()
BULK_ROWS = 500


@dataclass
class CeilingResult:
    rows: int
    seconds: float
    ceiling: float
    requests: int
    bulk_requests: int
    single_writes: int
    refused: dict[str, int] = field(default_factory=dict)
    other_refusals: int = 0
    parked: int = 0

    @property
    def per_second(self) -> float:
        return self.rows / self.seconds

    @property
    def share(self) -> float:
        return self.per_second / self.ceiling


async def measure(rows: int = 100_000) -> CeilingResult:
    limits = ServiceProtection.scaled(SCALE, request_ms=REQUEST_MS, row_ms=ROW_MS)
    sandbox = Sandbox(
        SandboxOptions(
            max_concurrent_sessions=SESSIONS,
            dataverse_protection=limits,
            http_max_retries=8,
            extra_settings={"http_max_retry_wait_seconds": 30.0, "dataverse_bulk_rows": BULK_ROWS},
        )
    )
    await sandbox.start()
    try:
        assert sandbox.runtime is not None
        table_map = CATALOG.by_name("workers")
        for n in range(rows):
            sandbox.finance.seed(
                "Workers",
                {"PersonnelNumber": f"W{n:06d}", "FirstName": "Pat", "LastName": f"Worker {n}", "Name": f"Pat {n}"},
            )
        meter = sandbox.dataverse.set_service_protection(limits)  # counted from here
        assert meter is not None
        sandbox.dataverse.requests.clear()
        started = time.perf_counter()
        await initial_sync(sandbox.runtime, table_map, page_size=10_000)
        await sandbox.wait_quiet(3600)
        seconds = time.perf_counter() - started
        landed = len(sandbox.dataverse.data["cdm_worker"])
        parked = len(await sandbox.runtime.engine.state.list_parked())
        if landed != rows:
            raise RuntimeError(f"only {landed} of {rows} workers reached Dataverse ({parked} parked)")
        client = sandbox.runtime.engine.dataverse
        assert isinstance(client, DataverseClient) and client.bulk is not None
        bulk = client.bulk
        requests = sandbox.dataverse.requests
        return CeilingResult(
            rows=rows,
            seconds=seconds,
            ceiling=limits.ceiling_rows_per_second(BULK_ROWS),
            requests=len(requests),
            bulk_requests=bulk.figures.bulk_requests,
            single_writes=bulk.figures.single,
            refused=dict(meter.counts.refused),
            other_refusals=sum(1 for r in requests if r.status >= 400 and r.status != 429),
            parked=parked,
        )
    finally:
        await sandbox.stop()


def run(rows: int = 100_000) -> CeilingResult:
    return asyncio.run(measure(rows))
