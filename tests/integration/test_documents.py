"""Posted Finance documents through the sandbox: expense lines and vendor invoices reaching Dataverse."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from functions.catalog import CATALOG
from sandbox.dataverse.steps import CLAIMS
from sandbox.demo_data import USD_ID, USMF_ID, USPI_ID
from sandbox.demo_documents import (
    create_vendor,
    expense_category,
    expense_line,
    vendor_account_id,
    vendor_invoice,
    vendor_line,
)
from sandbox.environment import Sandbox
from sandbox.scenario import create_project_setup
from shared.operations.parked import replay, select_parked
from shared.operations.reconcile import reconcile
from shared.telemetry import FIGURES
from tests.integration.conftest import finance_writes, parked, send, until


def batches(sandbox: Sandbox) -> list[Any]:
    return [r for r in sandbox.dataverse.requests if r.method == "POST" and r.path.endswith("$batch")]


def dataverse_writes(sandbox: Sandbox, entity_set: str) -> list[Any]:
    return [r for r in sandbox.dataverse.requests if r.method in ("PATCH", "POST") and entity_set in r.path]


@pytest.fixture
async def posted_setup(sandbox: Sandbox) -> Sandbox:
    """Project PRJ-1001 and role ARCHITECT in both systems; Travel categories for USMF and USPI in Dataverse."""
    await create_project_setup(sandbox)
    async with sandbox.person_finance() as fo:
        for company in ("usmf", "uspi"):
            await send(fo, "POST", "ProjExpenseCategoriesExport", expense_category(company))
    await sandbox.wait_quiet()
    return sandbox


def travel_category(sandbox: Sandbox, company_id: str) -> str:
    return next(
        r["msdyn_expensecategoryid"]
        for r in sandbox.dataverse.rows("msdyn_expensecategory")
        if r["msdyn_name"] == "Travel" and r["msdyn_owningcompany"] == company_id
    )


async def test_posted_expense_lines_with_a_project_reach_dataverse_once_each(posted_setup: Sandbox) -> None:
    sandbox = posted_setup
    sink = sandbox.finance.sink
    assert sink is not None
    sent: list[tuple[str, bytes, dict[str, str], str]] = []

    async def keep_a_copy(queue: str, body: bytes, properties: dict[str, str], content_type: str) -> None:
        sent.append((queue, body, properties, content_type))
        await sink(queue, body, properties, content_type)

    sandbox.finance.sink = keep_a_copy
    numbers = await sandbox.finance.post_expense_report(
        "usmf",
        "EXP-0100",
        [
            expense_line("Hotel, two nights", "318.46", tax="26.54"),
            expense_line("Taxi", "42.10"),
            expense_line("Pens", "3.99", ""),
        ],
    )
    await sandbox.wait_quiet()
    # Posting raised one data event per line of the export entity; there is no report-level event.
    assert len(sent) == 3
    assert {props[CLAIMS + "EntityLogicalName"] for _, _, props, _ in sent} == {"mserp_projexpenseexportentity"}
    posted = [sandbox.finance.get("ProjExpensesExport", ExpTransNumber=n, ReferenceDataAreaId="usmf") for n in numbers]
    assert all(line is not None for line in posted)
    project_transactions = {line["ProjTransId"] for line in posted if line and line["ProjId"]}

    rows = sorted(sandbox.dataverse.rows("msdyn_expense"), key=lambda r: r["msdyn_amount"])
    assert [(r["msdyn_amount"], r["msdyn_salestaxamount"]) for r in rows] == [
        (Decimal("42.10"), Decimal("0.00")),
        (Decimal("318.46"), Decimal("26.54")),
    ]
    hotel = rows[1]
    # The category of the line's company (ReferenceDataAreaId), not USPI's category of the same id.
    assert hotel["msdyn_expensecategory"] == travel_category(sandbox, USMF_ID)
    assert hotel["msdyn_owningcompany"] == USMF_ID and hotel["transactioncurrencyid"] == USD_ID
    assert hotel["msdyn_project"] and hotel["msdyn_expensestatus"] == 192350004
    assert str(hotel["msdyn_transactiondate"]) == "2026-11-20" and hotel["msdyn_name"] == "Hotel, two nights"
    assert hotel["msdyn_externaldescription"] == "Hotel, two nights" and hotel["msdyn_quantity"] == Decimal("1")
    assert {r["msdyn_externalexpenseline"] for r in rows} == project_transactions and len(project_transactions) == 2
    assert len(dataverse_writes(sandbox, "msdyn_expenses")) == 2

    # Finance delivers data events at least once: the same events again write nothing.
    for event in sent:
        await sink(*event)
    await sandbox.wait_quiet()
    assert len(dataverse_writes(sandbox, "msdyn_expenses")) == 2 and len(sandbox.dataverse.rows("msdyn_expense")) == 2
    assert await parked(sandbox) == []


async def test_an_expense_line_of_another_company_takes_that_company_s_category(posted_setup: Sandbox) -> None:
    sandbox = posted_setup
    [number] = await sandbox.finance.post_expense_report("uspi", "EXP-0200", [expense_line("Train", "88.00")])
    await sandbox.wait_quiet()
    [row] = sandbox.dataverse.rows("msdyn_expense")
    line = sandbox.finance.get("ProjExpensesExport", ExpTransNumber=number, ReferenceDataAreaId="uspi")
    assert line is not None and row["msdyn_externalexpenseline"] == line["ProjTransId"]
    assert row["msdyn_expensecategory"] == travel_category(sandbox, USPI_ID)
    assert row["msdyn_owningcompany"] == USPI_ID and row["msdyn_amount"] == Decimal("88.00")
    assert await parked(sandbox) == []


async def test_vendor_invoice_without_project_lines_stays_in_finance(posted_setup: Sandbox) -> None:
    sandbox = posted_setup
    await create_vendor(sandbox)
    filtered = {flow: FIGURES.flows[flow].skipped["filtered"] for flow in ("vendor-invoices", "vendor-invoice-lines")}
    await sandbox.finance.post_vendor_invoice("usmf", vendor_invoice("VI-0001"), [vendor_line(1, project="")])
    await sandbox.wait_quiet()
    assert sandbox.dataverse.rows("msdyn_projectvendorinvoice") == []
    assert sandbox.dataverse.rows("msdyn_projectvendorinvoiceline") == []
    assert await parked(sandbox) == []
    # The event did arrive: both flows read it and their filters kept it out, rather than nothing coming.
    assert {flow: FIGURES.flows[flow].skipped["filtered"] - count for flow, count in filtered.items()} == {
        "vendor-invoices": 1,
        "vendor-invoice-lines": 1,
    }


async def test_a_line_without_a_role_clears_the_role_like_a_single_write_does(posted_setup: Sandbox) -> None:
    sandbox = posted_setup
    await create_vendor(sandbox)
    line = {**vendor_line(1), "CategoryType": "Cost", "RoleId": ""}
    await sandbox.finance.post_vendor_invoice("usmf", vendor_invoice("VI-0004"), [line])
    await sandbox.wait_quiet()
    [row] = sandbox.dataverse.rows("msdyn_projectvendorinvoiceline")
    assert row.get("msdyn_resourcecategory") is None and row["msdyn_transactionclassification"] == 192350001
    # The changeset says so with a null bind (the Web API's disassociate), as the one-record path does.
    [batch] = [b for b in batches(sandbox) if "msdyn_projectvendorinvoicelines" in b.body]
    assert '"msdyn_resourcecategory@odata.bind":null' in batch.body.replace(" ", "")
    assert await parked(sandbox) == []


async def test_lines_wait_for_their_invoice_and_the_confirmation_flows_back(posted_setup: Sandbox) -> None:
    sandbox = posted_setup
    # The vendor's account is not in Dataverse yet: the header and its lines wait for it.
    await sandbox.finance.post_vendor_invoice(
        "usmf", vendor_invoice("VI-0002"), [vendor_line(1, price="101.25"), vendor_line(2, price="99.99")]
    )
    await until(
        lambda: FIGURES.flows["vendor-invoice-lines"].retried > 0 and FIGURES.flows["vendor-invoices"].retried > 0
    )
    assert sandbox.dataverse.rows("msdyn_projectvendorinvoiceline") == []
    await create_vendor(sandbox)
    await sandbox.wait_quiet()

    [header] = sandbox.dataverse.rows("msdyn_projectvendorinvoice")
    assert (header["msdyn_vendorinvoicenumber"], header["msdyn_vendor"]) == ("VI-0002", vendor_account_id(sandbox))
    assert header["msdyn_enableautomaticconfirmation"] is False and header["msdyn_hasexternalorigin"] is True
    assert str(header["msdyn_invoicedate"]) == "2026-11-21"
    lines = sorted(sandbox.dataverse.rows("msdyn_projectvendorinvoiceline"), key=lambda r: r["msdyn_price"])
    assert [(r["msdyn_price"], r["msdyn_amount"]) for r in lines] == [
        (Decimal("99.99"), Decimal("799.92")),
        (Decimal("101.25"), Decimal("810.00")),
    ]
    line = lines[0]
    assert line["msdyn_vendorinvoice"] == header["msdyn_projectvendorinvoiceid"]
    assert (line["msdyn_billingtype"], line["msdyn_transactionclassification"]) == (192350001, 192350000)
    assert line["msdyn_resourcecategory"] and line["msdyn_transactioncategory"] and line["msdyn_project"]
    assert line["msdyn_owningcompany"] == USMF_ID and line["transactioncurrencyid"] == USD_ID
    assert header["msdyn_owningcompany"] == USMF_ID and header["transactioncurrencyid"] == USD_ID
    assert line["msdyn_name"] == "Design day 2" and line["msdyn_verificationstatus"] == 192350000
    [hour] = [r for r in sandbox.dataverse.rows("uom") if r["msdyn_symbol"] == "h"]
    assert line["msdyn_unit"] == hour["uomid"] and line["msdyn_quantity"] == Decimal("8")
    assert await parked(sandbox) == []

    # Nothing went back to Finance for the integration's own write; the manager's confirmation does.
    assert finance_writes(sandbox, "VendInvoiceExportsV2") == []

    def status_in_finance() -> str | None:
        row = sandbox.finance.get(
            "VendInvoiceExportsV2", dataAreaId="usmf", InvoiceAccount="V-100", VendorInvoiceNum="VI-0002"
        )
        return None if row is None else str(row["ProjVendInvoiceStatus"])

    assert status_in_finance() == "InReview"
    async with sandbox.person_dataverse() as dv:
        invoice_url = f"msdyn_projectvendorinvoices({header['msdyn_projectvendorinvoiceid']})"
        await send(dv, "PATCH", invoice_url, {"statuscode": 192350001})
        await sandbox.wait_quiet()
        assert status_in_finance() == "Confirmed"
        # Finance has no rejected status: a rejection puts the invoice back in review, its payment held.
        await send(dv, "PATCH", invoice_url, {"statuscode": 192350002})
        await sandbox.wait_quiet()
    assert status_in_finance() == "InReview"
    writes = finance_writes(sandbox, "VendInvoiceExportsV2")
    assert [m for m, _ in writes] == ["PATCH", "PATCH"]
    assert all("InvoiceAccount='V-100'" in path and "VendorInvoiceNum='VI-0002'" in path for _, path in writes)
    assert await parked(sandbox) == []


async def test_a_bad_line_parks_the_document_naming_it_and_replay_lands_it_whole(posted_setup: Sandbox) -> None:
    sandbox = posted_setup
    await create_vendor(sandbox)
    lines = [vendor_line(n) for n in range(1, 21)]
    lines[13]["TransactionCategoryId"] = "TCN-NEW"  # a category Dataverse does not have yet
    await sandbox.finance.post_vendor_invoice("usmf", vendor_invoice("VI-0003"), lines)
    await sandbox.wait_quiet()
    [(flow, reason, error)] = await parked(sandbox)
    assert (flow, reason) == ("vendor-invoice-lines", "retry-budget-exhausted: missing-dependency")
    # Dataverse's message does not name the value: the error names the failing line by its key.
    assert "msdyn_externalinvoiceline='USMF-00000014'" in error and "msdyn_transactioncategory" in error
    assert sandbox.dataverse.rows("msdyn_projectvendorinvoiceline") == []  # the changeset is atomic

    async with sandbox.person_dataverse() as dv:
        await send(
            dv,
            "POST",
            "msdyn_transactioncategories",
            {"msdyn_name": "New", "msdyn_transactioncategorynumber": "TCN-NEW"},
        )
    assert sandbox.runtime is not None
    chosen = await select_parked(sandbox.runtime, flow="vendor-invoice-lines")
    report = await replay(sandbox.runtime, CATALOG, chosen, by="tester")
    assert len(report.replayed) == 1
    await sandbox.wait_quiet()
    assert len(sandbox.dataverse.rows("msdyn_projectvendorinvoiceline")) == 20
    assert await parked(sandbox) == []


async def test_an_intercompany_line_is_the_invoice_company_s_and_keyed_by_the_project_s(
    posted_setup: Sandbox,
) -> None:
    sandbox = posted_setup
    await create_vendor(sandbox)
    # The project's company (ProjDataAreaId, the key) differs from the invoice's (DAreaId).
    line = {**vendor_line(1), "ProjDataAreaId": "uspi"}
    await sandbox.finance.post_vendor_invoice("usmf", vendor_invoice("VI-0005"), [line, vendor_line(2)])
    await sandbox.wait_quiet()
    lines = sandbox.finance.rows("ProjVendInvoiceLinesExportEntity")
    assert sorted(r["ProjDataAreaId"] for r in lines) == ["usmf", "uspi"]
    rows = sandbox.dataverse.rows("msdyn_projectvendorinvoiceline")
    assert {r["msdyn_externalinvoiceline"] for r in rows} == {r["ProjTransId"] for r in lines}
    assert {r["msdyn_owningcompany"] for r in rows} == {USMF_ID}
    assert await parked(sandbox) == []


async def test_a_5000_line_vendor_invoice_lands_complete_in_ten_changesets(posted_setup: Sandbox) -> None:
    sandbox = posted_setup
    await create_vendor(sandbox)
    lines = [vendor_line(n, price=f"{50 + n % 97}.{n % 100:02d}") for n in range(1, 5001)]
    expected = sum((Decimal(line["PurchPrice"]) * 8 for line in lines), Decimal(0))
    await sandbox.finance.post_vendor_invoice("usmf", vendor_invoice("VI-5000"), lines)
    await sandbox.wait_quiet(limit_seconds=180)

    rows = sandbox.dataverse.rows("msdyn_projectvendorinvoiceline")
    assert len(rows) == 5000  # dual-write stops at 1,000
    assert sum((r["msdyn_amount"] for r in rows), Decimal(0)) == expected
    [header] = sandbox.dataverse.rows("msdyn_projectvendorinvoice")
    assert {r["msdyn_vendorinvoice"] for r in rows} == {header["msdyn_projectvendorinvoiceid"]}
    assert len({r["msdyn_externalinvoiceline"] for r in rows}) == 5000
    line_batches = [r for r in batches(sandbox) if "msdyn_projectvendorinvoicelines" in r.body]
    assert len(line_batches) == 10
    assert await parked(sandbox) == []


async def test_an_invoice_numbered_with_a_slash_lands_whole_by_filter_and_binds(posted_setup: Sandbox) -> None:
    """A vendor's own numbering ("INV/2026/001") cannot be in a key segment: the header is found by
    $filter, created with its vendor bound (the key's `_msdyn_vendor_value` is read-only), and its
    lines find it the same way."""
    sandbox = posted_setup
    await create_vendor(sandbox)
    await sandbox.finance.post_vendor_invoice(
        "usmf", vendor_invoice("INV/2026/001"), [vendor_line(1, price="101.25"), vendor_line(2, price="99.99")]
    )
    await sandbox.wait_quiet()
    assert await parked(sandbox) == []
    [header] = sandbox.dataverse.rows("msdyn_projectvendorinvoice")
    assert (header["msdyn_vendorinvoicenumber"], header["msdyn_vendor"]) == ("INV/2026/001", vendor_account_id(sandbox))
    lines = sandbox.dataverse.rows("msdyn_projectvendorinvoiceline")
    assert len(lines) == 2 and {line["msdyn_vendorinvoice"] for line in lines} == {
        header["msdyn_projectvendorinvoiceid"]
    }
    assert not any("INV/2026" in r.path for r in sandbox.dataverse.requests if r.method == "PATCH")


async def test_a_line_deleted_in_dataverse_is_back_after_a_reconcile_repair(posted_setup: Sandbox) -> None:
    """The document's rows hash the same as when they landed: a repair must send them all the same,
    since reconcile found Dataverse differing from what was last written."""
    sandbox = posted_setup
    assert sandbox.runtime is not None
    await create_vendor(sandbox)
    await sandbox.finance.post_vendor_invoice("usmf", vendor_invoice("VI-0006"), [vendor_line(n) for n in (1, 2, 3)])
    await sandbox.wait_quiet()
    rows = sandbox.dataverse.rows("msdyn_projectvendorinvoiceline")
    landed = {r["msdyn_externalinvoiceline"] for r in rows}
    assert len(landed) == 3
    async with sandbox.person_dataverse() as dv:
        await send(dv, "DELETE", f"msdyn_projectvendorinvoicelines({rows[0]['msdyn_projectvendorinvoicelineid']})")
    await sandbox.wait_quiet()
    assert len(sandbox.dataverse.rows("msdyn_projectvendorinvoiceline")) == 2

    flow = CATALOG.by_name("vendor-invoice-lines")
    report = await reconcile(sandbox.runtime, flow, repair=True)
    assert report.totals["missing"] == 1 and report.repair["sent"] == 1
    await sandbox.wait_quiet()
    assert {r["msdyn_externalinvoiceline"] for r in sandbox.dataverse.rows("msdyn_projectvendorinvoiceline")} == landed
    again = await reconcile(sandbox.runtime, flow)
    assert again.drift == 0 and again.totals["matched"] == 3
    assert await parked(sandbox) == []


async def test_a_line_the_manager_verified_stays_verified_when_its_invoice_is_written_again(
    posted_setup: Sandbox,
) -> None:
    """The verification status is the project manager's once a line is in Dataverse (an invoice is
    confirmed only when every line is verified): a retry, a replay or a repair creates missing lines
    as not verified and leaves the status of every other line alone."""
    sandbox = posted_setup
    assert sandbox.runtime is not None
    await create_vendor(sandbox)
    lines = [vendor_line(n) for n in range(1, 601)]
    lines[549]["TransactionCategoryId"] = "TCN-NEW"  # its changeset, the second of two, waits for it
    await sandbox.finance.post_vendor_invoice("usmf", vendor_invoice("VI-0600"), lines)
    await sandbox.wait_quiet()
    landed = sandbox.dataverse.rows("msdyn_projectvendorinvoiceline")
    assert len(landed) == 500
    verified = landed[0]["msdyn_projectvendorinvoicelineid"]
    async with sandbox.person_dataverse() as dv:
        await send(dv, "PATCH", f"msdyn_projectvendorinvoicelines({verified})", {"msdyn_verificationstatus": 192350002})
        await send(
            dv,
            "POST",
            "msdyn_transactioncategories",
            {"msdyn_name": "New", "msdyn_transactioncategorynumber": "TCN-NEW"},
        )
    chosen = await select_parked(sandbox.runtime, flow="vendor-invoice-lines")
    assert len((await replay(sandbox.runtime, CATALOG, chosen, by="tester")).replayed) == 1
    await sandbox.wait_quiet()

    def statuses() -> dict[str, int]:
        return {
            r["msdyn_projectvendorinvoicelineid"]: r["msdyn_verificationstatus"]
            for r in sandbox.dataverse.rows("msdyn_projectvendorinvoiceline")
        }

    after_replay = statuses()
    assert len(after_replay) == 600 and after_replay.pop(verified) == 192350002
    assert set(after_replay.values()) == {192350000}
    # Nor is the manager's status drift, and a repair of a line deleted meanwhile leaves it alone.
    flow = CATALOG.by_name("vendor-invoice-lines")
    assert (await reconcile(sandbox.runtime, flow)).drift == 0
    gone = next(iter(after_replay))
    async with sandbox.person_dataverse() as dv:
        await send(dv, "DELETE", f"msdyn_projectvendorinvoicelines({gone})")
    await sandbox.wait_quiet()
    assert (await reconcile(sandbox.runtime, flow, repair=True)).repair["sent"] == 1
    await sandbox.wait_quiet()
    after_repair = statuses()
    assert len(after_repair) == 600 and after_repair.pop(verified) == 192350002
    assert set(after_repair.values()) == {192350000}
    assert await parked(sandbox) == []


async def test_a_control_number_past_what_a_version_holds_is_no_version_and_the_invoice_lands_once(
    posted_setup: Sandbox,
) -> None:
    """ControlNumber is Finance's word: taken whole as the version, 2**63 made the state write fail
    after Dataverse was written, so the invoice was written again on every retry and then parked."""
    sandbox = posted_setup
    await create_vendor(sandbox)
    await sandbox.wait_quiet()
    sandbox.finance._control = 2**63 - 1  # the next business event carries 2**63
    await sandbox.finance.post_vendor_invoice("usmf", vendor_invoice("VI-0009"), [vendor_line(1)])
    await sandbox.wait_quiet()
    assert await parked(sandbox) == []
    assert len(sandbox.dataverse.rows("msdyn_projectvendorinvoice")) == 1
    assert len(sandbox.dataverse.rows("msdyn_projectvendorinvoiceline")) == 1
    # Written once: before, every retry of the header's event wrote it again (6 batches here), then parked.
    headers = [b for b in batches(sandbox) if "PATCH /api/data/v9.2/msdyn_projectvendorinvoices(" in b.body]
    assert len(headers) == 1
