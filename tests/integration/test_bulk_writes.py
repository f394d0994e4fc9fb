"""Bulk writes under a backlog and throttle-aware concurrency, through the real flows and clients."""

from __future__ import annotations

import asyncio
import json

import pytest

from functions.catalog import CATALOG
from sandbox.dataverse.protection import ServiceProtection
from sandbox.environment import Sandbox, SandboxOptions
from sandbox.odata import LoggedRequest
from shared.operations.initial_sync import initial_sync
from shared.operations.pause import pause, resume
from tests.integration.conftest import parked

UPSERT_MULTIPLE = "/Microsoft.Dynamics.CRM.UpsertMultiple"


def bulk_requests(sandbox: Sandbox, entity_set: str) -> list[LoggedRequest]:
    return [r for r in sandbox.dataverse.requests if r.path.endswith(f"/{entity_set}{UPSERT_MULTIPLE}")]


async def feed_backlog(sandbox: Sandbox, flows: list[str]) -> None:
    """What an initial sync is: the flows paused, every source row fed, then the flows let go at once."""
    assert sandbox.runtime is not None and sandbox.runtime.switch is not None
    maps = [CATALOG.by_name(name) for name in flows]
    for table_map in maps:
        await pause(sandbox.runtime.switch, table_map)
    for table_map in maps:
        await initial_sync(sandbox.runtime, table_map)
    for table_map in maps:
        await resume(sandbox.runtime.switch, table_map)


@pytest.fixture
def options() -> SandboxOptions:
    # Enough sessions at once, and a service slow enough, for rows to wait for it together.
    return SandboxOptions(max_concurrent_sessions=32, dataverse_faults={"latency_ms": 40})


async def test_a_bulk_request_with_one_bad_row_lands_the_others_and_parks_that_one(sandbox: Sandbox) -> None:
    for n in range(60):
        sandbox.finance.seed("LegalEntities", {"LegalEntityId": f"B{n:03d}", "Name": f"Company {n}"})
    # Dataverse's company code holds 10 characters; Finance's id is longer.
    sandbox.finance.seed("LegalEntities", {"LegalEntityId": "TOOLONGCODE1", "Name": "Too long"})
    await feed_backlog(sandbox, ["legal-entities"])
    await sandbox.wait_quiet(120)

    companies = {row["cdm_companycode"] for row in sandbox.dataverse.rows("cdm_company")}
    assert {f"B{n:03d}" for n in range(60)} <= companies
    assert "TOOLONGCODE1" not in companies
    bulk = bulk_requests(sandbox, "cdm_companies")
    assert any(r.status == 204 for r in bulk), "no UpsertMultiple landed: the rows went one by one"
    assert any(r.status == 400 and "TOOLONGCODE1" in r.body for r in bulk), "the bad row never went in bulk"
    problems = await parked(sandbox)
    assert len(problems) == 1
    flow, reason, error = problems[0]
    assert (flow, reason) == ("legal-entities", "rejected-by-target")
    assert "cdm_companycode" in error and "maximum allowed length of '10'" in error


async def test_order_per_record_holds_under_bulk_writes(sandbox: Sandbox) -> None:
    """Fifty records written five times each, every record's writes one after the other (as its
    session delivers them) and all records at once: Dataverse receives each record's versions in order."""
    assert sandbox.runtime is not None
    dataverse = sandbox.runtime.engine.dataverse

    async def record(n: int) -> None:
        for version in range(1, 6):
            await dataverse.write("cdm_workers", {"cdm_workernumber": f"W{n:03d}"}, {"cdm_fullname": f"v{version}"})

    await asyncio.gather(*(record(n) for n in range(50)))

    received: dict[str, list[str]] = {}
    for request in sandbox.dataverse.requests:
        if request.method == "PATCH" and request.path.startswith("/api/data/v9.2/cdm_workers("):
            number = request.path.split("'")[1]
            received.setdefault(number, []).append(json.loads(request.body)["cdm_fullname"])
        elif request.path.endswith(f"/cdm_workers{UPSERT_MULTIPLE}") and request.status == 204:
            for target in json.loads(request.body)["Targets"]:
                number = target["@odata.id"].split("'")[1]
                received.setdefault(number, []).append(target["cdm_fullname"])
    assert bulk_requests(sandbox, "cdm_workers"), "the writes never waited together"
    assert received == {f"W{n:03d}": [f"v{v}" for v in range(1, 6)] for n in range(50)}
    assert {row["cdm_workernumber"]: row["cdm_fullname"] for row in sandbox.dataverse.rows("cdm_worker")} == {
        f"W{n:03d}": "v5" for n in range(50)
    }


@pytest.mark.parametrize(
    "options",
    [
        SandboxOptions(
            max_concurrent_sessions=64,
            # 3 s windows of 60 requests and 4 s of work, at most 2 at once, 30 ms a row. The client's
            # limiter starts at 8 in flight, so the first burst of a backlog meets the concurrency limit
            # on any machine; limits that are only rates (6 at once, 12 s of work) were met on a fast
            # machine and missed on a slow one, where rows reached the writer too slowly to overlap.
            dataverse_protection=ServiceProtection(
                window_seconds=3.0, max_requests=60, max_execution_seconds=4.0, max_concurrent=2, row_ms=30
            ),
            http_max_retries=8,
            extra_settings={"http_max_retry_wait_seconds": 5.0},
        )
    ],
)
async def test_two_flows_sharing_a_throttled_identity_both_progress(sandbox: Sandbox) -> None:
    for n in range(300):
        sandbox.finance.seed("Workers", {"PersonnelNumber": f"P{n:04d}", "FirstName": "Pat", "Name": f"Pat {n}"})
        sandbox.finance.seed("LegalEntities", {"LegalEntityId": f"C{n:03d}", "Name": f"Company {n}"})
    meter = sandbox.dataverse.protection
    assert meter is not None
    await feed_backlog(sandbox, ["workers", "legal-entities"])
    await sandbox.wait_quiet(180)

    assert len(sandbox.dataverse.rows("cdm_worker")) == 300
    assert (
        len({r["cdm_companycode"] for r in sandbox.dataverse.rows("cdm_company")} & {f"C{n:03d}" for n in range(300)})
        == 300
    )
    assert await parked(sandbox) == []
    assert meter.counts.refused, "the limits never took effect: nothing was under test"
    # Both flows wrote while the other still had rows to write: neither waited for the other to finish.
    writes = [
        (r.at, "workers" if "cdm_workers" in r.path else "companies")
        for r in sandbox.dataverse.requests
        if r.method in ("PATCH", "POST") and r.status < 300 and ("cdm_workers" in r.path or "cdm_companies" in r.path)
    ]
    last = {flow: max(at for at, f in writes if f == flow) for flow in ("workers", "companies")}
    first = {flow: min(at for at, f in writes if f == flow) for flow in ("workers", "companies")}
    assert first["workers"] < last["companies"] and first["companies"] < last["workers"]
