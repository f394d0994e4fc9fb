"""Vendor invoice status back to Finance: the project manager's confirmation in Dataverse → Finance.

Reference: maps/27-msdyn_projectvendorinvoices.md. Documented: PROJVENDINVOICESTATUS ◀ statuscode
(a Dataverse → Finance transform in the V2 map); with Block vendor payments till PM confirmation,
the confirmation releases the payment in Finance. The status reason values and Finance's symbols
are not visible (inferred). Update only: the invoice itself is Finance's, written by vendor-invoices.
"""

from functions.flow_blueprint import flow_blueprint
from shared.events import Operation
from shared.maps import (
    DOC,
    INF,
    FieldMap,
    Lookup,
    SourceSide,
    System,
    TableMap,
    TargetSide,
    ValueMap,
    WriteMode,
    company_from_lookup,
)

STATUS = ValueMap(
    "statuscode → ProjVendInvoiceStatus",
    {1: "Draft", 192350000: "PendingConfirmation", 192350001: "Confirmed", 192350002: "Rejected"},
    provenance=INF,
)

MAP = TableMap(
    name="vendor-invoice-status",
    title="Project Operations integration project vendor invoice export entity V2: status back to Finance",
    reference="maps/27-msdyn_projectvendorinvoices.md",
    source=SourceSide(
        System.DATAVERSE, "msdyn_projectvendorinvoice", "msdyn_projectvendorinvoices", ("msdyn_projectvendorinvoiceid",)
    ),
    target=TargetSide(
        System.FINANCE, "ProjVendInvoiceExportsV2", ("dataAreaId", "VendorInvoiceNum", "InvoiceAccount"), INF
    ),
    company=company_from_lookup("msdyn_owningcompany", "dataAreaId"),
    fields=(
        FieldMap("msdyn_vendorinvoicenumber", "VendorInvoiceNum", provenance=DOC, note="= pair (key)"),
        FieldMap("statuscode", "ProjVendInvoiceStatus", value_map=STATUS, provenance=DOC, note="◀ transform"),
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
)

bp = flow_blueprint(MAP)
