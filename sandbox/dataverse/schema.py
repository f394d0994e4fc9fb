"""The Dataverse simulator's schema: a live Project Operations schema where one is known, else the
published CDM column lists, plus what the Finance integration adds.

`live-tables.json` is the sandbox's copy of table definitions captured from a live Project
Operations environment (core, January 2022): for its 11 tables the columns, types, option values,
entity set, primary id and the navigation property of every lookup are Dataverse's own.
`tables.json` holds the PSA-era CDM column lists of the other tables. Both are written by
sandbox/gen_schema.py. Neither has what the Finance-integration solutions add, so those columns and
tables are declared below, each with its source; a name no source proves is marked `inferred`.

A lookup is written with `<navigation property>@odata.bind`, and the simulator refuses any other
name, exact case, as the Web API does. Where no source gives the navigation property of a lookup,
it is the column's logical name (inferred); check-maps against a live `$metadata` settles it.
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
    # Products: M4 keys them by msdyn_productnumber (productnumber is company + that number), as M3 reads them.
    "product": {
        "productnumber": {"type": "string"},
        "msdyn_productnumber": {"type": "string"},
        "name": {"type": "string"},
    },
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
    # Project contract customer (map 14). M3 names the contract lookup and the funding source number
    # (msdyn_projectcontractsplitbillingrule.msdyn_projectcontractid.msdyn_salesordernumber, ...rulenumber),
    # D1 msdyn_paymentterms; the other logical names are inferred from documented display names.
    "msdyn_projectcontractsplitbillingrule": {
        "msdyn_name": {"type": "string"},
        "msdyn_paymentterms": {"type": "picklist", "values": [1, 2, 3, 4, 192350001]},
        "msdyn_projectcontractid": {"type": "lookup", "target": "salesorder"},
        "msdyn_projectcontractsplitbillingrulenumber": {"type": "string"},
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
        # The polymorphic Event Handler lookup (plugintype, serviceendpoint): read as _eventhandler_value,
        # bound through the navigation property of the table it points at (SdkMessageProcessingStep
        # table reference: EventHandler; relationship serviceendpoint_sdkmessageprocessingstep).
        "eventhandler": {"type": "lookup", "target": "serviceendpoint", "navigation": "eventhandler_serviceendpoint"},
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

# Sources of the names below (see the team's reference maps/DATAVERSE-GROUND-TRUTH.md):
#   M3  Microsoft's "Project Operations integration actuals (msdyn_actuals)" dual-write map (Nov 2020),
#       as exported in finopsfuntimes/ProjectOpsEmpFinDims (reference dataverse-metadata/dualwrite-maps.json)
#   M2  Microsoft's generated table reference (msdyn_actual, salesorder, invoice)
#   M4  Microsoft's dual-write map docs (Products: "Integration key for products")
#   I1  screenshots of the real dual-write UI (vendor invoice maps)
#   D1  Project Operations docs (PSA-to-Project-Operations field changes, fixes)
#   F1  Microsoft FastTrack's Project Operations data migration and Schedule API scripts
# M3 and I1 name columns but not their types: a type given here is inferred from the name.

# Columns the Finance-integration solutions add (absent from live-tables.json, whose environment lacks
# them, and from the PSA-era lists), each with its source; for a lookup the published list has without
# its target, the target. A "navigation" entry is the lookup's navigation property where a source shows it.
PO_COLUMNS: dict[str, dict[str, dict[str, Any]]] = {
    "msdyn_project": {
        "msdyn_projectnumber": {"type": "string", "note": "M3: PROJECTID < msdyn_project.msdyn_projectnumber"},
        "msdyn_owningcompany": {
            "type": "lookup",
            "target": "cdm_company",
            "navigation": "msdyn_OwningCompany",
            "note": "M3: PROJECTDATAAREAID < msdyn_project.msdyn_owningcompany.cdm_companycode; "
            "F1 binds msdyn_OwningCompany@odata.bind",
        },
    },
    "msdyn_projecttask": {
        "msdyn_activitynumber": {"type": "string", "note": "M3: TASKNUMBER < msdyn_task.msdyn_activitynumber"},
    },
    "msdyn_transactioncategory": {
        "msdyn_transactioncategorynumber": {
            "type": "string",
            "note": "M3: TRANSACTIONCATEGORYID < msdyn_transactioncategory.msdyn_transactioncategorynumber",
        }
    },
    "bookableresourcecategory": {
        "msdyn_resourcecategorynumber": {
            "type": "string",
            "note": "I1: ROLEID > msdyn_resourcecategory.msdyn_resourcecategorynumber",
        }
    },
    "bookableresource": {
        "msdyn_worker": {
            "type": "lookup",
            "target": "cdm_worker",
            "note": "inferred: the worker-resources flow needs the resource's worker; no source names the column",
        }
    },
    "msdyn_actual": {
        "msdyn_actualimportid": {"type": "string", "note": "M3: ACTUALSIMPORTID, both directions"},
        "msdyn_owningcompany": {
            "type": "lookup",
            "target": "cdm_company",
            "note": "inferred: kept as the actuals' key part; M3 takes the company from the project",
        },
        "msdyn_transactiondate": {"type": "date", "note": "D1: fix 3445803 sends it to DOCUMENTDATE"},
        "msdyn_skipsync": {
            "type": "bool",
            "note": "inferred: D1 documents the display name Skip Sync (internal use only), not the logical name",
        },
        "msdyn_bookableresource": {
            "type": "lookup",
            "target": "bookableresource",
            "navigation": "msdyn_bookableresource",
            "note": "M2",
        },
        "msdyn_accountcustomer": {
            "type": "lookup",
            "target": "account",
            "navigation": "msdyn_AccountCustomer",
            "note": "M2",
        },
        "msdyn_vouchernumber": {"type": "string", "note": "M3: VOUCHERNUMBER > msdyn_vouchernumber"},
        "msdyn_accountexchangerate": {"type": "decimal", "note": "M3: EXCHANGERATE > msdyn_accountexchangerate"},
        "msdyn_accountingtaxamount": {"type": "money", "note": "M3: SALESTAXAMOUNT = msdyn_accountingtaxamount"},
        "msdyn_accountingamount": {"type": "money", "note": "M3: ACCOUNTINGAMOUNT > msdyn_accountingamount"},
        "msdyn_valueofsalescontractline": {"type": "string", "note": "M3: CONTRACTLINEID < this column"},
        "msdyn_externaloriginreference": {"type": "string", "note": "M3: EXTERNALORIGINREFERENCE < this column"},
        "msdyn_nameofbookableresource": {"type": "string", "note": "M3: BOOKABLERESOURCENAME < this column"},
        "msdyn_istransition": {"type": "bool", "note": "M3: the map's filter reads msdyn_istransition ne true"},
        "msdyn_projectcontractsplitbillingrule": {
            "type": "lookup",
            "target": "msdyn_projectcontractsplitbillingrule",
            "note": "M3: FUNDINGSOURCE and CONTRACTID are read through it",
        },
        "msdyn_invoice": {"type": "lookup", "target": "invoice", "note": "M3: INVOICEPROPOSALID via invoices"},
        "msdyn_product": {"type": "lookup", "target": "product", "note": "M3: PRODUCTNUMBER via products"},
        "msdyn_unit": {"type": "lookup", "target": "uom", "note": "M3: UNITOFMEASURE via uoms"},
        "msdyn_task": {
            "type": "lookup",
            "target": "msdyn_projecttask",
            "note": "M3: TASKNUMBER via msdyn_projecttasks",
        },
    },
    "msdyn_resourceassignment": {
        "msdyn_effort": {"type": "decimal", "note": "D1 replaced msdyn_hours; F1 writes it (Decimal)"},
        "msdyn_start": {"type": "datetime", "note": "D1 replaced msdyn_fromdate; F1 writes it"},
        "msdyn_finish": {"type": "datetime", "note": "D1 replaced msdyn_todate; F1 writes it"},
    },
    "salesorder": {
        "msdyn_salesordernumber": {
            "type": "string",
            "note": "M3: CONTRACTID < ...msdyn_projectcontractid.msdyn_salesordernumber",
        },
        "msdyn_owningcompany": {"type": "lookup", "target": "cdm_company", "note": "inferred"},
    },
    "invoice": {
        "msdyn_invoicenumber": {"type": "string", "note": "M3: INVOICEPROPOSALID < msdyn_invoice.msdyn_invoicenumber"},
        "msdyn_invoicedate": {"type": "date", "note": "M4: the sales invoice map writes it"},
    },
    "msdyn_expensecategory": {
        "msdyn_owningcompany": {
            "type": "lookup",
            "target": "cdm_company",
            "note": "inferred: D1 documents legal-entity-specific categories, not the column",
        }
    },
    "msdyn_expense": {
        "msdyn_owningcompany": {"type": "lookup", "target": "cdm_company", "note": "inferred"},
        "msdyn_externalexpenseline": {"type": "string", "note": "inferred key: Finance's project transaction id"},
    },
    "salesorderdetail": {
        "msdyn_owningcompany": {
            "type": "lookup",
            "target": "cdm_company",
            "note": "inferred (D1: fix 3853801 defaults it)",
        }
    },
    "msdyn_estimateline": {"msdyn_owningcompany": {"type": "lookup", "target": "cdm_company", "note": "inferred"}},
}

# PSA-era columns Project Operations replaced (D1, the replaced-fields table): left out, so a map still
# naming one fails in the sandbox as it would against Project Operations.
REPLACED: dict[str, dict[str, str]] = {
    "msdyn_resourceassignment": {
        "msdyn_hours": "msdyn_effort",
        "msdyn_fromdate": "msdyn_start",
        "msdyn_todate": "msdyn_finish",
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
    "product": [("msdyn_productnumber",)],
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


# Dataverse attribute types (live-tables.json) as the simulator's types.
LIVE_TYPES = {
    "String": "string",
    "Memo": "string",
    "Integer": "int",
    "BigInt": "bigint",
    "Decimal": "decimal",
    "Double": "decimal",
    "Money": "money",
    "Boolean": "bool",
    "Picklist": "picklist",
    "State": "picklist",
    "Status": "picklist",
    "Lookup": "lookup",
    "Owner": "lookup",
    "Customer": "lookup",
    "Uniqueidentifier": "guid",
}


@dataclass
class Column:
    name: str
    type: str
    values: tuple[int, ...] = ()
    target: str | None = None
    max: int | None = None
    # A lookup's single-valued navigation properties, by the table each points at: the only names
    # `@odata.bind` takes (a polymorphic lookup has one per table).
    navigation: dict[str, str] = field(default_factory=dict)
    # True where no source gives the navigation property and the logical name stands in for it.
    navigation_inferred: bool = False


@dataclass
class Table:
    logical: str
    entity_set: str
    primary: str
    columns: dict[str, Column] = field(default_factory=dict)
    alternate_keys: list[tuple[str, ...]] = field(default_factory=list)
    name_column: str | None = None
    live: bool = False

    @property
    def primary_name(self) -> str | None:
        if self.name_column is not None:
            return self.name_column
        return next((c for c in PRIMARY_NAME_CANDIDATES if c in self.columns), None)

    def lookup_for_navigation(self, navigation: str) -> Column | None:
        """The lookup column a bind names, matched exactly: the Web API is case-sensitive here."""
        for column in self.columns.values():
            if column.type == "lookup" and navigation in column.navigation.values():
                return column
        return None


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
    column = Column(name, kind, tuple(spec.get("values", ())), spec.get("target"), spec.get("max"))
    if kind == "lookup":
        navigation = spec.get("navigation")
        column.navigation = {column.target or "": navigation or name}
        column.navigation_inferred = navigation is None
    return column


def _live_column(name: str, spec: dict[str, Any]) -> Column:
    kind = LIVE_TYPES.get(spec["type"], "string")
    if spec["type"] == "DateTime":
        # Only the DateOnly behaviour is an Edm.Date; a date-only format shown in user local time is not.
        kind = "date" if spec.get("behavior") == "DateOnly" else "datetime"
    targets = spec.get("targets") or []
    column = Column(
        name,
        kind,
        tuple(spec.get("values", ())) if kind == "picklist" else (),
        targets[0] if targets else None,
        spec.get("max") if kind == "string" else None,
    )
    if kind == "lookup":
        known = spec.get("navigation") or {}
        column.navigation = dict(known) or {column.target or "": name}
        column.navigation_inferred = not known
    return column


def _live_table(logical: str, spec: dict[str, Any]) -> Table:
    table = Table(logical, spec["entity_set"], spec["primary_id"], name_column=spec["primary_name"], live=True)
    for name, column in spec["columns"].items():
        table.columns[name] = Column(name, "guid") if name == table.primary else _live_column(name, column)
    return table


def _generated_table(logical: str, columns: dict[str, dict[str, Any]]) -> Table:
    primary = f"{logical}id"
    table = Table(logical, entity_set_name(logical), primary)
    table.columns[primary] = Column(primary, "guid")
    for name, spec in {**COMMON, **columns}.items():
        if name != primary:
            table.columns[name] = _column(name, spec)
    return table


def custom_column(name: str, spec: dict[str, Any]) -> Column:
    """A customer's own column (a solution adds it): declared by the extension demo that needs it."""
    return _column(name, spec)


def load_schema() -> dict[str, Table]:
    live = json.loads((HERE / "live-tables.json").read_text())["tables"]
    generated = json.loads((HERE / "tables.json").read_text())
    specs: dict[str, dict[str, dict[str, Any]]] = {name: dict(t["columns"]) for name, t in generated.items()}
    for name, columns in EXTRA_TABLES.items():
        specs.setdefault(name, {}).update(columns)
    tables: dict[str, Table] = {name: _live_table(name, spec) for name, spec in live.items()}
    for name, columns in specs.items():
        if name in tables:
            raise ValueError(f"{name} has a live definition; its CDM or hand-written columns would shadow it")
        tables[name] = _generated_table(name, columns)
    for name, replaced in REPLACED.items():
        for column in replaced:
            del tables[name].columns[column]
    for name, columns in PO_COLUMNS.items():
        table = tables[name]
        for column, spec in columns.items():
            if table.live and column in table.columns:
                # A regenerated live copy that has the column makes the hand-written one stale.
                raise ValueError(f"{name}.{column} is in live-tables.json; drop it from PO_COLUMNS")
            table.columns[column] = _column(column, spec)
    for name, keys in ALTERNATE_KEYS.items():
        tables[name].alternate_keys = keys
    return tables
