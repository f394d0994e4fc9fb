"""Posted Finance documents (vendor invoices) synced whole: every row at once.

A business event names the document; its rows are read from the export entity Finance filled at
posting and upserted into Dataverse in atomic `$batch` changesets. The document is tracked as one
record: a repeated event with the same rows writes nothing, and a failed changeset is re-sent whole
(upserts by key, so a retry never duplicates a line). A posted expense report is not a document:
Finance raises no event for it and its export entity has no report id, so its lines sync one by
one on their data events.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shared.clients.addressing import filter_for_key
from shared.clients.base import Key, Row
from shared.document_keys import document_key, document_members
from shared.engine import Engine
from shared.errors import MappingError
from shared.events import ChangeEvent, Source, payload_hash
from shared.maps import Document, TableMap
from shared.outcomes import FILTERED, MISSING_DEPENDENCY, UNCHANGED, Outcome
from shared.records import normalize_finance_row
from shared.state.base import SyncState
from shared.targets import TargetRow, build_target_rows, passes_filter
from shared.values import Value

# The document key lives with the targets stage; it is offered here as before.
__all__ = ["apply_document", "document_applies", "document_key", "document_members"]

# Which of a document's rows Dataverse has is asked this many keys at a time: a `$filter` of one
# condition per key stays a few kilobytes, well inside the URL a GET can carry.
_KEYS_PER_READ = 100


async def document_applies(engine: Engine, table_map: TableMap, event: ChangeEvent) -> bool:
    """Whether the document is one the map syncs: one with a row of `only_if_any` (a vendor invoice
    with a project line), or any where the map names no such condition. Reconcile asks it too."""
    document = _document(table_map)
    if document.only_if_any is None:
        return True
    company, members = document_members(table_map, event)
    other_set, condition = document.only_if_any
    other = document.rows_filter(company, members, document.only_if_company_field)
    return await _any_row(engine, other_set, other.and_(condition))


async def apply_document(engine: Engine, table_map: TableMap, event: ChangeEvent) -> Outcome:
    document = _document(table_map)
    company, members = document_members(table_map, event)
    selector = document.rows_filter(company, members)
    if not await document_applies(engine, table_map, event):
        assert document.only_if_any is not None
        return Outcome.skipped(FILTERED, document.only_if_description or document.only_if_any[1])

    rows: list[dict[str, Value]] = []
    async for page in engine.finance.query(document.rows_set, filter=selector):
        rows.extend(normalize_finance_row(row) for row in page)
    if not rows:
        # Posting commits the export rows with the event; until they are readable, wait for them.
        return Outcome.retry_later(MISSING_DEPENDENCY, f"{document.rows_set} has no rows where {selector}")

    targets = await _target_rows(engine, table_map, event, document, rows)
    if not targets:
        described = table_map.filter.description if table_map.filter else "no rows"
        return Outcome.skipped(FILTERED, described)

    digest = payload_hash({"rows": [target.payload for target in targets]})
    state = await engine.state.get_state(table_map.name, event.key)
    # Reconcile saw Dataverse differ from these rows, or another instance's older write may have landed
    # over ours: what we last wrote says nothing then (as for a row).
    repairing = event.source is Source.RECONCILE or event.rewrite
    if state is not None and state.payload_hash == digest and not repairing:
        return Outcome.skipped(UNCHANGED)

    upserts = await _upserts(engine, table_map, targets)
    binds = [target.key_binds for target in targets]
    await engine.dataverse.write_many(table_map.target.entity_set, upserts, document.changeset_size, binds)
    written = SyncState(table_map.name, event.key, event.version, digest, targets[0].key_text)
    await engine.state.put_state(written, read=state)  # conditional, as for a row (shared.pipeline)
    shown = (targets[0].key_text,) if len(targets) == 1 else (targets[0].key_text, targets[-1].key_text)
    return Outcome.written(len(targets), shown)


async def _target_rows(
    engine: Engine, table_map: TableMap, event: ChangeEvent, document: Document, rows: list[dict[str, Value]]
) -> list[TargetRow]:
    targets: list[TargetRow] = []
    for row in rows:
        if table_map.filter is not None and not passes_filter(table_map, row):
            continue
        try:
            targets.extend(await build_target_rows(engine, table_map, event, row))
        except MappingError as exc:
            key = {field: row.get(field) for field in table_map.source.key_columns}
            raise MappingError(f"{document.rows_set} row {key}: {exc}") from exc
    return targets


async def _upserts(engine: Engine, table_map: TableMap, targets: list[TargetRow]) -> list[tuple[Key, Row]]:
    """Each row's key and body, without the fields Dataverse owns once the row exists (a line's
    verification status is the project manager's): a retry, a replay or a repair sends the whole
    document again, and any of its rows may have landed and been worked on since."""
    owned = table_map.target_owned
    if not owned:
        return [(target.key, target.body) for target in targets]
    fields = table_map.target.key_fields
    existing = await _existing_keys(engine, table_map, [target.key for target in targets])
    return [
        (
            target.key,
            {k: v for k, v in target.body.items() if k not in owned}
            if _key_text(fields, target.key) in existing
            else target.body,
        )
        for target in targets
    ]


async def _existing_keys(engine: Engine, table_map: TableMap, keys: list[dict[str, Value]]) -> set[tuple[str, ...]]:
    fields = table_map.target.key_fields
    found: set[tuple[str, ...]] = set()
    for start in range(0, len(keys), _KEYS_PER_READ):
        condition = " or ".join(f"({filter_for_key(key)})" for key in keys[start : start + _KEYS_PER_READ])
        async for page in engine.dataverse.query(table_map.target.entity_set, select=fields, filter=condition):
            found.update(_key_text(fields, row) for row in page)
    return found


def _key_text(fields: Sequence[str], key: Mapping[str, Any]) -> tuple[str, ...]:
    # Dataverse matches an alternate key without regard to case.
    return tuple(str(key.get(name)).casefold() for name in fields)


async def _any_row(engine: Engine, entity_set: str, condition: str) -> bool:
    # Every page until a row: a member key holding Finance's wildcard leaves a page only the exact rows,
    # so an empty first page does not mean there is none.
    async for page in engine.finance.query(entity_set, filter=condition, page_size=1):
        if page:
            return True
    return False


def _document(table_map: TableMap) -> Document:
    if table_map.document is None:
        raise ValueError(f"flow {table_map.name} is not a document flow")
    return table_map.document
