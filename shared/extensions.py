"""Finance extensions some maps need: entities that no standard Finance publishes over OData.

Checked against a live Finance `$metadata` (sandbox/finance/metadata.json holds the part we serve):
no public collection has the shape of Project Operations' transaction relationship or invoice
proposal V2 integration entities. Finance only publishes an entity over OData when it is marked
public, so a customer who wants these maps adds an extension that publishes it under the name and
fields below, and lists the extension in PROJOPS_FINANCE_EXTENSIONS. Until then the maps are off:
their events are parked with this text, `check-maps` and `status` name them.
"""

from __future__ import annotations

EXTENSION_TRANSACTION_RELATIONSHIPS = "public-transaction-relationships"
EXTENSION_INVOICE_PROPOSALS = "public-invoice-proposals"

WHAT_TO_ADD: dict[str, str] = {
    EXTENSION_TRANSACTION_RELATIONSHIPS: (
        "an extension that sets IsPublic on ProjCDSTransactionRelationshipImportEntity with the public "
        "collection name ProjectTransactionRelationships (fields ConnectionId, Transaction1Id/Role/Type, "
        "Transaction2Id/Role/Type)"
    ),
    EXTENSION_INVOICE_PROPOSALS: (
        "an extension publishing the project invoice proposal V2 integration entity as "
        "ProjectInvoiceProposalsV2 (key dataAreaId, InvoiceProposalId; ProjectContractId, FundingSourceId, "
        "SalesCurrency, InvoiceDate, InvoiceHeaderText, TermsOfPayment)"
    ),
}
