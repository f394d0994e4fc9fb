"""The writes stage (DESIGN §6a): send a target row, or delete the rows a source record became.

Finance has no upsert, so an upsert there is decided from our state and corrected by what Finance
answers; a delete finds its target keys in state, or derives them from the pre image through the
targets stage.
"""

from __future__ import annotations

import json
from typing import Any

from shared.engine import Engine
from shared.errors import (
    MappingError,
    MissingDependencyError,
    NotFoundError,
    PermanentServiceError,
    PreconditionFailedError,
    RecordExistsError,
)
from shared.events import ChangeEvent, Operation
from shared.maps import System, TableMap, WriteMode
from shared.outcomes import FILTERED, NEVER_SYNCED, Outcome
from shared.state.base import SyncState
from shared.targets import TargetRow, build_target_rows, passes_filter, typed_target_key
from shared.wire import finance_empty


async def write_row(engine: Engine, table_map: TableMap, row: TargetRow, row_state: SyncState | None) -> None:
    entity_set = table_map.target.entity_set
    if table_map.target.system is System.DATAVERSE:
        key = typed_target_key(table_map, row.key)
        try:
            await engine.dataverse.write(entity_set, key, row.body, table_map.write_mode.value, row.key_binds)
        except NotFoundError as exc:
            if table_map.write_mode is WriteMode.UPDATE:
                described = ",".join(f"{k}={v}" for k, v in row.key.items())
                raise MissingDependencyError(f"{entity_set}({described}) does not exist in Dataverse") from exc
            raise
        return

    key = typed_target_key(table_map, row.key)
    if table_map.write_mode is WriteMode.UPDATE:
        await engine.finance.update(entity_set, key, _finance_update_body(table_map, row))
        return
    created_body = {k: v for k, v in row.payload.items() if v is not None}
    if table_map.write_mode is WriteMode.CREATE:
        await engine.finance.create(entity_set, created_body, key)
        return
    # Finance has no upsert: update what we know we wrote, create what we have not seen, and fall
    # back to the other verb when the target disagrees with our state. Each body is built only when
    # its verb is sent: a new record is one create, and its update body was 3% of the CPU.
    if row_state is not None and row_state.target_key and not row_state.tombstone:
        try:
            await engine.finance.update(entity_set, key, _finance_update_body(table_map, row))
        except NotFoundError:
            await engine.finance.create(entity_set, created_body, key)
        return
    try:
        await engine.finance.create(entity_set, created_body, key)
    except RecordExistsError:
        await _check_owner(engine, table_map, row, key)
        await engine.finance.update(entity_set, key, _finance_update_body(table_map, row))


def moved_from(table_map: TableMap, row: TargetRow, row_state: SyncState | None) -> dict[str, Any] | None:
    """The key the record's row was last written under, when the row's key is another now (a contract
    line renumbered or moved to another contract: both are key parts of its billing rule), else None.

    Parts compare as text, case-insensitively as both services match keys; a key of other fields (a
    map whose key was redefined) says nothing of where the row went. An update-only map writes rows
    the target owns: a key that changes there names another such row, not a copy of this one."""
    if table_map.write_mode is WriteMode.UPDATE or row_state is None or not row_state.target_key:
        return None
    if row_state.tombstone:
        return None
    try:
        written = json.loads(row_state.target_key)
    except ValueError:
        return None
    if not isinstance(written, dict) or set(written) != set(row.key):
        return None
    if all(str(written[name]).casefold() == str(value).casefold() for name, value in row.key.items()):
        return None
    return written


async def move_row(engine: Engine, table_map: TableMap, row: TargetRow, written: dict[str, Any]) -> None:
    """Take the record's row off the key it was last written under, before it is written under its new
    one: a failure in between leaves the record with no row, which its retry or replay writes, never
    with two. An old row that is gone already (a 404, a retry after the delete) is as good as deleted."""
    entity_set = table_map.target.entity_set
    old, new = _described(written), _described(row.key)
    system = table_map.target.system.display_name
    client = engine.client_for(table_map.target.system)
    old_key = typed_target_key(table_map, written)
    if not table_map.allows(Operation.DELETE):
        if await client.get(entity_set, old_key) is None:
            return
        raise MappingError(
            f"{table_map.source.entity} {row.state_key} now maps to {entity_set}({new}); it was written to "
            f"{entity_set}({old}), and this flow does not delete in {system}, so that row would stay beside "
            f"the new one: delete {entity_set}({old}) in {system} (or give the record its old key back), then replay"
        )
    if table_map.target.system is System.FINANCE:
        # The new key may be another record's row: found before this record's row is deleted.
        await _check_owner(engine, table_map, row, typed_target_key(table_map, row.key))
    try:
        await client.delete(entity_set, old_key)
    except (PermanentServiceError, PreconditionFailedError) as exc:
        raise PermanentServiceError(
            exc.system,
            exc.status,
            f"{table_map.source.entity} {row.state_key} now maps to {entity_set}({new}), but {system} refused to "
            f"delete {entity_set}({old}), the row it was written to ({exc.service_message}); nothing was written. "
            f"Give the record its old key back in the source, or remove {entity_set}({old}) in {system}, then replay",
            code=exc.code,
            method=exc.method,
            url=exc.url,
        ) from exc


def _described(key: dict[str, Any]) -> str:
    return ",".join(f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in key.items())


async def _check_owner(engine: Engine, table_map: TableMap, row: TargetRow, key: dict[str, Any]) -> None:
    """The row Finance already holds under this key is this record's, or nobody's: two source records
    that map to one key (two contract lines of one sequence number) must not take turns at its row."""
    owner = table_map.owner_field
    ours = row.payload.get(owner) if owner else None
    if owner is None or ours is None:
        return
    existing = await engine.finance.get(table_map.target.entity_set, key, select=[owner])
    theirs = existing.get(owner) if existing else None
    if theirs in (None, "") or _same_id(theirs, ours):
        return
    described = _described(row.key)
    keyed_by = [pair.source for pair in table_map.fields if pair.target in key and pair.source]
    keyed_by += [lookup.source for lookup in table_map.lookups if lookup.target in key]
    system = table_map.source.system.display_name
    raise MappingError(
        f"{table_map.source.entity} {ours} maps to {table_map.target.entity_set}({described}), the row "
        f"Finance holds for {table_map.source.entity} {theirs} ({owner}); not written over. Give "
        f"{ours} another {' or '.join(sorted(set(keyed_by)))} in {system}: its update then syncs it"
    )


def _same_id(left: Any, right: Any) -> bool:
    return str(left).strip("{}").casefold() == str(right).strip("{}").casefold()


def _finance_update_body(table_map: TableMap, row: TargetRow) -> dict[str, Any]:
    """The body of an update: an emptied field as the value that clears it, since Finance has no null
    for most types; a type with no such value is left out."""
    body: dict[str, Any] = {}
    for name, value in row.body.items():
        if name in table_map.target_owned:
            # Finance moves it on by itself (an actual it has journalized says IsJournalized = Yes):
            # sent again it would undo that, and the next posting run would post the actual twice.
            continue
        if value is None:
            value = finance_empty(table_map.target_type(name))
        if value is not None:
            body[name] = value
    return body


async def delete_rows(engine: Engine, table_map: TableMap, event: ChangeEvent, state: SyncState | None) -> Outcome:
    keys: list[tuple[str, dict[str, Any]]] = []
    if state is not None and state.target_key:
        keys.append((event.key, json.loads(state.target_key)))
    elif event.target_key:
        keys.append((event.key, dict(event.target_key)))
    elif event.before:
        if table_map.filter is not None and not passes_filter(table_map, dict(event.before)):
            # Never ours to sync (another flow on the same table took it): nothing to delete either.
            return Outcome.skipped(FILTERED, table_map.filter.description)
        rows = await build_target_rows(engine, table_map, event, dict(event.before))
        keys.extend((row.state_key, row.key) for row in rows)
    if not keys:
        await engine.state.put_state(SyncState(table_map.name, event.key, event.version, tombstone=True), read=state)
        return Outcome.skipped(NEVER_SYNCED, "no target key known and no pre image to derive it from")

    client = engine.client_for(table_map.target.system)
    for _state_key, key in keys:
        await client.delete(table_map.target.entity_set, typed_target_key(table_map, key))
    key_texts = tuple(json.dumps(key, default=str) for _, key in keys)
    version = max((v for v in (event.version, state.version if state else None) if v is not None), default=None)
    await engine.state.put_state(SyncState(table_map.name, event.key, version, None, key_texts[0], True), read=state)
    return Outcome.written(len(keys), key_texts)
