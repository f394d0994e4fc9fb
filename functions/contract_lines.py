"""Project contract lines (salesorderdetails): Dataverse contract lines → Finance billing rules.

Reference: maps/13-salesorderdetails-project-contract-lines.md. Documented: time-and-material lines
create a time-and-material billing rule, fixed-price lines a milestone billing rule; the owning company
is defaulted on the line (fix 3853801). Field pairs follow the PSA Data Integrator template. A line
that arrives before its contract header is retried until the header is in Finance.
"""

from collections.abc import Mapping
from typing import Any

from functions.flow_blueprint import flow_blueprint
from functions.lookups import contract_number, project_number
from shared.events import Operation
from shared.maps import (
    DOC,
    INF,
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

# Documented: a time-and-material line creates a time-and-material billing rule, a fixed-price line a
# milestone billing rule. The rule's type is LineType; its symbols are PSAContractLineType's (TAndM "Time
# and material", LumpSum "Milestone"), from the reference of the same contract line table (inferred).
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
    target=TargetSide(System.FINANCE, "ProjectContractLines", ("dataAreaId", "ContractLineId"), INF),
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
            "salesorderdetailid", "ContractLineId", FieldType.GUID, provenance=INF, note="PSA-DI: = TRANSACTIONID"
        ),
        FieldMap("productdescription", "Description", provenance=INF, note="PSA-DI pair"),
        FieldMap("sequencenumber", "LineSequenceNumber", FieldType.INT, provenance=INF, note="PSA-DI: = CONTRACTLINE"),
        FieldMap(
            "msdyn_billingmethod",
            "LineType",
            FieldType.ENUM,
            value_map=BILLING_RULE_TYPE,
            provenance=DOC,
            note="pair documented (PSA-DI: TYPE), symbols inferred",
        ),
        FieldMap("msdyn_includetime", "AreHourTransactionsIncluded", FieldType.NOYES, transform=_yes, provenance=INF),
        FieldMap(
            "msdyn_includeexpense", "AreExpenseTransactionsIncluded", FieldType.NOYES, transform=_yes, provenance=INF
        ),
        FieldMap(
            "msdyn_includematerial", "AreItemTransactionsIncluded", FieldType.NOYES, transform=_yes, provenance=INF
        ),
        FieldMap("msdyn_includefee", "AreFeeTransactionsIncluded", FieldType.NOYES, transform=_yes, provenance=INF),
        FieldMap("quantity", "Quantity", FieldType.DECIMAL, provenance=INF),
        FieldMap("priceperunit", "UnitPrice", FieldType.DECIMAL, provenance=INF),
        FieldMap("extendedamount", "LineAmount", FieldType.DECIMAL, provenance=INF),
    ),
    lookups=(
        contract_number(
            "salesorderid",
            "ProjectContractId",
            note="PSA-DI: salesorderid.ordernumber; the header must be in Finance first",
        ),
        project_number(
            "msdyn_project", "LineProjectId", must_be_in_finance=False, note="PSA-DI: msdyn_project.(project number)"
        ),
    ),
    operations=frozenset({Operation.CREATE, Operation.UPDATE, Operation.DELETE}),
)

bp = flow_blueprint(MAP)
