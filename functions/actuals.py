"""Project Operations integration actuals (msdyn_actuals): Dataverse actuals → Finance staging.

Reference: maps/20-msdyn_actuals.md. Rows land in ProjCDSActualsImport; Finance's Import from
staging turns them into integration journal lines. Documented: only actuals with Skip Sync (internal
use only) = false, the integration key msdyn_actualimportid + owning company, msdyn_transactiondate →
DocumentDate, the bookable resource. Field pairs follow the PSA Data Integrator template into the
same staging table. Amounts are Decimal end to end. The accounting write-back columns are not mapped
here, so the write-back never comes back as a change to sync (see actuals_accounting); the voucher
lands in msdyn_vouchernumber, so msdyn_externalreferenceid stays the actual's own reference.
"""

from collections.abc import Mapping
from typing import Any

from functions.flow_blueprint import flow_blueprint
from functions.lookups import contract_number, currency_code, project_number, transaction_category_number
from functions.value_maps import BILLING_TYPE
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
    ValueMap,
    company_from_lookup,
)

TRANSACTION_TYPE = ValueMap(
    "msdyn_transactiontypecode → TransType",
    {
        192350000: "Cost",
        192350004: "ProjectContract",
        192350005: "UnbilledSales",
        192350006: "BilledSales",
        192350007: "ResourcingUnitCost",
        192350008: "InterOrganizationalSales",
    },
    provenance=INF,
)


def _not_skipped(row: Mapping[str, Any]) -> bool:
    # Only an explicit false passes. Dataverse sets the column on every new actual, so an empty value
    # means the column is not where we think it is (its logical name is inferred): syncing nothing and
    # saying so beats staging intercompany cost and proforma reversals twice.
    return row["msdyn_skipsync"] is False


MAP = TableMap(
    name="actuals",
    title="Project Operations integration actuals (msdyn_actuals)",
    reference="maps/20-msdyn_actuals.md",
    source=SourceSide(System.DATAVERSE, "msdyn_actual", "msdyn_actuals", ("msdyn_actualid",)),
    target=TargetSide(System.FINANCE, "ProjCDSActualsImports", ("dataAreaId", "ActualsImportId"), INF),
    company=company_from_lookup("msdyn_owningcompany", "dataAreaId", DOC, also_targets=("ProjectDataAreaId",)),
    filter=Filter(
        "Skip Sync (internal use only) is false (documented; column name inferred)",
        ("msdyn_skipsync",),
        _not_skipped,
        odata="msdyn_skipsync eq false",
        provenance=INF,
    ),
    fields=(
        FieldMap("msdyn_actualimportid", "ActualsImportId", provenance=DOC, note="integration key (IMG)"),
        FieldMap("msdyn_actualid", "ActualId", FieldType.GUID, provenance=INF),
        FieldMap("msdyn_transactiondate", "DocumentDate", FieldType.DATE, provenance=DOC, note="fix 3445803"),
        FieldMap("msdyn_accountingdate", "AccountingDate", FieldType.DATE, provenance=INF),
        FieldMap(
            "msdyn_transactionclassification",
            "TransactionClassification",
            FieldType.INT,
            provenance=INF,
            note="PSA-DI pair without transform; the staging column is int64: the option value as it is",
        ),
        FieldMap(
            "msdyn_transactiontypecode",
            "TransType",
            FieldType.ENUM,
            value_map=TRANSACTION_TYPE,
            provenance=INF,
        ),
        FieldMap("msdyn_billingtype", "BillingType", FieldType.ENUM, value_map=BILLING_TYPE, provenance=DOC),
        FieldMap("msdyn_quantity", "Quantity", FieldType.DECIMAL, provenance=INF),
        FieldMap("msdyn_price", "UnitPrice", FieldType.DECIMAL, provenance=INF),
        FieldMap("msdyn_price_base", "UnitPriceMST", FieldType.DECIMAL, provenance=INF),
        FieldMap("msdyn_amount", "Amount", FieldType.DECIMAL, provenance=INF),
        FieldMap("msdyn_amount_base", "AmountMST", FieldType.DECIMAL, provenance=INF),
        FieldMap("exchangerate", "ExchangeRate", FieldType.DECIMAL, provenance=INF),
        FieldMap("msdyn_exchangeratedate", "ExchangeRateDate", FieldType.DATE, provenance=INF),
        FieldMap("msdyn_description", "Description", provenance=INF),
        FieldMap("msdyn_externaldescription", "ExternalDescription", provenance=INF),
        FieldMap("msdyn_startdatetime", "StartDate", FieldType.DATETIME, provenance=INF),
        FieldMap("msdyn_enddatetime", "EndDate", FieldType.DATETIME, provenance=INF),
        FieldMap("msdyn_task", "TaskId", FieldType.GUID, provenance=INF),
        FieldMap("msdyn_transactioncategory", "TransactionCategory", FieldType.GUID, provenance=INF),
        FieldMap(
            "msdyn_bookableresource",
            "ResourceId",
            FieldType.GUID,
            provenance=DOC,
            note="Bookable Resource key bookableresourceid (DIPV1025)",
        ),
        FieldMap("msdyn_contractorganizationalunitid", "ContractingUnit", FieldType.GUID, provenance=INF),
        FieldMap("msdyn_resourceorganizationalunitid", "ResourceOperationUnitId", FieldType.GUID, provenance=INF),
    ),
    lookups=(
        project_number(
            "msdyn_project",
            "ProjectId",
            must_be_in_finance=True,
            note="PSA-DI: msdyn_project.msdynce_projectnumber; the project must be in Finance first",
        ),
        currency_code("transactioncurrencyid", "TransactionCurrencyId", note="PSA-DI pair"),
        contract_number(
            "msdyn_salescontract",
            "ContractId",
            "PSA-DI: msdyn_salescontract.ordernumber = CONTRACTID; empty on actuals without a contract",
            required=False,
            must_be_in_finance=False,
        ),
        transaction_category_number(
            "msdyn_transactioncategory", "TransactionCategoryId", note="staging TransactionCategoryId holds the TCN id"
        ),
    ),
    operations=frozenset({Operation.CREATE, Operation.UPDATE}),
)

bp = flow_blueprint(MAP)
