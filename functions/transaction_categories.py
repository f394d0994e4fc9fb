"""Project transaction categories (msdyn_transactioncategories): Dataverse → Finance.

Reference: maps/17-msdyn_transactioncategories.md. Dataverse maintains transaction categories;
Finance creates the shared categories for each (documented: <id>-1 Hour … -5 On-account). The
Finance ID (TCN-...) is held in msdyn_transactioncategorynumber [Category ID] (screenshot of the
vendor-invoice-line map). Finance's entity (ProjectTransactionCategories in the live $metadata) has
the category id, its key, and a name: nothing else. Categories are not company-specific.
"""

from functions.flow_blueprint import flow_blueprint
from shared.events import Operation
from shared.maps import MET, FieldMap, SourceSide, System, TableMap, TargetSide

MAP = TableMap(
    name="transaction-categories",
    title="Project transaction categories (msdyn_transactioncategories)",
    reference="maps/17-msdyn_transactioncategories.md",
    source=SourceSide(
        System.DATAVERSE, "msdyn_transactioncategory", "msdyn_transactioncategories", ("msdyn_transactioncategoryid",)
    ),
    target=TargetSide(System.FINANCE, "ProjectTransactionCategories", ("CategoryId",), MET),
    fields=(
        FieldMap(
            "msdyn_transactioncategorynumber",
            "CategoryId",
            provenance=MET,
            note="Category ID; the IMG shows Finance's category id is this number",
        ),
        FieldMap("msdyn_name", "Name", provenance=MET, note="PSA-DI pair"),
    ),
    operations=frozenset({Operation.CREATE, Operation.UPDATE}),
    notes=(
        "Not sent: the category's Dataverse id (the PSA-era IntegrationId belongs to the non-public "
        "ProjCDSCategoryEntity) and its billing type; ProjectTransactionCategories has neither field. "
        "The billing type reaches Finance on each transaction instead (BillingType on actuals and estimates)."
    ),
)

bp = flow_blueprint(MAP)
