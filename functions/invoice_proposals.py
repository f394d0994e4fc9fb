"""Project invoice proposals V2 (invoices): confirmed proforma invoice headers → Finance.

Reference: maps/19-invoices-project-invoice-proposals-v2.md. Documented: when the project manager
confirms a proforma invoice, its header syncs to Finance, one way; the proposal number in Finance is
the proforma invoice id; terms of payment are synced (1.0.0.3); the lines come from billed-sales
actuals through Import from staging, not from this map. The filter (confirmed, work based) and the
field pairs are inferred. Proposals cannot be deleted from Dataverse, so deletes are not carried.
"""

from collections.abc import Mapping
from typing import Any

from functions.flow_blueprint import flow_blueprint
from functions.lookups import contract_number, currency_code
from functions.value_maps import TERMS_OF_PAYMENT
from shared.events import Operation
from shared.extensions import EXTENSION_INVOICE_PROPOSALS
from shared.maps import (
    DOC,
    INF,
    FieldMap,
    FieldType,
    Filter,
    Lookup,
    SourceSide,
    System,
    TableMap,
    TargetSide,
    company_of_referenced,
)
from shared.values import LOCAL_DAY_INFERRED, user_local_day

CONFIRMED = 192350002
WORK_BASED = 192350001


def _confirmed(row: Mapping[str, Any]) -> bool:
    return row["msdyn_projectinvoicestatus"] == CONFIRMED and row["msdyn_ordertype"] == WORK_BASED


MAP = TableMap(
    name="invoice-proposals",
    title="Project invoice proposals V2 (invoices)",
    reference="maps/19-invoices-project-invoice-proposals-v2.md",
    source=SourceSide(System.DATAVERSE, "invoice", "invoices", ("invoiceid",)),
    target=TargetSide(
        System.FINANCE,
        "ProjectInvoiceProposalsV2",
        ("dataAreaId", "InvoiceProposalId"),
        INF,
        requires_extension=EXTENSION_INVOICE_PROPOSALS,
    ),
    company=company_of_referenced("salesorderid", "salesorders", "_msdyn_owningcompany_value", "dataAreaId"),
    filter=Filter(
        "confirmed project invoices only (status Confirmed, work based)",
        ("msdyn_projectinvoicestatus", "msdyn_ordertype"),
        _confirmed,
        odata=f"msdyn_projectinvoicestatus eq {CONFIRMED} and msdyn_ordertype eq {WORK_BASED}",
        provenance=INF,
    ),
    fields=(
        FieldMap(
            "msdyn_invoicenumber",
            "InvoiceProposalId",
            provenance=DOC,
            note=(
                "the proposal id the billed-sales actual names (Microsoft's actuals map: INVOICEPROPOSALID < "
                "msdyn_invoice.msdyn_invoicenumber); invoicenumber is the CE invoice id"
            ),
        ),
        FieldMap("name", "InvoiceHeaderText", provenance=INF),
        FieldMap(
            "msdyn_invoicedate",
            "InvoiceDate",
            FieldType.DATE,
            transform=user_local_day,
            provenance=INF,
            note=LOCAL_DAY_INFERRED,
        ),
        FieldMap("paymenttermscode", "TermsOfPayment", value_map=TERMS_OF_PAYMENT, provenance=DOC, note="1.0.0.3"),
    ),
    lookups=(
        contract_number("salesorderid", "ProjectContractId"),
        Lookup(
            "customerid",
            "FundingSourceId",
            read_set="accounts",
            read_column="accountnumber",
            required=True,
            provenance=INF,
            note=(
                "the customer's account: Microsoft's actuals map names a funding source by its own number "
                "(msdyn_projectcontractsplitbillingrulenumber), which the invoice does not reference directly; "
                "to confirm with check-maps and the extension before the flow is switched on"
            ),
        ),
        currency_code("transactioncurrencyid", "SalesCurrency"),
    ),
    operations=frozenset({Operation.CREATE, Operation.UPDATE}),
)

bp = flow_blueprint(MAP)
