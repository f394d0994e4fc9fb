"""Expense estimates (msdyn_estimatelines of class Expense) → Finance expense forecast staging.

Reference: maps/23-msdyn_estimatelines-expense.md. Documented: Dataverse → Finance only; estimate
lines of transaction class Expense land in the expense estimate staging table, where Finance merges
the cost and the sales row into one expense forecast. The PSA Data Integrator template gives the
field pairs into the same entity and the billing type and transaction type transforms (documented);
the Project Operations additions (dates, transaction category id, classification) are inferred.
"""

from functions.filters import of_class
from functions.flow_blueprint import flow_blueprint
from functions.lookups import currency_code, project_number, transaction_category_number
from functions.value_maps import BILLING_TYPE, ESTIMATE_TRANSACTION_TYPE, EXPENSE
from shared.events import Operation
from shared.maps import (
    DOC,
    INF,
    FieldMap,
    FieldType,
    SourceSide,
    System,
    TableMap,
    TargetSide,
    company_of_project,
)

MAP = TableMap(
    name="expense-estimates",
    title="Project Operations integration entity for expense estimates (msdyn_estimatelines)",
    reference="maps/23-msdyn_estimatelines-expense.md",
    source=SourceSide(System.DATAVERSE, "msdyn_estimateline", "msdyn_estimatelines", ("msdyn_estimatelineid",)),
    target=TargetSide(System.FINANCE, "ProjectExpenseEstimates", ("dataAreaId", "EstimateLineId"), INF),
    company=company_of_project("msdyn_project"),
    filter=of_class("Expense", EXPENSE),
    fields=(
        FieldMap("msdyn_estimatelineid", "EstimateLineId", FieldType.GUID, provenance=INF, note="PSA-DI pair"),
        FieldMap("msdyn_description", "Description", provenance=INF, note="PSA-DI pair"),
        FieldMap("msdyn_accountingdate", "DocumentDate", FieldType.DATE, provenance=INF, note="PSA-DI pair"),
        FieldMap("msdyn_startdatetime", "StartDate", FieldType.DATE, provenance=INF),
        FieldMap("msdyn_enddatetime", "EndDate", FieldType.DATE, provenance=INF),
        FieldMap("msdyn_quantity", "Quantity", FieldType.DECIMAL, provenance=INF, note="PSA-DI pair"),
        FieldMap("msdyn_price", "Price", FieldType.DECIMAL, provenance=INF, note="PSA-DI pair"),
        FieldMap("exchangerate", "ExchangeRate", FieldType.DECIMAL, provenance=INF, note="PSA-DI pair"),
        FieldMap("msdyn_billingtype", "BillingType", FieldType.ENUM, value_map=BILLING_TYPE, provenance=DOC),
        FieldMap(
            "msdyn_transactiontypecode",
            "TransType",
            FieldType.ENUM,
            value_map=ESTIMATE_TRANSACTION_TYPE,
            provenance=DOC,
        ),
        FieldMap("msdyn_task", "TaskId", FieldType.GUID, provenance=INF, note="PSA-DI pair"),
        FieldMap("msdyn_transactioncategory", "TransactionCategory", FieldType.GUID, provenance=INF),
        FieldMap(None, "TransClassification", default="Expense", provenance=INF),
    ),
    lookups=(
        project_number("msdyn_project", "ProjectId", must_be_in_finance=True, note="PSA-DI pair"),
        currency_code("transactioncurrencyid", "CurrencyId", note="PSA-DI pair"),
        transaction_category_number("msdyn_transactioncategory", "TransactionCategoryId"),
    ),
    operations=frozenset({Operation.CREATE, Operation.UPDATE, Operation.DELETE}),
)

bp = flow_blueprint(MAP)
