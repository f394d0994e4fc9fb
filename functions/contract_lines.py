"""Project contract lines (salesorderdetails): Dataverse contract lines → Finance billing rules.

Reference: maps/13-salesorderdetails-project-contract-lines.md. Documented: time-and-material lines
create a time-and-material billing rule, fixed-price lines a milestone billing rule; the owning company
is defaulted on the line (fix 3853801). Field pairs follow the PSA Data Integrator template. A line
that arrives before its contract header is retried until the header is in Finance. Finance keys a
line by its contract and line number (the live $metadata's key: dataAreaId, ProjectContractId,
LineSequenceNumber); ContractLineId is an ordinary string field, which carries the Dataverse line id
so milestones can name their line.
"""

from collections.abc import Mapping
from typing import Any

from functions.flow_blueprint import flow_blueprint
from functions.lookups import contract_number, project_number
from shared.events import Operation
from shared.maps import (
    DOC,
    INF,
    MET,
    FieldMap,
    FieldType,
    Filter,
    SourceSide,
    System,
    TableMap,
    TargetSide,
    ValueMap,
    company_from_lookup,
)

# Dataverse's billing method is Finance's BillingMethod: the same name, and ProjContractBillingMethod
# has exactly Dataverse's two values (192350000 Time and Material, 192350001 Fixed Price).
BILLING_METHOD = ValueMap(
    "msdyn_billingmethod → BillingMethod", {192350000: "TimeMaterial", 192350001: "FixedPrice"}, provenance=MET
)

# Documented: a time-and-material line creates a time-and-material billing rule, a fixed-price line a
# milestone billing rule. The rule's type is LineType (PSAContractLineType: TAndM "Time and material",
# LumpSum "Milestone"). It is sent as well as the billing method, so the rule type is the documented
# one whether or not Finance derives it from the method. Progress-based fixed-price lines (LineType
# Progress) would need the invoice schedule type, which the map does not carry.
BILLING_RULE_TYPE = ValueMap(
    "msdyn_billingmethod → LineType", {192350000: "TAndM", 192350001: "LumpSum"}, provenance=INF
)


def _has_billing_method(row: Mapping[str, Any]) -> bool:
    # Project-based lines carry a billing method; product lines and ordinary sales order lines have
    # none, create no billing rule, and must not wait for a project contract that never comes.
    return row["msdyn_billingmethod"] is not None


def _yes(value: Any) -> bool:
    return value is True


MAP = TableMap(
    name="contract-lines",
    title="Project contract lines (salesorderdetails)",
    reference="maps/13-salesorderdetails-project-contract-lines.md",
    source=SourceSide(System.DATAVERSE, "salesorderdetail", "salesorderdetails", ("salesorderdetailid",)),
    target=TargetSide(
        System.FINANCE, "ProjectContractLines", ("dataAreaId", "ProjectContractId", "LineSequenceNumber"), MET
    ),
    company=company_from_lookup("msdyn_owningcompany", "dataAreaId", DOC),
    filter=Filter(
        "lines with a billing method (project-based lines)",
        ("msdyn_billingmethod",),
        _has_billing_method,
        odata="msdyn_billingmethod ne null",
        provenance=INF,
    ),
    fields=(
        FieldMap(
            "salesorderdetailid",
            "ContractLineId",
            FieldType.GUID,
            provenance=MET,
            note="PSA-DI: = TRANSACTIONID; a string field in Finance, not the key",
        ),
        FieldMap("productdescription", "Description", provenance=MET, note="PSA-DI pair"),
        FieldMap(
            "sequencenumber",
            "LineSequenceNumber",
            FieldType.INT,
            provenance=MET,
            note="PSA-DI: = CONTRACTLINE; Int32 key part",
        ),
        FieldMap(
            "msdyn_billingmethod",
            "BillingMethod",
            FieldType.ENUM,
            value_map=BILLING_METHOD,
            provenance=MET,
            note="the same field in both systems",
        ),
        FieldMap(
            "msdyn_billingmethod",
            "LineType",
            FieldType.ENUM,
            value_map=BILLING_RULE_TYPE,
            provenance=DOC,
            note="the billing rule type the billing method creates (documented); symbols inferred",
        ),
        FieldMap("msdyn_includetime", "AreHourTransactionsIncluded", FieldType.NOYES, transform=_yes, provenance=MET),
        FieldMap(
            "msdyn_includeexpense", "AreExpenseTransactionsIncluded", FieldType.NOYES, transform=_yes, provenance=MET
        ),
        FieldMap(
            "msdyn_includematerial", "AreItemTransactionsIncluded", FieldType.NOYES, transform=_yes, provenance=MET
        ),
        FieldMap("msdyn_includefee", "AreFeeTransactionsIncluded", FieldType.NOYES, transform=_yes, provenance=MET),
        FieldMap("quantity", "Quantity", FieldType.DECIMAL, provenance=MET),
        FieldMap("priceperunit", "UnitPrice", FieldType.DECIMAL, provenance=MET),
        FieldMap(
            "baseamount",
            "LineAmount",
            FieldType.DECIMAL,
            provenance=INF,
            note=(
                "the line's amount before tax: extendedamount adds the estimated tax, and Finance applies its "
                "own sales tax to the line (salesorderdetail column reference); inferred: project-based lines "
                "carry no discount, so baseamount is also the amount after discounts"
            ),
        ),
    ),
    lookups=(
        contract_number(
            "salesorderid",
            "ProjectContractId",
            note=(
                "salesorderid.msdyn_salesordernumber (the contract id in Microsoft's map); "
                "the header must be in Finance first; key part"
            ),
            provenance=MET,
        ),
        project_number(
            "msdyn_project",
            "LineProjectId",
            must_be_in_finance=False,
            note="PSA-DI: msdyn_project.(project number)",
            provenance=MET,
        ),
    ),
    operations=frozenset({Operation.CREATE, Operation.UPDATE, Operation.DELETE}),
    # Dataverse keeps a contract's sequence numbers unique nowhere: two lines of one number share a
    # Finance key, and the rule's ContractLineId says which line it is.
    owner_field="ContractLineId",
    notes=(
        "Keyed in Finance by contract and line number: a line moved to another contract or renumbered "
        "becomes a new row there. BillingMethod and LineType both follow msdyn_billingmethod (see the "
        "value maps)."
    ),
)

bp = flow_blueprint(MAP)
