"""Actuals accounting write-back: Finance staging → Dataverse msdyn_actuals.

Reference: maps/20-msdyn_actuals.md. After Import from staging and posting, Finance updates the
staging row with the voucher number, accounting currency amount, exchange rate and sales tax, and the
actuals map writes them onto the Dataverse actual (documented: which attributes; the columns are
those Microsoft's own actuals map writes, in a November 2020 export of it). The trigger is Finance's
data event on the staging entity. The write is update-only by the
actual's id, so a write-back for an actual Dataverse does not have is retried, never a new actual; and
it is done as the integration's identity, so the actuals flow sees its own change and does not echo it.
"""

from collections.abc import Mapping
from typing import Any

from functions.flow_blueprint import flow_blueprint
from shared.events import Operation
from shared.maps import (
    DOC,
    INF,
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
        "ProjCDSActualsImportEntity",
        "ProjCDSActualsImports",
        ("dataAreaId", "ActualsImportId"),
        events=("projcdsactualsimportentity",),
    ),
    target=TargetSide(System.DATAVERSE, "msdyn_actuals", ("msdyn_actualid",), DOC),
    filter=Filter("posted: the staging row has a voucher number", ("VoucherNumber",), _posted, provenance=DOC),
    fields=(
        FieldMap(
            "ActualId",
            "msdyn_actualid",
            FieldType.GUID,
            provenance=INF,
            note="the staging row carries the Dataverse actual id",
        ),
        FieldMap(
            "VoucherNumber",
            "msdyn_vouchernumber",
            provenance=INF,
            note="Microsoft's actuals map: VOUCHERNUMBER > msdyn_vouchernumber",
        ),
        FieldMap("AccountingAmount", "msdyn_accountingamount", FieldType.DECIMAL, provenance=INF),
        FieldMap("ExchangeRate", "msdyn_accountexchangerate", FieldType.DECIMAL, provenance=INF),
        FieldMap("SalesTaxAmount", "msdyn_accountingtaxamount", FieldType.DECIMAL, provenance=INF),
    ),
    write_mode=WriteMode.UPDATE,
    operations=frozenset({Operation.UPDATE}),
)

bp = flow_blueprint(MAP)
