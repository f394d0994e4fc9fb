"""The one write path (DESIGN §1, §6): guards → targets → writes → record state. Every flow runs
through `apply_event`; flows only supply their TableMap. The stages are their own modules
(shared.targets computes what the target should hold, shared.writes sends it) so reconcile and
trace compute a mapping the same way without writing.
"""

from __future__ import annotations

import json
from typing import Any

from shared.documents import apply_document
from shared.engine import Engine
from shared.errors import (
    AuthError,
    MappingError,
    MissingDependencyError,
    NotFoundError,
    OutOfScopeError,
    PermanentServiceError,
    PreconditionFailedError,
    RecordExistsError,
    RecordNotFoundByKeyError,
    ServiceError,
    TransientServiceError,
)
from shared.events import ChangeEvent, Operation, Source, payload_hash
from shared.extensions import WHAT_TO_ADD
from shared.key_text import split_key_parts
from shared.maps import System, TableMap
from shared.outcomes import (
    ECHO,
    EXTENSION_MISSING,
    FILTERED,
    MAPPING,
    MISSING_DEPENDENCY,
    NO_MAPPED_CHANGE,
    OPERATION_NOT_ALLOWED,
    OUT_OF_SCOPE,
    REJECTED,
    SOURCE_EXISTS,
    SOURCE_GONE,
    STALE,
    STATE_CONFLICT,
    TOMBSTONE,
    TRANSIENT,
    UNCHANGED,
    Outcome,
)
from shared.records import row_version
from shared.settings import Settings
from shared.state.base import StateConflictError, SyncState
from shared.targets import (
    TargetRow,
    build_target_rows,
    complete_record,
    passes_filter,
    read_source_row,
    source_key,
)
from shared.values import Value
from shared.writes import delete_rows, move_row, moved_from, write_row

# The stages' names the flow path has always offered.
__all__ = ["Engine", "TargetRow", "apply_event", "build_target_rows", "passes_filter", "source_key"]


async def apply_event(engine: Engine, table_map: TableMap, event: ChangeEvent) -> Outcome:
    """Apply one event; service and mapping failures become outcomes, bugs propagate."""
    try:
        return await _apply(engine, table_map, event)
    except MissingDependencyError as exc:
        return Outcome.retry_later(MISSING_DEPENDENCY, exc.reference)
    except RecordNotFoundByKeyError as exc:
        return Outcome.retry_later(MISSING_DEPENDENCY, exc.service_message)
    except TransientServiceError as exc:
        return Outcome.retry_later(TRANSIENT, str(exc), exc.retry_after)
    except AuthError as exc:
        return Outcome.retry_later(TRANSIENT, f"token: {exc}")
    except OutOfScopeError as exc:
        return Outcome.skipped(OUT_OF_SCOPE, str(exc))
    except MappingError as exc:
        return Outcome.parked(MAPPING, str(exc))
    except (PermanentServiceError, PreconditionFailedError, RecordExistsError, NotFoundError) as exc:
        return Outcome.parked(REJECTED, _service_text(exc))
    except StateConflictError as exc:
        return Outcome.retry_later(STATE_CONFLICT, str(exc), again=_written_again(table_map, event))


def _written_again(table_map: TableMap, event: ChangeEvent) -> ChangeEvent | None:
    """What is sent again when another instance applied an event of the record while this one did
    (its session lock expired mid-event, Service Bus gave the session to another): this instance's
    target write may have landed after the other's, so the target can hold an older row than the
    source and than the state the other stored. Its retry (in the record's session, after the other
    instance) writes what the source holds now: read again, with the version of the row read (not
    this event's, which the other's state may have passed: the version guard would skip it as stale),
    and written even where the state's hash says unchanged. A delete goes again as it is: it
    re-reads nothing, and the tombstone and versions then decide."""
    if event.operation is Operation.DELETE:
        return None
    again = event.replace(version=None, rewrite=True)
    if table_map.source.system is System.DATAVERSE:
        # A Finance flow reads the row again under the session anyway, by the key the images give.
        again = again.replace(record=None, before=None, changed=None, partial=False, notification_only=True)
    return again


def _service_text(exc: ServiceError) -> str:
    code = f" [{exc.code}]" if exc.code else ""
    return f"{exc.system} answered {exc.status}{code}: {exc.service_message}"


async def _apply(engine: Engine, table_map: TableMap, event: ChangeEvent) -> Outcome:
    extension = table_map.target.requires_extension
    if extension and extension not in engine.settings.finance_extensions:
        return Outcome.parked(
            EXTENSION_MISSING,
            f"{table_map.target.entity_set} is not in Finance's standard $metadata: add {WHAT_TO_ADD[extension]}, "
            f"list {extension} in PROJOPS_FINANCE_EXTENSIONS, then replay",
        )
    operation = event.operation
    if operation is not Operation.UPSERT and not table_map.allows(operation):
        return Outcome.skipped(OPERATION_NOT_ALLOWED, operation.value)

    state = await engine.state.get_state(table_map.name, event.key)
    # Every state write of this event is conditional on what was read here (and fan-out rows on
    # theirs): if another instance applies an event of the record meanwhile, the write is refused
    # (StateConflictError) instead of putting an older version over the other's.
    read = state
    if state is not None and state.tombstone:
        if operation is not Operation.CREATE and not _reads_past_tombstone(table_map, operation):
            return Outcome.skipped(TOMBSTONE)
        if event.version is not None and state.version is not None and event.version <= state.version:
            # The asynchronous service does not keep order: this Create is the deleted row's, late.
            return Outcome.skipped(TOMBSTONE, f"the create (version {event.version}) is older than the delete")
    if event.version is not None and state is not None and state.version is not None and event.version < state.version:
        return Outcome.skipped(STALE, f"version {event.version} < applied {state.version}")
    if _is_own_change(engine.settings, table_map, event):
        await _note_echo(engine, table_map, event, state)
        return Outcome.skipped(ECHO)
    if table_map.document is not None:
        return await apply_document(engine, table_map, event)
    if (
        operation is Operation.UPDATE
        and event.changed is not None
        and not event.notification_only
        and not _touches(table_map, event.changed)
    ):
        return Outcome.skipped(NO_MAPPED_CHANGE)

    if operation is Operation.DELETE:
        if event.source is Source.RECONCILE and event.target_key is not None and state is None:
            kept = await _orphans_source(engine, table_map, event.target_key)
            if kept is not None:
                return Outcome.skipped(SOURCE_EXISTS, kept)
        if table_map.source.system is System.FINANCE and await _source_still_has(engine, table_map, event):
            # A delete that arrives after the row was created again is older than what Finance holds.
            return Outcome.skipped(SOURCE_EXISTS, "Finance still has the row: the delete is older than it")
        return await delete_rows(engine, table_map, event, state)

    record = await complete_record(engine, table_map, event, state)
    if record is None:
        return Outcome.skipped(SOURCE_GONE)
    if event.rewrite and table_map.source.system is System.DATAVERSE:
        # The row was read again (shared.targets.complete_record): its own version is what is applied.
        version = row_version(record.get("versionnumber"))
        if version is not None:
            event = event.replace(version=version)
    if table_map.filter is not None and not passes_filter(table_map, record):
        return Outcome.skipped(FILTERED, table_map.filter.description)

    rows = await build_target_rows(engine, table_map, event, record)
    written: list[str] = []
    for row in rows:
        row_state = state if row.state_key == event.key else await engine.state.get_state(table_map.name, row.state_key)
        row_read = row_state
        digest = payload_hash(row.payload)
        # Reconcile saw the target differ from this payload, or another instance's older write may
        # have landed over ours: what we last wrote says nothing then.
        repairing = event.source is Source.RECONCILE or event.rewrite
        if row_state is not None and row_state.payload_hash == digest and not row_state.tombstone and not repairing:
            continue
        moved = moved_from(table_map, row, row_state)
        if moved is not None:
            await move_row(engine, table_map, row, moved)
            row_state = None  # nothing is under the new key of ours: a create, not an update, first
        await write_row(engine, table_map, row, row_state)
        written.append(row.key_text)
        if row.state_key != event.key:
            fanned = SyncState(table_map.name, row.state_key, event.version, digest, row.key_text)
            await engine.state.put_state(fanned, read=row_read)
        elif state is None or state.payload_hash != digest or state.tombstone:
            state = SyncState(table_map.name, event.key, event.version, digest, row.key_text)

    main = state or SyncState(table_map.name, event.key)
    if event.version is not None and (main.version is None or event.version > main.version):
        main.version = event.version
    main.tombstone = False
    await engine.state.put_state(main, read=read)
    if not written:
        return Outcome.skipped(UNCHANGED)
    return Outcome.written(len(written), tuple(written))


async def _orphans_source(engine: Engine, table_map: TableMap, target_key: dict[str, Any]) -> str | None:
    """Why a target row reconcile found no source row for is not deleted, or None to delete it.

    Reconcile's snapshot of the source can miss a row the target still owes to it: one created after
    the source was read, one it could not map or filtered out, one of a company taken out of scope,
    one that moved between pages. This flow's state knows which record it wrote the row from; while
    that record can be read from the source, the row is not an orphan (and while it cannot be read
    again at all, a person decides)."""
    written = await engine.state.find_by_target_key(table_map.name, json.dumps(target_key, default=str))
    if written is None:
        return None
    source = table_map.source
    system = source.system.display_name
    known: dict[str, Value] = {}
    if source.system is System.FINANCE:
        parts = split_key_parts(written.key)
        if table_map.document is None and len(parts) == len(source.key_columns):
            known = dict(zip(source.key_columns, parts, strict=True))
    if known or source.system is System.DATAVERSE:
        probe = ChangeEvent(
            event_id="orphan",
            source=Source.RECONCILE,
            entity=source.entity,
            operation=Operation.DELETE,
            key=written.key,
        )
        try:
            row = await read_source_row(engine, table_map, probe, known)
        except MappingError:
            pass  # a key it cannot be read again by
        else:
            return None if row is None else f"its source record {written.key} still exists in {system}"
    return f"it was written from {system} record {written.key}, which could not be read again: check it there"


async def _note_echo(engine: Engine, table_map: TableMap, event: ChangeEvent, state: SyncState | None) -> None:
    """The reverse flow has just written this record from the target's side, so the target holds what
    it copied, not what this flow last wrote there: the payload hash no longer says "unchanged" (a user
    who reverts the change must reach the target), and the echo's version is the newest the source had
    (a retry or a backlog of an older change must not overwrite what came back). The row also tells
    an initial sync that the record was changed since its page was read."""
    version = event.version
    if state is not None and state.version is not None and (version is None or version < state.version):
        version = state.version
    if state is not None and state.payload_hash is None and state.version == version:
        return  # nothing to note: a second echo of the same write
    target_key = state.target_key if state is not None else None
    await engine.state.put_state(SyncState(table_map.name, event.key, version, None, target_key), read=state)


async def _source_still_has(engine: Engine, table_map: TableMap, event: ChangeEvent) -> bool:
    known = {**(event.before or {}), **(event.record or {})}
    try:
        return await read_source_row(engine, table_map, event, known) is not None
    except MappingError:
        return False


def _reads_past_tombstone(table_map: TableMap, operation: Operation) -> bool:
    """A Finance flow reads the row again under the record's session (shared.targets.complete_record),
    so that read, not the tombstone, says whether the record exists: one made again under the same
    key after its delete (its Created event missed) syncs on the next update, initial sync or
    reconcile, and a late update of the deleted row reads as gone. A Dataverse event carries its own
    image and version, so there the tombstone stands."""
    return table_map.source.system is System.FINANCE and operation in (Operation.UPDATE, Operation.UPSERT)


def _is_own_change(settings: Settings, table_map: TableMap, event: ChangeEvent) -> bool:
    if table_map.accept_own_changes:
        return False
    who = event.initiated_by
    if table_map.source.system is System.DATAVERSE and event.depth is not None and event.depth > 1:
        # Microsoft's own logic answering our write (a plug-in, a workflow) runs as our user, one level
        # deeper: what it changes is its change, not our echo (DESIGN §6).
        return False
    if table_map.source.system is System.DATAVERSE and who.user_id:
        return who.user_id.lower() in settings.integration_user_ids
    if who.aad_object_id:
        return who.aad_object_id.strip("{}").lower() in settings.integration_object_ids
    return False


def _touches(table_map: TableMap, changed: list[str]) -> bool:
    mapped = {column.lower() for column in table_map.source_columns}
    return any(column.lower() in mapped for column in changed)
