"""Ledger (msdyn_ledgers): each legal entity's ledger setup → Dataverse. A prerequisite map.

Reference: maps/03-prereq-msdyn_ledgers.md (the 2020 dual-write template, all >> pairs documented).
Finance is master and the map runs first, with its own prerequisites (currencies, chart of accounts,
fiscal calendars, exchange rate types): a ledger whose references are not in Dataverse yet is retried
until they are. The Finance entity and collection names are inferred.
"""

from functions.flow_blueprint import flow_blueprint
from functions.lookups import company_code
from shared.events import Operation
from shared.maps import DOC, INF, FieldMap, FieldType, Lookup, SourceSide, System, TableMap, TargetSide


def _is_yes(value: object) -> bool:
    return value == "Yes" or value is True


def _bind(source: str, target: str, entity_set: str, key: str) -> Lookup:
    return Lookup(source, target, bind_set=entity_set, bind_key=key, provenance=DOC)


MAP = TableMap(
    name="ledgers",
    title="Ledger (msdyn_ledgers)",
    reference="maps/03-prereq-msdyn_ledgers.md",
    source=SourceSide(System.FINANCE, "LedgerEntity", "Ledgers", ("LegalEntityId",), events=("ledgerentity",)),
    target=TargetSide(System.DATAVERSE, "msdyn_ledgers", ("_msdyn_company_value",), INF),
    fields=(
        FieldMap("Name", "msdyn_name", provenance=DOC),
        FieldMap("Description", "msdyn_description", provenance=DOC),
        FieldMap(
            "IsBudgetControlEnabled", "msdyn_isbudgetcontrolenabled", FieldType.BOOL, transform=_is_yes, provenance=DOC
        ),
    ),
    lookups=(
        Lookup(
            "LegalEntityId",
            "_msdyn_company_value",
            bind_set="cdm_companies",
            bind_key="cdm_companycode",
            resolve_id="cdm_companyid",
            type=FieldType.GUID,
            required=True,
            provenance=DOC,
            note="msdyn_company.cdm_companycode; one ledger per company (key inferred)",
            transform=company_code,
        ),
        _bind("AccountingCurrency", "msdyn_accountingcurrency", "transactioncurrencies", "isocurrencycode"),
        _bind("ReportingCurrency", "msdyn_reportingcurrency", "transactioncurrencies", "isocurrencycode"),
        _bind("ChartOfAccounts", "msdyn_chartofaccounts", "msdyn_chartofaccountses", "msdyn_name"),
        _bind("FiscalCalendar", "msdyn_fiscalcalendar", "msdyn_fiscalcalendars", "msdyn_calendar"),
        _bind("ExchangeRateType", "msdyn_exchangeratetype", "msdyn_exchangeratetypes", "msdyn_name"),
        _bind("BudgetExchangeRateType", "msdyn_budgetexchangeratetype", "msdyn_exchangeratetypes", "msdyn_name"),
        _bind(
            "ReportingCurrencyExchangeRateType",
            "msdyn_reportingcurrencyexchangeratetype",
            "msdyn_exchangeratetypes",
            "msdyn_name",
        ),
    ),
    operations=frozenset({Operation.CREATE, Operation.UPDATE}),
)

bp = flow_blueprint(MAP)
