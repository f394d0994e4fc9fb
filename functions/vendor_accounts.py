"""Vendors as accounts: Finance vendors → Dataverse accounts of relationship type Vendor.

Reference: maps/05-prereq-msdyn_vendors.md and maps/27-msdyn_projectvendorinvoices.md. Documented:
vendor invoices look their vendor up in Dataverse *accounts* by account number + company (the
dual-write error "Unable to lookup accounts with values {<vendor>,<company>}"), so a vendor must
exist as an account as well as in msdyn_vendors. This map keeps that account, keyed like the
customer accounts (accountnumber + msdyn_company). Its field pairs follow the Vendors V2 template's
names on the account columns the Customers V3 map uses, and the relationship type Vendor (11) keeps
these accounts out of the accounts → customers direction; all inferred. Person vendors are not
organizations and are left out (they would be contacts).
"""

from functions.filters import organizations_only
from functions.flow_blueprint import flow_blueprint
from functions.lookups import company_key, currency_bind
from functions.vendors import VENDORS_V2
from shared.events import Operation
from shared.maps import (
    INF,
    FieldMap,
    FieldType,
    System,
    TableMap,
    TargetSide,
    company_from_field,
)

VENDOR = 11  # account.customertypecode "Vendor"


MAP = TableMap(
    name="vendor-accounts",
    title="Vendors V2 as accounts (relationship type Vendor)",
    reference="maps/27-msdyn_projectvendorinvoices.md",
    source=VENDORS_V2,
    target=TargetSide(System.DATAVERSE, "accounts", ("accountnumber", "_msdyn_company_value"), INF),
    company=company_from_field("dataAreaId"),
    filter=organizations_only("VendorPartyType", INF),
    fields=(
        FieldMap("VendorAccountNumber", "accountnumber", provenance=INF),
        FieldMap("VendorOrganizationName", "name", provenance=INF),
        FieldMap("CreditLimit", "creditlimit", FieldType.DECIMAL, provenance=INF),
        FieldMap("PrimaryEmailAddress", "emailaddress1", provenance=INF),
        FieldMap(None, "customertypecode", FieldType.OPTION, default=VENDOR, provenance=INF, note="Vendor"),
    ),
    lookups=(
        company_key("_msdyn_company_value", INF, note="key part, as for customer accounts"),
        currency_bind("CurrencyCode", "transactioncurrencyid", INF),
    ),
    operations=frozenset({Operation.CREATE, Operation.UPDATE}),
)

bp = flow_blueprint(MAP)
