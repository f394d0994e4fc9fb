"""The Dataverse simulator's schema: the generated CDM column lists plus what Project Operations added.

`tables.json` is generated from the reference column lists (PSA-era CDM). Project Operations added
columns and tables that those lists do not have; they are declared below, each with where the name
comes from. Lookups are written with `<column>@odata.bind`: the simulator uses the lookup column's
logical name as its navigation property name (real Dataverse sometimes differs, e.g. polymorphic
customer lookups; check-maps against a live `$metadata` catches those).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

# type names: string, int, bigint, decimal, money, bool, datetime, date, guid, lookup, picklist
COMMON: dict[str, dict[str, Any]] = {
    "statecode": {"type": "picklist", "values": [0, 1]},
    "statuscode": {"type": "picklist", "values": [1, 2]},
    "createdon": {"type": "datetime"},
    "modifiedon": {"type": "datetime"},
    "createdby": {"type": "lookup", "target": "systemuser"},
    "modifiedby": {"type": "lookup", "target": "systemuser"},
    "ownerid": {"type": "lookup", "target": "systemuser"},
    "versionnumber": {"type": "bigint"},
}

# Tables the reference lists lack: prerequisites (maps 01-06) and the PO tables named only in map files.
EXTRA_TABLES: dict[str, dict[str, dict[str, Any]]] = {
    "cdm_company": {"cdm_companycode": {"type": "string", "max": 10}, "cdm_name": {"type": "string"}},
    "transactioncurrency": {
        "isocurrencycode": {"type": "string", "max": 5},
        "currencyname": {"type": "string"},
    },
    "systemuser": {"fullname": {"type": "string"}, "azureactivedirectoryobjectid": {"type": "guid"}},
    # Columns of the Customers V3 template (map 04, S3) that the sandbox carries.
    "account": {
        "accountnumber": {"type": "string"},
        "name": {"type": "string"},
        "msdyn_company": {"type": "lookup", "target": "cdm_company"},
        "customertypecode": {"type": "picklist", "values": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]},
        "creditlimit": {"type": "money"},
        "description": {"type": "string"},
        "emailaddress1": {"type": "string"},
        "telephone1": {"type": "string"},
        "address1_city": {"type": "string"},
        "address1_country": {"type": "string"},
        "transactioncurrencyid": {"type": "lookup", "target": "transactioncurrency"},
        "msdyn_customergroupid": {"type": "lookup", "target": "msdyn_customergroup"},
    },
    # Columns of the Vendors V2 template (map 05, S3) that the sandbox carries.
    "msdyn_vendor": {
        "msdyn_vendoraccountnumber": {"type": "string"},
        "msdyn_name": {"type": "string"},
        "msdyn_company": {"type": "lookup", "target": "cdm_company"},
        "msdyn_vendorcreditlimit": {"type": "money"},
        "msdyn_currencycode": {"type": "lookup", "target": "transactioncurrency"},
        "msdyn_dunsnumber": {"type": "string"},
        "msdyn_primaryemailaddress": {"type": "string"},
    },
    # Columns of the Worker template (map 06, S3).
    "cdm_worker": {
        "cdm_workernumber": {"type": "string"},
        "cdm_fullname": {"type": "string"},
        "cdm_firstname": {"type": "string"},
        "cdm_middlename": {"type": "string"},
        "cdm_lastname": {"type": "string"},
        "cdm_birthdate": {"type": "date"},
        "cdm_primaryemailaddress": {"type": "string"},
        "cdm_primarytelephone": {"type": "string"},
    },
    # Columns of the Ledger template (map 03, S3) and the tables its lookups point at.
    "msdyn_ledger": {
        "msdyn_name": {"type": "string"},
        "msdyn_company": {"type": "lookup", "target": "cdm_company"},
        "msdyn_description": {"type": "string"},
        "msdyn_accountingcurrency": {"type": "lookup", "target": "transactioncurrency"},
        "msdyn_reportingcurrency": {"type": "lookup", "target": "transactioncurrency"},
        "msdyn_isbudgetcontrolenabled": {"type": "bool"},
        "msdyn_chartofaccounts": {"type": "lookup", "target": "msdyn_chartofaccounts"},
        "msdyn_fiscalcalendar": {"type": "lookup", "target": "msdyn_fiscalcalendar"},
        "msdyn_exchangeratetype": {"type": "lookup", "target": "msdyn_exchangeratetype"},
        "msdyn_budgetexchangeratetype": {"type": "lookup", "target": "msdyn_exchangeratetype"},
        "msdyn_reportingcurrencyexchangeratetype": {"type": "lookup", "target": "msdyn_exchangeratetype"},
    },
    "msdyn_chartofaccounts": {"msdyn_name": {"type": "string"}},
    "msdyn_fiscalcalendar": {"msdyn_calendar": {"type": "string"}},
    "msdyn_exchangeratetype": {"msdyn_name": {"type": "string"}},
    "product": {"productnumber": {"type": "string"}, "name": {"type": "string"}},
    # Customer groups (msdyn_customergroups), per company, as the Customers V3 template references them.
    "msdyn_customergroup": {
        "msdyn_groupid": {"type": "string"},
        "msdyn_description": {"type": "string"},
        "msdyn_company": {"type": "lookup", "target": "cdm_company"},
    },
    # Units (uoms), kept in Dataverse by dual-write's Units map; msdyn_symbol is its integration key.
    "uom": {"name": {"type": "string"}, "msdyn_symbol": {"type": "string"}},
    # Columns of the CDS Exchange Rates template (map 02, S3).
    "msdyn_currencyexchangerate": {
        "msdyn_exchangeratetypename": {"type": "string"},
        "msdyn_fromcurrencycode": {"type": "string"},
        "msdyn_tocurrencycode": {"type": "string"},
        "msdyn_exchangerate": {"type": "decimal"},
        "msdyn_validfrom": {"type": "date"},
        "msdyn_validto": {"type": "date"},
    },
    "msdyn_organizationalunit": {"msdyn_name": {"type": "string"}},
    # Vendor invoices (maps 27-28): the columns of the dual-write screenshots; status reasons inferred.
    "msdyn_projectvendorinvoice": {
        "msdyn_vendorinvoicenumber": {"type": "string"},
        "msdyn_name": {"type": "string"},
        "msdyn_description": {"type": "string"},
        "msdyn_vendor": {"type": "lookup", "target": "account"},
        "msdyn_invoicedate": {"type": "date"},
        "transactioncurrencyid": {"type": "lookup", "target": "transactioncurrency"},
        "msdyn_enableautomaticconfirmation": {"type": "bool"},
        "msdyn_hasexternalorigin": {"type": "bool"},
        "msdyn_owningcompany": {"type": "lookup", "target": "cdm_company"},
        "statuscode": {"type": "picklist", "values": [1, 192350000, 192350001, 192350002]},
    },
    "msdyn_projectvendorinvoiceline": {
        "msdyn_externalinvoiceline": {"type": "string"},
        "msdyn_name": {"type": "string"},
        "msdyn_vendorinvoice": {"type": "lookup", "target": "msdyn_projectvendorinvoice"},
        "msdyn_project": {"type": "lookup", "target": "msdyn_project"},
        "msdyn_price": {"type": "money"},
        "msdyn_quantity": {"type": "decimal"},
        "msdyn_unit": {"type": "lookup", "target": "uom"},
        "msdyn_amount": {"type": "money"},
        "msdyn_duration": {"type": "decimal"},
        "msdyn_verificationstatus": {"type": "picklist", "values": [192350000, 192350001, 192350002]},
        "msdyn_transactioncategory": {"type": "lookup", "target": "msdyn_transactioncategory"},
        "msdyn_resourcecategory": {"type": "lookup", "target": "bookableresourcecategory"},
        "transactioncurrencyid": {"type": "lookup", "target": "transactioncurrency"},
        "msdyn_billingtype": {"type": "picklist", "values": [192350000, 192350001, 192350002, 192350003]},
        "msdyn_transactionclassification": {
            "type": "picklist",
            "values": [192350000, 192350001, 192350002, 192350003, 192350004],
        },
        "msdyn_owningcompany": {"type": "lookup", "target": "cdm_company"},
    },
    # Project contract customer (map 14): display names documented, logical names inferred.
    "msdyn_projectcontractsplitbillingrule": {
        "msdyn_name": {"type": "string"},
        "msdyn_paymentterms": {"type": "picklist", "values": [1, 2, 3, 4, 192350001]},
        "msdyn_contract": {"type": "lookup", "target": "salesorder"},
        "msdyn_customer": {"type": "lookup", "target": "account"},
        "msdyn_billingsplitpercent": {"type": "decimal"},
        "msdyn_isprimary": {"type": "bool"},
        "msdyn_billtoname": {"type": "string"},
        "msdyn_owningcompany": {"type": "lookup", "target": "cdm_company"},
    },
    # Plug-in registration (Microsoft.Xrm.Sdk registration tables), for register-steps.
    "serviceendpoint": {
        "name": {"type": "string"},
        "contract": {"type": "picklist", "values": list(range(1, 11))},
        "connectionmode": {"type": "picklist", "values": [1, 2]},
        "authtype": {"type": "picklist", "values": list(range(1, 9))},
        "namespaceaddress": {"type": "string"},
        "path": {"type": "string"},
        "saskeyname": {"type": "string"},
        "saskey": {"type": "string"},
        "messageformat": {"type": "picklist", "values": [1, 2, 3]},
        "userclaim": {"type": "picklist", "values": [1, 2, 3]},
    },
    "sdkmessage": {"name": {"type": "string"}},
    "sdkmessagefilter": {
        "primaryobjecttypecode": {"type": "string"},
        "sdkmessageid": {"type": "lookup", "target": "sdkmessage"},
    },
    "sdkmessageprocessingstep": {
        "name": {"type": "string"},
        "stage": {"type": "picklist", "values": [10, 20, 40]},
        "mode": {"type": "picklist", "values": [0, 1]},
        "rank": {"type": "int"},
        "supporteddeployment": {"type": "picklist", "values": [0, 1, 2]},
        "asyncautodelete": {"type": "bool"},
        "filteringattributes": {"type": "string"},
        "sdkmessageid": {"type": "lookup", "target": "sdkmessage"},
        "sdkmessagefilterid": {"type": "lookup", "target": "sdkmessagefilter"},
        "eventhandler_serviceendpoint": {"type": "lookup", "target": "serviceendpoint"},
    },
    "sdkmessageprocessingstepimage": {
        "name": {"type": "string"},
        "entityalias": {"type": "string"},
        "imagetype": {"type": "picklist", "values": [0, 1, 2]},
        "messagepropertyname": {"type": "string"},
        "attributes": {"type": "string"},
        "sdkmessageprocessingstepid": {"type": "lookup", "target": "sdkmessageprocessingstep"},
    },
}

# Project Operations columns on tables the CDM lists cover, with their source.
PO_COLUMNS: dict[str, dict[str, dict[str, Any]]] = {
    "msdyn_project": {
        "msdyn_projectnumber": {"type": "string", "note": "inferred PO project number"},
        "msdyn_owningcompany": {"type": "lookup", "target": "cdm_company", "note": "documented (IMG)"},
    },
    "msdyn_actual": {
        "msdyn_actualimportid": {"type": "string", "note": "documented integration key (IMG)"},
        "msdyn_owningcompany": {
            "type": "lookup",
            "target": "cdm_company",
            "note": "documented key part (IMG)",
        },
        "msdyn_transactiondate": {"type": "date", "note": "documented (fix 3445803)"},
        "msdyn_skipsync": {"type": "bool", "note": "display name documented; logical name inferred"},
        "msdyn_bookableresource": {
            "type": "lookup",
            "target": "bookableresource",
            "note": "documented (DIPV1025)",
        },
        "msdyn_accountingamount": {"type": "money", "note": "inferred write-back column"},
        "msdyn_accountingexchangerate": {"type": "decimal", "note": "inferred write-back column"},
        "msdyn_salestaxamount": {"type": "money", "note": "inferred write-back column"},
    },
    "bookableresourcecategory": {"msdyn_resourcecategorynumber": {"type": "string", "note": "documented (IMG)"}},
    "msdyn_expensecategory": {
        "msdyn_owningcompany": {
            "type": "lookup",
            "target": "cdm_company",
            "note": "LE-specific records (DOC)",
        }
    },
    "msdyn_transactioncategory": {"msdyn_transactioncategorynumber": {"type": "string", "note": "documented (IMG)"}},
    "msdyn_expense": {
        "msdyn_owningcompany": {"type": "lookup", "target": "cdm_company", "note": "inferred"},
        "msdyn_externalexpenseline": {"type": "string", "note": "inferred key: Finance's project transaction id"},
    },
    "salesorder": {"msdyn_owningcompany": {"type": "lookup", "target": "cdm_company", "note": "inferred"}},
    "salesorderdetail": {
        "msdyn_owningcompany": {"type": "lookup", "target": "cdm_company", "note": "fix 3853801 defaults it (DOC)"}
    },
    "msdyn_estimateline": {"msdyn_owningcompany": {"type": "lookup", "target": "cdm_company", "note": "inferred"}},
    "msdyn_projecttask": {
        "msdyn_outlinelevel": {"type": "int", "note": "documented PO WBS column"},
        "msdyn_displaysequence": {"type": "decimal", "note": "documented PO WBS column"},
    },
    "invoice": {"msdyn_invoicedate": {"type": "date", "note": "inferred proforma invoice date"}},
    "bookableresource": {
        "msdyn_worker": {"type": "lookup", "target": "cdm_worker", "note": "worker link (name inferred)"}
    },
}

ALTERNATE_KEYS: dict[str, list[tuple[str, ...]]] = {
    "cdm_company": [("cdm_companycode",)],
    "transactioncurrency": [("isocurrencycode",)],
    "account": [("accountnumber", "msdyn_company"), ("accountnumber",)],
    "msdyn_project": [("msdyn_projectnumber",)],
    "salesorder": [("ordernumber",)],
    "msdyn_actual": [("msdyn_actualimportid", "msdyn_owningcompany")],
    "bookableresourcecategory": [("msdyn_resourcecategorynumber",)],
    "msdyn_expensecategory": [("msdyn_name", "msdyn_owningcompany")],
    "msdyn_transactioncategory": [("msdyn_transactioncategorynumber",)],
    "msdyn_projectvendorinvoiceline": [("msdyn_externalinvoiceline",)],
    "msdyn_projectvendorinvoice": [("msdyn_vendorinvoicenumber", "msdyn_vendor")],
    "msdyn_expense": [("msdyn_externalexpenseline",)],
    "msdyn_ledger": [("msdyn_company",)],
    "msdyn_chartofaccounts": [("msdyn_name",)],
    "msdyn_fiscalcalendar": [("msdyn_calendar",)],
    "msdyn_exchangeratetype": [("msdyn_name",)],
    "product": [("productnumber",)],
    "uom": [("msdyn_symbol",)],
    "msdyn_customergroup": [("msdyn_groupid", "msdyn_company")],
    "cdm_worker": [("cdm_workernumber",)],
    # Not documented; the natural key of a rate (inferred).
    "msdyn_currencyexchangerate": [
        ("msdyn_exchangeratetypename", "msdyn_fromcurrencycode", "msdyn_tocurrencycode", "msdyn_validfrom")
    ],
    "msdyn_vendor": [("msdyn_vendoraccountnumber", "msdyn_company")],
}

MONEY_HINTS = ("amount", "price", "cost", "_base", "revenue")
PRIMARY_NAME_CANDIDATES = (
    "msdyn_name",
    "name",
    "msdyn_subject",
    "fullname",
    "cdm_name",
    "currencyname",
    "msdyn_description",
)


@dataclass
class Column:
    name: str
    type: str
    values: tuple[int, ...] = ()
    target: str | None = None
    max: int | None = None


@dataclass
class Table:
    logical: str
    entity_set: str
    primary: str
    columns: dict[str, Column] = field(default_factory=dict)
    alternate_keys: list[tuple[str, ...]] = field(default_factory=list)

    @property
    def primary_name(self) -> str | None:
        return next((c for c in PRIMARY_NAME_CANDIDATES if c in self.columns), None)


def entity_set_name(logical: str) -> str:
    if logical.endswith("y") and logical[-2] not in "aeiou":
        return logical[:-1] + "ies"
    if logical.endswith("s"):
        return logical + "es"
    return logical + "s"


def _column(name: str, spec: dict[str, Any]) -> Column:
    kind = spec["type"]
    if kind == "decimal" and any(hint in name for hint in MONEY_HINTS):
        kind = "money"
    if kind == "datetime" and name.endswith("date") and not name.endswith("datetime") and "transactiondate" in name:
        kind = "date"
    return Column(name, kind, tuple(spec.get("values", ())), spec.get("target"), spec.get("max"))


def load_schema() -> dict[str, Table]:
    generated = json.loads((HERE / "tables.json").read_text())
    specs: dict[str, dict[str, dict[str, Any]]] = {name: dict(t["columns"]) for name, t in generated.items()}
    for name, columns in EXTRA_TABLES.items():
        specs.setdefault(name, {}).update(columns)
    for name, columns in PO_COLUMNS.items():
        specs.setdefault(name, {}).update(columns)
    tables: dict[str, Table] = {}
    for logical, columns in specs.items():
        primary = f"{logical}id"
        table = Table(logical, entity_set_name(logical), primary)
        table.columns[primary] = Column(primary, "guid")
        for name, spec in {**COMMON, **columns}.items():
            if name == primary:
                continue
            table.columns[name] = _column(name, spec)
        table.alternate_keys = ALTERNATE_KEYS.get(logical, [])
        tables[logical] = table
    return tables
