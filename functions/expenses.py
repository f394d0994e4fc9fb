"""Project expenses (msdyn_expenses): posted Finance expense report lines → Dataverse.

Reference: maps/26-msdyn_expenses.md. Documented: Finance → Dataverse, written when the expense
report is posted (ProjExpenseExportEntity); writing an expense starts its automated approval in
Dataverse, which creates the expense actuals that come back through the actuals map. Only lines with
a project sync. Field pairs and keys are not documented: each line is keyed by Finance's project
transaction id and the pairs follow the CDM column list (inferred). A posted report is one document:
all its lines are written together.
"""

from functions.filters import has_project
from functions.flow_blueprint import flow_blueprint
from functions.lookups import company_bind, currency_bind, project_bind
from shared.events import Operation
from shared.maps import (
    DOC,
    INF,
    Document,
    FieldMap,
    FieldType,
    Lookup,
    SourceSide,
    System,
    TableMap,
    TargetSide,
    company_from_field,
)

POSTED = 192350004


MAP = TableMap(
    name="expenses",
    title="Project Operations integration project expenses export entity (msdyn_expenses)",
    reference="maps/26-msdyn_expenses.md",
    source=SourceSide(
        System.FINANCE,
        "ProjExpenseExportEntity",
        "ProjExpenseExports",
        ("dataAreaId", "ExpenseReportId", "LineNumber"),
        events=("ExpenseReportPostedBusinessEvent",),
    ),
    target=TargetSide(System.DATAVERSE, "msdyn_expenses", ("msdyn_externalexpenseline",), INF),
    company=company_from_field("dataAreaId"),
    document=Document("ProjExpenseExports", (("ExpenseReportId", "ExpenseReportId"),)),
    filter=has_project(INF),
    fields=(
        FieldMap("ProjTransId", "msdyn_externalexpenseline", provenance=INF, note="the line's project transaction"),
        FieldMap("Description", "msdyn_name", provenance=INF),
        FieldMap("Description", "msdyn_externaldescription", provenance=INF),
        FieldMap("TransDate", "msdyn_transactiondate", FieldType.DATE, provenance=INF),
        FieldMap("Quantity", "msdyn_quantity", FieldType.DECIMAL, provenance=INF),
        FieldMap("UnitPrice", "msdyn_price", FieldType.DECIMAL, provenance=INF),
        FieldMap("Amount", "msdyn_amount", FieldType.DECIMAL, provenance=INF),
        FieldMap("SalesTaxAmount", "msdyn_salestaxamount", FieldType.DECIMAL, provenance=INF),
        FieldMap(None, "msdyn_expensestatus", FieldType.OPTION, default=POSTED, provenance=INF, note="Posted"),
    ),
    lookups=(
        company_bind(),
        project_bind("ProjectId"),
        Lookup(
            "CategoryId",
            "msdyn_expensecategory",
            bind_set="msdyn_expensecategories",
            bind_key="msdyn_name",
            company_column="_msdyn_owningcompany_value",
            resolve_id="msdyn_expensecategoryid",
            required=True,
            provenance=DOC,
            note="categories are per legal entity (expense-categories map)",
        ),
        currency_bind("CurrencyCode", "transactioncurrencyid"),
    ),
    operations=frozenset({Operation.UPSERT}),
    notes=(
        "The task is resolved in Dataverse from the activity number (documented) and the worker's bookable "
        "resource is not carried: neither has a documented column."
    ),
)

bp = flow_blueprint(MAP)
