"""Project vendor invoices (msdyn_projectvendorinvoices): posted Finance vendor invoices → Dataverse.

Reference: maps/27-msdyn_projectvendorinvoices.md (the V2 map's field screenshot). Documented:
Finance → Dataverse when a vendor invoice is posted, only invoices with at least one project line;
the vendor is a Dataverse account in the invoice's company; the = pairs (invoice number, invoice
account) are the key; the status flows back to Finance (see vendor_invoice_status). The
subcontract transform and the external-origin default are not visible (inferred).

The entity is VendInvoiceExportsV2 in the live $metadata (AOT ProjVendInvoiceExportEntityV2, the
name the V2 map lists), keyed dataAreaId, InvoiceAccount, VendorInvoiceNum; every field the
screenshot shows is on it under the screenshot's name. The document is named by the documented
Vendor invoice posted business event (members InvoiceAccount, InvoiceId, LegalEntity).
"""

from functions.flow_blueprint import flow_blueprint
from functions.lookups import company_bind, currency_bind, vendor_account
from shared.events import Operation
from shared.maps import (
    DOC,
    INF,
    MET,
    Document,
    FieldMap,
    FieldType,
    SourceSide,
    System,
    TableMap,
    TargetSide,
    company_from_field,
)
from shared.values import Value

# The documented business event, and its members that name the invoice's rows in both export entities.
INVOICE_POSTED = "VendorInvoicePostedBusinessEvent"
INVOICE_MEMBERS = (("InvoiceId", "VendorInvoiceNum"), ("InvoiceAccount", "InvoiceAccount"))
INVOICES_SET = "VendInvoiceExportsV2"
INVOICE_KEY = ("dataAreaId", "InvoiceAccount", "VendorInvoiceNum")
LINES_SET = "ProjVendInvoiceLinesExportEntity"
# The line entity is keyed by the project's company (ProjDataAreaId); the invoice's company is DAreaId.
LINES_COMPANY = "DAreaId"


def _automatic_confirmation(subcontract: Value) -> bool:
    # A subcontract invoice waits for the project manager's confirmation; anything else confirms itself.
    return subcontract != "Yes"


MAP = TableMap(
    name="vendor-invoices",
    title="Project Operations integration project vendor invoice export entity V2 (msdyn_projectvendorinvoices)",
    reference="maps/27-msdyn_projectvendorinvoices.md",
    source=SourceSide(
        System.FINANCE,
        "ProjVendInvoiceExportEntityV2",
        INVOICES_SET,
        INVOICE_KEY,
        events=(INVOICE_POSTED,),
    ),
    target=TargetSide(
        System.DATAVERSE, "msdyn_projectvendorinvoices", ("msdyn_vendorinvoicenumber", "_msdyn_vendor_value"), INF
    ),
    company=company_from_field("dataAreaId"),
    document=Document(
        INVOICES_SET,
        INVOICE_MEMBERS,
        only_if_any=(LINES_SET, "ProjId ne ''"),
        only_if_description="the invoice has at least one line with a project (documented)",
        only_if_company_field=LINES_COMPANY,
    ),
    fields=(
        FieldMap("VendorInvoiceNum", "msdyn_vendorinvoicenumber", provenance=DOC, note="= pair (key)"),
        FieldMap("VendorInvoiceNum", "msdyn_name", provenance=DOC),
        FieldMap("Description", "msdyn_description", provenance=DOC),
        FieldMap("TransDate", "msdyn_invoicedate", FieldType.DATE, provenance=DOC),
        FieldMap(
            "SubcontractInvoice",
            "msdyn_enableautomaticconfirmation",
            FieldType.BOOL,
            transform=_automatic_confirmation,
            provenance=INF,
            note="pair documented, transform inferred",
        ),
        FieldMap(None, "msdyn_hasexternalorigin", FieldType.BOOL, default=True, provenance=INF, note="default"),
    ),
    lookups=(
        vendor_account("_msdyn_vendor_value", DOC),
        company_bind(provenance=MET),
        currency_bind("CurrencyCode", "transactioncurrencyid", DOC),
    ),
    operations=frozenset({Operation.UPSERT}),
    notes=(
        "Not carried, for want of a Dataverse column in the map: DocumentDate, PurchId, OrderAccount. The "
        "owning company (dataAreaId) is not in the screenshot; its pairing is ours."
    ),
)

bp = flow_blueprint(MAP)
