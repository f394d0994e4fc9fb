"""The demo's Finance documents: the ledger, a posted expense report and a posted vendor invoice.

Finance is where these are mastered. Posting an expense report writes its lines to the expense export
entity, whose data events carry each line to Dataverse; posting a vendor invoice raises Finance's
Vendor invoice posted business event, and the document flows read the invoice and its lines from the
export entities and write them to Dataverse. The project manager's confirmation of the vendor
invoice flows back. Rows use the live Finance names (ProjExpensesExport, VendInvoiceExportsV2,
ProjVendInvoiceLinesExportEntity); Finance dates are Edm.DateTimeOffset at noon UTC.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sandbox.demo_data import USD_ID, USMF_ID, Expectation, call
from sandbox.environment import Sandbox

CONFIRMED = 192350001


def expense_line(description: str, amount: str, project: str = "PRJ-1001", tax: str = "0.00") -> dict[str, Any]:
    """One project expense line as posting writes it to ProjExpensesExport."""
    return {
        "ProjId": project,
        "ProjActivityNumber": "A-1" if project else "",
        "CostType": "Travel",
        "TransactionCategoryId": "TCN-0000001000",
        "BillingType": "Chargeable",
        "TransDate": "2026-11-20T12:00:00Z",
        "Quantity": Decimal("1"),
        "Amount": Decimal(amount),
        "NetAmount": Decimal(amount) - Decimal(tax),
        "TaxAmount": Decimal(tax),
        "ExchangeCode": "USD",
        "AdditionalInformation": description,
    }


def vendor_invoice(number: str) -> dict[str, Any]:
    """A vendor invoice header as posting writes it to VendInvoiceExportsV2."""
    return {
        "VendorInvoiceNum": number,
        "InvoiceAccount": "V-100",
        "Description": "Subcontracted design work",
        "TransDate": "2026-11-21T12:00:00Z",
        "DocumentDate": "2026-11-19T12:00:00Z",
        "CurrencyCode": "USD",
        "SubcontractInvoice": "Yes",
        "ProjVendInvoiceStatus": "InReview",
    }


def vendor_line(number: int, project: str = "PRJ-1001", price: str = "95.00") -> dict[str, Any]:
    """A vendor invoice line as posting writes it to ProjVendInvoiceLinesExportEntity."""
    return {
        "ProjId": project,
        "ProjTaskNumber": "1.1" if project else "",
        "CategoryType": "Hour",
        "RoleId": "ARCHITECT",
        "TransactionCategoryId": "TCN-0000001000",
        "BillingType": "Chargeable",
        "QtyReceiveNow": Decimal("8"),
        "PurchUnit": "h",
        "PurchPrice": Decimal(price),
        "LineAmount": Decimal(price) * 8,
        "currencyCode": "USD",
        "TransDate": "2026-11-21T12:00:00Z",
        "Description": f"Design day {number}",
    }


def expense_category(company: str, category: str = "Travel", expense_type: str = "Airline") -> dict[str, Any]:
    """An expense category as Finance publishes it in ProjExpenseCategoriesExport."""
    return {
        "dataAreaId": company,
        "CostType": category,
        "CostTxt": f"{category} expenses",
        "ExpType": expense_type,
        "IsInactive": "No",
        "TransactionCategoryId": "TCN-0000001000",
    }


async def create_vendor(sandbox: Sandbox) -> None:
    """Vendor V-100 in Finance; the vendor-accounts flow makes it the account vendor invoices look up."""
    async with sandbox.person_finance() as fo:
        await call(
            fo,
            "post",
            "VendorsV2",
            {
                "dataAreaId": "usmf",
                "VendorAccountNumber": "V-100",
                "VendorOrganizationName": "Northwind Subcontracting",
                "VendorPartyType": "Organization",
                "CurrencyCode": "USD",
            },
        )
    await sandbox.wait_quiet()


def vendor_account_id(sandbox: Sandbox) -> str | None:
    """The Dataverse account of vendor V-100 in USMF, once the vendor-accounts flow has written it."""
    for row in sandbox.dataverse.rows("account"):
        if row["accountnumber"] == "V-100" and row.get("msdyn_company") == USMF_ID:
            return str(row["accountid"])
    return None


async def post_documents(sandbox: Sandbox) -> None:
    """Needs the project, the Travel category, role ARCHITECT and vendor V-100 (the main scenario's work)."""
    async with sandbox.person_finance() as fo:
        await call(
            fo,
            "post",
            "Ledgers",
            {
                "LegalEntityId": "USMF",
                "Name": "USMF",
                "Description": "Contoso Entertainment USA ledger",
                "AccountingCurrency": "USD",
                "ChartOfAccounts": "Shared",
                "FiscalCalendar": "Fiscal",
                "ExchangeRateType": "Default",
                "BudgetExchangeRateType": "Default",
                "IsBudgetControlEnabled": "Yes",
            },
        )
    await sandbox.finance.post_expense_report(
        "usmf",
        "EXP-0001",
        [
            expense_line("Flight to the client", "420.50", tax="35.04"),
            expense_line("Office supplies", "19.99", project=""),
        ],
    )
    await sandbox.finance.post_vendor_invoice(
        "usmf", vendor_invoice("VI-2001"), [vendor_line(1), vendor_line(2), vendor_line(3, project="")]
    )
    await sandbox.wait_quiet()
    # The project manager confirms the subcontractor's invoice in Dataverse.
    invoice = next(r for r in sandbox.dataverse.rows("msdyn_projectvendorinvoice") if r["msdyn_name"] == "VI-2001")
    async with sandbox.person_dataverse() as dv:
        await call(
            dv,
            "patch",
            f"msdyn_projectvendorinvoices({invoice['msdyn_projectvendorinvoiceid']})",
            {"statuscode": CONFIRMED},
        )
    await sandbox.wait_quiet()


def document_expectations(sandbox: Sandbox) -> list[Expectation]:
    dv, fo = sandbox.dataverse, sandbox.finance

    async def ledger() -> str | None:
        rows = [r for r in dv.rows("msdyn_ledger") if r.get("msdyn_company") == USMF_ID]
        ok = len(rows) == 1 and rows[0]["msdyn_isbudgetcontrolenabled"] is True and rows[0]["msdyn_accountingcurrency"]
        return None if ok else f"USMF ledgers in Dataverse: {rows}"

    async def expenses() -> str | None:
        rows = dv.rows("msdyn_expense")
        amounts = sorted((r["msdyn_amount"], r["msdyn_salestaxamount"]) for r in rows)
        # The report's project line in Finance, by the ExpTransNumbers its posting wrote.
        posted = [
            fo.get("ProjExpensesExport", ExpTransNumber=number, ReferenceDataAreaId="usmf")
            for number in fo.expense_reports.get(("usmf", "EXP-0001"), [])
        ]
        project_lines = [line["ProjTransId"] for line in posted if line and line["ProjId"]]
        ok = (
            amounts == [(Decimal("420.50"), Decimal("35.04"))]
            and [rows[0]["msdyn_externalexpenseline"]] == project_lines
            and rows[0]["msdyn_name"] == "Flight to the client"
            and rows[0]["msdyn_expensecategory"]
            and rows[0]["msdyn_project"]
            and rows[0]["msdyn_owningcompany"] == USMF_ID
        )
        return None if ok else f"expenses in Dataverse: {rows}"

    async def invoices() -> str | None:
        rows = dv.rows("msdyn_projectvendorinvoice")
        account = vendor_account_id(sandbox)
        ok = account is not None and len(rows) == 1 and rows[0]["msdyn_vendor"] == account
        return None if ok else f"vendor invoices in Dataverse: {rows}"

    async def lines() -> str | None:
        rows = dv.rows("msdyn_projectvendorinvoiceline")
        total = sum((r["msdyn_amount"] for r in rows), Decimal(0))
        ok = (
            len(rows) == 2
            and total == Decimal("1520.00")
            and all(r["msdyn_vendorinvoice"] for r in rows)
            and all(r["msdyn_owningcompany"] == USMF_ID and r["transactioncurrencyid"] == USD_ID for r in rows)
        )
        return None if ok else f"{len(rows)} vendor invoice lines totalling {total}: {rows}"

    async def status() -> str | None:
        row = fo.get("VendInvoiceExportsV2", dataAreaId="usmf", VendorInvoiceNum="VI-2001", InvoiceAccount="V-100")
        return None if row and row["ProjVendInvoiceStatus"] == "Confirmed" else f"VI-2001 in Finance: {row}"

    return [
        Expectation("ledgers", "USMF's ledger in Dataverse with its currency", ledger),
        Expectation("expenses", "the posted project expense line (420.50), not the non-project one", expenses),
        Expectation("vendor-invoices", "posted vendor invoice VI-2001 for account V-100", invoices),
        Expectation("vendor-invoice-lines", "its two project lines (1,520.00), not the non-project one", lines),
        Expectation("vendor-invoice-status", "the project manager's confirmation back in Finance", status),
    ]
