"""The demo's Finance documents: the ledger, a posted expense report and a posted vendor invoice.

Finance is where these are mastered. Posting raises Finance's business event; the document flows read
the posted lines from the export entities and write them to Dataverse, and the project manager's
confirmation of the vendor invoice flows back.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sandbox.demo_data import USMF_ID, Expectation, call
from sandbox.environment import Sandbox

CONFIRMED = 192350001


def expense_line(description: str, amount: str, project: str = "PRJ-1001") -> dict[str, Any]:
    return {
        "ProjectId": project,
        "CategoryId": "Travel",
        "TransDate": "2026-11-20",
        "Quantity": Decimal("1"),
        "UnitPrice": Decimal(amount),
        "Amount": Decimal(amount),
        "CurrencyCode": "USD",
        "Description": description,
    }


def vendor_invoice(number: str) -> dict[str, Any]:
    return {
        "VendorInvoiceNum": number,
        "InvoiceAccount": "V-100",
        "Description": "Subcontracted design work",
        "TransDate": "2026-11-21",
        "CurrencyCode": "USD",
        "SubcontractInvoice": "Yes",
    }


def vendor_line(number: int, project: str = "PRJ-1001", price: str = "95.00") -> dict[str, Any]:
    return {
        "ProjectId": project,
        "CategoryType": "Hour",
        "RoleId": "ARCHITECT",
        "TransactionCategoryId": "TCN-0000001000",
        "BillingType": "Chargeable",
        "QtyReceiveNow": Decimal("8"),
        "PurchUnit": "h",
        "PurchPrice": Decimal(price),
        "LineAmount": Decimal(price) * 8,
        "CurrencyCode": "USD",
        "Description": f"Design day {number}",
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
        [expense_line("Flight to the client", "420.50"), expense_line("Office supplies", "19.99", project="")],
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
        amounts = sorted(r["msdyn_amount"] for r in rows)
        ok = amounts == [Decimal("420.50")] and rows[0]["msdyn_expensecategory"] and rows[0]["msdyn_project"]
        return None if ok else f"expenses in Dataverse: {amounts}"

    async def invoices() -> str | None:
        rows = dv.rows("msdyn_projectvendorinvoice")
        account = vendor_account_id(sandbox)
        ok = account is not None and len(rows) == 1 and rows[0]["msdyn_vendor"] == account
        return None if ok else f"vendor invoices in Dataverse: {rows}"

    async def lines() -> str | None:
        rows = dv.rows("msdyn_projectvendorinvoiceline")
        total = sum((r["msdyn_amount"] for r in rows), Decimal(0))
        ok = len(rows) == 2 and total == Decimal("1520.00") and all(r["msdyn_vendorinvoice"] for r in rows)
        return None if ok else f"{len(rows)} vendor invoice lines totalling {total}"

    async def status() -> str | None:
        row = fo.get("ProjVendInvoiceExportsV2", dataAreaId="usmf", VendorInvoiceNum="VI-2001", InvoiceAccount="V-100")
        return None if row and row["ProjVendInvoiceStatus"] == "Confirmed" else f"VI-2001 in Finance: {row}"

    return [
        Expectation("ledgers", "USMF's ledger in Dataverse with its currency", ledger),
        Expectation("expenses", "the posted project expense line (420.50), not the non-project one", expenses),
        Expectation("vendor-invoices", "posted vendor invoice VI-2001 for account V-100", invoices),
        Expectation("vendor-invoice-lines", "its two project lines (1,520.00), not the non-project one", lines),
        Expectation("vendor-invoice-status", "the project manager's confirmation back in Finance", status),
    ]
