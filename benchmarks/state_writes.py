"""State-store writes per settled event, for a burst of events settled by many flows at once.

Each event is stored as the pipeline and settle store it: the record's state read and written
(the duplicate/stale guard), then settle's history row and counts. SQLite (the sandbox's file, WAL):
commits and this process's CPU per event. Table Storage (Azurite, the real emulator): HTTP requests
per event, counted by a request hook on the SDK's pipeline, after one warm-up event has created
the tables.

    PYTHONPATH=. .venv/bin/python -m benchmarks.state_writes [events] [concurrency]
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.events import ChangeEvent, Operation, Source
from shared.outcomes import Outcome
from shared.settings import AuthMode, BusBackend, Settings, StateBackend
from shared.settlement import settle
from shared.state.base import StateStore, SyncState
from shared.state.sqlite_store import SqliteStateStore
from shared.state.table_store import TableStateStore
from tests.azurite import AzuriteTables
from tests.unit.fakes import RecordingSender

FLOW = "actuals"


@dataclass
class Burst:
    events: int
    concurrency: int
    seconds: float
    cpu_seconds: float
    writes: int  # commits (SQLite) or HTTP write requests (Table Storage)
    reads: int = 0  # HTTP read requests (Table Storage: the state read of each event)

    @property
    def per_event(self) -> float:
        return self.writes / self.events

    @property
    def cpu_us_per_event(self) -> float:
        return self.cpu_seconds * 1e6 / self.events


def _settings() -> Settings:
    return Settings.model_validate(
        {
            "dataverse_url": "http://127.0.0.1:1",
            "finance_url": "http://127.0.0.1:2",
            "auth_mode": AuthMode.NONE,
            "state_backend": StateBackend.SQLITE,
            "bus_backend": BusBackend.LOCAL,
        }
    )


def _events(count: int, run_id: str | None) -> Iterator[ChangeEvent]:
    source = Source.INITIAL_SYNC if run_id else Source.DATAVERSE
    for n in range(count):
        yield ChangeEvent(
            event_id=f"e{n}",
            source=source,
            entity="msdyn_actual",
            operation=Operation.CREATE,
            key=f"be000000-0000-4000-8000-{n:012d}",
            version=n + 1,
            correlation_id=run_id,
        )


async def _settle_all(store: StateStore, events: Iterator[ChangeEvent], concurrency: int) -> None:
    settings, sender = _settings(), RecordingSender()

    async def flow() -> None:
        for event in events:
            read = await store.get_state(FLOW, event.key)
            await store.put_state(SyncState(FLOW, event.key, event.version, "h", event.key), read=read)
            await settle(settings, store, sender, FLOW, event, Outcome.written(1, (event.key,)))

    await asyncio.gather(*(flow() for _ in range(concurrency)))


async def _timed(store: StateStore, events: int, concurrency: int, run_id: str | None, count: Any) -> Burst:
    cpu, started = time.process_time(), time.perf_counter()
    await _settle_all(store, _events(events, run_id), concurrency)
    return Burst(events, concurrency, time.perf_counter() - started, time.process_time() - cpu, count())


async def sqlite_burst(events: int, concurrency: int, run_id: str | None = None, *, trace: bool = False) -> Burst:
    """`trace` counts commits (a statement outside BEGIN..COMMIT is one); it costs CPU of its own."""
    with tempfile.TemporaryDirectory() as folder:
        store = SqliteStateStore(str(Path(folder) / "state.db"))
        commits = [0]
        if trace:
            db: sqlite3.Connection = store._db  # the bench counts what the store sends
            open_transaction = [False]

            def traced(statement: str) -> None:
                head = statement.lstrip()[:8].upper()
                if head.startswith("BEGIN"):
                    open_transaction[0] = True
                elif head.startswith(("COMMIT", "ROLLBACK")):
                    open_transaction[0] = False
                    commits[0] += 1
                elif head.startswith(("INSERT", "UPDATE", "DELETE")) and not open_transaction[0]:
                    commits[0] += 1

            db.set_trace_callback(traced)
        try:
            return await _timed(store, events, concurrency, run_id, lambda: commits[0])
        finally:
            await store.close()


async def table_burst(connection_string: str, events: int, concurrency: int, run_id: str | None = None) -> Burst:
    requests = {"read": 0, "write": 0}

    def counted(request: Any) -> None:
        requests["read" if request.http_request.method == "GET" else "write"] += 1

    store = TableStateStore(
        connection_string=connection_string,
        table_prefix=f"b{uuid.uuid4().hex[:10]}",
        client_options={"raw_request_hook": counted},
    )
    try:
        # Creating the tables is once per process, not per event.
        await _settle_all(store, _events(1, run_id), 1)
        requests.update(read=0, write=0)
        burst = await _timed(store, events, concurrency, run_id, lambda: requests["write"])
        burst.reads = requests["read"]
        return burst
    finally:
        await store.close()


def main(events: int = 1000, concurrency: int = 32) -> None:
    for name, run_id in (("live", None), ("initial sync", "r1")):
        cpu = [asyncio.run(sqlite_burst(events, concurrency, run_id)) for _ in range(3)]
        traced = asyncio.run(sqlite_burst(events, concurrency, run_id, trace=True))
        best = min(cpu, key=lambda b: b.cpu_seconds)
        runs = ", ".join(f"{b.cpu_us_per_event:.0f}" for b in cpu)
        print(
            f"sqlite  {name:12} {events} events x{concurrency}: {traced.per_event:.3f} commits/event, "
            f"CPU {best.cpu_us_per_event:.0f} µs/event (best of 3: {runs})"
        )
    azurite = AzuriteTables()
    connection = azurite.start()
    try:
        for name, run_id in (("live", None), ("initial sync", "r1")):
            burst = asyncio.run(table_burst(connection, events, concurrency, run_id))
            print(
                f"tables  {name:12} {events} events x{concurrency}: {burst.per_event:.3f} write requests/event "
                f"(and {burst.reads / events:.3f} reads), {burst.events / burst.seconds:.0f} events/s"
            )
    finally:
        azurite.stop()


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:3]))
