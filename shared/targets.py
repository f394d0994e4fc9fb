"""The targets stage (DESIGN §6a): what the target should hold for one source record.

Complete the record (re-read when partial), apply the map's filter, resolve the company and the
lookups, build the payload per target row. Nothing here writes: the flow path, documents,
reconcile and trace all call this one stage, so a mapping is computed one way only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import Any

from shared.clients.addressing import GUID_PATTERN, bind_reference, filter_for_key, unaddressable_character
from shared.clients.base import primary_id
from shared.document_keys import document_key
from shared.engine import Engine
from shared.errors import MappingError, MissingDependencyError, OutOfScopeError
from shared.events import ChangeEvent, Operation, Source
from shared.key_text import join_key_parts
from shared.maps import CompanyRuleKind, FieldType, Lookup, System, TableMap
from shared.records import RecordView, field_value, has_field, normalize_finance_row, normalize_webapi_row
from shared.state.base import SyncState
from shared.values import Ref, Value
from shared.wire import Converter, dataverse_typed_key, typed_key


@dataclass(frozen=True)
class TargetRow:
    """One row to write: the key, the body, and the state key it is tracked under."""

    state_key: str
    company: str | None
    key: dict[str, Any]
    body: dict[str, Any]
    # A Dataverse key's lookup parts as the binds a create sets them with (shared.clients.base.KeyBinds).
    key_binds: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def payload(self) -> dict[str, Any]:
        return {**self.key, **self.body}

    @property
    def key_text(self) -> str:
        return json.dumps(self.key, default=str)


def typed_target_key(table_map: TableMap, key: dict[str, Any]) -> dict[str, Any]:
    """A target row's key with each part as its service takes it in a key segment (shared.wire)."""
    if table_map.target.system is System.FINANCE:
        return typed_key(key, table_map.target_key_types)
    return dataverse_typed_key(key, table_map.target_key_types)


def passes_filter(table_map: TableMap, record: dict[str, Value]) -> bool:
    row_filter = table_map.filter
    assert row_filter is not None
    view = {column: field_value(record, column) for column in row_filter.columns}
    try:
        return bool(row_filter.predicate(view))
    except (KeyError, TypeError, ValueError) as exc:
        raise MappingError(f"filter '{row_filter.description}' cannot be evaluated on {view}: {exc!r}") from exc


async def complete_record(
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
    whole = not (event.notification_only or event.record is None or event.partial or table_map.reread_source)
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


# A data event's virtual-table row names its entity key in one text column (the docs' mserp_primaryfield;
# the decoder drops the mserp_ prefix): the key fields as text, joined by pipes, at most 255 characters.
PRIMARY_FIELD = "primaryfield"
PRIMARY_FIELD_LENGTH = 255
# X++ writes a Guid with or without braces, in either case (the X++ guid literal rules).
_GUID_TEXT = re.compile(rf"\{{({GUID_PATTERN})\}}|({GUID_PATTERN})")


def finance_source_key_fields(table_map: TableMap, event: ChangeEvent, record: dict[str, Value]) -> dict[str, Any]:
    key: dict[str, Any] = {}
    missing: list[str] = []
    companies = _company_columns(table_map)
    for column in table_map.source.key_columns:
        value = field_value(record, column)
        is_company = column.lower() in companies
        if value is None and is_company:
            value = event.company
        if value is None:
            missing.append(column)
        key[column] = value.lower() if is_company and isinstance(value, str) else value
    if missing:
        key.update(_key_from_primary_field(table_map, record, missing))
    return key


def _key_from_primary_field(table_map: TableMap, record: dict[str, Value], missing: list[str]) -> dict[str, str]:
    """The Guid key fields a data event leaves out, read from the row's primary field.

    A virtual table has no Guid columns, so its data events carry none: a key field of that type is
    in the event only as text inside mserp_primaryfield. Only Guids are taken from it: each part is
    "strfmt" text, so a date or an enum reads as the environment's locale and labels have it, while a
    Guid's 32 hex digits read the same everywhere. Inferred (the docs do not say): the parts keep the
    entity key's order, and whether the company is one of them varies, so the Guids are matched to
    the missing fields by count and in that order; a primary field with more or fewer Guids than
    fields missing is refused rather than guessed from."""
    entity = table_map.source.entity
    types = dict(table_map.source.key_types)
    if any(types.get(column) is not FieldType.GUID for column in missing):
        raise MappingError(f"the {entity} event has no key field {', '.join(missing)}")
    text = field_value(record, PRIMARY_FIELD)
    if not isinstance(text, str) or not text.strip():
        raise MappingError(
            f"the {entity} event has no key field {', '.join(missing)} (a Guid, which a virtual table leaves "
            "out) and no mserp_primaryfield to read it from"
        )
    if len(text) > PRIMARY_FIELD_LENGTH:
        raise MappingError(
            f"the {entity} event's mserp_primaryfield is {len(text)} characters, more than the "
            f"{PRIMARY_FIELD_LENGTH} Finance writes: key field {', '.join(missing)} is not read from it"
        )
    guids = [
        (match.group(1) or match.group(2)).lower()
        for part in text.split("|")
        if (match := _GUID_TEXT.fullmatch(part.strip()))
    ]
    if len(guids) != len(missing):
        raise MappingError(
            f"the {entity} event has no key field {', '.join(missing)} and its mserp_primaryfield {text!r} holds "
            f"{len(guids)} Guid(s) for {len(missing)} missing: the record cannot be told from it"
        )
    return dict(zip(missing, guids, strict=True))


def source_key(table_map: TableMap, event: ChangeEvent) -> str:
    """The record key a flow tracks: the Dataverse id, or Finance company + natural key."""
    if table_map.source.system is System.DATAVERSE:
        return event.key
    if table_map.document is not None:
        return document_key(table_map, event)
    record = {**(event.before or {}), **(event.record or {})}
    fields = finance_source_key_fields(table_map, event, record)
    companies = _company_columns(table_map)
    types = dict(table_map.source.key_types)
    return join_key_parts(_key_text(v, k.lower() in companies, types.get(k)) for k, v in fields.items())


def _key_text(value: Any, is_company: bool, kind: FieldType | None) -> str:
    if is_company:
        return str(value).upper()
    if kind is FieldType.GUID:
        # One text for one Guid whether an OData row, an event's primary field ({upper case}) or a UUID
        # gave it: the state key and the session must not split.
        return str(value).strip().strip("{}").lower()
    if isinstance(value, datetime):
        # A date key part is its UTC day however it arrives: an event says midnight, Finance's rows say
        # noon, and one record must keep one state key and one session.
        if kind is FieldType.DATE or value.time() == time(0):
            return value.astimezone(UTC).date().isoformat()
        return value.isoformat()
    return str(value)


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
        rows.append(TargetRow(state_key, company, key, payload, _key_binds(table_map, key)))
    return rows


def _key_binds(table_map: TableMap, key: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """The binds that set the key's lookup parts when the row is created with its key in the body
    (a key Dataverse cannot address in a URL): `_msdyn_company_value` → `msdyn_company@odata.bind`."""
    if table_map.target.system is not System.DATAVERSE:
        return {}
    binds: dict[str, tuple[str, str]] = {}
    for lookup in table_map.lookups:
        name = lookup.target
        if name in key and name.startswith("_") and name.endswith("_value") and lookup.bind_set and key[name]:
            navigation = lookup.navigation or name[1:-6]
            binds[name] = (f"{navigation}@odata.bind", bind_reference(lookup.bind_set, {"id": key[name]}))
    return binds


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
        # Finance raises data events for every legal entity, whatever the deployment covers.
        return [_in_scope(engine, str(company).upper())]
    if not isinstance(value, Ref):
        raise MappingError(f"the record has no {rule.source}: its company cannot be determined")
    assert rule.read_set is not None and rule.read_column is not None
    code = _cached_chain(engine, value.id, rule.via_set, rule.via_column, rule.read_set, rule.read_column)
    if code is None:
        code = await _read_chain(engine, value.id, rule.via_set, rule.via_column, rule.read_set, rule.read_column)
    return [_in_scope(engine, str(code).upper())]


def _in_scope(engine: Engine, company: str) -> str:
    if engine.settings.companies and company not in engine.settings.companies:
        raise OutOfScopeError(
            f"company {company} is not in scope (PROJOPS_COMPANIES={','.join(engine.settings.companies)})"
        )
    return company


async def _payload(
    engine: Engine, table_map: TableMap, record: dict[str, Value], company: str | None
) -> dict[str, Any]:
    target = table_map.target.system
    payload: dict[str, Any] = {}
    # Dataverse names columns by their logical names, lower case in the map and the record alike: a
    # miss is an empty column. Finance events name fields in lower case, its rows in Pascal case.
    view: RecordView | dict[str, Value] = record if table_map.source.system is System.DATAVERSE else RecordView(record)
    if company is not None:
        code = company.lower() if target is System.FINANCE else company
        for company_field in (table_map.company.target_field, *table_map.company.also_targets):
            if company_field:
                payload[company_field] = code
    for source, name, passes, convert, pair in table_map.field_steps:
        if pair is None:  # a plain copy
            value = view.get(source)  # type: ignore[arg-type]
            payload[name] = value if value is None or type(value) is passes else convert(value, name)
            continue
        if pair.only_with and not getattr(engine.settings, pair.only_with):
            continue
        value = view.get(source) if source else None
        if pair.transform is not None:
            value = pair.transform(value)
        if pair.value_map is not None:
            value = pair.value_map.apply(value, source or name)
        if value is None:
            value = pair.default
        payload[name] = value if value is None or type(value) is passes else convert(value, name)
    for lookup, convert in table_map.lookup_steps:
        entry = _resolved_from_cache(engine, table_map, lookup, convert, view, company, payload)
        if entry is _MISS:
            entry = await _resolve_lookup(engine, table_map, lookup, convert, view, company, payload)
        if entry is not None:
            payload[entry[0]] = entry[1]
    # Asked of the map, not of every payload key: a map has few lookups and a payload many fields.
    for name in table_map.scratch_targets:
        payload.pop(name, None)
    return payload


# A lookup's answer: the target field and its value, or None to send nothing.
Entry = tuple[str, Any] | None
# What the cache cannot answer without a read.
_MISS: Any = object()


def _empty_entry(table_map: TableMap, lookup: Lookup) -> Entry:
    """What an empty reference sends."""
    if lookup.required:
        raise MappingError(f"required lookup {lookup.source} is empty")
    if lookup.omit_when_empty:
        return None
    if table_map.target.system is System.DATAVERSE and lookup.bind_set and not lookup.target.startswith("@"):
        # A null bind is how the Web API disassociates: the reference emptied at the source is
        # cleared in Dataverse instead of left pointing at the old record.
        return (f"{lookup.bind_name}@odata.bind", None)
    return (lookup.target, None)


def _resolved_from_cache(
    engine: Engine,
    table_map: TableMap,
    lookup: Lookup,
    convert: Converter,
    record: RecordView | dict[str, Value],
    company: str | None,
    resolved: dict[str, Any],
) -> Entry:
    """The lookup answered without a read, as it is in the steady state (an empty reference, or a
    Dataverse → Finance read the cache holds), else _MISS. A map has a dozen lookups and an awaited
    call each, two with the read, cost more than the cached answers themselves."""
    value = record.get(lookup.source)
    if value is None or value == "":
        # Finance has no null for strings: an empty code is an empty reference.
        return _empty_entry(table_map, lookup)
    if not lookup.read_set or type(value) is not Ref:
        return _MISS
    assert lookup.read_column is not None
    natural = _cached_chain(engine, value.id, lookup.via_set, lookup.via_column, lookup.read_set, lookup.read_column)
    if natural is None:
        return _MISS
    if lookup.transform is not None:
        natural = lookup.transform(natural)
    if lookup.require_set:
        owner = resolved.get(lookup.require_company) if lookup.require_company else None
        if engine.cache.get(_required_key(lookup, natural, str(owner) if owner else company)) is None:
            return _MISS
    return (lookup.target, None if natural is None else convert(natural, lookup.target))


async def _resolve_lookup(
    engine: Engine,
    table_map: TableMap,
    lookup: Lookup,
    convert: Converter,
    record: RecordView | dict[str, Value],
    company: str | None,
    resolved: dict[str, Any],
) -> Entry:
    """A lookup the cache could not answer (_resolved_from_cache answers every empty one): read."""
    value = record.get(lookup.source)
    if lookup.read_set:
        if not isinstance(value, Ref):
            raise MappingError(f"{lookup.source} is not a reference: {value!r}")
        assert lookup.read_column is not None
        natural = await _read_chain(
            engine, value.id, lookup.via_set, lookup.via_column, lookup.read_set, lookup.read_column
        )
        if lookup.transform is not None:
            natural = lookup.transform(natural)
        if lookup.require_set:
            owner = resolved.get(lookup.require_company) if lookup.require_company else None
            await _require_in_finance(engine, lookup, natural, str(owner) if owner else company)
        return (lookup.target, None if natural is None else convert(natural, lookup.target))

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
            return (lookup.target, found)
        return (f"{lookup.bind_name}@odata.bind", bind_reference(lookup.bind_set, {"id": found}))
    if lookup.resolve_id:
        found = await _dataverse_id_by_key(engine, lookup.bind_set, {lookup.bind_key: natural}, lookup.resolve_id)
        return (lookup.target, found)
    if unaddressable_character({lookup.bind_key: natural}):
        # A bind names the row in a URL: a value Dataverse cannot address is bound by its id instead.
        found = await _dataverse_id_by_key(engine, lookup.bind_set, {lookup.bind_key: natural}, None)
        return (f"{lookup.bind_name}@odata.bind", bind_reference(lookup.bind_set, {"id": found}))
    return (f"{lookup.bind_name}@odata.bind", bind_reference(lookup.bind_set, {lookup.bind_key: str(natural)}))


def _cached_chain(
    engine: Engine, record_id: str, via_set: str | None, via_column: str | None, read_set: str, read_column: str
) -> Value:
    """What _read_chain would answer from the cache alone; None when a read is needed. Two awaited
    reads cost a cached answer 0.6 µs in coroutines."""
    if via_set and via_column:
        through = engine.cache.get(("dv", via_set, record_id, via_column))
        if through is None:
            return None
        record_id = str(through)
    return engine.cache.get(("dv", read_set, record_id, read_column))


async def _read_chain(
    engine: Engine, record_id: str, via_set: str | None, via_column: str | None, read_set: str, read_column: str
) -> Value:
    """`read_column` of the `read_set` row the record names, through the `via` row when there is one."""
    if via_set and via_column:
        record_id = str(await _read_column(engine, via_set, record_id, via_column))
    return await _read_column(engine, read_set, record_id, read_column)


async def _read_column(engine: Engine, entity_set: str, record_id: str, column: str) -> Value:
    cached = engine.cache.get(("dv", entity_set, record_id, column))
    if cached is not None:  # the steady state: no closure, no second coroutine
        return cached

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
    cache_key = _required_key(lookup, natural, company)
    if engine.cache.get(cache_key) is not None:  # the steady state: no closure, no second coroutine
        return

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

    await engine.cache.get_or_fetch(cache_key, fetch)


def _required_key(lookup: Lookup, natural: Value, company: str | None) -> tuple[Any, ...]:
    """The cache's key for "Finance has the record `natural` names" (in `company`'s legal entity)."""
    parts: tuple[tuple[str, Any], ...] = ((lookup.require_field or "", natural),)
    if company is not None:
        parts = (("dataAreaId", company.lower()), *parts)
    return ("fo", lookup.require_set, parts)


async def _dataverse_id_by_key(engine: Engine, entity_set: str, key: dict[str, Any], id_column: str | None) -> str:
    """The id of the row `key` names; `id_column` None: the set's own primary id, whatever its name."""

    async def fetch() -> str:
        row = await engine.dataverse.get(entity_set, key, select=[id_column] if id_column else None)
        if row is None:
            described = ",".join(f"{k}='{v}'" for k, v in key.items())
            raise MissingDependencyError(f"{entity_set}({described}) does not exist in Dataverse")
        return str(row[id_column]).lower() if id_column else primary_id(entity_set, row)

    return str(await engine.cache.get_or_fetch(("dvid", entity_set, tuple(key.items())), fetch))
