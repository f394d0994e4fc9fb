"""Finance refusing a write for another process's sake (an update conflict, a deadlock) is contention,
not a refusal of the row: the write is made again and lands, never parked as rejected."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from sandbox.finance.server import FinanceSimulator
from shared.clients.finance import classify
from shared.errors import PermanentServiceError, TransientServiceError
from shared.outcomes import OutcomeKind
from tests.integration.test_client_answers import TOKEN, USER, flow, role_event, settings

WRITE_EXCEPTION = "Microsoft.Dynamics.Platform.Integration.Services.OData.AxODataWriteException"


@pytest.fixture
async def simulator() -> AsyncIterator[FinanceSimulator]:
    finance = FinanceSimulator(users={TOKEN: USER})
    await finance.start()
    yield finance
    await finance.stop()


def _roles(finance: FinanceSimulator) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in finance.requests if r.path.startswith("/data/ResourceCategoriesShared")]


@pytest.mark.parametrize("kind", ["update-conflict", "deadlock"])
async def test_a_write_refused_by_contention_is_made_again_and_lands(simulator: FinanceSimulator, kind: str) -> None:
    simulator.contend(kind)
    async with flow(settings(finance_url=simulator.url)) as run:
        outcome = await run.run(role_event())
        assert await run.state.list_parked() == []
    assert outcome.kind is OutcomeKind.WRITTEN
    assert [status for status in (r.status for r in simulator.requests if r.method == "POST")] == [400, 201]
    [row] = simulator.rows("ResourceCategoriesShared")
    assert row["RoleId"] == "ARCH" and row["Description"] == "Architect"


@pytest.mark.parametrize("kind", ["update-conflict", "deadlock"])
async def test_lasting_contention_is_retried_later_not_parked(simulator: FinanceSimulator, kind: str) -> None:
    simulator.contend(*[kind] * 10)
    async with flow(settings(finance_url=simulator.url)) as run:
        outcome = await run.run(role_event())
        assert await run.state.list_parked() == []
    assert outcome.kind is OutcomeKind.RETRY_LATER
    assert "Cannot edit a record in" in (outcome.detail or "")
    assert simulator.rows("ResourceCategoriesShared") == []


def _answer(status: int, inner: str) -> httpx.Response:
    error = {"code": "", "message": "An error has occurred.", "innererror": {"message": inner, "type": WRITE_EXCEPTION}}
    body = {"error": error}
    return httpx.Response(status, json=body, request=httpx.Request("PATCH", "https://finance.example/data/X"))


@pytest.mark.parametrize(
    "inner",
    [
        # As captured from a Finance OData write, without the "Infolog:" lead.
        "Write failed for table row of type 'VendInvoiceJournalLineEntity'. Cannot edit a record in Ledger journal "
        "table (LedgerJournalTable). An update conflict occurred due to another user process deleting the record "
        "or changing one or more fields in the record.",
        # X++'s Deadlock exception, which X++ code itself answers with `retry`.
        "Write failed for table row of type 'ProjTableEntity'. Infolog: Error: Cannot create a record in Projects "
        "(ProjTable). Deadlock, where one or more users have simultaneously locked the whole table or part of it.",
    ],
    ids=["update-conflict", "deadlock"],
)
@pytest.mark.parametrize("status", [400, 500])
def test_contention_is_transient_whatever_the_status(inner: str, status: int) -> None:
    assert isinstance(classify(_answer(status, inner)), TransientServiceError)


def test_a_refusal_of_the_row_stays_permanent() -> None:
    inner = "Write failed for table row of type 'ProjTableEntity'. Infolog: Error: Line property X doesn't exist."
    assert type(classify(_answer(400, inner))) is PermanentServiceError
