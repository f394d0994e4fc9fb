"""Material estimates (msdyn_estimatelines of class Material) → Finance item forecast staging.

Reference: maps/18-msdyn_estimatelines-material.md. Documented: Dataverse → Finance only; estimate
lines of transaction class Material land in ProjForecastSalesImport, where Finance merges the cost
and the sales row into one item forecast. The field pairs are not documented; they follow the
expense estimate entity with the product as the item (inferred). Names, key and types are the live
$metadata's: the project goes to ProjId, the task by its activity number, the quantity to SalesQty.
One staging row per estimate line: the line's id is both the row's key (ImportId) and its
ForecastLineId.
"""

from functions.filters import of_class
from functions.flow_blueprint import flow_blueprint
from functions.lookups import currency_code, project_number, task_activity_number, transaction_category_number
from functions.value_maps import BILLING_TYPE, ESTIMATE_TRANSACTION_TYPE, MATERIAL
from shared.events import Operation
from shared.maps import (
    INF,
    MET,
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
    target=TargetSide(System.FINANCE, "ProjForecastSalesImport", ("dataAreaId", "ImportId"), MET),
    company=company_of_project("msdyn_project"),
    filter=of_class("Material", MATERIAL, INF),
    fields=(
        FieldMap(
            "msdyn_estimatelineid",
            "ImportId",
            FieldType.GUID,
            provenance=MET,
            note="the staging row's key: one row per estimate line",
        ),
        FieldMap("msdyn_estimatelineid", "ForecastLineId", FieldType.GUID, provenance=MET),
        FieldMap("msdyn_description", "ItemDescription", provenance=MET),
        FieldMap("msdyn_startdatetime", "StartDate", FieldType.DATE, provenance=MET),
        FieldMap("msdyn_enddatetime", "EndDate", FieldType.DATE, provenance=MET),
        FieldMap("msdyn_quantity", "SalesQty", FieldType.DECIMAL, provenance=MET),
        FieldMap("msdyn_price", "Price", FieldType.DECIMAL, provenance=MET),
        FieldMap("msdyn_billingtype", "BillingType", FieldType.ENUM, value_map=BILLING_TYPE, provenance=MET),
        FieldMap(
            "msdyn_transactiontypecode",
            "TransType",
            FieldType.ENUM,
            value_map=ESTIMATE_TRANSACTION_TYPE,
            provenance=MET,
        ),
    ),
    lookups=(
        project_number("msdyn_project", "ProjId", must_be_in_finance=True, provenance=MET),
        currency_code("transactioncurrencyid", "Currency", MET),
        Lookup(
            "msdyn_product",
            "ItemId",
            read_set="products",
            read_column="msdyn_productnumber",
            provenance=MET,
            note="the product's number is the released item id (Products map)",
        ),
        transaction_category_number("msdyn_transactioncategory", "TransactionCategoryId", provenance=MET),
        task_activity_number("msdyn_task", "ActivityNumber", provenance=MET),
    ),
    operations=frozenset({Operation.CREATE, Operation.UPDATE, Operation.DELETE}),
    notes=(
        "Not sent: the exchange rate, which ProjForecastSalesImport does not have. The quantity goes to "
        "SalesQty, not InventQty (the inventory-unit quantity Finance derives). Also on the entity but "
        "not mapped: Comment, TransId, ForecastLineIdOrigin, ForecastInvoiceDate, ForecastCostPaymDate, "
        "ContractLineId, SequenceNumber."
    ),
)

bp = flow_blueprint(MAP)
