"""Vendor invoice status back to Finance: the project manager's confirmation in Dataverse → Finance.

Reference: maps/27-msdyn_projectvendorinvoices.md. Documented: PROJVENDINVOICESTATUS ◀ statuscode
(a Dataverse → Finance transform in the V2 map); with Block vendor payments till PM confirmation,
the confirmation releases the payment in Finance. The status reason values are not visible
(inferred); Finance's symbols are the ProjVendInvoiceStatus members of the live $metadata (None,
Draft, InReview, Confirmed). Update only: the invoice itself is Finance's, written by vendor-invoices.
"""

from functions.flow_blueprint import flow_blueprint
from functions.vendor_invoices import INVOICE_KEY, INVOICES_SET
from shared.events import Operation
from shared.maps import (
    DOC,
    INF,
    MET,
    FieldMap,
    FieldType,
    Lookup,
    SourceSide,
    System,
    TableMap,
    TargetSide,
    ValueMap,
    WriteMode,
    company_from_lookup,
)

# Pending confirmation is Finance's InReview. Finance has no rejected status: a rejected invoice goes
# back to InReview, so its payment stays blocked until the project manager confirms it (the purpose
# of the hold), instead of keeping a confirmation the manager withdrew or being dropped unseen.
STATUS = ValueMap(
    "statuscode → ProjVendInvoiceStatus",
    {1: "Draft", 192350000: "InReview", 192350001: "Confirmed", 192350002: "InReview"},
    provenance=INF,
)

MAP = TableMap(
    name="vendor-invoice-status",
    title="Project Operations integration project vendor invoice export entity V2: status back to Finance",
    reference="maps/27-msdyn_projectvendorinvoices.md",
    source=SourceSide(
        System.DATAVERSE, "msdyn_projectvendorinvoice", "msdyn_projectvendorinvoices", ("msdyn_projectvendorinvoiceid",)
    ),
    target=TargetSide(System.FINANCE, INVOICES_SET, INVOICE_KEY, MET),
    company=company_from_lookup("msdyn_owningcompany", "dataAreaId"),
    fields=(
        FieldMap("msdyn_vendorinvoicenumber", "VendorInvoiceNum", provenance=DOC, note="= pair (key)"),
        FieldMap(
            "statuscode",
            "ProjVendInvoiceStatus",
            FieldType.ENUM,
            value_map=STATUS,
            provenance=DOC,
            note="◀ transform; pair documented, values inferred",
        ),
    ),
    lookups=(
        Lookup(
            "msdyn_vendor",
            "InvoiceAccount",
            read_set="accounts",
            read_column="accountnumber",
            required=True,
            provenance=DOC,
            note="= pair (key)",
        ),
    ),
    write_mode=WriteMode.UPDATE,
    operations=frozenset({Operation.UPDATE}),
    notes=(
        "Rejected (192350002) has no ProjVendInvoiceStatus member: it is sent as InReview, which keeps the "
        "payment blocked; Finance's accounts payable must follow a rejection up there."
    ),
)

bp = flow_blueprint(MAP)
