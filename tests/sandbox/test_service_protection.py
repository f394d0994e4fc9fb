"""The Dataverse simulator's service protection and bulk messages, and Finance's resource budget,
as the documentation describes them (Service protection API limits; Use bulk operation messages)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from sandbox.dataverse.protection import (
    CONCURRENCY_EXCEEDED,
    EXECUTION_TIME_EXCEEDED,
    REQUESTS_EXCEEDED,
    ServiceProtection,
)
from sandbox.dataverse.server import DataverseSimulator
from sandbox.finance.server import FinanceSimulator
from sandbox.finance.throttling import ResourceBudget
from shared.jsonio import dumps

USER = "5a0d0a55-0000-4000-8000-00000000b002"
OTHER = "5a0d0a55-0000-4000-8000-00000000b003"
WORKER = "Microsoft.Dynamics.CRM.cdm_worker"


@pytest.fixture
async def dataverse() -> AsyncIterator[tuple[DataverseSimulator, httpx.AsyncClient]]:
    sim = DataverseSimulator(users={"t": USER, "o": OTHER})
    await sim.start()
    async with httpx.AsyncClient(base_url=sim.api_url + "/", headers={"Authorization": "Bearer t"}) as client:
        yield sim, client
    await sim.stop()


def _targets(*numbers: str, **extra: Any) -> bytes:
    return dumps(
        {
            "Targets": [
                {"@odata.type": WORKER, "@odata.id": f"cdm_workers(cdm_workernumber='{n}')", "cdm_fullname": n, **extra}
                for n in numbers
            ]
        }
    ).encode()


async def test_upsert_multiple_creates_and_updates_by_alternate_key_and_answers_no_content(dataverse: Any) -> None:
    sim, client = dataverse
    first = await client.post("cdm_workers/Microsoft.Dynamics.CRM.UpsertMultiple", content=_targets("A1", "A2"))
    assert first.status_code == 204 and first.content == b""
    again = await client.post(
        "cdm_workers/Microsoft.Dynamics.CRM.UpsertMultiple",
        content=_targets("A2", "A3", cdm_firstname="Ann"),
    )
    assert again.status_code == 204
    rows = {r["cdm_workernumber"]: r for r in sim.rows("cdm_worker")}
    assert sorted(rows) == ["A1", "A2", "A3"]
    assert rows["A2"]["cdm_firstname"] == "Ann" and rows["A1"].get("cdm_firstname") is None


async def test_one_bad_row_rolls_back_a_whole_bulk_request_on_a_standard_table(dataverse: Any) -> None:
    sim, client = dataverse
    body = dumps(
        {
            "Targets": [
                {"@odata.type": WORKER, "@odata.id": "cdm_workers(cdm_workernumber='B1')", "cdm_fullname": "ok"},
                {"@odata.type": WORKER, "@odata.id": "cdm_workers(cdm_workernumber='B2')", "cdm_fulname": "typo"},
            ]
        }
    )
    response = await client.post("cdm_workers/Microsoft.Dynamics.CRM.UpsertMultiple", content=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "0x80060888"
    assert "cdm_fulname" in response.json()["error"]["message"]
    assert sim.rows("cdm_worker") == []


async def test_bulk_targets_must_carry_their_type_and_create_multiple_answers_the_ids(dataverse: Any) -> None:
    sim, client = dataverse
    untyped = await client.post(
        "cdm_workers/Microsoft.Dynamics.CRM.CreateMultiple", content=dumps({"Targets": [{"cdm_workernumber": "C1"}]})
    )
    assert untyped.status_code == 400 and "@odata.type" in untyped.json()["error"]["message"]
    created = await client.post(
        "cdm_workers/Microsoft.Dynamics.CRM.CreateMultiple",
        content=dumps({"Targets": [{"@odata.type": WORKER, "cdm_workernumber": f"C{n}"} for n in range(3)]}),
    )
    assert created.status_code == 200
    ids = created.json()["Ids"]
    assert sorted(ids) == sorted(r["cdm_workerid"] for r in sim.rows("cdm_worker")) and len(ids) == 3


async def test_the_request_limit_refuses_with_its_code_and_retry_after_per_identity(dataverse: Any) -> None:
    sim, client = dataverse
    sim.set_service_protection(ServiceProtection(window_seconds=2.0, max_requests=3, max_execution_seconds=100))
    for _ in range(3):
        assert (await client.get("cdm_workers")).status_code == 200
    refused = await client.get("cdm_workers")
    assert refused.status_code == 429
    assert refused.json()["error"] == {
        "code": REQUESTS_EXCEEDED,
        "message": "Number of requests exceeded the limit of 3 over time window of 2 seconds.",
    }
    assert 1 <= int(refused.headers["Retry-After"]) <= 2
    # Each identity has its own budget.
    assert (await client.get("cdm_workers", headers={"Authorization": "Bearer o"})).status_code == 200
    await asyncio.sleep(2.05)
    assert (await client.get("cdm_workers")).status_code == 200


async def test_execution_time_and_concurrency_limits_refuse_with_their_codes(dataverse: Any) -> None:
    sim, client = dataverse
    sim.set_service_protection(
        ServiceProtection(window_seconds=5.0, max_requests=100, max_execution_seconds=0.3, max_concurrent=2, row_ms=200)
    )
    answers = await asyncio.gather(*(client.get("cdm_workers") for _ in range(3)))
    assert sorted(a.status_code for a in answers) == [200, 200, 429]
    busy = next(a for a in answers if a.status_code == 429)
    assert busy.json()["error"] == {
        "code": CONCURRENCY_EXCEEDED,
        "message": "Number of concurrent requests exceeded the limit of 2.",
    }
    # Two requests of 200 ms spent the 0.3 s of the window: the next is refused for its execution time.
    spent = await client.get("cdm_workers")
    assert spent.status_code == 429
    assert spent.json()["error"]["code"] == EXECUTION_TIME_EXCEEDED
    assert spent.json()["error"]["message"].startswith(
        "Combined execution time of incoming requests exceeded limit of 300 milliseconds over time window of 5 seconds."
    )
    assert int(spent.headers["Retry-After"]) >= 1


def test_scaled_limits_keep_the_documented_rates() -> None:
    limits = ServiceProtection.scaled(0.01, row_ms=4.0)
    assert (limits.window_seconds, limits.max_requests, limits.max_execution_seconds) == (3.0, 60, 12.0)
    # 500 rows of 4 ms are 2 s of work: 4 busy seconds a second allow 1,000 rows a second.
    assert limits.ceiling_rows_per_second(500) == pytest.approx(1000.0)
    # One row a request: 20 requests a second.
    assert ServiceProtection.scaled(0.01, row_ms=1.0).ceiling_rows_per_second(1) == pytest.approx(20.0)


async def test_finance_answers_429_with_retry_after_past_its_resource_budget() -> None:
    sim = FinanceSimulator(users={"t": "aa000000-0000-4000-8000-000000000001"})
    sim.budget = ResourceBudget(units_per_second=1.0, burst=2.0)
    await sim.start()
    try:
        async with httpx.AsyncClient(base_url=sim.data_url + "/", headers={"Authorization": "Bearer t"}) as client:
            statuses = [(await client.get("Workers")).status_code for _ in range(3)]
            assert statuses == [200, 200, 429]
            refused = await client.get("Workers")
            assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
            assert "high resource utilization" in refused.json()["error"]["message"]
    finally:
        await sim.stop()


async def test_finance_charges_a_batch_per_operation_whatever_its_changesets() -> None:
    """A $batch of one changeset per row costs what the rows would alone: batching saves round trips,
    not Finance's resources."""
    from tests.sandbox.test_simulators import CONTINUE, finance_changesets

    sim = FinanceSimulator(users={"t": "aa000000-0000-4000-8000-000000000001"})
    sim.budget = ResourceBudget(units_per_second=0.01, burst=5.0)
    await sim.start()
    try:
        async with httpx.AsyncClient(base_url=sim.data_url + "/", headers={"Authorization": "Bearer t"}) as client:
            rows = [{"dataAreaId": "usmf", "ProjectId": f"T-{n}"} for n in range(4)]
            first = await client.post("$batch", content=finance_changesets(*rows), headers=CONTINUE)
            assert first.status_code == 200 and len(sim.rows("ProjectsV2")) == 4
            # One unit left: a batch of two changesets is refused whole, before any of it runs.
            rows = [{"dataAreaId": "usmf", "ProjectId": f"U-{n}"} for n in range(2)]
            second = await client.post("$batch", content=finance_changesets(*rows), headers=CONTINUE)
            assert second.status_code == 429 and len(sim.rows("ProjectsV2")) == 4
    finally:
        await sim.stop()
