"""Vendors V2 (msdyn_vendors): Finance vendors → Dataverse. A prerequisite map.

Reference: maps/05-prereq-msdyn_vendors.md (the published template's = pairs). Vendors must exist in
Dataverse before vendor invoices sync. Keyed by vendor account + company (inferred). The template is
mostly bidirectional; the Dataverse → Finance direction is not carried yet.
"""

from functions.flow_blueprint import flow_blueprint
from functions.lookups import company_key, currency_bind
from shared.events import Operation
from shared.maps import (
    DOC,
    INF,
    FieldMap,
    FieldType,
    SourceSide,
    System,
    TableMap,
    TargetSide,
    company_from_field,
)

# Finance's vendors, the source of this map and of vendor-accounts.
VENDORS_V2 = SourceSide(
    System.FINANCE,
    "VendVendorV2Entity",
    "VendorsV2",
    ("dataAreaId", "VendorAccountNumber"),
    events=("vendvendorv2entity",),
)

MAP = TableMap(
    name="vendors",
    title="Vendors V2 (msdyn_vendors)",
    reference="maps/05-prereq-msdyn_vendors.md",
    source=VENDORS_V2,
    target=TargetSide(System.DATAVERSE, "msdyn_vendors", ("msdyn_vendoraccountnumber", "_msdyn_company_value"), INF),
    company=company_from_field("dataAreaId"),
    fields=(
        FieldMap("VendorAccountNumber", "msdyn_vendoraccountnumber", provenance=DOC),
        FieldMap("VendorOrganizationName", "msdyn_name", provenance=DOC),
        FieldMap("CreditLimit", "msdyn_vendorcreditlimit", FieldType.DECIMAL, provenance=DOC),
        FieldMap("DUNSNumber", "msdyn_dunsnumber", provenance=DOC),
        FieldMap("PrimaryEmailAddress", "msdyn_primaryemailaddress", provenance=DOC),
    ),
    lookups=(
        company_key("_msdyn_company_value"),
        currency_bind("CurrencyCode", "msdyn_currencycode", DOC),
    ),
    operations=frozenset({Operation.CREATE, Operation.UPDATE}),
    notes="Finance field names are the template's upper-case names in Finance's PascalCase (inferred).",
)

bp = flow_blueprint(MAP)
