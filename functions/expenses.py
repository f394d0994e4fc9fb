"""Project expenses (msdyn_expenses): posted Finance expense lines → Dataverse, one line at a time.

Reference: maps/26-msdyn_expenses.md. Documented: Finance → Dataverse, written when the expense
report is posted (ProjExpenseExportEntity); writing an expense starts its automated approval in
Dataverse, which creates the expense actuals that come back through the actuals map.

This is not a document flow. Finance has no expense-report-posted business event (none in the
out-of-the-box catalog, formats.md §2.2), and the export entity, ProjExpensesExport in the live
$metadata, has no expense report id to select a report's lines by. Posting writes each line into the
entity, which is public and so raises its data event (Created); each line is synced on its own,
keyed as Finance keys it: ExpTransNumber + ReferenceDataAreaId (the entity has no dataAreaId).

Names, key and types are the live $metadata's; Microsoft documents no field pair, so every pairing
is ours (MET). In Dataverse the line is found by msdyn_externalexpenseline = the line's project
transaction id, as vendor invoice lines are by msdyn_externalinvoiceline = PROJTRANSID (documented).
"""

from functions.filters import has_project
from functions.flow_blueprint import flow_blueprint
from functions.lookups import company_bind, currency_bind, project_bind
from shared.events import Operation
from shared.maps import (
    INF,
    MET,
    FieldMap,
    FieldType,
    Lookup,
    Money,
    SourceSide,
    System,
    TableMap,
    TargetSide,
    company_from_field,
)

POSTED = 192350004

EXPENSE_LINES = SourceSide(
    System.FINANCE,
    "ProjExpenseExportEntity",
    "ProjExpensesExport",
    ("ExpTransNumber", "ReferenceDataAreaId"),
    events=("projexpenseexportentity",),
)

MAP = TableMap(
    name="expenses",
    title="Project Operations integration project expenses export entity (msdyn_expenses)",
    reference="maps/26-msdyn_expenses.md",
    source=EXPENSE_LINES,
    target=TargetSide(System.DATAVERSE, "msdyn_expenses", ("msdyn_externalexpenseline",), INF),
    company=company_from_field("ReferenceDataAreaId"),
    filter=has_project("ProjId", INF),
    fields=(
        FieldMap("ProjTransId", "msdyn_externalexpenseline", provenance=MET, note="the line's project transaction"),
        FieldMap("AdditionalInformation", "msdyn_name", provenance=MET),
        FieldMap("AdditionalInformation", "msdyn_externaldescription", provenance=MET),
        FieldMap("TransDate", "msdyn_transactiondate", FieldType.DATE, provenance=MET),
        FieldMap("Quantity", "msdyn_quantity", FieldType.DECIMAL, provenance=MET),
        FieldMap("Amount", "msdyn_amount", FieldType.DECIMAL, provenance=MET),
        FieldMap("TaxAmount", "msdyn_salestaxamount", FieldType.DECIMAL, provenance=MET),
        FieldMap(None, "msdyn_expensestatus", FieldType.OPTION, default=POSTED, provenance=INF, note="Posted"),
    ),
    lookups=(
        company_bind("ReferenceDataAreaId", provenance=MET),
        project_bind("ProjId", provenance=MET),
        Lookup(
            "CostType",
            "msdyn_expensecategory",
            bind_set="msdyn_expensecategories",
            bind_key="msdyn_name",
            company_column="_msdyn_owningcompany_value",
            resolve_id="msdyn_expensecategoryid",
            required=True,
            provenance=MET,
            note="the expense category id; categories are per legal entity (documented, expense-categories map)",
        ),
        currency_bind("ExchangeCode", "transactioncurrencyid", MET),
    ),
    operations=frozenset({Operation.CREATE, Operation.UPDATE}),
    money=Money("msdyn_amount", "transactioncurrencyid"),
    notes=(
        "ProjExpensesExport has no unit price (msdyn_price is not written; Dataverse keeps its own) and no "
        "expense report id. Not carried, for want of a Dataverse column: ProjActivityNumber (Dataverse resolves "
        "the task from the activity number, documented, but the column is not), BillingType, "
        "TransactionCategoryId (the category's transaction category reaches Dataverse with the expense "
        "category), InterCompanyLE and NetAmount (which of Amount and NetAmount excludes tax is not "
        "documented; Amount is kept on msdyn_amount). The worker's bookable resource is not on the entity. "
        "msdyn_externalexpenseline alone is the Dataverse key, trusting project transaction ids to be unique "
        "across companies as Microsoft's vendor-invoice-line key does; where a number sequence is shared "
        "without a company prefix, key msdyn_expense on (msdyn_externalexpenseline, msdyn_owningcompany). "
        "Never deleted: a posted line is not removed from Finance."
    ),
)

bp = flow_blueprint(MAP)
