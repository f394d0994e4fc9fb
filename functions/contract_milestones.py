"""Contract line milestones (msdyn_contractlinescheduleofvalues) → Finance on-account transactions.

Reference: maps/22-msdyn_contractlinescheduleofvalues-milestones.md. Documented: fixed-price
contract lines are invoiced through billing milestones, which this map syncs to project on-account
transactions through the milestone entity (ProjectContractLineMilestones: it has TransStatus, the
field the invoiced-milestones cutover maps). The invoice status value map (Dataverse Not ready
192350000 ↔ 0, Ready for invoicing 192350001 ↔ 4) belongs to that cutover: it is sent only while
PROJOPS_MILESTONE_INVOICED_CUTOVER is on. Field pairs follow the PSA Data Integrator template, whose
names (TransactionId, ContractLineRef, InvoiceDate, CurrencyId) are the PSA-era
CDSProjectContractLineMilestones'; here they are the Project Operations entity's own, from the live
$metadata. A milestone waits for its contract line to be in Finance.
"""

from functions.flow_blueprint import flow_blueprint
from functions.lookups import currency_code, project_number
from shared.events import Operation
from shared.maps import (
    DOC,
    MET,
    FieldMap,
    FieldType,
    Lookup,
    Money,
    SourceSide,
    System,
    TableMap,
    TargetSide,
    ValueMap,
    company_of_project,
)
from shared.values import LOCAL_DAY_INFERRED, Value, user_local_day

# Documented for the cutover only (migrating-invoiced-milestones): while milestones invoiced before
# go-live are migrated, 192350001 → 4 (invoiced) and 192350000 → 0; afterwards the pair is removed, since
# in daily use a milestone ready for invoicing must stay to be invoiced in Finance. OData takes the
# member's name, not its number: ProjTransStatus 0 is NoStatus and 4 Invoiced (by member value). A
# milestone whose customer invoice exists or is posted is invoiced too (inferred).
INVOICE_STATUS = ValueMap(
    "msdyn_invoicestatus → TransStatus",
    {192350000: "NoStatus", 192350001: "Invoiced", 192350002: "Invoiced", 192350003: "Invoiced"},
    provenance=DOC,
)


def guid_text(value: Value) -> Value:
    """A Guid written into a string key: quoted in the URL, so spelt one way (no braces, lower case)."""
    return str(value).strip("{}").lower() if value is not None else None


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
    target=TargetSide(
        System.FINANCE, "ProjectContractLineMilestones", ("dataAreaId", "ContractLineMilestoneIdentifier"), MET
    ),
    company=company_of_project("msdyn_project"),
    fields=(
        FieldMap(
            "msdyn_contractlinescheduleofvalueid",
            "ContractLineMilestoneIdentifier",
            transform=guid_text,
            provenance=MET,
            note="the key (a string): the milestone's Dataverse id, so updates and deletes find the row",
        ),
        FieldMap(
            "msdyn_contractlinescheduleofvalueid",
            "ContractLineMilestoneGuid",
            FieldType.GUID,
            provenance=MET,
            note="PSA-DI: = TRANSACTIONID, which was the PSA-era entity's Guid; here the Guid field",
        ),
        FieldMap("msdyn_name", "Description", provenance=MET, note="PSA-DI: = DESCRIPTION"),
        FieldMap(
            "msdyn_invoicedate",
            "TransactionDate",
            FieldType.DATE,
            transform=user_local_day,
            provenance=MET,
            note=f"PSA-DI: = INVOICEDATE; {LOCAL_DAY_INFERRED}",
        ),
        FieldMap("msdyn_amount", "Amount", FieldType.DECIMAL, provenance=MET, note="PSA-DI: = AMOUNT"),
        FieldMap(
            "msdyn_invoicestatus",
            "TransStatus",
            FieldType.ENUM,
            value_map=INVOICE_STATUS,
            provenance=DOC,
            note="migrating-invoiced-milestones value map; not in the default map",
            only_with="milestone_invoiced_cutover",
        ),
    ),
    lookups=(
        Lookup(
            "msdyn_contractlineid",
            "ContractLineId",
            read_set="salesorderdetails",
            read_column="salesorderdetailid",
            require_set="ProjectContractLines",
            require_field="ContractLineId",
            require_by_filter=True,
            required=True,
            type=FieldType.GUID,
            provenance=MET,
            note="PSA-DI: = CONTRACTLINEREF; the contract line (which carries this id) must be in Finance first",
        ),
        currency_code("transactioncurrencyid", "CurrencyCode", MET, note="PSA-DI: = CURRENCYID"),
        project_number("msdyn_project", "ProjectNumber", must_be_in_finance=False, provenance=MET),
    ),
    operations=frozenset({Operation.CREATE, Operation.UPDATE, Operation.DELETE}),
    money=Money("Amount", "CurrencyCode"),
    notes=(
        "TransactionId is not sent: the PSA-era entity was keyed by it as a Guid, but here it is a "
        "plain string and the entity has its own key and Guid field, so the Dataverse id goes to "
        "ContractLineMilestoneIdentifier (the key) and ContractLineMilestoneGuid (our choice; "
        "Microsoft's pairing is not published)."
    ),
)

bp = flow_blueprint(MAP)
