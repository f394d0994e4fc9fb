"""Every Finance name the maps use exists in a live Finance `$metadata` (the project's copy).

`sandbox/finance/metadata.json` is a verbatim subset of a live environment's published schema (its
`source` says where from). This test reads it directly, not through the simulator, and holds every
map against it with check-maps: entity sets, keys and their types, fields and their types, enum
symbols, document selectors. A flow whose entity no standard Finance publishes is off until its
extension is installed, and is passed over here (the extension's own schema is the customer's).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from functions.catalog import CATALOG
from shared.maps import FieldType, Registry, System, TableMap
from shared.operations.check_maps import Problem, check_maps
from shared.operations.metadata import EntityType, Metadata

COPY = Path(__file__).resolve().parents[2] / "sandbox" / "finance" / "metadata.json"
NAMESPACE = "Microsoft.Dynamics.DataEntities"


def live_finance() -> Metadata:
    data = json.loads(COPY.read_text())
    metadata = Metadata()
    for name, members in data["enums"].items():
        metadata.enums[f"{NAMESPACE}.{name}"] = {member for member, _ in members}
    for entity_set, spec in data["entity_sets"].items():
        entity = EntityType(name=entity_set, key=tuple(spec["keys"]))
        for prop in spec["properties"]:
            kind = f"{NAMESPACE}.{prop['enum']}" if prop["type"] == "enum" else prop["type"]
            entity.properties[prop["name"]] = kind
        metadata.entity_types[entity_set] = entity
        metadata.entity_sets[entity_set] = entity_set
    return metadata


def finance_problems(registry: Registry) -> list[Problem]:
    return [p for p in check_maps(registry, Metadata(), live_finance()) if p.system == System.FINANCE.value]


FINANCE_SIDED = [m for m in CATALOG.maps if System.FINANCE in (m.source.system, m.target.system)]


@pytest.mark.parametrize("table_map", FINANCE_SIDED, ids=[m.name for m in FINANCE_SIDED])
def test_every_finance_name_of_the_map_is_in_the_live_metadata(table_map: TableMap) -> None:
    assert finance_problems(Registry((table_map,))) == []


def test_the_copy_is_a_live_schema_not_ours() -> None:
    source = json.loads(COPY.read_text())["source"]
    assert source["commit"] == "0a4c110aaf3eec39385a3347c419bf56873cdb44"
    # Names the first wave guessed and the live schema does not have.
    sets = live_finance().entity_sets
    assert "ProjCDSActualsImports" not in sets and "ProjActualsImports" in sets


def test_a_misspelt_field_a_wrong_key_and_a_bad_symbol_are_caught() -> None:
    actuals = CATALOG.by_name("actuals")
    typo = replace(actuals.fields[0], target="ActualsImportID")
    wrong_key = replace(actuals.target, key_fields=("dataAreaId", "ActualId"))
    enum_pair = next(f for f in actuals.fields if f.value_map is not None and f.target == "TransactionType")
    assert enum_pair.value_map is not None
    bad_symbol = replace(enum_pair, value_map=replace(enum_pair.value_map, pairs={192350000: "UnbilledSales"}))
    as_string = replace(next(f for f in actuals.fields if f.target == "Amount"), type=FieldType.STRING)
    broken = replace(
        actuals,
        target=wrong_key,
        fields=(typo, bad_symbol, as_string, *actuals.fields[1:]),
    )
    found = {(p.what, p.name) for p in finance_problems(Registry((broken,)))}
    assert ("target field", "ActualsImportID") in found
    assert ("target key", "dataAreaId,ActualId") in found
    assert ("enum symbol", "TransactionType=UnbilledSales") in found
    assert ("target type", "Amount") in found


def test_a_wrong_constant_symbol_and_a_required_record_read_by_a_non_key_are_caught() -> None:
    funding = CATALOG.by_name("funding-sources")
    constant = next(f for f in funding.fields if f.target == "FundingType")
    wrong_constant = replace(funding, fields=(replace(constant, default="Customers"), *funding.fields))
    milestones = CATALOG.by_name("contract-milestones")
    line = next(lk for lk in milestones.lookups if lk.require_set == "ProjectContractLines")
    by_key = replace(milestones, lookups=(replace(line, require_by_filter=False),))
    found = {(p.what, p.name) for p in finance_problems(Registry((wrong_constant, by_key)))}
    assert ("enum symbol", "FundingType=Customers") in found
    # ContractLineId is a field of ProjectContractLines, not its key: a keyed read would be refused.
    assert ("lookup key", "ProjectContractLines(ContractLineId,dataAreaId)") in found
