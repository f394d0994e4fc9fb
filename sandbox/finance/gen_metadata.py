"""Copy the part of a live Finance `$metadata` the sandbox serves into `sandbox/finance/metadata.json`.

Run when the reference changes: `python -m sandbox.finance.gen_metadata <entity-sets.json>`, where
the argument is the extract of a live Dynamics 365 Finance `$metadata` (entity sets with their keys,
every property with its EDM type and nullability, enum types with their members). The simulator
reads only the copy, so the project never depends on the reference folder at run time.

The copy holds every entity set a map, the demo or a test touches and the reference data those
rows point at, whole (all properties, as the live service publishes them), and every enum type
their properties use.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

SOURCE = {
    "what": "entity sets, keys, property EDM types and enum members of a live Dynamics 365 Finance $metadata",
    "repository": "ntrtd/d365-agent",
    "commit": "0a4c110aaf3eec39385a3347c419bf56873cdb44",
    "folder": "asset/client/src/ (a client the SAP Cloud SDK generated from that environment's $metadata)",
    "version": "about 10.0.42/43, Project Operations integration entities present",
    "note": "names, keys, types and enum members only (facts); a subset of the 3,734 entity sets",
}

SANDBOX_SETS = (
    # prerequisites
    "LegalEntities",
    "Ledgers",
    "ExchangeRatesCDSEntity",
    "CustomersV3",
    "VendorsV2",
    "Workers",
    # setup and planning
    "WorkerResourceImports",
    "ResourceCategoriesShared",
    "ResourceCategories",
    "ProjectTransactionCategories",
    "SharedCategories",
    "ProjectContractHeaders",
    "ProjectFundingSources",
    "ProjectContractLines",
    "ProjectsV2",
    "ProjectTasks",
    "ProjectContractLineMilestones",
    "ProjEstimateHoursImport",
    "ProjEstimateExpensesImports",
    "ProjForecastSalesImport",
    # actuals and documents
    "ProjActualsImports",
    "ProjExpenseCategoriesExport",
    "ProjExpensesExport",
    "VendInvoiceExportsV2",
    "ProjVendInvoiceLinesExportEntity",
    # reference data the rows above point at
    "UnitsOfMeasure",
    "ReleasedProductsV2",
    "CustomerGroups",
    "Currencies",
    "ExchangeRateTypes",
    "FiscalCalendarsEntity",
    "ChartOfAccounts",
    "PaymentTerms",
)


def subset(reference: dict[str, Any], names: tuple[str, ...] = SANDBOX_SETS) -> dict[str, Any]:
    sets = {name: reference["entity_sets"][name] for name in names}
    used = sorted({p["enum"] for spec in sets.values() for p in spec["properties"] if p.get("enum")})
    return {"source": SOURCE, "entity_sets": sets, "enums": {name: reference["enums"][name] for name in used}}


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m sandbox.finance.gen_metadata <entity-sets.json>", file=sys.stderr)
        return 2
    reference = json.loads(Path(argv[0]).read_text())
    (HERE / "metadata.json").write_text(json.dumps(subset(reference), indent=0, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
