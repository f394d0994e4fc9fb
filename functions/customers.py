"""Customers V3 (accounts), both directions: Finance customers ↔ Dataverse accounts.

Reference: maps/04-prereq-accounts-customersv3.md (field map documented in the 2020 dual-write
template). Documented: the Finance filter PartyType == "Organization", the Dataverse filter
customertypecode eq 3, the integration key accountnumber + msdyn_company.cdm_companycode, the
defaults customertypecode = 3 (to Dataverse) and PartyType = Organization (to Finance). The two
directions are two maps; each skips the other's writes (echo guard) and unchanged payloads, so a
change settles after one round trip. The sandbox carries a subset of the template's columns.
"""

from collections.abc import Mapping
from typing import Any

from functions.filters import organizations_only
from functions.flow_blueprint import flow_blueprint
from functions.lookups import company_key, currency_bind, currency_code
from shared.events import Operation
from shared.maps import (
    DOC,
    FieldMap,
    FieldType,
    Filter,
    Lookup,
    SourceSide,
    System,
    TableMap,
    TargetSide,
    company_from_field,
    company_from_lookup,
)


def _customer(row: Mapping[str, Any]) -> bool:
    return row["customertypecode"] == 3


MAP = TableMap(
    name="customers",
    title="Customers V3 (accounts): Finance → Dataverse",
    reference="maps/04-prereq-accounts-customersv3.md",
    source=SourceSide(
        System.FINANCE,
        "CustCustomerV3Entity",
        "CustomersV3",
        ("dataAreaId", "CustomerAccount"),
        events=("custcustomerv3entity",),
    ),
    target=TargetSide(System.DATAVERSE, "accounts", ("accountnumber", "_msdyn_company_value"), DOC),
    company=company_from_field("dataAreaId"),
    filter=organizations_only("PartyType", DOC),
    fields=(
        FieldMap("CustomerAccount", "accountnumber", provenance=DOC),
        FieldMap("OrganizationName", "name", provenance=DOC),
        FieldMap("CreditLimit", "creditlimit", FieldType.DECIMAL, provenance=DOC),
        FieldMap("SalesMemo", "description", provenance=DOC),
        FieldMap("PrimaryContactEmail", "emailaddress1", provenance=DOC),
        FieldMap("PrimaryContactPhone", "telephone1", provenance=DOC),
        FieldMap("DeliveryAddressCity", "address1_city", provenance=DOC),
        FieldMap("DeliveryAddressCountryRegionISOCode", "address1_country", provenance=DOC),
        FieldMap(None, "customertypecode", FieldType.OPTION, default=3, provenance=DOC, note="template default"),
    ),
    lookups=(
        company_key("_msdyn_company_value", DOC, note="key part (IMG)"),
        currency_bind("SalesCurrencyCode", "transactioncurrencyid", DOC),
    ),
    operations=frozenset({Operation.CREATE, Operation.UPDATE}),
)

REVERSE_MAP = TableMap(
    name="accounts-to-customers",
    title="Customers V3 (accounts): Dataverse → Finance",
    reference="maps/04-prereq-accounts-customersv3.md",
    source=SourceSide(System.DATAVERSE, "account", "accounts", ("accountid",)),
    target=TargetSide(System.FINANCE, "CustomersV3", ("dataAreaId", "CustomerAccount"), DOC),
    company=company_from_lookup("msdyn_company", "dataAreaId", DOC),
    filter=Filter(
        "customertypecode eq 3", ("customertypecode",), _customer, odata="customertypecode eq 3", provenance=DOC
    ),
    fields=(
        FieldMap("accountnumber", "CustomerAccount", provenance=DOC),
        FieldMap("name", "OrganizationName", provenance=DOC),
        FieldMap("creditlimit", "CreditLimit", FieldType.DECIMAL, provenance=DOC),
        FieldMap("description", "SalesMemo", provenance=DOC),
        FieldMap("emailaddress1", "PrimaryContactEmail", provenance=DOC),
        FieldMap("telephone1", "PrimaryContactPhone", provenance=DOC),
        FieldMap("address1_city", "DeliveryAddressCity", provenance=DOC),
        FieldMap("address1_country", "DeliveryAddressCountryRegionISOCode", provenance=DOC),
        FieldMap(None, "PartyType", default="Organization", provenance=DOC, note="template default"),
    ),
    lookups=(
        currency_code("transactioncurrencyid", "SalesCurrencyCode", DOC),
        Lookup(
            "msdyn_customergroupid",
            "CustomerGroupId",
            read_set="msdyn_customergroups",
            read_column="msdyn_groupid",
            omit_when_empty=True,
            provenance=DOC,
            note="Finance needs a group to create a customer; an account without one leaves Finance's as it is",
        ),
    ),
    operations=frozenset({Operation.CREATE, Operation.UPDATE}),
    # customers writes the same fields the other way: an account's image queued behind a pause (or a
    # retry) is older than what customers may have brought from Finance since. One read per change of
    # a customer account, a table that changes rarely.
    reread_source=True,
)

bp = flow_blueprint(MAP)
reverse_bp = flow_blueprint(REVERSE_MAP)
