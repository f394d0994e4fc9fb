"""initial-sync FLOW --changes: catch up from Dataverse change tracking, deletes included.

Plug-in steps deliver nothing while they are off (or while the endpoint is unreachable past the
asynchronous service's retries); a plain initial sync re-reads every row but cannot see one that is
gone. Change tracking can: the first read returns every row and a delta link, and each read from the
stored delta link returns what was created, changed or deleted since. The delta link is kept per
flow in the runs table (run id `changes-<flow>`), replaced only once a read has been fed whole, so a
read that dies is read again from the same link (the rows fed twice are skipped as unchanged).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from shared.events import ChangeEvent, Operation, Source, derive_id
from shared.maps import System, TableMap
from shared.operations.initial_sync import record_failure, row_event
from shared.runtime import Runtime
from shared.state.base import SyncRun
from shared.values import utc_now

Progress = Callable[[SyncRun], None]


def changes_run_id(flow: str) -> str:
    return f"changes-{flow}"


def _removed(table_map: TableMap, record_id: str, read_id: str) -> ChangeEvent:
    return ChangeEvent(
        event_id=derive_id(read_id, table_map.name, "removed", record_id),
        flow=table_map.name,
        source=Source.INITIAL_SYNC,
        entity=table_map.source.entity,
        operation=Operation.DELETE,
        key=record_id,
        correlation_id=read_id,
        message="change tracking: deleted",
    )


async def catch_up(
    runtime: Runtime, table_map: TableMap, *, page_size: int = 5000, progress: Progress | None = None
) -> SyncRun:
    """Feed the flow what changed since the stored delta link (everything, the first time)."""
    if table_map.source.system is not System.DATAVERSE:
        raise ValueError(
            f"{table_map.name} reads Finance, which has no change tracking: use initial-sync --since, and reconcile "
            "to find rows deleted there"
        )
    state = runtime.engine.state
    run = await state.get_run(changes_run_id(table_map.name)) or SyncRun(
        id=changes_run_id(table_map.name), flow=table_map.name, options={"kind": "changes"}
    )
    read_id = uuid.uuid4().hex
    run.status = "running"
    run.counts = {"fed": 0, "deleted": 0, "pages": 0}
    run.errors = []
    await state.put_run(run)
    delta_link: str | None = None
    try:
        pages = runtime.engine.dataverse.changes(
            table_map.source.entity_set, delta_link=run.cursor, page_size=page_size
        )
        async for page in pages:
            events = [row_event(table_map, row, read_id) for row in page.rows]
            events += [_removed(table_map, record_id, read_id) for record_id in page.removed]
            if events:
                await runtime.sender.send_events(table_map.flow_queue, events)
            run.counts["fed"] += len(page.rows)
            run.counts["deleted"] += len(page.removed)
            run.counts["pages"] += 1
            delta_link = page.delta_link or delta_link
            if progress is not None:
                progress(run)
    except Exception as exc:
        await record_failure(state, run, exc)
        raise
    run.status = "completed"
    run.cursor = delta_link or run.cursor
    run.updated_at = utc_now()
    await state.put_run(run)
    return run
