"""References several Project Operations maps resolve the same way, declared once."""

from shared.maps import INF, FieldType, Lookup, Provenance
from shared.values import Value


def company_code(value: Value) -> Value:
    """Finance writes dataAreaId in lower case; cdm_companycode holds the code upper-cased."""
    return value.upper() if isinstance(value, str) else value


def company_key(target: str, provenance: Provenance = INF, note: str = "") -> Lookup:
    """Finance → Dataverse: the record's legal entity as the company GUID in the target's alternate key."""
    return Lookup(
        "dataAreaId",
        target,
        bind_set="cdm_companies",
        bind_key="cdm_companycode",
        resolve_id="cdm_companyid",
        type=FieldType.GUID,
        required=True,
        provenance=provenance,
        note=note,
        transform=company_code,
    )


def currency_code(source: str, target: str, provenance: Provenance = INF, note: str = "") -> Lookup:
    """Dataverse → Finance: a transactioncurrency reference as its ISO code."""
    return Lookup(
        source,
        target,
        read_set="transactioncurrencies",
        read_column="isocurrencycode",
        provenance=provenance,
        note=note,
    )


def currency_bind(source: str, target: str, provenance: Provenance = INF) -> Lookup:
    """Finance → Dataverse: an ISO currency code bound to its transactioncurrency."""
    return Lookup(source, target, bind_set="transactioncurrencies", bind_key="isocurrencycode", provenance=provenance)


def project_number(source: str, target: str, *, must_be_in_finance: bool, note: str = "") -> Lookup:
    """Dataverse → Finance: a project reference as its project number (optionally checked in Finance)."""
    return Lookup(
        source,
        target,
        read_set="msdyn_projects",
        read_column="msdyn_projectnumber",
        require_set="ProjectsV2" if must_be_in_finance else None,
        require_field="ProjectId" if must_be_in_finance else None,
        required=must_be_in_finance,
        provenance=INF,
        note=note,
    )


def customer_account(source: str, target: str, *, required: bool, note: str = "") -> Lookup:
    """Dataverse → Finance: an account reference as its customer account, which Finance must have."""
    return Lookup(
        source,
        target,
        read_set="accounts",
        read_column="accountnumber",
        require_set="CustomersV3",
        require_field="CustomerAccount",
        required=required,
        provenance=INF,
        note=note,
    )
