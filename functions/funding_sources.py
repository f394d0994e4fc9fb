"""Project funding sources (msdyn_projectcontractsplitbillingrules): contract customers → Finance.

Reference: maps/14-msdyn_projectcontractsplitbillingrules-funding-source.md. Documented: saving a
project contract creates its contract customer rows, and the map syncs their additions, updates and
deletions; split billing percentages are mastered in Dataverse only and never synced; terms of
payment are synced (1.0.0.2). Field pairs and keys are not documented; the funding source id is the
funding source's own number, because Microsoft's actuals map sends an actual's FUNDINGSOURCE from
msdyn_projectcontractsplitbillingrule.msdyn_projectcontractsplitbillingrulenumber: a staged actual can
only name its funding source in Finance if the funding source was keyed by that number. The entity set,
its key (note ProjectContractID's upper-case ID) and every field's type are the live $metadata's.
"""

from functions.flow_blueprint import flow_blueprint
from functions.lookups import contract_number, customer_account
from functions.value_maps import TERMS_OF_PAYMENT
from shared.events import Operation
from shared.maps import (
    DOC,
    MET,
    FieldMap,
    FieldType,
    SourceSide,
    System,
    TableMap,
    TargetSide,
    company_from_lookup,
)

MAP = TableMap(
    name="funding-sources",
    title="Project funding source (msdyn_projectcontractsplitbillingrules)",
    reference="maps/14-msdyn_projectcontractsplitbillingrules-funding-source.md",
    source=SourceSide(
        System.DATAVERSE,
        "msdyn_projectcontractsplitbillingrule",
        "msdyn_projectcontractsplitbillingrules",
        ("msdyn_projectcontractsplitbillingruleid",),
    ),
    target=TargetSide(
        System.FINANCE, "ProjectFundingSources", ("dataAreaId", "ProjectContractID", "FundingSourceId"), MET
    ),
    company=company_from_lookup("msdyn_owningcompany", "dataAreaId", DOC),
    fields=(
        FieldMap(
            None,
            "FundingType",
            FieldType.ENUM,
            default="Customer",
            provenance=MET,
            note="ProjFundingType: a contract customer is an account, so it funds as a Customer",
        ),
        FieldMap("msdyn_paymentterms", "TermsOfPayment", value_map=TERMS_OF_PAYMENT, provenance=DOC, note="1.0.0.2"),
        FieldMap("msdyn_isprimary", "IsPrimaryFundingSource", FieldType.NOYES, default=False, provenance=MET),
        FieldMap("msdyn_billtoname", "InvoiceName", provenance=MET),
        FieldMap(
            "msdyn_projectcontractsplitbillingrulenumber",
            "FundingSourceId",
            provenance=MET,
            note="the number Microsoft's actuals map sends as an actual's FUNDINGSOURCE; key part",
        ),
    ),
    lookups=(
        contract_number("msdyn_projectcontractid", "ProjectContractID", provenance=MET),
        customer_account(
            "msdyn_customer",
            "CustomerOrOrganization",
            required=True,
            note="the customer must be in Finance first",
            provenance=MET,
        ),
    ),
    operations=frozenset({Operation.CREATE, Operation.UPDATE, Operation.DELETE}),
    notes="msdyn_billingsplitpercent is deliberately not mapped: split percentages are not synced (documented).",
)

bp = flow_blueprint(MAP)
