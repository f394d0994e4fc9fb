"""initial-sync FLOW --changes: catch up from Dataverse change tracking, deletes included.

Plug-in steps deliver nothing while they are off (or while the endpoint is unreachable past the
asynchronous service's retries); a plain initial sync re-reads every row but cannot see one that is
gone. Change tracking can: the first read returns every row and a delta link, and each read from the
stored delta link returns what was created, changed or deleted since. The delta link is kept per
flow in the runs table (run id `changes-<flow>`), replaced only once a read has been fed whole, so a
read that dies is read again from the same link (the rows fed twice are skipped as unchanged). A link
Dataverse will not answer again (its token expired) is dropped for a full tracked read, which cannot
show what was deleted meanwhile: the run says so, and reconcile finds those rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from shared.errors import ServiceError, TransientServiceError
from shared.events import ChangeEvent, Operation, Source, derive_id
from shared.maps import System, TableMap
from shared.operations.initial_sync import record_failure, row_event
from shared.runtime import Runtime
from shared.state.base import SyncRun
from shared.values import utc_now

Progress = Callable[[SyncRun], None]

# Dataverse's ExpiredVersionStamp: "Version stamp associated with the client has expired. Please
# perform a full sync." (web service error codes).
EXPIRED_VERSION_STAMP = "0x80044352"


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
    runtime: Runtime,
    table_map: TableMap,
    *,
    restart: bool = False,
    page_size: int = 5000,
    progress: Progress | None = None,
) -> SyncRun:
    """Feed the flow what changed since the stored delta link (everything, the first time). With
    `restart`, or once Dataverse refuses the stored link, every row with a new link, and a notice on
    the run that a full read cannot bring the rows deleted meanwhile."""
    if table_map.source.system is not System.DATAVERSE:
        raise ValueError(
            f"{table_map.name} reads Finance, which has no change tracking: use initial-sync --since, and reconcile "
            "to find rows deleted there"
        )
    state = runtime.engine.state
    run = await state.get_run(changes_run_id(table_map.name)) or SyncRun(
        id=changes_run_id(table_map.name), flow=table_map.name
    )
    read_id = uuid.uuid4().hex
    run.status = "running"
    run.counts = {"fed": 0, "deleted": 0, "pages": 0}
    run.errors = []
    run.options = {"kind": "changes"}
    start = None if restart else run.cursor
    if restart and run.cursor:
        run.options["notice"] = _gap_notice(table_map, "started over as asked (--restart)")
    await state.put_run(run)
    try:
        try:
            delta_link = await _feed_changes(runtime, table_map, run, read_id, start, page_size, progress)
        except ServiceError as exc:
            if start is None or run.counts["pages"] or not _link_refused(exc):
                raise
            run.options["notice"] = _gap_notice(
                table_map, f"Dataverse refused the stored delta link ({exc.status}: {exc.service_message})"
            )
            delta_link = await _feed_changes(runtime, table_map, run, read_id, None, page_size, progress)
    except Exception as exc:
        await record_failure(state, run, exc)
        raise
    run.status = "completed"
    run.cursor = delta_link or run.cursor
    run.updated_at = utc_now()
    await state.put_run(run)
    return run


async def _feed_changes(
    runtime: Runtime,
    table_map: TableMap,
    run: SyncRun,
    read_id: str,
    delta_link: str | None,
    page_size: int,
    progress: Progress | None,
) -> str | None:
    """One tracked read, fed to the flow page by page; the delta link it ends with."""
    pages = runtime.engine.dataverse.changes(table_map.source.entity_set, delta_link=delta_link, page_size=page_size)
    next_link: str | None = None
    async for page in pages:
        events = [row_event(table_map, row, read_id) for row in page.rows]
        events += [_removed(table_map, record_id, read_id) for record_id in page.removed]
        if events:
            await runtime.sender.send_events(table_map.flow_queue, events)
        run.counts["fed"] += len(page.rows)
        run.counts["deleted"] += len(page.removed)
        run.counts["pages"] += 1
        next_link = page.delta_link or next_link
        if progress is not None:
            progress(run)
    return next_link


def _link_refused(exc: ServiceError) -> bool:
    """Dataverse will not answer this delta link again: its token expired (ExpiredVersionStamp, past
    Organization.ExpireChangeTrackingInDays, 7 days by default: "the system throws an exception" and a
    full sync is needed) or it is no longer valid. Both are a 400 to the stored link itself, a
    service-made URL with nothing of ours in it, so no other request of the same read can fix it."""
    if exc.code == EXPIRED_VERSION_STAMP:
        return True  # whatever the status: the one it comes with over the Web API is not documented
    return exc.status == 400 and not isinstance(exc, TransientServiceError)


def _gap_notice(table_map: TableMap, why: str) -> str:
    return (
        f"{why}: every row read again, with a new delta link. A row deleted in Dataverse since the last "
        f"catch-up is not in a full read, so its target row stays: `projops-sync reconcile {table_map.name}` "
        "lists it as orphaned, and --repair removes it"
    )
