"""check-maps: every table map against the live $metadata of Dataverse and Finance (DESIGN §8).

Most Project Operations names are inferred (Microsoft's map definitions are not public), so this is
how an engineer proves a map before a posting depends on it: entity sets, fields, keys, navigation
properties used in binds, and enum symbols in value maps.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass

from shared.extensions import WHAT_TO_ADD
from shared.maps import CompanyRuleKind, FieldType, Registry, System, TableMap
from shared.operations.metadata import EntityType, Metadata, parse_metadata
from shared.runtime import Runtime

# The EDM types a Finance property may have for each way the map writes it.
_FINANCE_TYPES: dict[FieldType, tuple[str, ...]] = {
    FieldType.STRING: ("Edm.String",),
    FieldType.INT: ("Edm.Int32", "Edm.Int64"),
    FieldType.OPTION: ("Edm.Int32", "Edm.Int64"),
    FieldType.DECIMAL: ("Edm.Decimal",),
    FieldType.DATE: ("Edm.DateTimeOffset", "Edm.Date"),
    FieldType.DATETIME: ("Edm.DateTimeOffset",),
    # A Guid may be written into a string field as its text (not into a key part: see below).
    FieldType.GUID: ("Edm.Guid", "Edm.String"),
    FieldType.BOOL: ("Edm.Boolean",),
}


@dataclass(frozen=True)
class Problem:
    flow: str
    system: str
    what: str
    name: str
    detail: str


def _lookup_column_ok(entity: EntityType, column: str) -> bool:
    return entity.has_field(column) or f"_{column}_value" in entity.properties


def _field_ok(system: System, entity: EntityType, name: str) -> bool:
    if system is System.DATAVERSE:
        return _lookup_column_ok(entity, name)
    return entity.has_field(name)


def _check_bind_name(
    entity: EntityType, bind_name: str, column: str, entity_set: str, problem: Callable[[System, str, str, str], None]
) -> None:
    """`X@odata.bind` is taken only where X is a navigation property, exact case (the Web API's OData reader)."""
    if bind_name in entity.navigation:
        return
    declared = entity.navigation_for(column) or sorted(n for n in entity.navigation if n.lower() == bind_name.lower())
    hint = f"; the lookup {column} binds as {', '.join(declared)}" if declared else ""
    problem(
        System.DATAVERSE,
        "bind navigation",
        bind_name,
        f"not a navigation property of {entity_set} (names are case-sensitive){hint}",
    )


def _finance_type_problem(metadata: Metadata, entity: EntityType, name: str, field_type: FieldType) -> str | None:
    """Why a Finance property cannot take what the map writes into it (or reads from it), if it cannot."""
    edm = entity.properties.get(name)
    if edm is None:
        return None
    if field_type in (FieldType.ENUM, FieldType.NOYES):
        members = metadata.enum_members(edm)
        if members is None:
            return f"is {edm}, not an enum"
        if field_type is FieldType.NOYES and members != {"No", "Yes"}:
            return f"is {edm}, not NoYes"
        return None
    allowed = _FINANCE_TYPES.get(field_type, ())
    if edm not in allowed:
        return f"is {edm}; the map treats it as {field_type.value}"
    return None


def _filter_names(condition: str) -> list[str]:
    """The property names of a simple OData condition (`ProjId ne ''`, `A eq 'x' and B gt 0`)."""
    words = re.findall(r"'(?:[^']|'')*'|[A-Za-z_][A-Za-z0-9_]*", condition)
    keywords = {"and", "or", "not", "eq", "ne", "gt", "ge", "lt", "le", "null", "true", "false"}
    return [w for w in words if not w.startswith("'") and w not in keywords]


def check_map(
    table_map: TableMap, dataverse: Metadata, finance: Metadata, extensions: Collection[str] = ()
) -> list[Problem]:
    problems: list[Problem] = []
    by_system = {System.DATAVERSE: dataverse, System.FINANCE: finance}
    extension = table_map.target.requires_extension
    if extension and extension not in extensions:
        # Off until the extension exists: its entity is in no standard $metadata (see `maps`).
        return problems

    def problem(system: System, what: str, name: str, detail: str) -> None:
        problems.append(Problem(table_map.name, system.value, what, name, detail))

    def entity(system: System, entity_set: str, role: str) -> EntityType | None:
        found = by_system[system].entity_for_set(entity_set)
        if found is None:
            problem(system, "entity set", entity_set, f"{role} entity set does not exist")
        return found

    source, target = table_map.source, table_map.target
    source_entity = entity(source.system, source.entity_set, "source")
    if source_entity is not None:
        for column in sorted(table_map.source_columns):
            if not _field_ok(source.system, source_entity, column):
                problem(source.system, "source field", column, f"not a property of {source.entity_set}")
        for column in source.key_columns:
            if not _field_ok(source.system, source_entity, column):
                problem(source.system, "source key", column, f"not a property of {source.entity_set}")
        if source.system is System.FINANCE:
            if set(source.key_columns) not in source_entity.key_sets():
                problem(
                    source.system,
                    "source key",
                    ",".join(source.key_columns),
                    f"not the key of {source.entity_set} ({','.join(source_entity.key)})",
                )
            declared = dict(source.key_types)
            for column in source.key_columns:
                wrong = _finance_type_problem(finance, source_entity, column, declared.get(column, FieldType.STRING))
                if wrong:
                    problem(source.system, "source key type", column, wrong)
            for pair in table_map.fields:
                if pair.source and pair.value_map is not None and pair.type is FieldType.OPTION:
                    members = finance.enum_members(source_entity.properties.get(pair.source, ""))
                    for symbol in pair.value_map.pairs:
                        if members is not None and isinstance(symbol, str) and symbol not in members:
                            problem(source.system, "enum symbol", f"{pair.source}={symbol}", "not a member")

    target_entity = entity(target.system, target.entity_set, "target")
    if target_entity is not None:
        written = [f.target for f in table_map.fields]
        written += [t for t in (table_map.company.target_field, *table_map.company.also_targets) if t]
        for name in written:
            if not _field_ok(target.system, target_entity, name):
                problem(target.system, "target field", name, f"not a property of {target.entity_set}")
        if target.system is System.FINANCE:
            typed = [(f.target, f.type) for f in table_map.fields]
            typed += [(lk.target, lk.type) for lk in table_map.lookups if not lk.target.startswith("@")]
            for name, field_type in typed:
                wrong = _finance_type_problem(finance, target_entity, name, field_type)
                if wrong:
                    problem(target.system, "target type", name, wrong)
        for lookup in table_map.lookups:
            name = lookup.target
            if name.startswith("@"):
                continue  # a scratch key part, never written
            if target.system is System.DATAVERSE and name.startswith("_") and name.endswith("_value"):
                ok = name in target_entity.properties or name[1:-6] in target_entity.navigation
            elif target.system is System.DATAVERSE and lookup.bind_set:
                ok = f"_{name}_value" in target_entity.properties or name in target_entity.navigation
                if ok:
                    _check_bind_name(target_entity, lookup.bind_name, name, target.entity_set, problem)
            else:
                ok = target_entity.has_field(name)
            if not ok:
                problem(
                    target.system,
                    "lookup target",
                    name,
                    f"not a field or navigation property of {target.entity_set}",
                )
        if target.system is System.FINANCE:
            for name, field_type in table_map.target_key_types.items():
                edm = target_entity.properties.get(name)
                # A key part is written bare or quoted by its type: the two must agree exactly.
                if edm is not None and (field_type is FieldType.GUID) != (edm == "Edm.Guid"):
                    problem(
                        target.system, "target key type", name, f"is {edm}; the map treats it as {field_type.value}"
                    )
        if set(target.key_fields) not in target_entity.key_sets():
            known = [list(k) for k in target_entity.all_keys()]
            problem(
                target.system,
                "target key",
                ",".join(target.key_fields),
                f"not a key of {target.entity_set} (keys: {known})",
            )
        for pair in table_map.fields:
            if pair.type is not FieldType.ENUM:
                continue
            # A constant (dual-write's Default transform) is a symbol as much as a value map's are.
            symbols = [pair.default] if isinstance(pair.default, str) else []
            if pair.value_map is not None:
                symbols += list(pair.value_map.pairs.values())
            if not symbols:
                continue
            enum_type = target_entity.properties.get(pair.target, "")
            members = by_system[target.system].enum_members(enum_type) if enum_type else None
            if members is None:
                problem(target.system, "enum", pair.target, f"type {enum_type or '?'} is not an enum type")
                continue
            for symbol in symbols:
                if symbol not in members:
                    problem(
                        target.system,
                        "enum symbol",
                        f"{pair.target}={symbol}",
                        f"not a member of {enum_type}",
                    )

    for lookup in table_map.lookups:
        if lookup.via_set:
            via = entity(System.DATAVERSE, lookup.via_set, "lookup via")
            if (
                via is not None
                and lookup.via_column
                and not _lookup_column_ok(via, lookup.via_column.removeprefix("_").removesuffix("_value"))
            ):
                problem(System.DATAVERSE, "lookup field", f"{lookup.via_set}.{lookup.via_column}", "does not exist")
        if lookup.read_set:
            read = entity(System.DATAVERSE, lookup.read_set, "lookup")
            if read is not None and lookup.read_column and not read.has_field(lookup.read_column):
                problem(
                    System.DATAVERSE,
                    "lookup field",
                    f"{lookup.read_set}.{lookup.read_column}",
                    "does not exist",
                )
        if lookup.require_set:
            required = entity(System.FINANCE, lookup.require_set, "required lookup")
            if required is not None and lookup.require_field and not required.has_field(lookup.require_field):
                problem(
                    System.FINANCE,
                    "lookup field",
                    f"{lookup.require_set}.{lookup.require_field}",
                    "does not exist",
                )
            elif required is not None and lookup.require_field and not lookup.require_by_filter:
                # The check reads the record by key: a field that is not the key is refused by Finance.
                by_key = {lookup.require_field}
                if table_map.company.kind is not CompanyRuleKind.NONE:
                    by_key.add("dataAreaId")
                if by_key not in required.key_sets():
                    problem(
                        System.FINANCE,
                        "lookup key",
                        f"{lookup.require_set}({','.join(sorted(by_key))})",
                        f"not the key of {lookup.require_set} ({','.join(required.key)}): find it by filter",
                    )
        if lookup.bind_set:
            bound = entity(System.DATAVERSE, lookup.bind_set, "bind")
            key = {lookup.bind_key, *([lookup.company_column] if lookup.company_column else [])}
            key |= {column for column, _ in lookup.with_key}
            if bound is not None and lookup.bind_key and key not in bound.key_sets():
                problem(
                    System.DATAVERSE,
                    "bind key",
                    f"{lookup.bind_set}({','.join(sorted(str(k) for k in key))})",
                    "is not a key of the bound table",
                )
    rule = table_map.company
    if rule.via_set and rule.via_column:
        via = entity(System.DATAVERSE, rule.via_set, "company via")
        if via is not None and not _lookup_column_ok(via, rule.via_column.removeprefix("_").removesuffix("_value")):
            problem(System.DATAVERSE, "company field", f"{rule.via_set}.{rule.via_column}", "does not exist")
    if table_map.document is not None:
        document = table_map.document
        rows = entity(System.FINANCE, document.rows_set, "document rows")
        selecting = [row_field for _, row_field in document.match] + [document.company_field]
        missing = [row_field for row_field in selecting if rows is not None and not rows.has_field(row_field)]
        for row_field in missing:
            problem(System.FINANCE, "document field", f"{document.rows_set}.{row_field}", "does not exist")
        if document.only_if_any is not None:
            other_set, condition = document.only_if_any
            other = entity(System.FINANCE, other_set, "document condition")
            # The condition is an OData filter on the other set: every name in it must be one of its
            # properties, or Finance refuses the read and the document can never sync.
            named = [row_field for _, row_field in document.match] + [document.only_if_company_field]
            named += _filter_names(condition)
            for name in named:
                if other is not None and not other.has_field(name):
                    problem(System.FINANCE, "document field", f"{other_set}.{name}", "does not exist")
    if table_map.company.read_set:
        company = entity(System.DATAVERSE, table_map.company.read_set, "company")
        if (
            company is not None
            and table_map.company.read_column
            and not company.has_field(table_map.company.read_column)
        ):
            problem(System.DATAVERSE, "company field", table_map.company.read_column, "does not exist")
    return problems


def check_maps(
    registry: Registry, dataverse: Metadata, finance: Metadata, extensions: Collection[str] = ()
) -> list[Problem]:
    """Every map's problems; a map whose target needs a Finance extension not in `extensions` is
    passed over (it is off), and `waiting_for_extensions` names it."""
    problems: list[Problem] = []
    for table_map in registry.maps:
        problems.extend(check_map(table_map, dataverse, finance, extensions))
    return problems


def waiting_for_extensions(registry: Registry, extensions: Collection[str]) -> list[str]:
    """One line per map that stays off until the customer adds a Finance extension."""
    return [
        f"{m.name}: off until Finance has the extension {m.target.requires_extension}: "
        f"{WHAT_TO_ADD[m.target.requires_extension]}"
        for m in registry.maps
        if m.target.requires_extension and m.target.requires_extension not in extensions
    ]


async def check_live(runtime: Runtime, registry: Registry) -> tuple[list[Problem], str]:
    """check-maps against the $metadata both systems serve now: the problems and the report text."""
    dataverse = parse_metadata(await runtime.engine.dataverse.metadata())
    finance = parse_metadata(await runtime.engine.finance.metadata())
    extensions = runtime.settings.finance_extensions
    problems = check_maps(registry, dataverse, finance, extensions)
    lines = [problems_table(problems), *waiting_for_extensions(registry, extensions)]
    return problems, "\n".join(lines)


def problems_table(problems: list[Problem]) -> str:
    if not problems:
        return "every map matches both systems' metadata"
    rows = [("flow", "system", "what", "name", "problem")] + [
        (p.flow, p.system, p.what, p.name, p.detail) for p in problems
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r[:4])) + "  " + r[4] for r in rows)
