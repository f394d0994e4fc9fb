"""trace FLOW KEY: what a finance user asks first — did my record reach the other side, and if not, why?

The record's sync state, every outcome the integration recorded for it (within the retention), any
parked event, and the source row beside the target row with the fields where the target differs
from what the flow's own mapping (the targets stage) says it should hold.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from shared.errors import MappingError, MissingDependencyError, RecordNotFoundByKeyError
from shared.events import ChangeEvent, Operation, Source, derive_id
from shared.key_text import split_key_parts
from shared.maps import System, TableMap
from shared.operations.reconcile import field_differences
from shared.records import normalize_finance_row, normalize_webapi_row
from shared.runtime import Runtime
from shared.targets import TargetRow, build_target_rows, typed_target_key
from shared.wire import typed_key


def _known_key(table_map: TableMap, key: str) -> dict[str, Any]:
    """A Finance source key as the key fields it was made from (COMPANY|natural key, in key order)."""
    parts = split_key_parts(key)
    columns = table_map.source.key_columns
    if len(parts) != len(columns):
        raise MappingError(f"{key!r} is not a {table_map.name} key: it has the parts {', '.join(columns)}")
    return dict(zip(columns, parts, strict=True))


async def _source_row(runtime: Runtime, table_map: TableMap, key: str) -> dict[str, Any] | None:
    source = table_map.source
    engine = runtime.engine
    if source.system is System.DATAVERSE:
        return await engine.dataverse.get(source.entity_set, {source.key_columns[0]: key})
    known = _known_key(table_map, key)
    known = {name: value.lower() if name.lower() == "dataareaid" else value for name, value in known.items()}
    return await engine.finance.get(source.entity_set, typed_key(known, dict(source.key_types)))


async def _target_row(runtime: Runtime, table_map: TableMap, key: dict[str, Any]) -> dict[str, Any] | None:
    client = runtime.engine.client_for(table_map.target.system)
    return await client.get(table_map.target.entity_set, typed_target_key(table_map, key))


async def trace(runtime: Runtime, table_map: TableMap, key: str) -> dict[str, Any]:
    state_store = runtime.engine.state
    state = await state_store.get_state(table_map.name, key)
    found: dict[str, Any] = {
        "flow": table_map.name,
        "key": key,
        "state": None if state is None else asdict(state),
        "outcomes": [asdict(o) for o in await state_store.list_outcomes(table_map.name, key)],
        "parked": [
            {k: v for k, v in asdict(p).items() if k != "event"}
            for p in await state_store.list_parked(flow=table_map.name, key=key, status=None)
        ],
        "source": None,
        "target": None,
        "differences": [],
    }
    if table_map.document is not None:
        found["mapping_error"] = "a document's rows are traced by reconcile, not one by one"
        return found
    raw = await _source_row(runtime, table_map, key)
    target_key = json.loads(state.target_key) if state is not None and state.target_key else None
    if raw is not None:
        record = (
            normalize_webapi_row(raw) if table_map.source.system is System.DATAVERSE else normalize_finance_row(raw)
        )
        found["source"] = raw
        event = ChangeEvent(
            event_id=derive_id("trace", table_map.name, key),
            flow=table_map.name,
            source=Source.RECONCILE,
            entity=table_map.source.entity,
            operation=Operation.UPSERT,
            key=key,
            company=str(record.get("dataAreaId") or "").upper() or None,
            record=record,
        )
        target: TargetRow | None = None
        try:
            # A fan-out map makes one row per company; the first stands for them.
            targets = await build_target_rows(runtime.engine, table_map, event, record)
            target = targets[0] if targets else None
        except (MappingError, MissingDependencyError, RecordNotFoundByKeyError) as exc:
            found["mapping_error"] = str(exc)
        if target is not None:
            target_key = target.key
            row = await _target_row(runtime, table_map, target.key)
            found["target"] = row
            if row is not None:
                found["differences"] = [asdict(d) for d in field_differences(table_map, target.payload, row)]
            else:
                found["differences"] = [{"field": "(row)", "source": target.key, "target": None}]
            return found
    if target_key is not None:
        found["target"] = await _target_row(runtime, table_map, target_key)
    return found
