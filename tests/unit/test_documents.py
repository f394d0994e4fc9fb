"""Unit tests of the document path and the pieces it rests on: keys, $batch answers, row selection."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from functions import expenses
from shared.cache import TtlCache
from shared.clients.base import key_segment
from shared.clients.batch import parse_batch_response
from shared.errors import MappingError
from shared.events import ChangeEvent, Operation, Source
from shared.maps import Document
from shared.outcomes import MISSING_DEPENDENCY, UNCHANGED, OutcomeKind
from shared.pipeline import Engine, apply_event, source_key
from tests.unit.fakes import FakeDataverse, FakeFinance, MemoryState
from tests.unit.test_pipeline import USD, USMF, make_settings

TRAVEL = "a0000000-0000-4000-8000-000000000001"


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


def report_event(report: str = "EXP-1", **extra: Any) -> ChangeEvent:
    return ChangeEvent(
        event_id="e1",
        source=Source.FINANCE,
        entity="ExpenseReportPostedBusinessEvent",
        operation=Operation.UPSERT,
        key=f"USMF|{report}",
        company="USMF",
        record={"ExpenseReportId": report, "LegalEntity": "usmf", **extra},
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
    finance = FakeFinance(key_fields={"ProjExpenseExports": ("dataAreaId", "ExpenseReportId", "LineNumber")})
    return Engine(make_settings(), dataverse, finance, MemoryState(), TtlCache(60))


def expense_row(line: int, project: str, amount: str) -> dict[str, Any]:
    return {
        "dataAreaId": "usmf",
        "ExpenseReportId": "EXP-1",
        "LineNumber": line,
        "ProjTransId": f"USMF-{line:08d}",
        "ProjectId": project,
        "CategoryId": "Travel",
        "TransDate": "2026-11-20T12:00:00Z",
        "Amount": Decimal(amount),
        "CurrencyCode": "USD",
        "Description": "Line",
    }


async def test_a_document_is_written_once_and_its_key_is_company_and_members(engine: Engine) -> None:
    finance, dataverse = engine.finance, engine.dataverse
    assert isinstance(finance, FakeFinance) and isinstance(dataverse, FakeDataverse)
    finance.add("ProjExpenseExports", expense_row(1, "PRJ-1", "10.05"))
    finance.add("ProjExpenseExports", expense_row(2, "", "3.00"))
    assert source_key(expenses.MAP, report_event()) == "USMF|EXP-1"

    outcome = await apply_event(engine, expenses.MAP, report_event())
    assert (outcome.kind, outcome.writes) == (OutcomeKind.WRITTEN, 1)
    [(entity_set, mode, key, body)] = dataverse.writes
    assert (entity_set, mode, key) == ("msdyn_expenses", "upsert", {"msdyn_externalexpenseline": "USMF-00000001"})
    assert body["msdyn_amount"] == Decimal("10.05")
    assert body["msdyn_expensecategory@odata.bind"] == f"/msdyn_expensecategories({TRAVEL})"
    assert body["msdyn_project@odata.bind"] == "/msdyn_projects(msdyn_projectnumber='PRJ-1')"

    again = await apply_event(engine, expenses.MAP, report_event())
    assert (again.kind, again.reason) == (OutcomeKind.SKIPPED, UNCHANGED) and len(dataverse.writes) == 1


async def test_a_document_not_yet_readable_is_retried(engine: Engine) -> None:
    outcome = await apply_event(engine, expenses.MAP, report_event("EXP-2"))
    assert (outcome.kind, outcome.reason) == (OutcomeKind.RETRY_LATER, MISSING_DEPENDENCY)


def test_an_event_without_its_document_member_cannot_be_keyed() -> None:
    event = report_event().model_copy(update={"record": {"LegalEntity": "usmf"}})
    with pytest.raises(MappingError, match="has no ExpenseReportId"):
        source_key(expenses.MAP, event)
