"""Contract line milestones (msdyn_contractlinescheduleofvalues) → Finance on-account transactions.

Reference: maps/22-msdyn_contractlinescheduleofvalues-milestones.md. Documented: fixed-price
contract lines are invoiced through billing milestones, which this map syncs to project on-account
transactions through the milestone staging entity. The invoice status value map (Dataverse Not
ready 192350000 ↔ 0, Ready for invoicing 192350001 ↔ 4) belongs to the cutover that migrates
milestones invoiced before go-live: it is sent only while PROJOPS_MILESTONE_INVOICED_CUTOVER is on.
Field pairs follow the PSA Data Integrator template into the same staging entity. A milestone waits
for its contract line to be in Finance.
"""

from functions.flow_blueprint import flow_blueprint
from functions.lookups import currency_code, project_number
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
    company_of_project,
)

# Documented for the cutover only (migrating-invoiced-milestones): while milestones invoiced before
# go-live are migrated, 192350001 → 4 (invoiced) and 192350000 → 0; afterwards the pair is removed, since
# in daily use a milestone ready for invoicing must stay to be invoiced in Finance. A milestone whose
# customer invoice exists or is posted is invoiced too (inferred).
INVOICE_STATUS = ValueMap(
    "msdyn_invoicestatus → TransStatus",
    {192350000: 0, 192350001: 4, 192350002: 4, 192350003: 4},
    provenance=DOC,
)

MAP = TableMap(
    name="contract-milestones",
    title="Project Operations integration contract line milestones (msdyn_contractlinescheduleofvalues)",
    reference="maps/22-msdyn_contractlinescheduleofvalues-milestones.md",
    source=SourceSide(
        System.DATAVERSE,
        "msdyn_contractlinescheduleofvalue",
        "msdyn_contractlinescheduleofvalues",
        ("msdyn_contractlinescheduleofvalueid",),
    ),
    target=TargetSide(System.FINANCE, "ProjectContractLineMilestones", ("dataAreaId", "TransactionId"), INF),
    company=company_of_project("msdyn_project"),
    fields=(
        FieldMap(
            "msdyn_contractlinescheduleofvalueid",
            "TransactionId",
            FieldType.GUID,
            provenance=INF,
            note="PSA-DI: = TRANSACTIONID",
        ),
        FieldMap("msdyn_name", "Description", provenance=INF, note="PSA-DI: = DESCRIPTION"),
        FieldMap("msdyn_invoicedate", "InvoiceDate", FieldType.DATE, provenance=INF, note="PSA-DI: = INVOICEDATE"),
        FieldMap("msdyn_amount", "Amount", FieldType.DECIMAL, provenance=INF, note="PSA-DI: = AMOUNT"),
        FieldMap(
            "msdyn_invoicestatus",
            "TransStatus",
            FieldType.INT,
            value_map=INVOICE_STATUS,
            provenance=DOC,
            note="migrating-invoiced-milestones value map; not in the default map",
            only_with="milestone_invoiced_cutover",
        ),
    ),
    lookups=(
        Lookup(
            "msdyn_contractlineid",
            "ContractLineRef",
            read_set="salesorderdetails",
            read_column="salesorderdetailid",
            require_set="ProjectContractLines",
            require_field="ContractLineId",
            required=True,
            type=FieldType.GUID,
            provenance=INF,
            note="PSA-DI: = CONTRACTLINEREF; the contract line must be in Finance first",
        ),
        currency_code("transactioncurrencyid", "CurrencyId", note="PSA-DI: = CURRENCYID"),
        project_number("msdyn_project", "ProjectId", must_be_in_finance=False),
    ),
    operations=frozenset({Operation.CREATE, Operation.UPDATE, Operation.DELETE}),
)

bp = flow_blueprint(MAP)
