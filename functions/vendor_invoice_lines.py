"""Project vendor invoice lines (msdyn_projectvendorinvoicelines): posted project lines → Dataverse.

Reference: maps/28-msdyn_projectvendorinvoicelines.md. Documented: Finance → Dataverse on posting,
only lines with a project; the key is msdyn_externalinvoiceline alone (1.0.0.6) = PROJTRANSID; the
pairs of the screenshot (price, quantity, category, role, currency, parent invoice, owning company).
The billing type and category type values are not visible (inferred). An invoice is one document:
all its lines go in atomic $batch changesets, so a 5,000-line invoice lands whole, and a line never
lands before its invoice header (it waits for vendor-invoices).

The entity is ProjVendInvoiceLinesExportEntity in the live $metadata (AOT
ProjVendInvoiceLineExportEntity, the name of the documented error), keyed ProjTransId +
ProjDataAreaId (the project's company); the invoice's company is DAreaId, which selects the
document's rows and is the line's owning company (DAREAID → msdyn_owningcompany, documented). The
project is ProjId and the currency `currencyCode`, lower-case c as the $metadata spells it (the
dual-write screenshot upper-cases every name).
"""

from functions.filters import has_project
from functions.flow_blueprint import flow_blueprint
from functions.lookups import company_bind, currency_bind, project_bind, vendor_account
from functions.value_maps import BILLING_TYPE_TO_DATAVERSE, EXPENSE, FEE, MATERIAL, TIME
from functions.vendor_invoices import INVOICE_MEMBERS, INVOICE_POSTED, LINES_COMPANY, LINES_SET
from shared.events import Operation
from shared.maps import (
    DOC,
    INF,
    MET,
    Document,
    FieldMap,
    FieldType,
    Lookup,
    Money,
    SourceSide,
    System,
    TableMap,
    TargetSide,
    ValueMap,
    company_from_field,
)

# ProjCategoryType members (live $metadata): Finance calls the expense category type Cost and the fee
# type Revenue. None and OnAccount have no transaction class: such a line parks, naming its value.
CATEGORY_TYPE = ValueMap(
    "CategoryType → msdyn_transactionclassification",
    {"Hour": TIME, "Cost": EXPENSE, "Item": MATERIAL, "Revenue": FEE},
    provenance=INF,
)
NOT_VERIFIED = 192350000


MAP = TableMap(
    name="vendor-invoice-lines",
    title="Project Operations integration project vendor invoice line export entity (msdyn_projectvendorinvoicelines)",
    reference="maps/28-msdyn_projectvendorinvoicelines.md",
    source=SourceSide(
        System.FINANCE,
        "ProjVendInvoiceLineExportEntity",
        LINES_SET,
        ("ProjTransId", "ProjDataAreaId"),
        events=(INVOICE_POSTED,),
    ),
    target=TargetSide(System.DATAVERSE, "msdyn_projectvendorinvoicelines", ("msdyn_externalinvoiceline",), DOC),
    company=company_from_field(LINES_COMPANY),
    document=Document(LINES_SET, INVOICE_MEMBERS, changeset_size=500, company_field=LINES_COMPANY),
    filter=has_project("ProjId"),
    fields=(
        FieldMap("ProjTransId", "msdyn_externalinvoiceline", provenance=DOC, note="the integration key"),
        FieldMap("Description", "msdyn_name", provenance=MET),
        FieldMap("PurchPrice", "msdyn_price", FieldType.DECIMAL, provenance=DOC),
        FieldMap("QtyReceiveNow", "msdyn_quantity", FieldType.DECIMAL, provenance=DOC),
        FieldMap("LineAmount", "msdyn_amount", FieldType.DECIMAL, provenance=MET),
        FieldMap(
            "BillingType",
            "msdyn_billingtype",
            FieldType.OPTION,
            value_map=BILLING_TYPE_TO_DATAVERSE,
            provenance=DOC,
            note="pair documented, values inferred",
        ),
        FieldMap(
            "CategoryType",
            "msdyn_transactionclassification",
            FieldType.OPTION,
            value_map=CATEGORY_TYPE,
            provenance=DOC,
            note="pair documented, values inferred",
        ),
        FieldMap(
            None,
            "msdyn_verificationstatus",
            FieldType.OPTION,
            default=NOT_VERIFIED,
            provenance=INF,
            note="default documented, value inferred",
        ),
    ),
    lookups=(
        vendor_account("@vendor"),
        Lookup(
            "VendorInvoiceNum",
            "msdyn_vendorinvoice",
            bind_set="msdyn_projectvendorinvoices",
            bind_key="msdyn_vendorinvoicenumber",
            with_key=(("_msdyn_vendor_value", "@vendor"),),
            resolve_id="msdyn_projectvendorinvoiceid",
            required=True,
            provenance=DOC,
            note="parent invoice (number + vendor); the header must be in Dataverse first",
        ),
        project_bind("ProjId", provenance=MET),
        Lookup(
            "TransactionCategoryId",
            "msdyn_transactioncategory",
            bind_set="msdyn_transactioncategories",
            bind_key="msdyn_transactioncategorynumber",
            provenance=DOC,
        ),
        Lookup(
            "RoleId",
            "msdyn_resourcecategory",
            bind_set="bookableresourcecategories",
            bind_key="msdyn_resourcecategorynumber",
            provenance=DOC,
        ),
        currency_bind("currencyCode", "transactioncurrencyid", DOC),
        Lookup(
            "PurchUnit",
            "msdyn_unit",
            bind_set="uoms",
            bind_key="msdyn_symbol",
            provenance=DOC,
            note="the unit must be in Dataverse (dual-write's Units map); a missing one is waited for",
        ),
        company_bind(LINES_COMPANY, provenance=DOC),
    ),
    operations=frozenset({Operation.UPSERT}),
    money=Money("msdyn_amount", "transactioncurrencyid"),
    # The project manager verifies each line, and an invoice is confirmed only when all are: the
    # status is sent when a line is created, never again.
    target_owned=("msdyn_verificationstatus",),
    notes=(
        "Shown in the screenshot but not carried: PROJDATAAREAID → msdyn_project.msdyn_owningcompany (the "
        "project is bound by its number, which Dataverse keys alone, so its company is not needed to find "
        "it) and the defaults of msdyn_duration (value not visible). Not carried, for want of a Dataverse "
        "column in the visible rows: ProjTaskNumber, ItemId, DisplayProductNumber, ProjSubcontractLineNumber, "
        "OrderAccount, TransDate (the screenshot's top rows are scrolled away)."
    ),
)

bp = flow_blueprint(MAP)
