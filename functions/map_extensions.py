"""A customer's own fields on our maps, from a file, without forking a map.

A map extension file (YAML) names flows and, for each, extra field pairs, extra lookups of the kinds
the maps already use, one extra filter condition, and pairs to switch off. It cannot touch a map's
keys or its company rule, so a Microsoft update of the map we ship still applies underneath. The file
is read once at start-up; anything wrong in it stops the app with the file's line:

```yaml
flows:
  projects-v2:
    fields:
      - {source: cnt_costcenter, target: DimensionDisplayValue}
    switch_off: [Description]
    filter: {column: msdyn_projectnumber, op: ne, value: "TEMPLATE"}
  workers:
    fields:
      - {source: KnownAs, target: cnt_knownas}
```

A field: `source` (null for a constant), `target`, and optionally `type` (string, int, decimal, bool,
date, datetime, guid, enum, noyes, option), `value_map` (source value → target value), `default`,
`transform` (one of TRANSFORMS). A lookup: `kind` (one of LOOKUP_KINDS), `source`, `target`. Every
merged row is marked as the extension's, with its line, in `maps` and `docs/maps.md`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from functions import lookups
from shared.clients.addressing import is_property_name, literal
from shared.maps import INF, FieldMap, FieldType, Filter, Lookup, Registry, TableMap, ValueMap
from shared.values import Value


class MapExtensionError(ValueError):
    """The extension file is wrong; the message names the file and line and what to change."""


def _text(transform: Callable[[str], str]) -> Callable[[Value], Value]:
    def apply(value: Value) -> Value:
        return transform(value) if isinstance(value, str) else value

    return apply


# The transforms an extension may name: pure, total, and safe on any value.
TRANSFORMS: dict[str, Callable[[Value], Value]] = {
    "upper": _text(str.upper),
    "lower": _text(str.lower),
    "strip": _text(str.strip),
    "company_code": lookups.company_code,
    "dataarea_id": lookups.dataarea_id,
}
for _name, _function in TRANSFORMS.items():
    _function.__name__ = _name

# The lookup kinds an extension may use, each as the maps use it (source, target).
LOOKUP_KINDS: dict[str, Callable[[str, str], Lookup]] = {
    "currency_code": lambda source, target: lookups.currency_code(source, target),
    "currency_bind": lambda source, target: lookups.currency_bind(source, target),
    "project_number": lambda source, target: lookups.project_number(source, target, must_be_in_finance=False),
    "project_bind": lambda source, target: lookups.project_bind(source, target),
    "transaction_category_number": lambda source, target: lookups.transaction_category_number(source, target),
    "task_activity_number": lambda source, target: lookups.task_activity_number(source, target),
    "contract_number": lambda source, target: lookups.contract_number(
        source, target, required=False, must_be_in_finance=False
    ),
}

_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda value, wanted: value == wanted,
    "ne": lambda value, wanted: value != wanted,
    "in": lambda value, wanted: value in wanted,
}


@dataclass(frozen=True)
class _Located:
    """A YAML value with the line it starts on (1-based), for errors a person can act on."""

    value: Any
    line: int


def _locate(node: yaml.Node) -> _Located:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        # An entry is located at its key's line: that is where a person reads "projects-v3:".
        return _Located(
            {_plain(key): _Located(_locate(value).value, key.start_mark.line + 1) for key, value in node.value}, line
        )
    if isinstance(node, yaml.SequenceNode):
        return _Located([_locate(item) for item in node.value], line)
    return _Located(_plain(node), line)


_YAML_FLOAT = "tag:yaml.org,2002:float"


class _InexactNumber(ValueError):
    def __init__(self, text: str, line: int) -> None:
        super().__init__(f"line {line}: {text!r} is not a number with an exact value")


def _exact_number(text: str, line: int) -> Decimal:
    """YAML reads 1.5 as a binary float; amounts and quantities are Decimal, taken from the file's text
    (12345678901234567.25 as a float is ...568)."""
    try:
        number = Decimal(text.replace("_", ""))
    except InvalidOperation:
        raise _InexactNumber(text, line) from None
    if not number.is_finite():
        raise _InexactNumber(text, line)
    return number


def _plain(node: yaml.Node) -> Any:
    if node.tag == _YAML_FLOAT:
        return _exact_number(node.value, node.start_mark.line + 1)
    return yaml.safe_load(yaml.serialize(node))


def _unwrap(located: _Located) -> Any:
    value = located.value
    if isinstance(value, dict):
        return {key: _unwrap(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_unwrap(item) for item in value]
    return value


class _Reader:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, located: _Located, message: str) -> MapExtensionError:
        return MapExtensionError(f"{self.path.name} line {located.line}: {message}")

    def mapping(self, located: _Located, what: str, allowed: set[str]) -> dict[str, _Located]:
        if not isinstance(located.value, dict):
            raise self.fail(located, f"{what} must be a mapping")
        unknown = sorted(str(k) for k in set(located.value) - allowed)
        if unknown:
            entry = located.value[next(k for k in located.value if str(k) == unknown[0])]
            raise self.fail(entry, f"{what} has no setting {unknown[0]!r} (known: {', '.join(sorted(allowed))})")
        return dict(located.value)

    def items(self, located: _Located, what: str) -> list[_Located]:
        if not isinstance(located.value, list):
            raise self.fail(located, f"{what} must be a list")
        return list(located.value)

    def name(self, located: _Located | None, what: str, parent: _Located) -> str:
        if located is None or not isinstance(located.value, str) or not located.value:
            raise self.fail(located or parent, f"{what} must be a name")
        if not is_property_name(located.value):
            # The name goes into $select and $filter as it is: only a property name may.
            raise self.fail(located, f"{what} {located.value!r} is not a column or field name")
        return str(located.value)


def read_extensions(path: Path, registry: Registry) -> Registry:
    """The registry with every extension in the file merged into its map."""
    try:
        root = yaml.compose(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise MapExtensionError(f"{path.name}{line}: not YAML: {getattr(exc, 'problem', exc)}") from None
    except OSError as exc:
        raise MapExtensionError(f"the map extension file {path} cannot be read: {exc.strerror}") from None
    if root is None:
        return registry
    reader = _Reader(path)
    try:
        located_root = _locate(root)
    except _InexactNumber as exc:
        raise MapExtensionError(f"{path.name} {exc}") from None
    document = reader.mapping(located_root, "the file", {"flows"})
    flows = document.get("flows")
    if flows is None:
        return registry
    merged = {m.name: m for m in registry.maps}
    if not isinstance(flows.value, dict):
        raise reader.fail(flows, "flows must be a mapping of flow names to their extensions")
    for flow, located in flows.value.items():
        if flow not in merged:
            raise reader.fail(located, f"unknown flow {flow!r} (flows: {', '.join(merged)})")
        merged[flow] = _extend(reader, merged[flow], located)
    return Registry(tuple(merged[m.name] for m in registry.maps))


def _extend(reader: _Reader, table_map: TableMap, located: _Located) -> TableMap:
    settings = reader.mapping(located, f"flow {table_map.name}", {"fields", "lookups", "filter", "switch_off"})
    protected = set(table_map.target.key_fields) | {
        t for t in (table_map.company.target_field, *table_map.company.also_targets) if t
    }
    existing = {f.target for f in table_map.fields} | {lk.target for lk in table_map.lookups}
    off: set[str] = set()
    for item in reader.items(settings["switch_off"], "switch_off") if "switch_off" in settings else []:
        target = reader.name(item, "a switch_off entry", settings["switch_off"])
        if target in protected:
            raise reader.fail(
                item, f"{target} is a key or company field of {table_map.name}; it cannot be switched off"
            )
        if target not in existing:
            raise reader.fail(item, f"{table_map.name} has no pair writing {target} to switch off")
        off.add(target)
    origin = f"extension {reader.path.name}"
    fields = [f for f in table_map.fields if f.target not in off]
    taken = {f.target for f in fields} | {lk.target for lk in table_map.lookups if lk.target not in off}
    for item in reader.items(settings["fields"], "fields") if "fields" in settings else []:
        pair = _field(reader, item, table_map, protected, taken, origin)
        taken.add(pair.target)
        fields.append(pair)
    found = [lk for lk in table_map.lookups if lk.target not in off]
    for item in reader.items(settings["lookups"], "lookups") if "lookups" in settings else []:
        lookup = _lookup(reader, item, table_map, protected, taken, origin)
        taken.add(lookup.target)
        found.append(lookup)
    row_filter = table_map.filter
    if "filter" in settings:
        row_filter = _filter(reader, settings["filter"], table_map.filter, origin)
    return replace(table_map, fields=tuple(fields), lookups=tuple(found), filter=row_filter)


def _field(
    reader: _Reader, item: _Located, table_map: TableMap, protected: set[str], taken: set[str], origin: str
) -> FieldMap:
    spec = reader.mapping(item, "a field", {"source", "target", "type", "value_map", "default", "transform"})
    target = reader.name(spec.get("target"), "a field's target", item)
    _check_target(reader, item, table_map, target, protected, taken)
    source = spec["source"].value if "source" in spec else None
    if source is not None and not (isinstance(source, str) and is_property_name(source)):
        raise reader.fail(spec["source"], "a field's source must be a column name (or null for a constant)")
    field_type = FieldType.STRING
    if "type" in spec:
        try:
            field_type = FieldType(spec["type"].value)
        except ValueError:
            known = ", ".join(t.value for t in FieldType)
            raise reader.fail(spec["type"], f"unknown type {spec['type'].value!r} (known: {known})") from None
    transform = None
    if "transform" in spec:
        transform = TRANSFORMS.get(str(spec["transform"].value))
        if transform is None:
            name = spec["transform"].value
            raise reader.fail(spec["transform"], f"unknown transform {name!r} (known: {', '.join(TRANSFORMS)})")
    value_map = None
    if "value_map" in spec:
        pairs = _unwrap(spec["value_map"])
        if not isinstance(pairs, dict) or not pairs:
            raise reader.fail(spec["value_map"], "a value_map must map source values to target values")
        value_map = ValueMap(f"{source} → {target} ({origin})", pairs, provenance=INF)
    default = _unwrap(spec["default"]) if "default" in spec else None
    if source is None and default is None:
        raise reader.fail(item, f"the pair writing {target} needs a source or a default")
    note = f"{origin} line {item.line}"
    return FieldMap(source, target, field_type, value_map, transform, default, INF, note, origin=origin)


def _lookup(
    reader: _Reader, item: _Located, table_map: TableMap, protected: set[str], taken: set[str], origin: str
) -> Lookup:
    spec = reader.mapping(item, "a lookup", {"kind", "source", "target"})
    kind = reader.name(spec.get("kind"), "a lookup's kind", item)
    build = LOOKUP_KINDS.get(kind)
    if build is None:
        raise reader.fail(spec["kind"], f"unknown lookup kind {kind!r} (known: {', '.join(LOOKUP_KINDS)})")
    target = reader.name(spec.get("target"), "a lookup's target", item)
    _check_target(reader, item, table_map, target, protected, taken)
    source = reader.name(spec.get("source"), "a lookup's source", item)
    return replace(build(source, target), note=f"{origin} line {item.line}", origin=origin)


def _check_target(
    reader: _Reader, item: _Located, table_map: TableMap, target: str, protected: set[str], taken: set[str]
) -> None:
    if target in protected:
        raise reader.fail(item, f"{target} is a key or company field of {table_map.name}; an extension cannot write it")
    if target in taken:
        raise reader.fail(
            item, f"{table_map.name} already writes {target}; switch that pair off first (switch_off) (off: [{target}])"
        )


def _filter(reader: _Reader, located: _Located, base: Filter | None, origin: str) -> Filter:
    spec = reader.mapping(located, "a filter", {"column", "op", "value"})
    column = reader.name(spec.get("column"), "a filter's column", located)
    op = str(spec["op"].value) if "op" in spec else "eq"
    compare = _OPERATORS.get(op)
    if compare is None:
        raise reader.fail(spec["op"], f"unknown filter op {op!r} (known: {', '.join(_OPERATORS)})")
    wanted = _unwrap(spec["value"]) if "value" in spec else None
    if op == "in" and not isinstance(wanted, list):
        raise reader.fail(located, "op in needs a list of values")

    def extra(row: Mapping[str, Any]) -> bool:
        return compare(row[column], wanted)

    def both(row: Mapping[str, Any]) -> bool:
        return (base is None or base.predicate(row)) and extra(row)

    both.__name__ = f"{base.predicate.__name__ if base else 'all'}_and_{column}_{op}"
    described = f"{column} {op} {wanted!r} ({origin} line {located.line})"
    columns = (*(base.columns if base else ()), column)
    values: list[Any] = list(wanted) if isinstance(wanted, list) else [wanted]
    joiner = " or " if op == "in" else " and "
    condition = joiner.join(f"{column} {'ne' if op == 'ne' else 'eq'} {literal(v)}" for v in values)
    # The source can only be queried by both conditions when the map's own has an OData form.
    odata = condition if base is None else (f"({base.odata}) and ({condition})" if base.odata else None)
    return Filter(f"{base.description} and {described}" if base else described, columns, both, odata, INF)
