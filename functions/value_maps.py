"""Value maps several Project Operations maps share, declared once."""

from shared.maps import DOC, INF, ValueMap

# Dataverse payment terms (CDM) → Finance terms-of-payment codes; set these to the codes each legal
# entity uses (the PSA template's own instruction). 192350001 is the PO option a stock org adds.
TERMS_OF_PAYMENT = ValueMap(
    "paymentterms → TermsOfPayment",
    {1: "Net30", 2: "2%10Net30", 3: "Net45", 4: "Net60", 192350001: "Net30"},
    provenance=INF,
)

# Documented in the PSA-DI estimate templates and the actuals map: anything else is NotAvailable.
BILLING_TYPE = ValueMap(
    "msdyn_billingtype → BillingType",
    {
        192350000: "NonChargeable",
        192350001: "Chargeable",
        192350002: "Complimentary",
        192350003: "NotAvailable",
    },
    default="NotAvailable",
    provenance=DOC,
)

BILLING_TYPE_TO_DATAVERSE = ValueMap(
    "BillingType → msdyn_billingtype",
    {symbol: option for option, symbol in BILLING_TYPE.pairs.items()},
    default=192350003,
    provenance=INF,
)

# Documented PSA-DI transform for estimates: cost rows → Cost, unbilled sales rows → Sales, else null.
ESTIMATE_TRANSACTION_TYPE = ValueMap(
    "msdyn_transactiontypecode → TransType", {192350000: "Cost", 192350005: "Sales"}, default=None, provenance=DOC
)

# msdyn_transactionclassification option values (CDM list).
TIME, EXPENSE, MATERIAL, MILESTONE, FEE = 192350000, 192350001, 192350002, 192350003, 192350004
