"""The Finance simulator's schema: a live Finance environment's `$metadata`, and behaviour on top.

`metadata.json` is the project's copy of the entity sets, keys, EDM types and enum members a live
Dynamics 365 Finance publishes (see its `source`, and `gen_metadata.py`). Nothing here adds a
property to a published entity: a name the live service does not have is refused by the simulator,
so a wrong name in a map fails in the sandbox as it would in production.

What the extract does not hold is declared below, each with where it comes from: the AOT entity
type names (the extract has only set names; the CSDL needs a type name), the labels Finance's
Infolog uses, and the behaviour the simulator adds (references checked on write, mandatory fields).

Entities that Finance does not publish over OData (transaction relationships, invoice proposals V2)
are declared separately as extensions: the simulator serves one only when it is switched on, the
way a customer's own extension would publish it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from shared.extensions import EXTENSION_INVOICE_PROPOSALS, EXTENSION_TRANSACTION_RELATIONSHIPS

HERE = Path(__file__).resolve().parent

# EDM type → the simulator's kind. Finance publishes every date as Edm.DateTimeOffset.
_KINDS = {
    "Edm.String": "string",
    "Edm.Int32": "int32",
    "Edm.Int64": "int64",
    "Edm.Decimal": "decimal",
    "Edm.DateTimeOffset": "datetime",
    "Edm.Guid": "guid",
    "Edm.Boolean": "bool",
    "Edm.Binary": "binary",
}
EDM_TYPES = {kind: edm for edm, kind in _KINDS.items()}
NAMESPACE = "Microsoft.Dynamics.DataEntities"


def edm_type(kind: str) -> str:
    """The CSDL type name of a kind: `Edm.Guid`, or an enum's qualified name."""
    return f"{NAMESPACE}.{kind[5:]}" if kind.startswith("enum:") else EDM_TYPES[kind]


@dataclass(frozen=True)
class EntitySpec:
    collection: str
    aot: str
    key: tuple[str, ...]
    fields: dict[str, str]  # name → kind: string, int32, int64, decimal, datetime, guid, bool, binary, enum:<Name>
    label: str = ""
    references: tuple[tuple[str, str, str], ...] = ()  # (field, collection, field): must exist in the same company
    mandatory: tuple[tuple[str, str], ...] = ()  # (field, label): Finance refuses to create a row without it
    # The extension that publishes this entity, for one the standard $metadata does not have.
    extension: str | None = None
    # The field that holds the row's company where it is not called dataAreaId.
    company_field: str | None = None

    @property
    def company(self) -> str | None:
        if self.company_field:
            return self.company_field
        return "dataAreaId" if "dataAreaId" in self.fields else None


@dataclass(frozen=True)
class Behaviour:
    """What the simulator knows of an entity beyond its published shape."""

    aot: str
    label: str
    references: tuple[tuple[str, str, str], ...] = ()
    mandatory: tuple[tuple[str, str], ...] = ()
    company_field: str | None = None


# AOT names: confirmed where a Microsoft source shows them (ProjActualsImportEntity in the actuals
# map's AOT export, ProjExpenseExportEntity, ProjVendInvoiceExportEntityV2 and
# ProjVendInvoiceLineExportEntity in the documented error texts); the others are the conventional
# names of the standard entities (inferred). Labels are the entities' labels, which the Infolog uses.
BEHAVIOUR: dict[str, Behaviour] = {
    "LegalEntities": Behaviour("OMLegalEntity", "Legal entities"),
    "Ledgers": Behaviour("LedgerEntity", "Ledger"),
    "ExchangeRatesCDSEntity": Behaviour("ExchangeRateCDSEntity", "CDS Exchange Rates"),
    "CustomersV3": Behaviour(
        "CustCustomerV3Entity",
        "Customers V3",
        references=(("CustomerGroupId", "CustomerGroups", "CustomerGroupId"),),
        mandatory=(("CustomerGroupId", "Customer group"),),
    ),
    "VendorsV2": Behaviour("VendVendorV2Entity", "Vendors V2"),
    "Workers": Behaviour("HcmWorkerEntity", "Worker"),
    "WorkerResourceImports": Behaviour(
        "ProjWorkerResourceImportEntity",
        "Project worker resource import",
        references=(("PersonnelNumber", "Workers", "PersonnelNumber"),),
    ),
    "ResourceCategoriesShared": Behaviour(
        "ResResourceCategorySharedEntity", "Project resource roles for all companies"
    ),
    "ResourceCategories": Behaviour("ResResourceCategoryDataEntity", "Project resource role"),
    "ProjectTransactionCategories": Behaviour("ProjTransactionCategoryEntity", "Project transaction categories"),
    "SharedCategories": Behaviour("SharedCategoryEntity", "Shared categories"),
    "ProjectContractHeaders": Behaviour(
        "ProjProjectContractHeaderEntity",
        "Project contract headers",
        references=(("CustomerAccountNumber", "CustomersV3", "CustomerAccount"),),
    ),
    "ProjectFundingSources": Behaviour(
        "ProjFundingSourceEntity",
        "Project funding source",
        references=(
            ("ProjectContractID", "ProjectContractHeaders", "ProjectContractId"),
            ("CustomerOrOrganization", "CustomersV3", "CustomerAccount"),
        ),
    ),
    "ProjectContractLines": Behaviour(
        "ProjProjectContractLineEntity",
        "Project contract lines",
        references=(("ProjectContractId", "ProjectContractHeaders", "ProjectContractId"),),
    ),
    "ProjectsV2": Behaviour(
        "ProjProjectV2Entity",
        "Projects V2",
        references=(
            ("CustomerAccountNumber", "CustomersV3", "CustomerAccount"),
            ("ProjectContractId", "ProjectContractHeaders", "ProjectContractId"),
        ),
    ),
    "ProjectTasks": Behaviour(
        "ProjProjectTaskEntity",
        "Project tasks",
        references=(("ProjectId", "ProjectsV2", "ProjectId"),),
    ),
    "ProjectContractLineMilestones": Behaviour(
        "ProjContractLineMilestoneEntity",
        "Contract line milestones",
        references=(("ProjectContractId", "ProjectContractHeaders", "ProjectContractId"),),
    ),
    "ProjEstimateHoursImport": Behaviour(
        "ProjEstimateHoursImportEntity",
        "Project Operations integration entity for hour estimates",
        references=(("ProjectId", "ProjectsV2", "ProjectId"),),
    ),
    "ProjEstimateExpensesImports": Behaviour(
        "ProjEstimateExpensesImportEntity",
        "Project Operations integration entity for expense estimates",
        references=(("ProjectId", "ProjectsV2", "ProjectId"),),
    ),
    "ProjForecastSalesImport": Behaviour(
        "ProjForecastSalesImportEntity",
        "Project integration table for material estimates",
        references=(("ProjId", "ProjectsV2", "ProjectId"),),
    ),
    "ProjActualsImports": Behaviour(
        "ProjActualsImportEntity",
        "Project Operations integration actuals",
        references=(("ProjectId", "ProjectsV2", "ProjectId"),),
    ),
    "ProjExpenseCategoriesExport": Behaviour(
        "ProjExpenseCategoryExportEntity", "Project Operations integration project expense categories export entity"
    ),
    "ProjExpensesExport": Behaviour(
        "ProjExpenseExportEntity",
        "Project Operations integration project expenses export entity",
        company_field="ReferenceDataAreaId",
    ),
    "VendInvoiceExportsV2": Behaviour(
        "ProjVendInvoiceExportEntityV2", "Project Operations integration project vendor invoice export entity V2"
    ),
    "ProjVendInvoiceLinesExportEntity": Behaviour(
        "ProjVendInvoiceLineExportEntity",
        "Project Operations integration project vendor invoice line export entity",
        company_field="DAreaId",
    ),
    "UnitsOfMeasure": Behaviour("UnitOfMeasureEntity", "Units"),
    "ReleasedProductsV2": Behaviour("EcoResReleasedProductV2Entity", "Released products V2"),
    "CustomerGroups": Behaviour("CustCustomerGroupEntity", "Customer groups"),
    "Currencies": Behaviour("CurrencyEntity", "Currencies"),
    "ExchangeRateTypes": Behaviour("ExchangeRateTypeEntity", "Exchange rate types"),
    "FiscalCalendarsEntity": Behaviour("FiscalCalendarEntity", "Fiscal calendars"),
    "ChartOfAccounts": Behaviour("LedgerChartOfAccountsEntity", "Chart of accounts"),
    "PaymentTerms": Behaviour("PaymentTermEntity", "Terms of payment"),
}

# Not in any published $metadata (research: no public collection has these shapes). The field lists
# are the PSA-era integration entities' (CDM 10.0.13), which a customer's extension would publish.
EXTENSIONS: dict[str, EntitySpec] = {
    "ProjectTransactionRelationships": EntitySpec(
        "ProjectTransactionRelationships",
        "ProjCDSTransactionRelationshipImportEntity",
        ("ConnectionId",),
        {
            "ConnectionId": "guid",
            "Transaction1Id": "guid",
            "Transaction1Role": "string",
            "Transaction1Type": "string",
            "Transaction2Id": "guid",
            "Transaction2Role": "string",
            "Transaction2Type": "string",
        },
        "Project Operations integration entity for project transaction relationships (extension)",
        extension=EXTENSION_TRANSACTION_RELATIONSHIPS,
    ),
    "ProjectInvoiceProposalsV2": EntitySpec(
        "ProjectInvoiceProposalsV2",
        "ProjInvoiceProposalV2Entity",
        ("dataAreaId", "InvoiceProposalId"),
        {
            "dataAreaId": "string",
            "InvoiceProposalId": "string",
            "ProjectContractId": "string",
            "FundingSourceId": "string",
            "SalesCurrency": "string",
            "InvoiceDate": "datetime",
            "InvoiceHeaderText": "string",
            "TermsOfPayment": "string",
        },
        "Project invoice proposals V2 (extension)",
        references=(("ProjectContractId", "ProjectContractHeaders", "ProjectContractId"),),
        extension=EXTENSION_INVOICE_PROPOSALS,
    ),
}


@cache
def _metadata() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((HERE / "metadata.json").read_text())
    return data


def enums() -> dict[str, list[tuple[str, int]]]:
    """Every enum type the served entities use: member names with their values, in order."""
    return {name: [(str(m), int(v)) for m, v in members] for name, members in _metadata()["enums"].items()}


def _kind(prop: dict[str, Any]) -> str:
    if prop["type"] == "enum":
        return f"enum:{prop['enum']}"
    return _KINDS[prop["type"]]


def load_schema(extensions: frozenset[str] = frozenset()) -> dict[str, EntitySpec]:
    """The served entity sets; an extension's entity only when that extension is switched on."""
    specs: dict[str, EntitySpec] = {}
    for collection, published in _metadata()["entity_sets"].items():
        behaviour = BEHAVIOUR[collection]
        specs[collection] = EntitySpec(
            collection,
            behaviour.aot,
            tuple(published["keys"]),
            {prop["name"]: _kind(prop) for prop in published["properties"]},
            behaviour.label,
            behaviour.references,
            behaviour.mandatory,
            company_field=behaviour.company_field,
        )
    for collection, spec in EXTENSIONS.items():
        if spec.extension in extensions:
            specs[collection] = spec
    return specs
