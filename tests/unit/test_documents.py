"""Unit tests of the document path and the pieces it rests on: keys, $batch answers, row selection."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functions import expenses, vendor_invoice_lines, vendor_invoices
from functions.catalog import CATALOG
from sandbox.finance.schema import BEHAVIOUR
from shared.cache import TtlCache
from shared.clients.base import key_segment
from shared.clients.batch import parse_batch_response
from shared.errors import MappingError
from shared.events import ChangeEvent, Operation, Source
from shared.key_text import join_key_parts, split_key_parts
from shared.maps import Document, Registry
from shared.operations.finance_events import activations
from shared.outcomes import FILTERED, MISSING_DEPENDENCY, UNCHANGED, OutcomeKind
from shared.pipeline import Engine, apply_event, source_key
from tests.unit.fakes import FakeDataverse, FakeFinance, MemoryState
from tests.unit.test_ground_truth import finance_problems
from tests.unit.test_pipeline import USD, USMF, make_settings

TRAVEL = "a0000000-0000-4000-8000-000000000001"
VENDOR = "a0000000-0000-4000-8000-0000000000a1"
INVOICE = "a0000000-0000-4000-8000-0000000000b1"


def test_a_lookup_column_alone_as_the_key_is_named_not_taken_for_the_id() -> None:
    company = "c0000000-0000-4000-8000-000000000001"
    assert key_segment({"_msdyn_company_value": company}, guid_primary=True) == f"(_msdyn_company_value={company})"
    assert key_segment({"msdyn_ledgerid": company}, guid_primary=True) == f"({company})"


def test_a_failed_changeset_answer_says_which_request_failed() -> None:
    body = (
        "--batchresponse_1f2e\r\nContent-Type: multipart/mixed; boundary=changesetresponse_9a8b\r\n\r\n"
        "--changesetresponse_9a8b\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
        "Content-ID: 14\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n\r\n"
        '{"error":{"code":"0x80060891","message":"A record with the specified key values does not exist"}}\r\n'
        "--changesetresponse_9a8b--\r\n--batchresponse_1f2e--\r\n"
    )
    [part] = parse_batch_response(body.encode(), "multipart/mixed; boundary=batchresponse_1f2e")
    assert (part.status, part.content_id, part.body["error"]["code"]) == (404, "14", "0x80060891")


def test_document_rows_are_selected_by_company_and_members_with_quotes_doubled() -> None:
    document = Document("Lines", (("InvoiceId", "VendorInvoiceNum"),))
    assert document.rows_filter("USMF", {"InvoiceId": "O'Brien-7"}) == (
        "dataAreaId eq 'usmf' and VendorInvoiceNum eq 'O''Brien-7'"
    )


def test_vendor_invoice_rows_are_selected_by_each_entity_s_own_company_field() -> None:
    members = {"InvoiceId": "VI-1", "InvoiceAccount": "V-100"}
    lines = vendor_invoice_lines.MAP.document
    header = vendor_invoices.MAP.document
    assert lines is not None and header is not None
    # The line entity has no dataAreaId: the invoice's company is DAreaId (ProjDataAreaId is the project's).
    assert lines.rows_filter("USMF", members) == (
        "DAreaId eq 'usmf' and VendorInvoiceNum eq 'VI-1' and InvoiceAccount eq 'V-100'"
    )
    assert header.rows_filter("USMF", members) == (
        "dataAreaId eq 'usmf' and VendorInvoiceNum eq 'VI-1' and InvoiceAccount eq 'V-100'"
    )
    assert header.only_if_any == ("ProjVendInvoiceLinesExportEntity", "ProjId ne ''")
    assert header.rows_filter("USMF", members, header.only_if_company_field).startswith("DAreaId eq 'usmf' and ")


def test_check_maps_names_a_document_selector_the_rows_do_not_have() -> None:
    header = vendor_invoices.MAP.document
    assert header is not None and header.only_if_any is not None
    guessed = replace(
        vendor_invoices.MAP,
        document=replace(header, only_if_any=(header.only_if_any[0], "ProjectId ne ''"), only_if_company_field="x"),
    )
    found = {(p.what, p.name) for p in finance_problems(Registry((guessed,)))}
    assert found == {
        ("document field", "ProjVendInvoiceLinesExportEntity.ProjectId"),
        ("document field", "ProjVendInvoiceLinesExportEntity.x"),
    }
    lines = vendor_invoice_lines.MAP
    assert lines.document is not None
    wrong_company = replace(lines, document=replace(lines.document, company_field="dataAreaId"))
    assert [(p.what, p.name) for p in finance_problems(Registry((wrong_company,)))] == [
        ("document field", "ProjVendInvoiceLinesExportEntity.dataAreaId")
    ]


def invoice_event(number: str = "VI-1", record_override: dict[str, Any] | None = None, **extra: Any) -> ChangeEvent:
    return ChangeEvent(
        event_id="e1",
        source=Source.FINANCE,
        entity="VendorInvoicePostedBusinessEvent",
        operation=Operation.UPSERT,
        key=f"USMF|{number}|V-100",
        company="USMF",
        record={
            "InvoiceId": number,
            "InvoiceAccount": "V-100",
            "LegalEntity": "usmf",
            **extra,
            **(record_override or {}),
        },
        version=7,
    )


@pytest.fixture
def engine() -> Engine:
    dataverse = FakeDataverse()
    dataverse.add("cdm_companies", USMF, {"cdm_companyid": USMF, "cdm_companycode": "USMF"})
    dataverse.add(
        "msdyn_expensecategories",
        TRAVEL,
        {"msdyn_expensecategoryid": TRAVEL, "msdyn_name": "Travel", "_msdyn_owningcompany_value": USMF},
    )
    dataverse.add("transactioncurrencies", USD, {"transactioncurrencyid": USD, "isocurrencycode": "USD"})
    dataverse.add("accounts", VENDOR, {"accountid": VENDOR, "accountnumber": "V-100", "_msdyn_company_value": USMF})
    dataverse.add(
        "msdyn_projectvendorinvoices",
        INVOICE,
        {"msdyn_projectvendorinvoiceid": INVOICE, "msdyn_vendorinvoicenumber": "VI-1", "_msdyn_vendor_value": VENDOR},
    )
    finance = FakeFinance(
        key_fields={
            "ProjVendInvoiceLinesExportEntity": ("ProjTransId", "ProjDataAreaId"),
            "ProjExpensesExport": ("ExpTransNumber", "ReferenceDataAreaId"),
        }
    )
    return Engine(make_settings(), dataverse, finance, MemoryState(), TtlCache(60))


def invoice_line(number: int, project: str, amount: str) -> dict[str, Any]:
    return {
        "ProjTransId": f"USMF-{number:08d}",
        "ProjDataAreaId": "usmf",
        "DAreaId": "usmf",
        "VendorInvoiceNum": "VI-1",
        "InvoiceAccount": "V-100",
        "ProjId": project,
        "CategoryType": "Cost",
        "BillingType": "Chargeable",
        "QtyReceiveNow": Decimal("1"),
        "PurchPrice": Decimal(amount),
        "LineAmount": Decimal(amount),
        "currencyCode": "USD",
        "RoleId": "",
        "TransactionCategoryId": "TCN-1",
        "PurchUnit": "ea",
        "Description": "Line",
    }


async def test_a_document_is_written_once_and_its_key_is_company_and_members(engine: Engine) -> None:
    finance, dataverse = engine.finance, engine.dataverse
    assert isinstance(finance, FakeFinance) and isinstance(dataverse, FakeDataverse)
    finance.add("ProjVendInvoiceLinesExportEntity", invoice_line(1, "PRJ-1", "10.05"))
    finance.add("ProjVendInvoiceLinesExportEntity", invoice_line(2, "", "3.00"))
    assert source_key(vendor_invoice_lines.MAP, invoice_event()) == "USMF|VI-1|V-100"

    outcome = await apply_event(engine, vendor_invoice_lines.MAP, invoice_event())
    assert (outcome.kind, outcome.writes) == (OutcomeKind.WRITTEN, 1)
    [(entity_set, mode, key, body)] = dataverse.writes
    assert (entity_set, mode, key) == (
        "msdyn_projectvendorinvoicelines",
        "upsert",
        {"msdyn_externalinvoiceline": "USMF-00000001"},
    )
    assert (body["msdyn_amount"], body["msdyn_transactionclassification"]) == (Decimal("10.05"), 192350001)
    assert body["msdyn_vendorinvoice@odata.bind"] == f"/msdyn_projectvendorinvoices({INVOICE})"
    assert body["msdyn_project@odata.bind"] == "/msdyn_projects(msdyn_projectnumber='PRJ-1')"
    assert body["transactioncurrencyid@odata.bind"] == "/transactioncurrencies(isocurrencycode='USD')"
    assert body["msdyn_owningcompany@odata.bind"] == "/cdm_companies(cdm_companycode='USMF')"

    again = await apply_event(engine, vendor_invoice_lines.MAP, invoice_event())
    assert (again.kind, again.reason) == (OutcomeKind.SKIPPED, UNCHANGED) and len(dataverse.writes) == 1


async def test_a_document_not_yet_readable_is_retried(engine: Engine) -> None:
    outcome = await apply_event(engine, vendor_invoice_lines.MAP, invoice_event("VI-2"))
    assert (outcome.kind, outcome.reason) == (OutcomeKind.RETRY_LATER, MISSING_DEPENDENCY)


def test_an_event_without_its_document_member_cannot_be_keyed() -> None:
    event = invoice_event().replace(record={"InvoiceAccount": "V-100", "LegalEntity": "usmf"})
    with pytest.raises(MappingError, match="has no InvoiceId"):
        source_key(vendor_invoice_lines.MAP, event)


def expense_row(number: str, project: str = "PRJ-1", **changes: Any) -> dict[str, Any]:
    """A posted line as ProjExpensesExport holds it."""
    return {
        "ExpTransNumber": number,
        "ReferenceDataAreaId": "usmf",
        "ProjTransId": f"USMF-{number[-3:]}",
        "ProjId": project,
        "CostType": "Travel",
        "TransDate": "2026-11-20T12:00:00Z",
        "Quantity": Decimal("1"),
        "Amount": Decimal("120.00"),
        "TaxAmount": Decimal("9.60"),
        "ExchangeCode": "USD",
        "AdditionalInformation": "Taxi to the client",
        **changes,
    }


def expense_event(row: dict[str, Any]) -> ChangeEvent:
    """The line's Created data event, with the lower-cased names Finance's virtual entity has."""
    return ChangeEvent(
        event_id=f"x-{row['ExpTransNumber']}",
        source=Source.FINANCE,
        entity="projexpenseexportentity",
        operation=Operation.CREATE,
        key="",
        record={name.lower(): value for name, value in row.items()},
    )


async def test_an_expense_line_is_synced_alone_keyed_as_finance_keys_it(engine: Engine) -> None:
    dataverse, finance = engine.dataverse, engine.finance
    assert isinstance(dataverse, FakeDataverse) and isinstance(finance, FakeFinance)
    finance.add("ProjExpensesExport", expense_row("EXP-001"))
    # The event's copy is older than the row Finance holds now: the row is what lands.
    event = expense_event(expense_row("EXP-001", AdditionalInformation="Taxi", Amount=Decimal("100.00")))
    # No dataAreaId and no report: the line's own key, its company upper-cased like every company.
    key = source_key(expenses.MAP, event)
    assert key == "EXP-001|USMF"
    outcome = await apply_event(engine, expenses.MAP, event.for_flow("expenses", key))
    assert (outcome.kind, outcome.writes) == (OutcomeKind.WRITTEN, 1)
    [(entity_set, mode, target_key, body)] = dataverse.writes
    assert (entity_set, mode, target_key) == ("msdyn_expenses", "upsert", {"msdyn_externalexpenseline": "USMF-001"})
    assert body == {
        "msdyn_name": "Taxi to the client",
        "msdyn_externaldescription": "Taxi to the client",
        "msdyn_transactiondate": "2026-11-20",
        "msdyn_quantity": Decimal("1"),
        "msdyn_amount": Decimal("120.00"),
        "msdyn_salestaxamount": Decimal("9.60"),
        "msdyn_expensestatus": 192350004,
        "msdyn_owningcompany@odata.bind": "/cdm_companies(cdm_companycode='USMF')",
        "msdyn_project@odata.bind": "/msdyn_projects(msdyn_projectnumber='PRJ-1')",
        "msdyn_expensecategory@odata.bind": f"/msdyn_expensecategories({TRAVEL})",
        "transactioncurrencyid@odata.bind": "/transactioncurrencies(isocurrencycode='USD')",
    }

    # The line is read by its own key: the company part in lower case, as Finance writes it.
    assert ("GET", "ProjExpensesExport", {"ExpTransNumber": "EXP-001", "ReferenceDataAreaId": "usmf"}) in finance.calls

    again = await apply_event(engine, expenses.MAP, event.for_flow("expenses", key))
    assert (again.kind, again.reason) == (OutcomeKind.SKIPPED, UNCHANGED) and len(dataverse.writes) == 1


async def test_an_expense_line_without_a_project_stays_in_finance(engine: Engine) -> None:
    assert isinstance(engine.finance, FakeFinance)
    engine.finance.add("ProjExpensesExport", expense_row("EXP-002", project=""))
    event = expense_event(expense_row("EXP-002", project=""))
    outcome = await apply_event(engine, expenses.MAP, event.for_flow("expenses", source_key(expenses.MAP, event)))
    assert (outcome.kind, outcome.reason) == (OutcomeKind.SKIPPED, FILTERED)
    assert isinstance(engine.dataverse, FakeDataverse) and engine.dataverse.writes == []


def test_finance_events_name_what_the_administrator_activates_for_the_document_flows() -> None:
    flows = ("expense-categories", "expenses", "vendor-invoices", "vendor-invoice-lines", "vendor-invoice-status")
    found = {
        (a.flow, a.kind, a.name, a.messages)
        for a in activations(Registry(tuple(CATALOG.by_name(name) for name in flows)))
    }
    assert found == {
        ("expense-categories", "data event", "ProjExpenseCategoryExportEntity", ("Created", "Updated", "Deleted")),
        # No expense-report business event exists: each posted line's data event; lines are never deleted.
        ("expenses", "data event", "ProjExpenseExportEntity", ("Created", "Updated")),
        ("vendor-invoices", "business event", "VendorInvoicePostedBusinessEvent", ()),
        ("vendor-invoice-lines", "business event", "VendorInvoicePostedBusinessEvent", ()),
    }
    # The simulator, like Finance, names a data event after the entity's AOT name.
    assert BEHAVIOUR["ProjExpensesExport"].aot == expenses.MAP.source.entity
    assert BEHAVIOUR["ProjExpenseCategoriesExport"].aot == CATALOG.by_name("expense-categories").source.entity


def test_two_documents_whose_members_hold_the_separator_keep_two_keys() -> None:
    """("VI|1", "V") and ("VI", "1|V") joined plainly were one key: one state row, one session."""
    first = invoice_event(record_override={"InvoiceId": "VI|1", "InvoiceAccount": "V"})
    second = invoice_event(record_override={"InvoiceId": "VI", "InvoiceAccount": "1|V"})
    keys = [source_key(vendor_invoice_lines.MAP, event) for event in (first, second)]
    assert keys == ["USMF|VI\\|1|V", "USMF|VI|1\\|V"]
    assert [split_key_parts(key) for key in keys] == [["USMF", "VI|1", "V"], ["USMF", "VI", "1|V"]]


@given(st.lists(st.text(alphabet="ab|\\", max_size=4), min_size=1, max_size=4))
def test_key_parts_come_back_as_they_were_joined(parts: list[str]) -> None:
    assert split_key_parts(join_key_parts(parts)) == parts
