"""Project transaction categories (msdyn_transactioncategories): Dataverse → Finance.

Reference: maps/17-msdyn_transactioncategories.md. Dataverse maintains transaction categories;
Finance creates the shared categories for each (documented). The Finance ID (TCN-...) is held in
msdyn_transactioncategorynumber [Category ID] (screenshot of the vendor-invoice-line map); the other
pairs follow the PSA Data Integrator template. Categories are not company-specific.
"""

from functions.actuals import BILLING_TYPE
from functions.flow_blueprint import flow_blueprint
from shared.events import Operation
from shared.maps import DOC, INF, FieldMap, FieldType, SourceSide, System, TableMap, TargetSide

MAP = TableMap(
    name="transaction-categories",
    title="Project transaction categories (msdyn_transactioncategories)",
    reference="maps/17-msdyn_transactioncategories.md",
    source=SourceSide(
        System.DATAVERSE, "msdyn_transactioncategory", "msdyn_transactioncategories", ("msdyn_transactioncategoryid",)
    ),
    target=TargetSide(System.FINANCE, "ProjectTransactionCategories", ("TransactionCategoryId",), INF),
    fields=(
        FieldMap("msdyn_transactioncategorynumber", "TransactionCategoryId", provenance=DOC, note="Category ID (IMG)"),
        FieldMap("msdyn_name", "Name", provenance=INF, note="PSA-DI pair"),
        FieldMap("msdyn_transactioncategoryid", "IntegrationId", FieldType.GUID, provenance=INF, note="PSA-DI pair"),
        FieldMap("msdyn_billingtype", "BillingType", FieldType.ENUM, value_map=BILLING_TYPE, provenance=INF),
    ),
    operations=frozenset({Operation.CREATE, Operation.UPDATE}),
)

bp = flow_blueprint(MAP)
