"""Project contract headers (salesorders): Dataverse project contracts → Finance project contracts.

Reference: maps/12-salesorders-project-contract-headers.md. Contracts are created and deleted only in
Dataverse (documented); only project-based orders sync (documented fix 2541660; the PSA template's
filter msdyn_ordertype = 192350001 "Work based"). Field pairs follow the PSA Data Integrator
template into the same Finance entity; terms of payment need a value map to the company's own codes.
"""

from collections.abc import Mapping
from typing import Any

from functions.flow_blueprint import flow_blueprint
from functions.lookups import currency_code, customer_account
from functions.value_maps import TERMS_OF_PAYMENT
from shared.events import Operation
from shared.maps import (
    DOC,
    INF,
    FieldMap,
    Filter,
    SourceSide,
    System,
    TableMap,
    TargetSide,
    company_from_lookup,
)


def _project_based(row: Mapping[str, Any]) -> bool:
    return row["msdyn_ordertype"] == 192350001


MAP = TableMap(
    name="contract-headers",
    title="Project contract headers (salesorders)",
    reference="maps/12-salesorders-project-contract-headers.md",
    source=SourceSide(System.DATAVERSE, "salesorder", "salesorders", ("salesorderid",)),
    target=TargetSide(System.FINANCE, "ProjectContractHeaders", ("dataAreaId", "ProjectContractId"), INF),
    company=company_from_lookup("msdyn_owningcompany", "dataAreaId", INF),
    filter=Filter(
        "project-based orders only (msdyn_ordertype = Work based)",
        ("msdyn_ordertype",),
        _project_based,
        odata="msdyn_ordertype eq 192350001",
        provenance=DOC,
    ),
    fields=(
        FieldMap(
            "msdyn_salesordernumber",
            "ProjectContractId",
            provenance=DOC,
            note="Microsoft's actuals map reads Finance's contract id as the contract's msdyn_salesordernumber",
        ),
        FieldMap("name", "Name", provenance=INF, note="PSA-DI pair"),
        FieldMap("paymenttermscode", "TermsOfPayment", value_map=TERMS_OF_PAYMENT, provenance=INF),
        FieldMap(
            None,
            "IntegrationSourceDataId",
            default="Project Operations",
            provenance=INF,
            note="PSA-DI default 'Project Service Automation'",
        ),
    ),
    lookups=(
        customer_account(
            "customerid",
            "CustomerAccountNumber",
            required=True,
            note="PSA-DI: customerid.Account(accountnumber); the customer must be in Finance first",
        ),
        currency_code("transactioncurrencyid", "SalesCurrencyCode"),
    ),
    operations=frozenset({Operation.CREATE, Operation.UPDATE, Operation.DELETE}),
)

bp = flow_blueprint(MAP)
