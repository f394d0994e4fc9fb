"""Expense estimates (msdyn_estimatelines of class Expense) → Finance expense forecast staging.

Reference: maps/23-msdyn_estimatelines-expense.md. Documented: Dataverse → Finance only; estimate
lines of transaction class Expense land in the expense estimate staging table, where Finance merges
the cost and the sales row into one expense forecast. The PSA Data Integrator template gives the
field pairs into the same staging table and the billing type and transaction type transforms
(documented); the Project Operations additions (dates, transaction category id) are inferred. Names,
key and types are the live $metadata's (ProjEstimateExpensesImports). One staging row per estimate
line: the line's id is both the row's key and its EstimateLineId. The task goes by its activity
number, as Finance knows tasks.
"""

from functions.filters import of_class
from functions.flow_blueprint import flow_blueprint
from functions.lookups import currency_code, project_number, task_activity_number, transaction_category_number
from functions.value_maps import BILLING_TYPE, ESTIMATE_TRANSACTION_TYPE, EXPENSE
from shared.events import Operation
from shared.maps import (
    DOC,
    MET,
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
    target=TargetSide(System.FINANCE, "ProjEstimateExpensesImports", ("dataAreaId", "EstimateExpensesImportId"), MET),
    company=company_of_project("msdyn_project"),
    filter=of_class("Expense", EXPENSE),
    fields=(
        FieldMap(
            "msdyn_estimatelineid",
            "EstimateExpensesImportId",
            FieldType.GUID,
            provenance=MET,
            note="the staging row's key: one row per estimate line",
        ),
        FieldMap("msdyn_estimatelineid", "EstimateLineId", FieldType.GUID, provenance=MET, note="PSA-DI pair"),
        FieldMap("msdyn_description", "Description", provenance=MET, note="PSA-DI pair"),
        FieldMap("msdyn_startdatetime", "StartDate", FieldType.DATE, provenance=MET),
        FieldMap("msdyn_enddatetime", "EndDate", FieldType.DATE, provenance=MET),
        FieldMap("msdyn_quantity", "Quantity", FieldType.DECIMAL, provenance=MET, note="PSA-DI pair"),
        FieldMap("msdyn_price", "Price", FieldType.DECIMAL, provenance=MET, note="PSA-DI pair"),
        FieldMap("msdyn_billingtype", "BillingType", FieldType.ENUM, value_map=BILLING_TYPE, provenance=DOC),
        FieldMap(
            "msdyn_transactiontypecode",
            "TransType",
            FieldType.ENUM,
            value_map=ESTIMATE_TRANSACTION_TYPE,
            provenance=DOC,
        ),
    ),
    lookups=(
        project_number("msdyn_project", "ProjectId", must_be_in_finance=True, note="PSA-DI pair", provenance=MET),
        currency_code("transactioncurrencyid", "CurrencyId", MET, note="PSA-DI pair"),
        transaction_category_number("msdyn_transactioncategory", "TransactionCategoryId", provenance=MET),
        task_activity_number("msdyn_task", "ActivityNumber", note="PSA-DI: task = TASKID", provenance=MET),
    ),
    operations=frozenset({Operation.CREATE, Operation.UPDATE, Operation.DELETE}),
    notes=(
        "Not sent, as ProjEstimateExpensesImports has no such field: the document date (PSA-DI "
        "DOCUMENTDATE), the exchange rate (PSA-DI EXCHANGERATE) and the transaction classification (the "
        "entity is for expenses only). The category goes as its TCN id (TransactionCategoryId), not as "
        "its Dataverse id. Also on the entity but not mapped: ProjCDSResourceId, ResourceCategoryId, "
        "OriginEstimateLineId, SequenceNumber, ContractLineId."
    ),
)

bp = flow_blueprint(MAP)
