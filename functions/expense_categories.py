"""Project expense categories: Finance expense categories → Dataverse msdyn_expensecategories.

Reference: maps/25-msdyn_expensecategories.md. Finance is master. Expense categories are specific to
a legal entity in Finance and become one Dataverse record per legal entity (documented), keyed here
by name + owning company. Field pairs are not documented; they are inferred from the column lists
and marked so. Note the CDM column list: msdyn_expensecategoryuid is the lookup to the transaction
category ("Select the Transaction Category associated with Expense Category"), not an id string.
"""

from functions.flow_blueprint import flow_blueprint
from functions.lookups import company_key
from shared.events import Operation
from shared.maps import (
    DOC,
    INF,
    FieldMap,
    FieldType,
    Lookup,
    SourceSide,
    System,
    TableMap,
    TargetSide,
    ValueMap,
    company_from_field,
)

EXPENSE_TYPE = ValueMap(
    "ExpenseType → msdyn_expensetype",
    {
        "Hotel": 192350000,
        "CarRental": 192350001,
        "Meal": 192350002,
        "Airline": 192350003,
        "Entertainment": 192350004,
        "Gift": 192350005,
        "Conference": 192350006,
        "Miscellaneous": 192350007,
        "Mileage": 192350008,
        "PerDiem": 192350009,
    },
    provenance=INF,
)
RECEIPT_REQUIRED = ValueMap(
    "ReceiptRequired → msdyn_receiptrequired", {"No": 192350000, "Yes": 192350001}, provenance=INF
)

MAP = TableMap(
    name="expense-categories",
    title="Project Operations integration project expense categories export entity (msdyn_expensecategories)",
    reference="maps/25-msdyn_expensecategories.md",
    source=SourceSide(
        System.FINANCE,
        "ProjExpenseCategoryExportEntity",
        "ProjectExpenseCategories",
        ("dataAreaId", "CategoryId"),
        events=("projexpensecategoryexportentity",),
    ),
    target=TargetSide(
        System.DATAVERSE,
        "msdyn_expensecategories",
        ("msdyn_name", "_msdyn_owningcompany_value"),
        INF,
    ),
    company=company_from_field("dataAreaId"),
    fields=(
        FieldMap("CategoryId", "msdyn_name", provenance=INF, note="the category id people pick by"),
        FieldMap("ExpenseType", "msdyn_expensetype", FieldType.OPTION, value_map=EXPENSE_TYPE, provenance=INF),
        FieldMap(
            "ReceiptRequired",
            "msdyn_receiptrequired",
            FieldType.OPTION,
            value_map=RECEIPT_REQUIRED,
            provenance=INF,
        ),
    ),
    lookups=(
        company_key("_msdyn_owningcompany_value", DOC, note="LE-specific records in Dataverse (documented)"),
        Lookup(
            "TransactionCategoryId",
            "msdyn_expensecategoryuid",
            bind_set="msdyn_transactioncategories",
            bind_key="msdyn_transactioncategorynumber",
            provenance=INF,
            note="the shared category's transaction category (TCN id)",
        ),
    ),
    operations=frozenset({Operation.CREATE, Operation.UPDATE, Operation.DELETE}),
)

bp = flow_blueprint(MAP)
