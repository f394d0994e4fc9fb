"""References several Project Operations maps resolve the same way, declared once."""

from shared.maps import INF, FieldType, Lookup, Provenance
from shared.values import Value


def company_code(value: Value) -> Value:
    """Finance writes dataAreaId in lower case; cdm_companycode holds the code upper-cased."""
    return value.upper() if isinstance(value, str) else value


def dataarea_id(value: Value) -> Value:
    """A company code as Finance spells dataAreaId values: lower case."""
    return value.lower() if isinstance(value, str) else value


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


def project_number(
    source: str,
    target: str,
    *,
    must_be_in_finance: bool,
    note: str = "",
    provenance: Provenance = INF,
    company_from: str | None = None,
) -> Lookup:
    """Dataverse → Finance: a project reference as its project number (optionally checked in Finance,
    in the legal entity `company_from` names where the project's may differ from the record's)."""
    return Lookup(
        source,
        target,
        read_set="msdyn_projects",
        read_column="msdyn_projectnumber",
        require_set="ProjectsV2" if must_be_in_finance else None,
        require_field="ProjectId" if must_be_in_finance else None,
        require_company=company_from,
        required=must_be_in_finance,
        provenance=provenance,
        note=note,
    )


def customer_account(
    source: str, target: str, *, required: bool, note: str = "", provenance: Provenance = INF
) -> Lookup:
    """Dataverse → Finance: an account reference as its customer account, which Finance must have."""
    return Lookup(
        source,
        target,
        read_set="accounts",
        read_column="accountnumber",
        require_set="CustomersV3",
        require_field="CustomerAccount",
        required=required,
        provenance=provenance,
        note=note,
    )


def company_bind(
    source: str = "dataAreaId", target: str = "msdyn_owningcompany", provenance: Provenance = INF
) -> Lookup:
    """Finance → Dataverse: the record's legal entity bound as its owning company."""
    return Lookup(
        source,
        target,
        bind_set="cdm_companies",
        bind_key="cdm_companycode",
        required=True,
        provenance=provenance,
        transform=company_code,
    )


def project_bind(source: str, target: str = "msdyn_project", provenance: Provenance = INF) -> Lookup:
    """Finance → Dataverse: a project id bound to the Dataverse project with that number."""
    return Lookup(source, target, bind_set="msdyn_projects", bind_key="msdyn_projectnumber", provenance=provenance)


def vendor_account(target: str, provenance: Provenance = INF) -> Lookup:
    """Finance → Dataverse: the invoice account as the vendor's Dataverse account in the same company.

    Documented by the dual-write error "Unable to lookup accounts with values {<vendor>,<company>}".
    """
    return Lookup(
        "InvoiceAccount",
        target,
        bind_set="accounts",
        bind_key="accountnumber",
        company_column="_msdyn_company_value",
        resolve_id="accountid",
        type=FieldType.GUID,
        required=True,
        provenance=provenance,
        note="vendor as account (accountnumber + company)",
    )


def contract_number(
    source: str,
    target: str,
    note: str = "the contract must be in Finance first",
    *,
    required: bool = True,
    must_be_in_finance: bool = True,
    provenance: Provenance = INF,
) -> Lookup:
    """Dataverse → Finance: a contract (salesorder) reference as its number (optionally checked in Finance)."""
    return Lookup(
        source,
        target,
        read_set="salesorders",
        # Microsoft's actuals map: CONTRACTID < ...msdyn_projectcontractid.msdyn_salesordernumber.
        read_column="msdyn_salesordernumber",
        require_set="ProjectContractHeaders" if must_be_in_finance else None,
        require_field="ProjectContractId" if must_be_in_finance else None,
        required=required,
        provenance=provenance,
        note=note,
    )


def transaction_category_number(
    source: str, target: str, note: str = "the category's TCN id", provenance: Provenance = INF
) -> Lookup:
    """Dataverse → Finance: a transaction category reference as its category number."""
    return Lookup(
        source,
        target,
        read_set="msdyn_transactioncategories",
        read_column="msdyn_transactioncategorynumber",
        provenance=provenance,
        note=note,
    )


def task_activity_number(
    source: str, target: str, note: str = "the task's activity number", provenance: Provenance = INF
) -> Lookup:
    """Dataverse → Finance: a task reference as its activity number. Finance knows a project's tasks
    by activity number (the actuals map sends TASKNUMBER from msdyn_task.msdyn_activitynumber, and
    Finance's own errors name it), so every map that points at a task sends that number."""
    return Lookup(
        source,
        target,
        read_set="msdyn_projecttasks",
        read_column="msdyn_activitynumber",
        provenance=provenance,
        note=note,
    )
