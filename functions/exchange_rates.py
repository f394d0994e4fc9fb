"""CDS Exchange Rates (msdyn_currencyexchangerates): Finance rates → Dataverse. A prerequisite map.

Reference: maps/02-prereq-msdyn_currencyexchangerates.md (field map documented in the 2020
dual-write template). Import from staging refuses an actual whose rate is missing, so rates are
synced before actuals. Rates are shared across legal entities: no company. Rates are Decimal.
"""

from functions.flow_blueprint import flow_blueprint
from shared.events import Operation
from shared.maps import DOC, INF, FieldMap, FieldType, SourceSide, System, TableMap, TargetSide

MAP = TableMap(
    name="exchange-rates",
    title="CDS Exchange Rates (msdyn_currencyexchangerates)",
    reference="maps/02-prereq-msdyn_currencyexchangerates.md",
    source=SourceSide(
        System.FINANCE,
        "CDSExchangeRateEntity",
        "CDSExchangeRates",
        ("ExchangeRateTypeName", "FromCurrencyCode", "ToCurrencyCode", "ValidFrom"),
        events=("cdsexchangerateentity",),
    ),
    target=TargetSide(
        System.DATAVERSE,
        "msdyn_currencyexchangerates",
        ("msdyn_exchangeratetypename", "msdyn_fromcurrencycode", "msdyn_tocurrencycode", "msdyn_validfrom"),
        INF,
    ),
    fields=(
        FieldMap("ExchangeRateTypeName", "msdyn_exchangeratetypename", provenance=DOC),
        FieldMap("FromCurrencyCode", "msdyn_fromcurrencycode", provenance=DOC),
        FieldMap("ToCurrencyCode", "msdyn_tocurrencycode", provenance=DOC),
        FieldMap("Rate", "msdyn_exchangerate", FieldType.DECIMAL, provenance=DOC),
        FieldMap("ValidFrom", "msdyn_validfrom", FieldType.DATE, provenance=DOC),
        FieldMap("ValidTo", "msdyn_validto", FieldType.DATE, provenance=DOC),
    ),
    operations=frozenset({Operation.CREATE, Operation.UPDATE}),
    notes="Finance entity and collection names are inferred; the Dataverse alternate key is inferred.",
)

bp = flow_blueprint(MAP)
