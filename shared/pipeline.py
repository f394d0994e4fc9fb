"""The one write path (DESIGN §1, §6): filter → guard → read more → resolve lookups → transform →
write → record state. Every flow runs through `apply_event`; flows only supply their TableMap.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any

from shared.cache import TtlCache
from shared.clients.addressing import bind_reference, filter_for_key, unaddressable_character
from shared.clients.base import DataverseApi, FinanceApi, primary_id
from shared.errors import (
    AuthError,
    MappingError,
    MissingDependencyError,
    NotFoundError,
    PermanentServiceError,
    PreconditionFailedError,
    RecordExistsError,
    RecordNotFoundByKeyError,
    ServiceError,
    TransientServiceError,
)
from shared.events import ChangeEvent, Operation, Source, payload_hash
from shared.extensions import WHAT_TO_ADD
from shared.maps import CompanyRuleKind, FieldType, Lookup, System, TableMap, WriteMode
from shared.outcomes import (
    ECHO,
    EXTENSION_MISSING,
    FILTERED,
    MAPPING,
    MISSING_DEPENDENCY,
    NEVER_SYNCED,
    NO_MAPPED_CHANGE,
    OPERATION_NOT_ALLOWED,
    REJECTED,
    SOURCE_EXISTS,
    SOURCE_GONE,
    STALE,
    TOMBSTONE,
    TRANSIENT,
    UNCHANGED,
    Outcome,
)
from shared.records import RecordView, field_value, has_field, normalize_finance_row, normalize_webapi_row
from shared.settings import Settings
from shared.state.base import StateStore, SyncState
from shared.values import Ref, Value
from shared.wire import finance_empty, to_wire, typed_key


@dataclass
class Engine:
    """What a flow needs to apply an event: settings, both clients, state, a lookup cache."""

    settings: Settings
    dataverse: DataverseApi
    finance: FinanceApi
    state: StateStore
    cache: TtlCache = field(default_factory=lambda: TtlCache(300.0))

    def client_for(self, system: System) -> DataverseApi | FinanceApi:
        return self.dataverse if system is System.DATAVERSE else self.finance


@dataclass(frozen=True)
class TargetRow:
    """One row to write: the key, the body, and the state key it is tracked under."""

    state_key: str
    company: str | None
    key: dict[str, Any]
    body: dict[str, Any]

    @property
    def payload(self) -> dict[str, Any]:
        return {**self.key, **self.body}

    @property
    def key_text(self) -> str:
        return json.dumps(self.key, default=str)


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
    except MappingError as exc:
        return Outcome.parked(MAPPING, str(exc))
    except (PermanentServiceError, PreconditionFailedError, RecordExistsError, NotFoundError) as exc:
        return Outcome.parked(REJECTED, _service_text(exc))


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
    if state is not None and state.tombstone and operation is not Operation.CREATE:
        return Outcome.skipped(TOMBSTONE)
    if event.version is not None and state is not None and state.version is not None and event.version < state.version:
        return Outcome.skipped(STALE, f"version {event.version} < applied {state.version}")
    if _is_own_change(engine.settings, table_map, event):
        return Outcome.skipped(ECHO)
    if table_map.document is not None:
        from shared.documents import apply_document  # documents build on this module

        return await apply_document(engine, table_map, event)
    if (
        operation is Operation.UPDATE
        and event.changed is not None
        and not event.notification_only
        and not _touches(table_map, event.changed)
    ):
        return Outcome.skipped(NO_MAPPED_CHANGE)

    if operation is Operation.DELETE:
        if table_map.source.system is System.FINANCE and await _source_still_has(engine, table_map, event):
            # A delete that arrives after the row was created again is older than what Finance holds.
            return Outcome.skipped(SOURCE_EXISTS, "Finance still has the row: the delete is older than it")
        return await _delete(engine, table_map, event, state)

    record = await _complete_record(engine, table_map, event, state)
    if record is None:
        return Outcome.skipped(SOURCE_GONE)
    if table_map.filter is not None and not passes_filter(table_map, record):
        return Outcome.skipped(FILTERED, table_map.filter.description)

    rows = await build_target_rows(engine, table_map, event, record)
    written: list[str] = []
    for row in rows:
        row_state = state if row.state_key == event.key else await engine.state.get_state(table_map.name, row.state_key)
        digest = payload_hash(row.payload)
        if row_state is not None and row_state.payload_hash == digest and not row_state.tombstone:
            continue
        await _write(engine, table_map, row, row_state)
        written.append(row.key_text)
        if row.state_key != event.key:
            await engine.state.put_state(SyncState(table_map.name, row.state_key, event.version, digest, row.key_text))
        elif state is None or state.payload_hash != digest or state.tombstone:
            state = SyncState(table_map.name, event.key, event.version, digest, row.key_text)

    main = state or SyncState(table_map.name, event.key)
    if event.version is not None and (main.version is None or event.version > main.version):
        main.version = event.version
    main.tombstone = False
    await engine.state.put_state(main)
    if not written:
        return Outcome.skipped(UNCHANGED)
    return Outcome.written(len(written), tuple(written))


async def _source_still_has(engine: Engine, table_map: TableMap, event: ChangeEvent) -> bool:
    known = {**(event.before or {}), **(event.record or {})}
    try:
        return await read_source_row(engine, table_map, event, known) is not None
    except MappingError:
        return False


def _is_own_change(settings: Settings, table_map: TableMap, event: ChangeEvent) -> bool:
    if table_map.accept_own_changes:
        return False
    who = event.initiated_by
    if table_map.source.system is System.DATAVERSE and who.user_id:
        return who.user_id.lower() in settings.integration_user_ids
    if who.aad_object_id:
        return who.aad_object_id.strip("{}").lower() in settings.integration_object_ids
    return False


def _touches(table_map: TableMap, changed: list[str]) -> bool:
    mapped = {column.lower() for column in table_map.source_columns}
    return any(column.lower() in mapped for column in changed)


def passes_filter(table_map: TableMap, record: dict[str, Value]) -> bool:
    row_filter = table_map.filter
    assert row_filter is not None
    view = {column: field_value(record, column) for column in row_filter.columns}
    try:
        return bool(row_filter.predicate(view))
    except (KeyError, TypeError, ValueError) as exc:
        raise MappingError(f"filter '{row_filter.description}' cannot be evaluated on {view}: {exc!r}") from exc


async def _complete_record(
    engine: Engine, table_map: TableMap, event: ChangeEvent, state: SyncState | None = None
) -> dict[str, Value] | None:
    """The full source row: the event's own when it carries the whole row, else read again.

    Images leave out null columns, so an absent column in a whole row means null, not unknown.
    """
    record: dict[str, Value] = {}
    if table_map.source.system is System.FINANCE and event.before:
        # Finance data events carry the changed fields in Target and the old row in PreImage.
        record.update(event.before)
    record.update(event.record or {})
    if table_map.source.system is System.FINANCE:
        # Finance data events carry no version a guard could trust (RowVersion is null, there is no
        # modified-time field on most entities) and Finance sends them in no guaranteed order. Read
        # under the flow's per-record session, the row as Finance holds it now is the newest state
        # whatever order the events came in, so that is what is written.
        if _fed_and_first(event, state):
            return record
        return await read_source_row(engine, table_map, event, record)
    whole = not (event.notification_only or event.record is None or event.partial)
    if whole and event.operation is Operation.UPDATE and table_map.source.system is System.DATAVERSE:
        # A post image holds only the columns its step registered; if it lacks one this map reads,
        # the row is read again rather than guessing the column is empty.
        whole = all(has_field(record, column) for column in table_map.source_columns)
    if whole:
        return record
    fresh = await read_source_row(engine, table_map, event, record)
    if fresh is None:
        return None
    return {**record, **fresh}


def _fed_and_first(event: ChangeEvent, state: SyncState | None) -> bool:
    """An initial-sync row read from the source moments ago, for a record nothing was ever applied to,
    on its first delivery: reading it again buys nothing. Any event for the record handled before it
    left state behind (then it is read again); any handled after it reads again itself; a retry or a
    replay reads again. At 100,000 rows that is 100,000 reads fewer."""
    return event.source is Source.INITIAL_SYNC and event.attempt == 1 and bool(event.record) and state is None


async def read_source_row(
    engine: Engine, table_map: TableMap, event: ChangeEvent, known: dict[str, Value]
) -> dict[str, Value] | None:
    source = table_map.source
    if source.system is System.DATAVERSE:
        row = await engine.dataverse.get(source.entity_set, {source.key_columns[0]: event.key})
        return None if row is None else normalize_webapi_row(row)
    key = finance_source_key_fields(table_map, event, known)
    row = await engine.finance.get(source.entity_set, typed_key(key, dict(source.key_types)))
    return None if row is None else normalize_finance_row(row)


def _company_columns(table_map: TableMap) -> set[str]:
    """The source key parts that hold a company: dataAreaId, or the field the company rule reads
    (export entities that are not company-specific key on e.g. ReferenceDataAreaId)."""
    columns = {"dataareaid"}
    if table_map.company.kind is CompanyRuleKind.FIELD and table_map.company.source:
        columns.add(table_map.company.source.lower())
    return columns


def finance_source_key_fields(table_map: TableMap, event: ChangeEvent, record: dict[str, Value]) -> dict[str, Any]:
    key: dict[str, Any] = {}
    companies = _company_columns(table_map)
    for column in table_map.source.key_columns:
        value = field_value(record, column)
        is_company = column.lower() in companies
        if value is None and is_company:
            value = event.company
        if value is None:
            raise MappingError(f"the {table_map.source.entity} event has no key field {column}")
        key[column] = value.lower() if is_company and isinstance(value, str) else value
    return key


def source_key(table_map: TableMap, event: ChangeEvent) -> str:
    """The record key a flow tracks: the Dataverse id, or Finance company + natural key."""
    if table_map.source.system is System.DATAVERSE:
        return event.key
    if table_map.document is not None:
        from shared.documents import document_key

        return document_key(table_map, event)
    record = {**(event.before or {}), **(event.record or {})}
    fields = finance_source_key_fields(table_map, event, record)
    companies = _company_columns(table_map)
    return "|".join(_key_text(v, k.lower() in companies) for k, v in fields.items())


def _key_text(value: Any, is_company: bool) -> str:
    if is_company:
        return str(value).upper()
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat()
    return str(value)


# --- building the target rows -------------------------------------------------------------------


async def build_target_rows(
    engine: Engine, table_map: TableMap, event: ChangeEvent, record: dict[str, Value]
) -> list[TargetRow]:
    companies = await resolve_companies(engine, table_map, event, record)
    fan_out = table_map.company.kind is CompanyRuleKind.EACH_IN_SCOPE
    rows = []
    for company in companies:
        payload = await _payload(engine, table_map, record, company)
        key = {name: payload.pop(name) for name in table_map.target.key_fields if name in payload}
        missing = [name for name in table_map.target.key_fields if key.get(name) in (None, "")]
        if missing:
            raise MappingError(f"target key field(s) {', '.join(missing)} have no value")
        state_key = f"{event.key}|{company}" if fan_out else event.key
        rows.append(TargetRow(state_key, company, key, payload))
    return rows


async def resolve_companies(
    engine: Engine, table_map: TableMap, event: ChangeEvent, record: dict[str, Value]
) -> list[str | None]:
    rule = table_map.company
    if rule.kind is CompanyRuleKind.NONE:
        return [None]
    if rule.kind is CompanyRuleKind.EACH_IN_SCOPE:
        if not engine.settings.companies:
            raise MappingError("no companies in scope: set PROJOPS_COMPANIES to the legal entities to sync")
        return list(engine.settings.companies)
    assert rule.source is not None
    value = field_value(record, rule.source)
    if rule.kind is CompanyRuleKind.FIELD:
        company = value or event.company
        if not company:
            raise MappingError(f"the record has no {rule.source}: its company cannot be determined")
        return [str(company).upper()]
    if not isinstance(value, Ref):
        raise MappingError(f"the record has no {rule.source}: its company cannot be determined")
    assert rule.read_set is not None and rule.read_column is not None
    company_id = value.id
    if rule.via_set and rule.via_column:
        company_id = str(await _read_column(engine, rule.via_set, value.id, rule.via_column))
    code = await _read_column(engine, rule.read_set, company_id, rule.read_column)
    company = str(code).upper()
    if engine.settings.companies and company not in engine.settings.companies:
        raise MappingError(
            f"company {company} is not in scope (PROJOPS_COMPANIES={','.join(engine.settings.companies)})"
        )
    return [company]


async def _payload(
    engine: Engine, table_map: TableMap, record: dict[str, Value], company: str | None
) -> dict[str, Any]:
    target = table_map.target.system
    payload: dict[str, Any] = {}
    view = RecordView(record)
    if company is not None:
        code = company.lower() if target is System.FINANCE else company
        for company_field in (table_map.company.target_field, *table_map.company.also_targets):
            if company_field:
                payload[company_field] = code
    for pair in table_map.fields:
        if pair.only_with and not getattr(engine.settings, pair.only_with):
            continue
        value = view.get(pair.source) if pair.source else None
        if pair.transform is not None:
            value = pair.transform(value)
        if pair.value_map is not None:
            value = pair.value_map.apply(value, pair.source or pair.target)
        if value is None:
            value = pair.default
        payload[pair.target] = to_wire(target, pair.type, value, pair.target)
    for lookup in table_map.lookups:
        payload.update(await _resolve_lookup(engine, table_map, lookup, view, company, payload))
    # Scratch values ("@name") only served as key parts of later lookups.
    for name in [name for name in payload if name.startswith("@")]:
        del payload[name]
    return payload


async def _resolve_lookup(
    engine: Engine,
    table_map: TableMap,
    lookup: Lookup,
    record: RecordView,
    company: str | None,
    resolved: dict[str, Any],
) -> dict[str, Any]:
    value = record.get(lookup.source)
    if value is None or value == "":
        # Finance has no null for strings: an empty code is an empty reference.
        if lookup.required:
            raise MappingError(f"required lookup {lookup.source} is empty")
        if lookup.omit_when_empty:
            return {}
        if table_map.target.system is System.DATAVERSE and lookup.bind_set and not lookup.target.startswith("@"):
            # A null bind is how the Web API disassociates: the reference emptied at the source is
            # cleared in Dataverse instead of left pointing at the old record.
            return {f"{lookup.bind_name}@odata.bind": None}
        return {lookup.target: None}

    if lookup.read_set:
        if not isinstance(value, Ref):
            raise MappingError(f"{lookup.source} is not a reference: {value!r}")
        assert lookup.read_column is not None
        record_id = value.id
        if lookup.via_set and lookup.via_column:
            record_id = str(await _read_column(engine, lookup.via_set, value.id, lookup.via_column))
        natural = await _read_column(engine, lookup.read_set, record_id, lookup.read_column)
        if lookup.transform is not None:
            natural = lookup.transform(natural)
        if lookup.require_set:
            await _require_in_finance(engine, lookup, natural, company)
        return {lookup.target: to_wire(table_map.target.system, lookup.type, natural, lookup.target)}

    natural = lookup.transform(value) if lookup.transform is not None else value
    assert lookup.bind_set is not None and lookup.bind_key is not None
    if lookup.company_column or lookup.with_key:
        assert lookup.resolve_id is not None
        key: dict[str, Any] = {lookup.bind_key: natural}
        if lookup.company_column:
            if company is None:
                raise MappingError(f"{lookup.source} is bound per legal entity but the record has no company")
            key[lookup.company_column] = await _dataverse_id_by_key(
                engine, "cdm_companies", {"cdm_companycode": company}, "cdm_companyid"
            )
        for column, name in lookup.with_key:
            if resolved.get(name) in (None, ""):
                raise MappingError(f"{lookup.source}: its key part {name} has no value")
            key[column] = resolved[name]
        found = await _dataverse_id_by_key(engine, lookup.bind_set, key, lookup.resolve_id)
        if lookup.target.startswith("@") or lookup.target in table_map.target.key_fields:
            return {lookup.target: found}
        return {f"{lookup.bind_name}@odata.bind": bind_reference(lookup.bind_set, {"id": found})}
    if lookup.resolve_id:
        found = await _dataverse_id_by_key(engine, lookup.bind_set, {lookup.bind_key: natural}, lookup.resolve_id)
        return {lookup.target: found}
    if unaddressable_character({lookup.bind_key: natural}):
        # A bind names the row in a URL: a value Dataverse cannot address is bound by its id instead.
        found = await _dataverse_id_by_key(engine, lookup.bind_set, {lookup.bind_key: natural}, None)
        return {f"{lookup.bind_name}@odata.bind": bind_reference(lookup.bind_set, {"id": found})}
    return {f"{lookup.bind_name}@odata.bind": bind_reference(lookup.bind_set, {lookup.bind_key: str(natural)})}


async def _read_column(engine: Engine, entity_set: str, record_id: str, column: str) -> Value:
    async def fetch() -> Value:
        row = await engine.dataverse.get(entity_set, {"id": record_id}, select=[column])
        if row is None:
            raise MissingDependencyError(f"{entity_set}({record_id}) does not exist in Dataverse")
        value = row.get(column)
        if value in (None, ""):
            raise MappingError(f"{entity_set}({record_id}) has no {column}")
        return value

    return await engine.cache.get_or_fetch(("dv", entity_set, record_id, column), fetch)


async def _require_in_finance(engine: Engine, lookup: Lookup, natural: Value, company: str | None) -> None:
    assert lookup.require_set is not None and lookup.require_field is not None
    key: dict[str, Any] = {}
    if company is not None:
        key["dataAreaId"] = company.lower()
    key[lookup.require_field] = natural
    require_set, require_field = lookup.require_set, lookup.require_field

    async def fetch() -> bool:
        if lookup.require_by_filter:
            pages = engine.finance.query(require_set, select=[require_field], filter=filter_for_key(key))
            found = [r async for page in pages for r in page]
            row = found[0] if found else None
        else:
            row = await engine.finance.get(require_set, key, select=[require_field])
        if row is None:
            described = ",".join(f"{k}='{v}'" for k, v in key.items())
            raise MissingDependencyError(f"{require_set}({described}) does not exist in Finance")
        return True

    await engine.cache.get_or_fetch(("fo", require_set, tuple(key.items())), fetch)


async def _dataverse_id_by_key(engine: Engine, entity_set: str, key: dict[str, Any], id_column: str | None) -> str:
    """The id of the row `key` names; `id_column` None: the set's own primary id, whatever its name."""

    async def fetch() -> str:
        row = await engine.dataverse.get(entity_set, key, select=[id_column] if id_column else None)
        if row is None:
            described = ",".join(f"{k}='{v}'" for k, v in key.items())
            raise MissingDependencyError(f"{entity_set}({described}) does not exist in Dataverse")
        return str(row[id_column]).lower() if id_column else primary_id(entity_set, row)

    return str(await engine.cache.get_or_fetch(("dvid", entity_set, tuple(key.items())), fetch))


# --- writing ------------------------------------------------------------------------------------


async def _write(engine: Engine, table_map: TableMap, row: TargetRow, row_state: SyncState | None) -> None:
    entity_set = table_map.target.entity_set
    if table_map.target.system is System.DATAVERSE:
        try:
            await engine.dataverse.write(entity_set, row.key, row.body, table_map.write_mode.value)
        except NotFoundError as exc:
            if table_map.write_mode is WriteMode.UPDATE:
                described = ",".join(f"{k}={v}" for k, v in row.key.items())
                raise MissingDependencyError(f"{entity_set}({described}) does not exist in Dataverse") from exc
            raise
        return

    created_body = {k: v for k, v in row.payload.items() if v is not None}
    update_body = {k: (v if v is not None else finance_empty(_field_type(table_map, k))) for k, v in row.body.items()}
    update_body = {k: v for k, v in update_body.items() if v is not None}
    key = typed_key(row.key, table_map.target_key_types)
    if table_map.write_mode is WriteMode.CREATE:
        await engine.finance.create(entity_set, created_body)
        return
    if table_map.write_mode is WriteMode.UPDATE:
        await engine.finance.update(entity_set, key, update_body)
        return
    # Finance has no upsert: update what we know we wrote, create what we have not seen, and fall
    # back to the other verb when the target disagrees with our state.
    if row_state is not None and row_state.target_key and not row_state.tombstone:
        try:
            await engine.finance.update(entity_set, key, update_body)
        except NotFoundError:
            await engine.finance.create(entity_set, created_body)
        return
    try:
        await engine.finance.create(entity_set, created_body)
    except RecordExistsError:
        await engine.finance.update(entity_set, key, update_body)


def _field_type(table_map: TableMap, target: str) -> FieldType:
    return table_map.target_types.get(target, FieldType.STRING)


async def _delete(engine: Engine, table_map: TableMap, event: ChangeEvent, state: SyncState | None) -> Outcome:
    keys: list[tuple[str, dict[str, Any]]] = []
    if state is not None and state.target_key:
        keys.append((event.key, json.loads(state.target_key)))
    elif event.before:
        if table_map.filter is not None and not passes_filter(table_map, dict(event.before)):
            # Never ours to sync (another flow on the same table took it): nothing to delete either.
            return Outcome.skipped(FILTERED, table_map.filter.description)
        rows = await build_target_rows(engine, table_map, event, dict(event.before))
        keys.extend((row.state_key, row.key) for row in rows)
    if not keys:
        await engine.state.put_state(SyncState(table_map.name, event.key, event.version, tombstone=True))
        return Outcome.skipped(NEVER_SYNCED, "no target key known and no pre image to derive it from")

    client = engine.client_for(table_map.target.system)
    for _state_key, key in keys:
        if table_map.target.system is System.FINANCE:
            key = typed_key(key, table_map.target_key_types)
        await client.delete(table_map.target.entity_set, key)
    key_texts = tuple(json.dumps(key, default=str) for _, key in keys)
    version = max((v for v in (event.version, state.version if state else None) if v is not None), default=None)
    await engine.state.put_state(SyncState(table_map.name, event.key, version, None, key_texts[0], True))
    return Outcome.written(len(keys), key_texts)
