"""Generate the simulators' schemas from the reference column and field lists.

Run once when the reference changes: `python -m sandbox.gen_schema <reference/maps folder>`. It
writes sandbox/dataverse/tables.json and sandbox/finance/entities.json; the simulators read only
those files. The schemas come from the published column lists, not from our maps, so a misspelt
name in a map fails in the sandbox instead of passing silently.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

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


def dataverse_tables(folder: Path) -> dict[str, dict]:
    tables: dict[str, dict] = {}
    for path in sorted((folder / "columns").glob("*.md")):
        logical = path.stem
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
    (HERE / "dataverse" / "tables.json").write_text(
        json.dumps(dataverse_tables(folder), indent=1, sort_keys=True) + "\n"
    )
    (HERE / "finance" / "entities.json").write_text(
        json.dumps(finance_entities(folder), indent=1, sort_keys=True) + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
