"""Generate the simulators' schemas from the reference column and field lists.

Run once when the reference changes: `python -m sandbox.gen_schema <reference/maps folder>
[<reference/dataverse-metadata folder>]`. It writes sandbox/dataverse/live-tables.json (the tables a
live Project Operations schema covers), sandbox/dataverse/tables.json (the published CDM column
lists of the other tables) and sandbox/finance/entities.json; the simulators read only those files.
The schemas come from the services' own metadata and published column lists, not from our maps, so
a misspelt name in a map fails in the sandbox instead of passing silently.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

DV_TYPES = {
    "string": "string",
    "dateTime": "datetime",
    "decimal": "decimal",
    "double": "decimal",
    "int32": "int",
    "int64": "bigint",
    "boolean": "bool",
    "guid": "lookup",
}
FO_TYPES = {
    "string": "string",
    "date": "date",
    "dateTime": "datetime",
    "datetime": "datetime",
    "decimal": "decimal",
    "real": "decimal",
    "int32": "int",
    "int64": "int",
    "guid": "guid",
}


def dataverse_tables(folder: Path, skip: frozenset[str] = frozenset()) -> dict[str, dict]:
    tables: dict[str, dict] = {}
    for path in sorted((folder / "columns").glob("*.md")):
        logical = path.stem
        if logical in skip:
            continue
        columns: dict[str, dict] = {}
        for line in path.read_text().splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) < 5 or cells[0] in ("column (logical)", "---") or not re.match(r"^[a-z_0-9]+$", cells[0]):
                continue
            name, kind, enum = cells[0], cells[2], cells[4]
            if name.endswith("_display") or name in ("owneridtype",):
                continue
            column: dict = {"type": DV_TYPES.get(kind, "string")}
            if kind == "guid" and name == f"{logical}id":
                column["type"] = "guid"
            if kind == "int32" and enum:
                column["type"] = "picklist"
                column["values"] = sorted({int(v.split("=", 1)[0]) for v in enum.split(";") if "=" in v})
            if kind == "string" and cells[3].isdigit():
                column["max"] = int(cells[3])
            columns[name] = column
        tables[logical] = {"columns": columns, "source": f"reference columns/{path.name} (CDM)"}
    return tables


# What Dataverse derives and never takes in a payload: the name columns of lookups and choices
# (attribute_of), virtual columns and the owner's type.
LIVE_SKIPPED_TYPES = ("Virtual", "EntityName")


def live_tables(metadata_folder: Path) -> dict[str, Any]:
    """The sandbox's copy of the live Project Operations table definitions (reference tables.json).

    Trimmed to what the simulator uses: entity set, primary id and name, ownership, and per column
    its Dataverse type, length, date format, option values and, for a lookup, the navigation
    property `@odata.bind` must name for each table it can point at.
    """
    reference = json.loads((metadata_folder / "tables.json").read_text())
    tables: dict[str, Any] = {}
    for logical, table in sorted(reference["tables"].items()):
        options = {name.lower(): spec for name, spec in table["option_sets"].items()}
        navigation: dict[str, dict[str, str]] = {}
        for relationship in table["many_to_one"]:
            navigation.setdefault(relationship["column"], {})[relationship["target"]] = relationship[
                "navigation_property"
            ]
        columns: dict[str, dict[str, Any]] = {}
        for column in table["columns"]:
            if column.get("attribute_of") or column["type"] in LIVE_SKIPPED_TYPES:
                continue
            name = column["name"]
            spec: dict[str, Any] = {"type": column["type"]}
            for source, copied in (("max_length", "max"), ("format", "format"), ("date_time_behavior", "behavior")):
                if column.get(source) is not None and (source != "format" or column["type"] == "DateTime"):
                    spec[copied] = column[source]
            if column.get("targets"):
                spec["targets"] = column["targets"]
            if column["type"] in ("Lookup", "Owner", "Customer") and name in navigation:
                spec["navigation"] = navigation[name]
            option_set = options.get(name.lower())
            if option_set is not None:
                spec["values"] = [option[0] for option in option_set["options"]]
            columns[name] = spec
        tables[logical] = {
            "entity_set": table["entity_set_name"],
            "primary_id": table["primary_id"],
            "primary_name": table["primary_name"],
            "ownership": table["ownership"],
            "columns": columns,
        }
    source = reference["source"]
    return {
        "source": {
            "repository": source["repository"],
            "commit": source["commit"],
            "path": source["path"],
            "note": (
                "Dataverse Web API EntityDefinitions that Power Apps captured from a live Project Operations "
                "environment (core, without the Finance-integration solutions; January 2022), as extracted to "
                "the team's reference dataverse-metadata/tables.json and trimmed by sandbox/gen_schema.py. "
                "Columns the Finance integration adds are declared in sandbox/dataverse/schema.py with their source."
            ),
        },
        "tables": tables,
    }


def write_dataverse(maps_folder: Path, metadata_folder: Path) -> None:
    live = live_tables(metadata_folder)
    (HERE / "dataverse" / "live-tables.json").write_text(json.dumps(live, indent=1, sort_keys=True) + "\n")
    cdm = dataverse_tables(maps_folder, skip=frozenset(live["tables"]))
    (HERE / "dataverse" / "tables.json").write_text(json.dumps(cdm, indent=1, sort_keys=True) + "\n")


def finance_entities(folder: Path) -> dict[str, dict]:
    text = (folder / "finance-fields" / "FINANCE_ENTITY_FIELDS.md").read_text()
    entities: dict[str, dict] = {}
    for block in text.split("\n## ")[1:]:
        header = block.splitlines()[0]
        match = re.search(r"\((\w+)\)\s*$", header)
        fields_line = next((line for line in block.splitlines() if line.startswith("- fields:")), "")
        if not match or not fields_line:
            continue
        name = match.group(1)
        fields: dict[str, dict] = {}
        for item in fields_line[len("- fields:") :].split(","):
            item = item.strip()
            if not item or item.startswith(("Relationship_", "BackingTable_")) or item == "RecId:int64":
                continue
            field_name, _, kind = item.partition(":")
            fields[field_name] = {"type": FO_TYPES.get(kind, "") if kind else ""}
        entities[name] = {
            "label": header.split(" in ")[0],
            "fields": fields,
            "kind": "table" if "kind: table" in block else "entity",
        }
    # Entity pages carry no types: borrow them from a table with the same field, else guess by name.
    typed = {f: spec["type"] for e in entities.values() if e["kind"] == "table" for f, spec in e["fields"].items()}
    for entity in entities.values():
        for field_name, spec in entity["fields"].items():
            if not spec["type"]:
                spec["type"] = typed.get(field_name) or _guess(field_name)
    return entities


def _guess(name: str) -> str:
    if name.endswith("Date"):
        return "date"
    if name.endswith(("DateTime", "Time")):
        return "datetime"
    if re.search(r"(Amount|Price|Quantity|Rate|Percentage|Cost|Hours)$", name):
        return "decimal"
    if re.match(r"^(Is|Can|Allow)[A-Z]", name):
        return "noyes"
    return "string"


def main(argv: list[str]) -> int:
    folder = Path(argv[0]) if argv else Path("reference/maps")
    write_dataverse(folder, Path(argv[1]) if len(argv) > 1 else folder.parent / "dataverse-metadata")
    (HERE / "finance" / "entities.json").write_text(
        json.dumps(finance_entities(folder), indent=1, sort_keys=True) + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
