"""The table map model (DESIGN §4): a dual-write map as declarative, reviewable data.

A flow module declares one `TableMap`. The engine (shared.pipeline) does everything else, so a map
reads top to bottom as the story of its flow: source, target, keys, company rule, fields and value
maps, lookups, filter and allowed operations. Every name carries its provenance: `documented` when
a Microsoft source documents the pair, `metadata` when the names, key and type are in a live
environment's published schema (the pairing is ours), `inferred` when neither settles it and
`check-maps` must confirm it against the customer's environment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import cached_property
from typing import Any

from shared.clients.addressing import KeyFilter, filter_for_key
from shared.errors import MappingError
from shared.events import Operation
from shared.values import Value


class System(StrEnum):
    DATAVERSE = "dataverse"
    FINANCE = "finance"

    @property
    def display_name(self) -> str:
        """The system as people name it, in what the integration tells them."""
        return "Dataverse" if self is System.DATAVERSE else "Finance"


class Provenance(StrEnum):
    DOCUMENTED = "documented"
    METADATA = "metadata"
    INFERRED = "inferred"


DOC = Provenance.DOCUMENTED
MET = Provenance.METADATA
INF = Provenance.INFERRED


class FieldType(StrEnum):
    """How a value is written on the wire of the target system."""

    STRING = "string"
    INT = "int"
    DECIMAL = "decimal"
    BOOL = "bool"
    DATE = "date"
    DATETIME = "datetime"
    GUID = "guid"
    ENUM = "enum"
    NOYES = "noyes"
    OPTION = "option"


class WriteMode(StrEnum):
    UPSERT = "upsert"
    CREATE = "create"
    UPDATE = "update"


_UNSET: Any = object()


@dataclass(frozen=True)
class ValueMap:
    """Option set value ↔ enum symbol (dual-write's ValueMap transform)."""

    name: str
    pairs: Mapping[Any, Any]
    default: Any = _UNSET
    provenance: Provenance = INF

    def apply(self, value: Any, column: str) -> Any:
        if value is None:
            return None
        if isinstance(value, list | dict):
            # A multi-select choice or an object where one option belongs: no entry can name it.
            raise MappingError(f"{column} holds a {type(value).__name__} ({value!r:.200}), not one value to map")
        if value in self.pairs:
            return self.pairs[value]
        if self.default is not _UNSET:
            return self.default
        known = ", ".join(f"{k}→{v}" for k, v in self.pairs.items())
        raise MappingError(f"no value map {self.name} entry for {column}={value!r} (known: {known})")


@dataclass(frozen=True)
class FieldMap:
    """One field pair. `source=None` means a constant default (dual-write's Default transform)."""

    source: str | None
    target: str
    type: FieldType = FieldType.STRING
    value_map: ValueMap | None = None
    transform: Callable[[Value], Value] | None = None
    default: Any = None
    provenance: Provenance = INF
    note: str = ""
    # The name of a boolean setting that must be on for this pair to be written (a cutover-only
    # pair, such as the milestone invoice status used once to migrate invoiced milestones).
    only_with: str | None = None
    # Where a pair not in the map we ship comes from (a customer's map extension file).
    origin: str = ""


def _plain(pair: FieldMap) -> bool:
    return pair.transform is None and pair.value_map is None and pair.default is None and not pair.only_with


@dataclass(frozen=True)
class Lookup:
    """A reference resolved to the other side's key.

    Dataverse → Finance: `source` holds an EntityReference; the referenced Dataverse row is read
    (`read_set`, `read_column`) to get the natural key Finance knows (e.g. the project number), and
    when `require_set` is given the engine checks Finance has that record, so a line that arrives
    before its header is retried instead of failing validation. The check reads the record by its key
    (dataAreaId and `require_field`), or with a `$filter` on `require_field` when that field is not
    the set's key (`require_by_filter`, e.g. a contract line by its ContractLineId).

    Finance → Dataverse: `source` holds a natural key value; it is bound with
    `<navigation>@odata.bind: /<bind_set>(<bind_key>='<value>')`. When `resolve_id` is set the engine
    reads the GUID instead (needed where the lookup is part of an alternate key).
    """

    source: str
    target: str
    read_set: str | None = None
    read_column: str | None = None
    require_set: str | None = None
    require_field: str | None = None
    require_by_filter: bool = False
    # The target field, filled by an earlier lookup, that names the legal entity the required record is
    # in, where it is not the record's own (an intercompany actual's project is its own company's).
    require_company: str | None = None
    bind_set: str | None = None
    bind_key: str | None = None
    resolve_id: str | None = None
    type: FieldType = FieldType.STRING
    required: bool = False
    provenance: Provenance = INF
    note: str = ""
    # Applied to the source value before it is bound (e.g. Finance's lower-case dataAreaId → company
    # code), or to the value read for a Dataverse → Finance lookup (a company code → dataAreaId).
    transform: Callable[[Value], Value] | None = None
    # The bound table is keyed per legal entity: this column joins the record's company to `bind_key`
    # (e.g. accounts by accountnumber + msdyn_company). The row's id is read, then bound by id.
    company_column: str | None = None
    # An empty reference sends nothing, leaving the target's value as it is (for a column the target
    # requires but the source may not know yet, such as a customer's group in Finance).
    omit_when_empty: bool = False
    # Further key parts taken from lookups resolved before this one: (bound column, earlier target).
    # A target named "@..." is such a scratch value and is never written.
    with_key: tuple[tuple[str, str], ...] = ()
    # Dataverse → Finance through a second reference: read `via_column` (a lookup, `_x_value`) of the
    # referenced `via_set` row first, then `read_column` of the row it points at (Microsoft's map
    # paths such as msdyn_project.msdyn_owningcompany.cdm_companycode).
    via_set: str | None = None
    via_column: str | None = None
    # Where a lookup not in the map we ship comes from (a customer's map extension file).
    origin: str = ""
    # The target's single-valued navigation property for this lookup, the only name `@odata.bind`
    # takes (case-sensitive); it often differs from the column (msdyn_owningcompany → msdyn_OwningCompany).
    # Unset, the lookup column's logical name stands in for it.
    navigation: str | None = None

    @property
    def bind_name(self) -> str:
        return self.navigation or self.target


# A field pair as the targets stage runs it (TableMap.field_steps).
FieldStep = tuple[str | None, str, type | None, Callable[[Value, str], Any], FieldMap | None]


class CompanyRuleKind(StrEnum):
    LOOKUP = "lookup"  # a lookup on the source row names the company (Dataverse owning company)
    FIELD = "field"  # a field of the source row holds it (Finance dataAreaId)
    EACH_IN_SCOPE = "each-in-scope"  # fan out: one target row per legal entity in scope
    NONE = "none"


@dataclass(frozen=True)
class CompanyRule:
    kind: CompanyRuleKind
    source: str | None = None
    read_set: str | None = None
    read_column: str | None = None
    target_field: str | None = None
    provenance: Provenance = INF
    # Further target fields that carry the same company (e.g. ProjectDataAreaId on actuals staging).
    also_targets: tuple[str, ...] = ()
    # When the row has no company of its own: the referenced row's company lookup (e.g. a task's project).
    via_set: str | None = None
    via_column: str | None = None

    def describe(self) -> str:
        if self.kind is CompanyRuleKind.LOOKUP:
            hop = f"{self.via_set}.{self.via_column} → " if self.via_set else ""
            return f"{self.source} → {hop}{self.read_set}.{self.read_column} → {self.target_field}"
        if self.kind is CompanyRuleKind.FIELD:
            return f"{self.source} → {self.target_field}"
        if self.kind is CompanyRuleKind.EACH_IN_SCOPE:
            return f"one row per company in scope → {self.target_field}"
        return "none"


def company_from_lookup(
    source: str, target_field: str | None, provenance: Provenance = INF, also_targets: tuple[str, ...] = ()
) -> CompanyRule:
    """The owning company lookup (cdm_company) gives the legal entity code."""
    return CompanyRule(
        CompanyRuleKind.LOOKUP,
        source,
        "cdm_companies",
        "cdm_companycode",
        target_field,
        provenance,
        also_targets,
    )


def company_of_referenced(
    source: str,
    via_set: str,
    via_column: str,
    target_field: str | None,
    provenance: Provenance = INF,
    also_targets: tuple[str, ...] = (),
) -> CompanyRule:
    """The company of the row a lookup points at (a task has its project's company)."""
    rule = company_from_lookup(source, target_field, provenance, also_targets)
    return replace(rule, via_set=via_set, via_column=via_column)


def company_of_project(
    source: str, target_field: str | None = "dataAreaId", also_targets: tuple[str, ...] = ()
) -> CompanyRule:
    """The project's owning company (documented for projects; inferred for the rows hanging off them)."""
    return company_of_referenced(
        source, "msdyn_projects", "_msdyn_owningcompany_value", target_field, INF, also_targets
    )


def company_from_field(source: str, target_field: str | None = None) -> CompanyRule:
    return CompanyRule(CompanyRuleKind.FIELD, source, target_field=target_field, provenance=DOC)


def each_company_in_scope(target_field: str) -> CompanyRule:
    return CompanyRule(CompanyRuleKind.EACH_IN_SCOPE, target_field=target_field, provenance=DOC)


@dataclass(frozen=True)
class Filter:
    """Which source rows the map syncs. `columns` must be present for the predicate to be evaluated."""

    description: str
    columns: tuple[str, ...]
    predicate: Callable[[Mapping[str, Value]], bool]
    odata: str | None = None
    provenance: Provenance = INF


@dataclass(frozen=True)
class Document:
    """A Finance business event names a posted document; the map syncs its rows, read from `rows_set`.

    `match` pairs each event member with the row field that selects the document's rows (the event's
    InvoiceId → the rows' VendorInvoiceNum); the event's legal entity selects the rows' company
    field. All rows of one document are written together in atomic `$batch` changesets of
    `changeset_size`, so a document of thousands of lines costs a handful of calls (dual-write stops
    at 1,000 lines).
    """

    rows_set: str
    match: tuple[tuple[str, str], ...]
    # (entity set, OData condition): the document syncs only if that set has a matching row meeting it.
    only_if_any: tuple[str, str] | None = None
    only_if_description: str = ""
    changeset_size: int = 500
    # The rows' company field: export entities that are not company-specific name it otherwise
    # (the vendor invoice lines' DAreaId).
    company_field: str = "dataAreaId"
    # The company field of the `only_if_any` set, which need not be the rows' own.
    only_if_company_field: str = "dataAreaId"

    def rows_filter(self, company: str, members: Mapping[str, Any], company_field: str | None = None) -> KeyFilter:
        """The OData condition selecting the document's rows (of `rows_set`, or of a set whose
        company field is `company_field`)."""
        selector = {company_field or self.company_field: company.lower()}
        selector.update({row_field: str(members[member]) for member, row_field in self.match})
        return filter_for_key(selector)


@dataclass(frozen=True)
class Money:
    """Where a money flow's target row holds its amount and currency, so reconcile can tie out a
    period: counts and sums per currency on each side. `currency` is a target field, or the
    navigation property a Dataverse target binds the currency through; None where the target row
    names no currency (its amounts are in the project's)."""

    amount: str
    currency: str | None = None


@dataclass(frozen=True)
class SourceSide:
    system: System
    entity: str  # Dataverse table logical name, Finance entity (AOT) or business event id
    entity_set: str  # where to read a row again
    key_columns: tuple[str, ...]  # Dataverse: the primary id column; Finance: dataAreaId + natural key
    events: tuple[str, ...] = ()  # Finance: data-event entity names / business event ids this map takes
    # Finance key parts that are not strings (Edm.Guid, Edm.DateTimeOffset, Edm.Int32): OData writes
    # them bare in a key segment, so the type must be known.
    key_types: tuple[tuple[str, FieldType], ...] = ()


@dataclass(frozen=True)
class TargetSide:
    system: System
    entity_set: str
    key_fields: tuple[str, ...]
    provenance: Provenance = INF
    # An extension the target system needs before this map can run: the entity is not in the
    # standard published schema. The flow stays off until the setting names it as installed.
    requires_extension: str | None = None


@dataclass(frozen=True)
class TableMap:
    name: str
    title: str  # the dual-write map this flow replaces
    source: SourceSide
    target: TargetSide
    fields: tuple[FieldMap, ...]
    company: CompanyRule = CompanyRule(CompanyRuleKind.NONE)
    lookups: tuple[Lookup, ...] = ()
    filter: Filter | None = None
    operations: frozenset[Operation] = frozenset(
        {Operation.CREATE, Operation.UPDATE, Operation.DELETE, Operation.UPSERT}
    )
    write_mode: WriteMode = WriteMode.UPSERT
    # Writes by the integration's own identity are skipped unless this is set (DESIGN §6).
    accept_own_changes: bool = False
    reference: str = ""  # the reference file the facts come from
    notes: str = ""
    document: Document | None = None
    money: Money | None = None
    # Target fields the target itself moves on after our write (Finance journalizing a staged actual
    # sets IsJournalized to Yes): sent on create, never on update, and reconcile does not count them as
    # drift, so neither a later change nor a repair sends the source's value back over the target's.
    target_owned: tuple[str, ...] = ()
    # The source row is read again before every write, whatever the message carries: for the side of a
    # pair whose reverse flow writes the same fields, where a backlog's older image (a paused flow
    # resumed) would overwrite what the reverse flow brought over meanwhile.
    reread_source: bool = False
    # A target field holding the source record's own id where the target's key is made of values the
    # source does not keep unique (a contract line's sequence number): a create refused as existing
    # updates that row only when it is this record's, so one record never writes over another's.
    owner_field: str | None = None

    def target_type(self, name: str) -> FieldType:
        """How the target field `name` is written, from the field pair or lookup that fills it."""
        return self.target_types.get(name, FieldType.STRING)

    @cached_property
    def target_key_types(self) -> dict[str, FieldType]:
        """The type of each target key field, from the field pair or lookup that fills it."""
        types = {lk.target: lk.type for lk in self.lookups}
        types.update({f.target: f.type for f in self.fields})
        return {name: types.get(name, FieldType.STRING) for name in self.target.key_fields}

    @cached_property
    def lookup_steps(self) -> tuple[tuple[Lookup, Callable[[Value, str], Any]], ...]:
        """Each lookup with the wire formatting of what it resolves to, chosen once per map."""
        from shared.wire import converter

        return tuple((lookup, converter(self.target.system, lookup.type)) for lookup in self.lookups)

    @property
    def flow_queue(self) -> str:
        return f"flow-{self.name}"

    @property
    def function_name(self) -> str:
        return "flow_" + self.name.replace("-", "_")

    @cached_property
    def source_columns(self) -> frozenset[str]:
        """Source columns this map reads: an Update touching none of them is not ours to sync."""
        columns = {f.source for f in self.fields if f.source}
        columns |= {lk.source for lk in self.lookups}
        if self.company.source:
            columns.add(self.company.source)
        if self.filter:
            columns |= set(self.filter.columns)
        return frozenset(columns)

    @cached_property
    def target_types(self) -> dict[str, FieldType]:
        """Each target field's wire type, decided once per map rather than searched per value."""
        types = {lookup.target: lookup.type for lookup in reversed(self.lookups)}
        types.update({pair.target: pair.type for pair in reversed(self.fields)})
        return types

    @cached_property
    def scratch_targets(self) -> tuple[str, ...]:
        """The lookups' scratch values ("@name"): key parts of later lookups, never written."""
        return tuple(lookup.target for lookup in self.lookups if lookup.target.startswith("@"))

    @cached_property
    def field_steps(self) -> tuple[FieldStep, ...]:
        """Each field pair as (source, target, type written as it is, wire formatting of anything else,
        pair), decided once per map: the pair is None for a plain copy (no transform, value map,
        default or setting), the kind nearly every pair is, which the targets stage then copies
        without asking any of that per value, nor calling anything for a value of the type it writes."""
        from shared.wire import conversion  # wire formats by the types defined here: imported late

        return tuple(
            (
                pair.source,
                pair.target,
                *conversion(self.target.system, pair.type),
                None if pair.source and _plain(pair) else pair,
            )
            for pair in self.fields
        )

    @property
    def update_filtering_attributes(self) -> tuple[str, ...]:
        """The Dataverse plug-in step's filtering attributes for Update (mapped columns only)."""
        return tuple(sorted(self.source_columns))

    def allows(self, operation: Operation) -> bool:
        return operation in self.operations

    def describe(self) -> dict[str, Any]:
        """The map as plain data, for `projops-sync maps` and docs/maps.md."""
        return {
            "flow": self.name,
            "title": self.title,
            "direction": f"{self.source.system} → {self.target.system}",
            "source": {
                "system": self.source.system.value,
                "entity": self.source.entity,
                "entity_set": self.source.entity_set,
                "key": list(self.source.key_columns),
                "events": list(self.source.events),
            },
            "target": {
                "system": self.target.system.value,
                "entity_set": self.target.entity_set,
                "key": list(self.target.key_fields),
                "write_mode": self.write_mode.value,
                "provenance": self.target.provenance.value,
                "requires_extension": self.target.requires_extension,
            },
            "company": self.company.describe(),
            "filter": (
                {
                    "description": self.filter.description,
                    "odata": self.filter.odata,
                    "provenance": self.filter.provenance.value,
                }
                if self.filter
                else None
            ),
            "operations": sorted(op.value for op in self.operations),
            "fields": [
                {
                    "source": f.source,
                    "target": f.target,
                    "type": f.type.value,
                    "value_map": dict_str(f.value_map.pairs) if f.value_map else None,
                    "default": f.default,
                    "transform": getattr(f.transform, "__name__", None),
                    "provenance": f.provenance.value,
                    "note": f.note,
                    "only_with": f.only_with,
                    "origin": f.origin or None,
                }
                for f in self.fields
            ],
            "lookups": [
                {
                    "source": lk.source,
                    "target": lk.target,
                    "via": _lookup_via(lk),
                    "navigation": lk.navigation,
                    "provenance": lk.provenance.value,
                    "note": lk.note,
                    "origin": lk.origin or None,
                }
                for lk in self.lookups
            ],
            "document": (
                {
                    "rows": self.document.rows_set,
                    "selected_by": {member: row for member, row in self.document.match},
                    "company_field": self.document.company_field,
                    "only_if": self.document.only_if_description or None,
                    "changeset_size": self.document.changeset_size,
                }
                if self.document
                else None
            ),
            "update_filtering_attributes": list(self.update_filtering_attributes),
            "reference": self.reference,
            "notes": self.notes,
        }


def dict_str(pairs: Mapping[Any, Any]) -> dict[str, Any]:
    return {str(k): v for k, v in pairs.items()}


def _lookup_via(lookup: Lookup) -> str:
    if lookup.read_set:
        via = f"{lookup.read_set}.{lookup.read_column}"
        if lookup.via_set:
            via = f"{lookup.via_set}.{lookup.via_column} → {via}"
        if lookup.require_set:
            via += f" (must exist in {lookup.require_set}.{lookup.require_field})"
        return via
    if lookup.company_column or lookup.with_key:
        parts = [str(lookup.bind_key)]
        if lookup.company_column:
            parts.append(f"{lookup.company_column} = the record's company")
        parts += [f"{column} = {name}" for column, name in lookup.with_key]
        bound_as = f" (@odata.bind as {lookup.navigation})" if lookup.navigation else ""
        return f"{lookup.bind_set}({', '.join(parts)}) → {lookup.resolve_id}{bound_as}"
    if lookup.resolve_id:
        return f"{lookup.bind_set}({lookup.bind_key}) → {lookup.resolve_id}"
    bound_as = f" as {lookup.navigation}" if lookup.navigation and lookup.navigation != lookup.target else ""
    return f"@odata.bind{bound_as} {lookup.bind_set}({lookup.bind_key})"


def guard_no_duplicate_names(maps: list[TableMap]) -> None:
    names = [m.name for m in maps]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"duplicate flow names: {sorted(duplicates)}")


@dataclass(frozen=True)
class Registry:
    maps: tuple[TableMap, ...] = field(default_factory=tuple)

    def by_name(self, name: str) -> TableMap:
        for table_map in self.maps:
            if table_map.name == name:
                return table_map
        raise KeyError(f"no flow named {name!r}; flows: {', '.join(m.name for m in self.maps)}")

    def for_dataverse_entity(self, entity: str) -> list[TableMap]:
        # Asked once per routed message: answered from an index rather than a scan of every map.
        return list(self._dataverse_maps.get(entity) or self._dataverse_maps.get(entity.lower(), ()))

    @cached_property
    def _dataverse_maps(self) -> dict[str, tuple[TableMap, ...]]:
        index: dict[str, list[TableMap]] = {}
        for m in self.maps:
            if m.source.system is System.DATAVERSE:
                index.setdefault(m.source.entity, []).append(m)
        return {entity: tuple(maps) for entity, maps in index.items()}

    def dataverse_columns(self, entity: str) -> frozenset[str] | None:
        """The columns of a Dataverse table that its flows read, and the version; None: every column.

        The router normalizes and forwards only these: a 200-column row costs what its mapped columns
        cost. A document map reads its lines' columns by its own rules, so it gets the whole row."""
        return self._dataverse_columns.get(entity.lower())

    @cached_property
    def _dataverse_columns(self) -> dict[str, frozenset[str] | None]:
        columns: dict[str, frozenset[str] | None] = {}
        for entity in {m.source.entity for m in self.maps if m.source.system is System.DATAVERSE}:
            maps = self.for_dataverse_entity(entity)
            read = {"versionnumber"}.union(*(m.source_columns | set(m.source.key_columns) for m in maps))
            columns[entity] = None if any(m.document is not None for m in maps) else frozenset(read)
        return columns

    def for_finance_event(self, entity: str) -> list[TableMap]:
        wanted = entity.lower()
        return [
            m
            for m in self.maps
            if m.source.system is System.FINANCE
            and (m.source.entity.lower() == wanted or wanted in {e.lower() for e in m.source.events})
        ]
