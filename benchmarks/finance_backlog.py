"""A Dataverse → Finance backlog with Finance `$batch` writes on and off, in the same bench run.

N msdyn_actual Create messages wait on the topic, as a catch-up after a pause would leave them; the
router and `flow_actuals` run on the local host with many sessions at once, and the Finance simulator
(in a process of its own, with the Dataverse one) answers every call after the same fixed latency.
Timed until every actual is staged in Finance, once with `finance_batch_rows` at its default (rows that
wait for Finance go as one `$batch`, a changeset a row) and once at 0 (every row its own request).

The simulator's latency is per HTTP request: it does not charge Finance's own work per operation, which
a real environment spends on every row however it arrives. The figure shows what batching saves in
round trips and requests, not in Finance's processing (inferred: not measured against a real Finance).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from benchmarks.end_to_end import STAGING, actual_messages, feed_topic
from benchmarks.simulator_process import SimulatorProcess
from sandbox.environment import Sandbox, SandboxOptions
from shared.clients.finance import FinanceClient
from shared.settings import Settings

DEFAULT_BATCH_ROWS = Settings.model_fields["finance_batch_rows"].default


@dataclass
class BacklogResult:
    records: int
    batch_rows: int
    seconds: float
    finance_requests: int
    batches: int
    batched_rows: int

    @property
    def per_second(self) -> float:
        return self.records / self.seconds

    @property
    def requests_per_row(self) -> float:
        return self.finance_requests / self.records


async def measure(records: int, latency_ms: float, sessions: int, batch_rows: int) -> BacklogResult:
    with SimulatorProcess(latency_ms) as simulators:
        sandbox = Sandbox(
            SandboxOptions(
                max_concurrent_sessions=sessions,
                remote_simulators=simulators.urls,
                extra_settings={"finance_batch_rows": batch_rows},
            )
        )
        await sandbox.start()
        try:
            messages = actual_messages(sandbox.dataverse, records)
            simulators.ask(clear=True)
            started = time.perf_counter()
            await feed_topic(sandbox, messages)
            await sandbox.wait_quiet(900)
            seconds = time.perf_counter() - started
            stats = await asyncio.to_thread(simulators.ask, [STAGING])
            if stats.rows[STAGING] != records:
                raise RuntimeError(f"only {stats.rows[STAGING]} of {records} actuals reached Finance")
            assert sandbox.runtime is not None
            client = sandbox.runtime.engine.finance
            figures = client.batches.figures if isinstance(client, FinanceClient) and client.batches else None
            return BacklogResult(
                records,
                batch_rows,
                seconds,
                stats.finance_requests,
                figures.batch_requests if figures else 0,
                figures.batch_rows if figures else 0,
            )
        finally:
            await sandbox.stop()


def run(records: int = 4000, latency_ms: float = 20.0, sessions: int = 256) -> tuple[BacklogResult, BacklogResult]:
    """The same backlog with batching on (the default size) and off, each in a fresh process pair."""
    batched = asyncio.run(measure(records, latency_ms, sessions, DEFAULT_BATCH_ROWS))
    single = asyncio.run(measure(records, latency_ms, sessions, 0))
    return batched, single
