"""CDS Exchange Rates (msdyn_currencyexchangerates): Finance rates → Dataverse. A prerequisite map.

Reference: maps/02-prereq-msdyn_currencyexchangerates.md (field map documented in the 2020
dual-write template). Import from staging refuses an actual whose rate is missing, so rates are
synced before actuals. Rates are shared across legal entities: no company. Rates are Decimal.
The entity set ExchangeRatesCDSEntity and its four-part key are the live $metadata's (the plain
ExchangeRates set names its fields RateTypeName/FromCurrency/StartDate instead).
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
        "ExchangeRateCDSEntity",
        "ExchangeRatesCDSEntity",
        ("ExchangeRateTypeName", "FromCurrencyCode", "ToCurrencyCode", "ValidFrom"),
        events=("exchangeratecdsentity",),
        # ValidFrom is an Edm.DateTimeOffset key part: reading a rate again writes it bare in the URL.
        key_types=(("ValidFrom", FieldType.DATE),),
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
    notes=(
        "The entity set, key and field types are in the live $metadata; the AOT entity name (the data "
        "event's) and the Dataverse alternate key are inferred."
    ),
)

bp = flow_blueprint(MAP)
