"""Project expense categories: Finance expense categories → Dataverse msdyn_expensecategories.

Reference: maps/25-msdyn_expensecategories.md. Finance is master. Expense categories are specific to
a legal entity in Finance and become one Dataverse record per legal entity (documented), keyed here
by the category id + owning company. The entity, its key (dataAreaId, CostType), its field names and
the TrvExpType and NoYes members are those of the live $metadata (ProjExpenseCategoriesExport);
Microsoft documents no field pair, so every pairing is ours. Note the CDM column list:
msdyn_expensecategoryuid is the lookup to the transaction category ("Select the Transaction
Category associated with Expense Category"), not an id string.
"""

from functions.flow_blueprint import flow_blueprint
from functions.lookups import company_key
from shared.events import Operation
from shared.maps import (
    DOC,
    INF,
    MET,
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

# TrvExpType members (live $metadata) → msdyn_expensetype options (CDM). Meals is Finance's name for
# Dataverse's Meal. Dataverse's Miscellaneous, Mileage and Per diem have no member of the same name:
# they take Finance's general Expense type, Transport (the mileage type) and Allowance (the per diem
# type). Empty, Advance and Personal have no Dataverse option: the category lands without a type
# rather than with a wrong one. A symbol outside the enum parks the category.
EXPENSE_TYPE = ValueMap(
    "ExpType → msdyn_expensetype",
    {
        "Hotel": 192350000,
        "CarRental": 192350001,
        "Meals": 192350002,
        "Airline": 192350003,
        "Entertainment": 192350004,
        "Gift": 192350005,
        "Conference": 192350006,
        "Expense": 192350007,
        "Transport": 192350008,
        "Allowance": 192350009,
        "Empty": None,
        "Advance": None,
        "Personal": None,
    },
    provenance=INF,
)
ACTIVE, INACTIVE = 0, 1
STATE = ValueMap("IsInactive → statecode", {"No": ACTIVE, "Yes": INACTIVE}, provenance=INF)

EXPENSE_CATEGORIES = SourceSide(
    System.FINANCE,
    "ProjExpenseCategoryExportEntity",
    "ProjExpenseCategoriesExport",
    ("dataAreaId", "CostType"),
    events=("projexpensecategoryexportentity",),
)

MAP = TableMap(
    name="expense-categories",
    title="Project Operations integration project expense categories export entity (msdyn_expensecategories)",
    reference="maps/25-msdyn_expensecategories.md",
    source=EXPENSE_CATEGORIES,
    target=TargetSide(
        System.DATAVERSE,
        "msdyn_expensecategories",
        ("msdyn_name", "_msdyn_owningcompany_value"),
        INF,
    ),
    company=company_from_field("dataAreaId"),
    fields=(
        FieldMap("CostType", "msdyn_name", provenance=MET, note="the category id, which expenses look it up by"),
        FieldMap("ExpType", "msdyn_expensetype", FieldType.OPTION, value_map=EXPENSE_TYPE, provenance=MET),
        FieldMap(
            "IsInactive",
            "statecode",
            FieldType.OPTION,
            value_map=STATE,
            provenance=MET,
            note="an inactive category stays in Dataverse, inactive",
        ),
    ),
    lookups=(
        company_key("_msdyn_owningcompany_value", DOC, note="LE-specific records in Dataverse (documented)"),
        Lookup(
            "TransactionCategoryId",
            "msdyn_expensecategoryuid",
            bind_set="msdyn_transactioncategories",
            bind_key="msdyn_transactioncategorynumber",
            provenance=MET,
            note="the shared category's transaction category (TCN id)",
        ),
    ),
    operations=frozenset({Operation.CREATE, Operation.UPDATE, Operation.DELETE}),
    notes=(
        "ReceiptRequired is not on ProjExpenseCategoriesExport (live $metadata), so msdyn_receiptrequired is "
        "not written: it keeps Dataverse's value. CostTxt, the category's description, is not carried: "
        "msdyn_name is Dataverse's only text column and holds the id (CostType) that expenses look the "
        "category up by. TrvExpType has no Miscellaneous, Mileage or PerDiem member: Expense, Transport "
        "and Allowance stand for them (inferred); Empty, Advance and Personal leave the type empty."
    ),
)

bp = flow_blueprint(MAP)
