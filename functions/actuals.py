"""Project Operations integration actuals (msdyn_actuals): Dataverse actuals → Finance staging.

Reference: maps/20-msdyn_actuals.md and Microsoft's own map as the dual-write service stores it (the
November 2020 "Project Operations integration actuals" map: its filter, 37 rows, value maps). Rows land
in ProjActualsImports (AOT ProjActualsImportEntity); Finance's Import from staging turns them into
integration journal lines. This map follows Microsoft's rows one by one; where it differs it says so:

- Filter: Microsoft's stored filter — cost with a project, billed sales, and unbilled sales that are
  not a transition. Later map versions describe it as "Skip Sync (internal use only) = False", set on
  the same rows (negative unbilled sales at proforma confirmation, intercompany cost), but no source
  names that column, so the stored filter on real columns is kept.
- DocumentDate: the stored map reads msdyn_documentdate; fix 3445803 moved it to
  msdyn_transactiondate, which this map uses.
- Kept although the 2020 map lacks them (the entity publishes them and later map versions add rows,
  e.g. the bookable resource, DIPV1025): ResourceId, UnitPriceMST, ExchangeRateDate, ContractingUnit,
  ResourceOperationUnitId.
- Not carried: exchangerate → ExchangeRate (Microsoft's map sends the rate the other way, Finance →
  Dataverse msdyn_accountexchangerate, see actuals_accounting), msdyn_amount_base (the entity has no
  AmountMST).
- SalesTaxAmount = msdyn_accountingtaxamount travels both ways in Microsoft's map; this side sends it,
  actuals_accounting brings Finance's back, and the echo guard stops the round trip.
"""

from collections.abc import Mapping
from typing import Any

from functions.flow_blueprint import flow_blueprint
from functions.lookups import (
    currency_code,
    dataarea_id,
    project_number,
    task_activity_number,
    transaction_category_number,
)
from functions.value_maps import BILLING_TYPE
from shared.events import Operation
from shared.maps import (
    DOC,
    MET,
    FieldMap,
    FieldType,
    Filter,
    Lookup,
    Money,
    SourceSide,
    System,
    TableMap,
    TargetSide,
    ValueMap,
    company_from_lookup,
)
from shared.values import LOCAL_DAY_INFERRED, Ref, user_local_day

COST, UNBILLED_SALES, BILLED_SALES = 192350000, 192350005, 192350006

TRANSACTION_TYPE = ValueMap(
    "msdyn_transactiontypecode → TransactionType",
    {
        COST: "Cost",
        UNBILLED_SALES: "Sales",
        BILLED_SALES: "BilledSales",
        # Not in the 2020 map (its filter never passes them); the ProjCDSTransType members they name.
        192350007: "ResourcingUnitCost",
        192350008: "InterOrgSales",
    },
    provenance=DOC,
)

IS_JOURNALIZED = ValueMap("msdyn_isjournalized → IsJournalized", {True: "Yes", False: "No"}, provenance=DOC)


def _synced_transaction(row: Mapping[str, Any]) -> bool:
    kind = row["msdyn_transactiontypecode"]
    if kind == COST:
        return isinstance(row["msdyn_project"], Ref)
    if kind == UNBILLED_SALES:
        return row["msdyn_istransition"] is not True
    return bool(kind == BILLED_SALES)


def _funding_source(target: str, via_column: str | None, read_set: str, read_column: str, note: str) -> Lookup:
    """Microsoft's map reads the contract and the funding source through the actual's funding source."""
    return Lookup(
        "msdyn_projectcontractsplitbillingrule",
        target,
        via_set="msdyn_projectcontractsplitbillingrules" if via_column else None,
        via_column=via_column,
        read_set=read_set,
        read_column=read_column,
        provenance=DOC,
        note=note,
    )


MAP = TableMap(
    name="actuals",
    title="Project Operations integration actuals (msdyn_actuals)",
    reference="maps/20-msdyn_actuals.md",
    source=SourceSide(System.DATAVERSE, "msdyn_actual", "msdyn_actuals", ("msdyn_actualid",)),
    target=TargetSide(System.FINANCE, "ProjActualsImports", ("dataAreaId", "ActualsImportId"), DOC),
    company=company_from_lookup("msdyn_owningcompany", "dataAreaId", DOC),
    filter=Filter(
        "cost with a project, billed sales, and unbilled sales that are not a transition (Microsoft's map)",
        ("msdyn_transactiontypecode", "msdyn_project", "msdyn_istransition"),
        _synced_transaction,
        odata=(
            f"(msdyn_transactiontypecode eq {COST} and _msdyn_project_value ne null) or msdyn_transactiontypecode "
            f"eq {BILLED_SALES} or (msdyn_transactiontypecode eq {UNBILLED_SALES} and msdyn_istransition ne true)"
        ),
        provenance=DOC,
    ),
    fields=(
        FieldMap(
            "msdyn_actualimportid",
            "ActualsImportId",
            FieldType.GUID,
            provenance=DOC,
            note="integration key, both ways; Edm.Guid in Finance",
        ),
        FieldMap("msdyn_actualid", "ActualId", FieldType.GUID, provenance=DOC),
        FieldMap(
            "msdyn_accountingdate",
            "AccountingDate",
            FieldType.DATE,
            transform=user_local_day,
            provenance=DOC,
            note=LOCAL_DAY_INFERRED,
        ),
        FieldMap(
            "msdyn_adjustmentstatus", "AdjustmentStatus", FieldType.OPTION, provenance=DOC, note="the option value"
        ),
        FieldMap("msdyn_amount", "Amount", FieldType.DECIMAL, provenance=DOC),
        FieldMap("msdyn_billingstatus", "BillingStatusId", FieldType.OPTION, provenance=DOC, note="the option value"),
        FieldMap("msdyn_billingtype", "BillingType", FieldType.ENUM, value_map=BILLING_TYPE, provenance=DOC),
        FieldMap("msdyn_nameofbookableresource", "BookableResourceName", provenance=DOC),
        FieldMap("msdyn_description", "Description", provenance=DOC),
        FieldMap(
            "msdyn_transactiondate",
            "DocumentDate",
            FieldType.DATE,
            transform=user_local_day,
            provenance=DOC,
            note=f"fix 3445803; {LOCAL_DAY_INFERRED}",
        ),
        FieldMap("msdyn_enddatetime", "EndDate", FieldType.DATETIME, provenance=DOC),
        FieldMap("msdyn_externaldescription", "ExternalDescription", provenance=DOC),
        FieldMap("msdyn_externalreferenceid", "ExternalReference", provenance=DOC),
        FieldMap("msdyn_isjournalized", "IsJournalized", FieldType.ENUM, value_map=IS_JOURNALIZED, provenance=DOC),
        FieldMap("msdyn_quantity", "Quantity", FieldType.DECIMAL, provenance=DOC),
        FieldMap("msdyn_startdatetime", "StartDate", FieldType.DATETIME, provenance=DOC),
        FieldMap("statecode", "Status", FieldType.OPTION, provenance=DOC),
        FieldMap("statuscode", "StatusReason", FieldType.OPTION, provenance=DOC),
        FieldMap(
            "msdyn_transactionclassification",
            "TransactionClassification",
            FieldType.OPTION,
            provenance=DOC,
            note="no transform in Microsoft's map: the option value into an Int64",
        ),
        FieldMap(
            "msdyn_transactiontypecode",
            "TransactionType",
            FieldType.ENUM,
            value_map=TRANSACTION_TYPE,
            provenance=DOC,
        ),
        FieldMap("msdyn_price", "UnitPrice", FieldType.DECIMAL, provenance=DOC),
        FieldMap("msdyn_valueofsalescontractline", "ContractLineId", provenance=DOC),
        FieldMap("msdyn_externaloriginreference", "ExternalOriginReference", provenance=DOC),
        FieldMap("msdyn_accountingtaxamount", "SalesTaxAmount", FieldType.DECIMAL, provenance=DOC, note="both ways"),
        FieldMap(
            "msdyn_bookableresource",
            "ResourceId",
            FieldType.GUID,
            provenance=DOC,
            note="bookable resource key bookableresourceid (DIPV1025); not in the 2020 map",
        ),
        FieldMap("msdyn_price_base", "UnitPriceMST", FieldType.DECIMAL, provenance=MET, note="not in the 2020 map"),
        FieldMap(
            "msdyn_exchangeratedate",
            "ExchangeRateDate",
            FieldType.DATE,
            transform=user_local_day,
            provenance=MET,
            note=f"not in the 2020 map; {LOCAL_DAY_INFERRED}, as the row's other dates",
        ),
        FieldMap(
            "msdyn_contractorganizationalunitid",
            "ContractingUnit",
            FieldType.GUID,
            provenance=MET,
            note="not in the 2020 map",
        ),
        FieldMap(
            "msdyn_resourceorganizationalunitid",
            "ResourceOperationUnitId",
            FieldType.GUID,
            provenance=MET,
            note="not in the 2020 map",
        ),
    ),
    lookups=(
        Lookup(
            "msdyn_project",
            "ProjectDataAreaId",
            via_set="msdyn_projects",
            via_column="_msdyn_owningcompany_value",
            read_set="cdm_companies",
            read_column="cdm_companycode",
            transform=dataarea_id,
            provenance=DOC,
            note="the project's legal entity: msdyn_project.msdyn_owningcompany.cdm_companycode",
        ),
        project_number(
            "msdyn_project",
            "ProjectId",
            must_be_in_finance=True,
            provenance=DOC,
            note="msdyn_project.msdyn_projectnumber; the project must be in Finance first, in its own company",
            company_from="ProjectDataAreaId",
        ),
        _funding_source(
            "ContractId",
            "_msdyn_projectcontractid_value",
            "salesorders",
            "msdyn_salesordernumber",
            "msdyn_projectcontractsplitbillingrule.msdyn_projectcontractid.msdyn_salesordernumber",
        ),
        _funding_source(
            "FundingSource",
            None,
            "msdyn_projectcontractsplitbillingrules",
            "msdyn_projectcontractsplitbillingrulenumber",
            "msdyn_projectcontractsplitbillingrule.msdyn_projectcontractsplitbillingrulenumber",
        ),
        Lookup(
            "msdyn_invoice",
            "InvoiceProposalId",
            read_set="invoices",
            read_column="msdyn_invoicenumber",
            provenance=DOC,
            note="msdyn_invoice.msdyn_invoicenumber",
        ),
        Lookup(
            "msdyn_product",
            "ProductNumber",
            read_set="products",
            read_column="msdyn_productnumber",
            provenance=DOC,
            note="msdyn_product.msdyn_productnumber",
        ),
        transaction_category_number(
            "msdyn_transactioncategory",
            "TransactionCategoryId",
            provenance=DOC,
            note="msdyn_transactioncategory.msdyn_transactioncategorynumber",
        ),
        currency_code(
            "transactioncurrencyid", "TransactionCurrencyId", DOC, note="transactioncurrencyid.isocurrencycode"
        ),
        Lookup(
            "msdyn_unit",
            "UnitOfMeasure",
            read_set="uoms",
            read_column="msdyn_symbol",
            provenance=DOC,
            note="msdyn_unit.msdyn_symbol",
        ),
        task_activity_number("msdyn_task", "TaskNumber", "msdyn_task.msdyn_activitynumber", DOC),
    ),
    operations=frozenset({Operation.CREATE, Operation.UPDATE}),
    money=Money("Amount", "TransactionCurrencyId"),
    target_owned=("IsJournalized",),
    notes=(
        "Follows Microsoft's stored actuals map (November 2020) row by row. Differs: DocumentDate from "
        "msdyn_transactiondate (fix 3445803; the stored map reads msdyn_documentdate); the stored filter is kept "
        "on real columns (later versions call it Skip Sync, whose column no source names); ResourceId, "
        "UnitPriceMST, ExchangeRateDate, ContractingUnit and ResourceOperationUnitId are carried although the "
        "2020 map lacks them (the entity publishes them, later versions add rows); exchangerate is not sent "
        "(the stored map sends the rate the other way, see actuals-accounting) and msdyn_amount_base has no "
        "Finance field (AmountMST is not on ProjActualsImports)."
    ),
)

bp = flow_blueprint(MAP)
