"""Actuals accounting write-back: Finance staging → Dataverse msdyn_actuals.

Reference: maps/20-msdyn_actuals.md and Microsoft's stored actuals map, whose Finance → Dataverse
rows are exactly these: VOUCHERNUMBER > msdyn_vouchernumber, ACCOUNTINGAMOUNT > msdyn_accountingamount,
EXCHANGERATE > msdyn_accountexchangerate, SALESTAXAMOUNT = msdyn_accountingtaxamount (both ways).
After Import from staging and posting, Finance updates the staging row (ProjActualsImports) with
them; the trigger is that entity's data event. The write is update-only by the actual's id, so a
write-back for an actual Dataverse does not have is retried, never a new actual; and it is done as
the integration's identity, so the actuals flow sees its own change and does not echo it.
"""

from collections.abc import Mapping
from typing import Any

from functions.flow_blueprint import flow_blueprint
from shared.events import Operation
from shared.maps import (
    DOC,
    FieldMap,
    FieldType,
    Filter,
    SourceSide,
    System,
    TableMap,
    TargetSide,
    WriteMode,
)


def _posted(row: Mapping[str, Any]) -> bool:
    return bool(row["VoucherNumber"])


MAP = TableMap(
    name="actuals-accounting",
    title="Project Operations integration actuals (msdyn_actuals): accounting write-back",
    reference="maps/20-msdyn_actuals.md",
    source=SourceSide(
        System.FINANCE,
        "ProjActualsImportEntity",
        "ProjActualsImports",
        ("dataAreaId", "ActualsImportId"),
        events=("projactualsimportentity",),
        key_types=(("ActualsImportId", FieldType.GUID),),
    ),
    target=TargetSide(System.DATAVERSE, "msdyn_actuals", ("msdyn_actualid",), DOC),
    filter=Filter("posted: the staging row has a voucher number", ("VoucherNumber",), _posted, provenance=DOC),
    fields=(
        FieldMap(
            "ActualId",
            "msdyn_actualid",
            FieldType.GUID,
            provenance=DOC,
            note="the staging row carries the Dataverse actual id (ACTUALID < msdyn_actualid)",
        ),
        FieldMap("VoucherNumber", "msdyn_vouchernumber", provenance=DOC),
        FieldMap("AccountingAmount", "msdyn_accountingamount", FieldType.DECIMAL, provenance=DOC),
        FieldMap("ExchangeRate", "msdyn_accountexchangerate", FieldType.DECIMAL, provenance=DOC),
        FieldMap("SalesTaxAmount", "msdyn_accountingtaxamount", FieldType.DECIMAL, provenance=DOC, note="both ways"),
    ),
    write_mode=WriteMode.UPDATE,
    operations=frozenset({Operation.UPDATE}),
)

bp = flow_blueprint(MAP)
