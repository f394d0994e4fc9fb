"""The Finance simulator's schema: the generated 10.0.13 field lists, public collection names and keys.

OData public collection names of the Project Operations entities are not documented anywhere we
could read; the names below are inferred (the integration's maps use the same guesses, and
check-maps against a live environment's `$metadata` confirms or corrects both). Enum members are
the symbol strings Finance uses on the wire.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

ENUMS: dict[str, list[str]] = {
    "ProjStatus": ["Created", "Estimated", "Scheduled", "InProcess", "Completed"],
    "ProjTransType": [
        "Cost",
        "ProjectContract",
        "UnbilledSales",
        "BilledSales",
        "ResourcingUnitCost",
        "InterOrganizationalSales",
    ],
    "ProjBillingType": ["NonChargeable", "Chargeable", "Complimentary", "NotAvailable"],
    "NoYes": ["No", "Yes"],
    # Contract lines create a time-and-material or a milestone billing rule (documented); symbols inferred.
    "PSAContractLineType": ["LumpSum", "Progress", "TAndM", "Fee", "UOD"],
    # Estimate staging: Dataverse cost rows become Cost, sales rows Sales (documented PSA-DI transform).
    "ProjEstimateTransType": ["Cost", "Sales"],
    # Project category types on vendor invoice lines (documented: Item, Expense, Materials or Hours).
    "ProjCategoryType": ["Hour", "Expense", "Item", "Fee"],
    "TrvExpenseType": [
        "Hotel",
        "CarRental",
        "Meal",
        "Airline",
        "Entertainment",
        "Gift",
        "Conference",
        "Miscellaneous",
        "Mileage",
        "PerDiem",
    ],
}


@dataclass(frozen=True)
class EntitySpec:
    collection: str
    aot: str
    key: tuple[str, ...]
    fields: dict[str, str]  # name → type: string, int, decimal, date, datetime, guid, noyes, enum:<Name>
    label: str = ""
    references: tuple[tuple[str, str, str], ...] = ()  # (field, collection, field): must exist in the same company
    mandatory: tuple[tuple[str, str], ...] = ()  # (field, label): Finance refuses to create a row without it


# Entities the integration writes or reads, with the fields the reference lists give plus the ones
# Project Operations added (named in the map files).
SUPPLEMENT: dict[str, dict[str, Any]] = {
    "ProjectsV2": {
        "aot": "ProjProjectV2Entity",
        "key": ("dataAreaId", "ProjectId"),
        "types": {
            "ProjectStage": "enum:ProjStatus",
            "ProjectedStartDate": "date",
            "ProjectedEndDate": "date",
            "ActualStartDate": "date",
            "ActualEndDate": "date",
        },
        "references": (
            ("CustomerAccountNumber", "CustomersV3", "CustomerAccount"),
            ("ProjectContractId", "ProjectContractHeaders", "ProjectContractId"),
        ),
    },
    "ProjCDSActualsImports": {
        "aot": "ProjCDSActualsImportEntity",
        "key": ("dataAreaId", "ActualsImportId"),
        "extra": {
            "VoucherNumber": "string",
            "SalesTaxAmount": "decimal",
            "AccountingAmount": "decimal",
            "TransactionCategoryId": "string",
            "CustomerAccountNumber": "string",
            "IsProcessed": "noyes",
        },
        "types": {
            "ActualsImportId": "string",
            "TransType": "enum:ProjTransType",
            "BillingType": "enum:ProjBillingType",
            "DocumentDate": "date",
            "AccountingDate": "date",
            "ExchangeRateDate": "date",
            "StartDate": "datetime",
            "EndDate": "datetime",
            "AdjustmentStatus": "int",
            "BillingStatusId": "int",
        },
        "references": (("ProjectId", "ProjectsV2", "ProjectId"),),
    },
    "ProjectContractHeaders": {
        "aot": "ProjProjectContractHeaderEntity",
        "key": ("dataAreaId", "ProjectContractId"),
        "references": (("CustomerAccountNumber", "CustomersV3", "CustomerAccount"),),
    },
    "ProjectContractLines": {
        "aot": "ProjProjectContractLineEntity",
        "key": ("dataAreaId", "ContractLineId"),
        "types": {
            "LineType": "enum:PSAContractLineType",
            "AreHourTransactionsIncluded": "noyes",
            "AreExpenseTransactionsIncluded": "noyes",
            "AreItemTransactionsIncluded": "noyes",
            "AreFeeTransactionsIncluded": "noyes",
            "LineSequenceNumber": "int",
        },
        "references": (("ProjectContractId", "ProjectContractHeaders", "ProjectContractId"),),
    },
    "ProjectResourceRoles": {"aot": "ResResourceCategoryDataEntity", "key": ("dataAreaId", "RoleId")},
    "ProjectExpenseCategories": {
        "aot": "ProjExpenseCategoryExportEntity",
        "label": "Project Operations integration project expense categories export entity",
        "key": ("dataAreaId", "CategoryId"),
        "extra": {
            "CategoryId": "string",
            "CategoryName": "string",
            "ExpenseType": "enum:TrvExpenseType",
            "ReceiptRequired": "noyes",
            "SharedCategoryId": "string",
            "TransactionCategoryId": "string",
            "IsActive": "noyes",
        },
    },
    # Export entities written when documents are posted (maps 26-28; field names inferred from the
    # dual-write screenshots' upper-case names, in Finance's PascalCase).
    "ProjExpenseExports": {
        "aot": "ProjExpenseExportEntity",
        "label": "Project Operations integration project expenses export entity",
        "key": ("dataAreaId", "ExpenseReportId", "LineNumber"),
        "extra": {
            "ExpenseReportId": "string",
            "LineNumber": "int",
            "ProjTransId": "string",
            "ProjectId": "string",
            "ActivityNumber": "string",
            "CategoryId": "string",
            "TransDate": "date",
            "Amount": "decimal",
            "CurrencyCode": "string",
            "Quantity": "decimal",
            "Description": "string",
            "Worker": "string",
            "UnitPrice": "decimal",
            "SalesTaxAmount": "decimal",
        },
    },
    "ProjVendInvoiceExportsV2": {
        "aot": "ProjVendInvoiceExportEntityV2",
        "label": "Project Operations integration project vendor invoice export entity V2",
        "key": ("dataAreaId", "VendorInvoiceNum", "InvoiceAccount"),
        "extra": {
            "VendorInvoiceNum": "string",
            "InvoiceAccount": "string",
            "Description": "string",
            "TransDate": "date",
            "CurrencyCode": "string",
            "SubcontractInvoice": "noyes",
            "ProjVendInvoiceStatus": "string",
        },
    },
    "ProjVendInvoiceLineExports": {
        "aot": "ProjVendInvoiceLineExportEntity",
        "label": "Project Operations integration project vendor invoice line export entity",
        "key": ("dataAreaId", "ProjTransId"),
        "extra": {
            "ProjTransId": "string",
            "VendorInvoiceNum": "string",
            "InvoiceAccount": "string",
            "ProjectId": "string",
            "ProjDataAreaId": "string",
            "CategoryId": "string",
            "RoleId": "string",
            "QtyReceiveNow": "decimal",
            "PurchUnit": "string",
            "PurchPrice": "decimal",
            "LineAmount": "decimal",
            "CurrencyCode": "string",
            "Description": "string",
            "TransactionCategoryId": "string",
            "BillingType": "enum:ProjBillingType",
            "CategoryType": "enum:ProjCategoryType",
        },
    },
    # Setup and planning maps (14, 16, 19, 21, 22, 23, 24, 11, 18): collection names inferred,
    # fields from the CDM 10.0.13 lists where the entity is there.
    "ProjectFundingSources": {
        "aot": "ProjFundingSourceEntity",
        "key": ("dataAreaId", "ProjectContractID", "FundingSourceId"),
        "types": {"FundingType": "string"},
        "references": (
            ("ProjectContractID", "ProjectContractHeaders", "ProjectContractId"),
            ("CustomerOrOrganization", "CustomersV3", "CustomerAccount"),
        ),
    },
    "ProjectTasks": {
        "aot": "ProjProjectTaskEntity",
        "key": ("dataAreaId", "TaskId"),
        "extra": {"ProjectId": "string"},
        "types": {"TaskOutlineLevel": "int", "TaskDisplaySequence": "decimal"},
        "references": (("ProjectId", "ProjectsV2", "ProjectId"),),
    },
    "ProjectContractLineMilestones": {
        "aot": "ProjCDSContractLineMilestoneImportEntity",
        "key": ("dataAreaId", "TransactionId"),
        "extra": {"TransStatus": "int", "ProjectId": "string"},
        "references": (("ContractLineRef", "ProjectContractLines", "ContractLineId"),),
    },
    "ProjectHourEstimates": {
        "aot": "ProjCDSEstimateHoursEntity",
        "fields_from": "ProjCDSEstimateHoursImport",
        "label": "Project Operations integration entity for hour estimates",
        "key": ("dataAreaId", "EstimateHoursImportId"),
        "extra": {"ResourceId": "guid", "EndDate": "date"},
        "references": (("ProjectId", "ProjectsV2", "ProjectId"),),
    },
    "ProjectExpenseEstimates": {
        "aot": "ProjCDSEstimateExpensesImportEntity",
        "fields_from": "ProjCDSEstimateExpensesImport",
        "label": "Project Operations integration entity for expense estimates",
        "key": ("dataAreaId", "EstimateLineId"),
        "types": {"BillingType": "enum:ProjBillingType", "TransType": "enum:ProjEstimateTransType"},
        "references": (("ProjectId", "ProjectsV2", "ProjectId"),),
    },
    "ProjectMaterialEstimates": {
        "aot": "ProjForecastSalesImportEntity",
        "label": "Project integration table for material estimates",
        "key": ("dataAreaId", "EstimateLineId"),
        "extra": {
            "EstimateLineId": "guid",
            "ProjectId": "string",
            "TaskId": "guid",
            "ItemId": "string",
            "Quantity": "decimal",
            "Price": "decimal",
            "TransType": "enum:ProjEstimateTransType",
            "BillingType": "enum:ProjBillingType",
            "TransactionCategoryId": "string",
            "StartDate": "date",
            "EndDate": "date",
            "CurrencyId": "string",
            "ExchangeRate": "decimal",
            "Description": "string",
        },
        "references": (("ProjectId", "ProjectsV2", "ProjectId"),),
    },
    "ProjectTransactionRelationships": {
        "aot": "ProjCDSTransactionRelationshipImportEntity",
        "key": ("ConnectionId",),
    },
    "ProjectInvoiceProposalsV2": {
        "aot": "ProjInvoiceProposalV2Entity",
        "label": "Project invoice proposals V2",
        "key": ("dataAreaId", "InvoiceProposalId"),
        "extra": {
            "InvoiceProposalId": "string",
            "ProjectContractId": "string",
            "FundingSourceId": "string",
            "SalesCurrency": "string",
            "InvoiceDate": "date",
            "InvoiceHeaderText": "string",
            "TermsOfPayment": "string",
        },
        "references": (("ProjectContractId", "ProjectContractHeaders", "ProjectContractId"),),
    },
    "ProjectWorkerResources": {
        "aot": "ProjWorkerResourceImportEntity",
        "label": "Project worker resource import",
        "key": ("ResourceId",),
        "extra": {"ResourceId": "guid", "ResourceName": "string", "PersonnelNumber": "string"},
    },
    "Ledgers": {
        "aot": "LedgerEntity",
        "label": "Ledger",
        "key": ("LegalEntityId",),
        "extra": {
            "LegalEntityId": "string",
            "Name": "string",
            "Description": "string",
            "AccountingCurrency": "string",
            "ReportingCurrency": "string",
            "ChartOfAccounts": "string",
            "FiscalCalendar": "string",
            "ExchangeRateType": "string",
            "BudgetExchangeRateType": "string",
            "ReportingCurrencyExchangeRateType": "string",
            "IsBudgetControlEnabled": "noyes",
        },
    },
    "CDSExchangeRates": {
        "aot": "CDSExchangeRateEntity",
        "label": "CDS Exchange Rates",
        "key": ("ExchangeRateTypeName", "FromCurrencyCode", "ToCurrencyCode", "ValidFrom"),
        "extra": {
            "ExchangeRateTypeName": "string",
            "FromCurrencyCode": "string",
            "ToCurrencyCode": "string",
            "Rate": "decimal",
            "ValidFrom": "date",
            "ValidTo": "date",
        },
    },
    "LegalEntities": {
        "aot": "OMLegalEntity",
        "label": "Legal entities",
        "key": ("LegalEntityId",),
        "extra": {"LegalEntityId": "string", "Name": "string"},
    },
    "CustomersV3": {
        "aot": "CustCustomerV3Entity",
        "label": "Customers V3",
        "key": ("dataAreaId", "CustomerAccount"),
        "extra": {
            "CustomerAccount": "string",
            "OrganizationName": "string",
            "CustomerGroupId": "string",
            "PartyType": "string",
            "CreditLimit": "decimal",
            "SalesCurrencyCode": "string",
            "SalesMemo": "string",
            "PrimaryContactEmail": "string",
            "PrimaryContactPhone": "string",
            "DeliveryAddressCity": "string",
            "DeliveryAddressCountryRegionISOCode": "string",
        },
        "mandatory": (("CustomerGroupId", "Customer group"),),
    },
    # "Project transaction categories" (map 17): AOT and collection names are not stored (inferred);
    # fields after the PSA-era ProjCDSCategoryEntity (CategoryId, IntegrationId) and CategoryEntity.
    "ProjectTransactionCategories": {
        "aot": "ProjTransactionCategoryEntity",
        "label": "Project transaction categories",
        "key": ("TransactionCategoryId",),
        "extra": {
            "TransactionCategoryId": "string",
            "Name": "string",
            "IntegrationId": "guid",
            "BillingType": "enum:ProjBillingType",
        },
    },
    "SharedCategories": {
        "aot": "SharedCategoryEntity",
        "label": "Shared categories",
        "key": ("SharedCategoryId",),
        "extra": {
            "SharedCategoryId": "string",
            "Name": "string",
            "TransactionCategoryId": "string",
            "ProjectTransactionType": "string",
            "CanBeUsedInExpense": "noyes",
            "CanBeUsedInProject": "noyes",
        },
    },
    "VendorsV2": {
        "aot": "VendVendorV2Entity",
        "label": "Vendors V2",
        "key": ("dataAreaId", "VendorAccountNumber"),
        "extra": {
            "VendorAccountNumber": "string",
            "VendorOrganizationName": "string",
            "VendorPartyType": "string",
            "CreditLimit": "decimal",
            "CurrencyCode": "string",
            "DUNSNumber": "string",
            "PrimaryEmailAddress": "string",
        },
    },
    "Workers": {
        "aot": "HcmWorkerEntity",
        "label": "Worker",
        "key": ("PersonnelNumber",),
        "extra": {
            "PersonnelNumber": "string",
            "FirstName": "string",
            "MiddleName": "string",
            "LastName": "string",
            "Name": "string",
            "BirthDate": "date",
            "PrimaryContactEmail": "string",
            "PrimaryContactPhone": "string",
        },
    },
}


def _collection_for(aot: str) -> str:
    base = aot[:-6] if aot.endswith("Entity") else aot
    return base + ("es" if base.endswith("s") else "s")


def load_schema() -> dict[str, EntitySpec]:
    generated: dict[str, Any] = json.loads((HERE / "entities.json").read_text())
    specs: dict[str, EntitySpec] = {}
    by_aot = {supplement["aot"]: collection for collection, supplement in SUPPLEMENT.items()}
    for aot, entity in generated.items():
        if entity["kind"] != "entity" or aot in by_aot:
            continue
        fields = {name: spec["type"] for name, spec in entity["fields"].items()}
        first = next(iter(fields))
        specs[_collection_for(aot)] = EntitySpec(
            _collection_for(aot), aot, ("dataAreaId", first), {"dataAreaId": "string", **fields}, entity["label"]
        )
    for collection, supplement in SUPPLEMENT.items():
        base = generated.get(supplement["aot"], {"fields": {}, "label": supplement.get("label", "")})
        fields = {name: spec["type"] for name, spec in base["fields"].items()}
        # The PO-era fields live on the staging table the entity sits on.
        table = generated.get(supplement.get("fields_from", ""), {"fields": {}})
        fields.update({name: spec["type"] for name, spec in table["fields"].items() if name != "DataAreaId"})
        fields.update(supplement.get("extra", {}))
        fields.update(supplement.get("types", {}))
        if "dataAreaId" in supplement["key"]:
            fields = {"dataAreaId": "string", **fields}
        specs[collection] = EntitySpec(
            collection,
            supplement["aot"],
            tuple(supplement["key"]),
            fields,
            supplement.get("label") or base.get("label", ""),
            tuple(supplement.get("references", ())),
            tuple(supplement.get("mandatory", ())),
        )
    return specs


@dataclass
class Company:
    code: str
    rows: dict[str, Any] = field(default_factory=dict)
