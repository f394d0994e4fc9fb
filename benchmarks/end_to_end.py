"""End-to-end throughput through the local path: plug-in messages → router → flow → Finance.

10,000 msdyn_actual Create messages, as the Dataverse simulator's step would send them, go onto the
topic; both simulators, in a process of their own, answer every call after a fixed latency. This
process runs only what an Azure instance runs (the bus stands in for Service Bus): the router, the
flow and their HTTP clients. Measured: records per second until every record is staged in Finance,
the share of the latency-bound limit that is (sessions / latency / calls per record), HTTP calls per
synced record, and this process's CPU per record.
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import Iterator
from dataclasses import dataclass

from benchmarks.simulator_process import SimulatorProcess, actual_columns, actual_id
from functions import actuals
from sandbox.bus import LocalMessage
from sandbox.dataverse.server import DataverseSimulator, WriteEffect
from sandbox.dataverse.steps import Step, remote_execution_context
from sandbox.environment import PERSON_USER_ID, Sandbox, SandboxOptions
from shared.bus import DATAVERSE_SUBSCRIPTION, DATAVERSE_TOPIC

STAGING = "ProjActualsImports"


@dataclass
class EndToEndResult:
    records: int
    seconds: float
    calls: int
    latency_ms: float
    sessions: int
    cpu_seconds: float
    peak_rss_mb: float

    @property
    def per_second(self) -> float:
        return self.records / self.seconds

    @property
    def calls_per_record(self) -> float:
        return self.calls / self.records

    @property
    def limit_per_second(self) -> float:
        """What the latency alone allows: every session always waiting on one call."""
        return self.sessions / (self.latency_ms / 1000) / self.calls_per_record

    @property
    def share_of_limit(self) -> float:
        return self.per_second / self.limit_per_second

    @property
    def cpu_ms_per_record(self) -> float:
        return self.cpu_seconds * 1000 / self.records


TEMPLATE_ID = "be000000-0000-4000-8000-000000000000"
# Messages waiting on the bus at most, on the topic and the flow's queue together: in Azure the backlog
# lives in Service Bus, not in the instance, and here the bus is in this process, so a backlog of any
# size would be counted as the functions' memory. The router outpaces the flow: with only the topic
# bounded, the flow's queue held 9,041 of 10,000 events at its peak (12 MB of this process's heap,
# tracemalloc; at 1,000 records it cannot hold more than 1,000). 512 keeps every session of both
# functions busy.
FEED_AHEAD = 512


def actual_messages(dataverse: DataverseSimulator, records: int) -> Iterator[LocalMessage]:
    """What the msdyn_actual Create step would put on the topic for `records` new actuals: one message
    made by the simulator's step, the others the same with their own ids (cheap enough to make while
    the clock runs)."""
    table = dataverse.schema["msdyn_actual"]
    step = Step("bench", "msdyn_actual", "Create", None, False, True, "dataverse-changes", "bench-step")
    row = {
        "msdyn_actualid": TEMPLATE_ID,
        "msdyn_actualimportid": TEMPLATE_ID,
        **actual_columns(),
        "versionnumber": 1,
    }
    effect = WriteEffect(table, "Create", TEMPLATE_ID, None, row, set(row), PERSON_USER_ID)
    body, properties = remote_execution_context(dataverse, step, effect)
    assert body is not None and TEMPLATE_ID.encode() in body
    for n in range(records):
        record_id = actual_id(n)
        yield LocalMessage(
            body.replace(TEMPLATE_ID.encode(), record_id.encode()),
            "application/json",
            dict(properties),
            message_id=record_id,
        )


async def feed_topic(sandbox: Sandbox, messages: Iterator[LocalMessage]) -> None:
    subscription = sandbox.bus.entity(f"{DATAVERSE_TOPIC}/Subscriptions/{DATAVERSE_SUBSCRIPTION}")
    flow_queue = sandbox.bus.entity(actuals.MAP.flow_queue)
    for message in messages:
        # The bus has no "below N" signal to wait on, and the feed is the bench's own, not the code's.
        while len(subscription.ready) + len(flow_queue.ready) >= FEED_AHEAD:  # noqa: ASYNC110
            await asyncio.sleep(0.002)
        await sandbox.bus.send(DATAVERSE_TOPIC, message)


async def measure(records: int = 10_000, latency_ms: float = 20.0, sessions: int = 32) -> EndToEndResult:
    with SimulatorProcess(latency_ms) as simulators:
        sandbox = Sandbox(SandboxOptions(max_concurrent_sessions=sessions, remote_simulators=simulators.urls))
        await sandbox.start()
        try:
            messages = actual_messages(sandbox.dataverse, records)
            simulators.ask(clear=True)
            cpu_started = time.process_time()
            started = time.perf_counter()
            await feed_topic(sandbox, messages)
            await sandbox.wait_quiet(900)
            seconds = time.perf_counter() - started
            cpu_seconds = time.process_time() - cpu_started
            stats = await asyncio.to_thread(simulators.ask, [STAGING])
            staged = stats.rows[STAGING]
            if staged != records:
                raise RuntimeError(f"only {staged} of {records} actuals reached Finance")
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            return EndToEndResult(records, seconds, stats.requests, latency_ms, sessions, cpu_seconds, peak)
        finally:
            await sandbox.stop()


def run(records: int = 10_000, latency_ms: float = 20.0, sessions: int = 32) -> EndToEndResult:
    return asyncio.run(measure(records, latency_ms, sessions))
