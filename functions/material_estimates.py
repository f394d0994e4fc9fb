"""Material estimates (msdyn_estimatelines of class Material) → Finance item forecast staging.

Reference: maps/18-msdyn_estimatelines-material.md. Documented: Dataverse → Finance only; estimate
lines of transaction class Material land in ProjForecastSalesImport, where Finance merges the cost
and the sales row into one item forecast. The field pairs are not documented; they follow the
expense estimate entity with the product as the item (inferred).
"""

from functions.filters import of_class
from functions.flow_blueprint import flow_blueprint
from functions.lookups import currency_code, project_number, transaction_category_number
from functions.value_maps import BILLING_TYPE, ESTIMATE_TRANSACTION_TYPE, MATERIAL
from shared.events import Operation
from shared.maps import (
    INF,
    FieldMap,
    FieldType,
    Lookup,
    SourceSide,
    System,
    TableMap,
    TargetSide,
    company_of_project,
)

MAP = TableMap(
    name="material-estimates",
    title="Project integration table for material estimates (msdyn_estimatelines)",
    reference="maps/18-msdyn_estimatelines-material.md",
    source=SourceSide(System.DATAVERSE, "msdyn_estimateline", "msdyn_estimatelines", ("msdyn_estimatelineid",)),
    target=TargetSide(System.FINANCE, "ProjectMaterialEstimates", ("dataAreaId", "EstimateLineId"), INF),
    company=company_of_project("msdyn_project"),
    filter=of_class("Material", MATERIAL, INF),
    fields=(
        FieldMap("msdyn_estimatelineid", "EstimateLineId", FieldType.GUID, provenance=INF),
        FieldMap("msdyn_description", "Description", provenance=INF),
        FieldMap("msdyn_startdatetime", "StartDate", FieldType.DATE, provenance=INF),
        FieldMap("msdyn_enddatetime", "EndDate", FieldType.DATE, provenance=INF),
        FieldMap("msdyn_quantity", "Quantity", FieldType.DECIMAL, provenance=INF),
        FieldMap("msdyn_price", "Price", FieldType.DECIMAL, provenance=INF),
        FieldMap("exchangerate", "ExchangeRate", FieldType.DECIMAL, provenance=INF),
        FieldMap("msdyn_billingtype", "BillingType", FieldType.ENUM, value_map=BILLING_TYPE, provenance=INF),
        FieldMap(
            "msdyn_transactiontypecode",
            "TransType",
            FieldType.ENUM,
            value_map=ESTIMATE_TRANSACTION_TYPE,
            provenance=INF,
        ),
        FieldMap("msdyn_task", "TaskId", FieldType.GUID, provenance=INF),
    ),
    lookups=(
        project_number("msdyn_project", "ProjectId", must_be_in_finance=True),
        currency_code("transactioncurrencyid", "CurrencyId"),
        Lookup(
            "msdyn_product",
            "ItemId",
            read_set="products",
            read_column="msdyn_productnumber",
            provenance=INF,
            note="the product's number is the released item id (Products map)",
        ),
        transaction_category_number("msdyn_transactioncategory", "TransactionCategoryId"),
    ),
    operations=frozenset({Operation.CREATE, Operation.UPDATE, Operation.DELETE}),
)

bp = flow_blueprint(MAP)
