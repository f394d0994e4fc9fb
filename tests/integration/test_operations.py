"""The operations an administrator runs, against the sandbox: initial sync, pause/resume, status,
check-maps, register-steps and the admin HTTP functions."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

import httpx
import pytest

from functions import actuals
from functions.catalog import CATALOG
from sandbox.bus import LocalMessage
from sandbox.demo_documents import expense_line
from sandbox.environment import Sandbox, SandboxOptions
from sandbox.scenario import actual_body
from shared.bus import DATAVERSE_TOPIC, FINANCE_QUEUE
from shared.console.output import status_text
from shared.errors import OperatorError
from shared.maps import FieldMap, FieldType, Registry, ValueMap
from shared.operations import initial_sync as initial_sync_module
from shared.operations.check_maps import check_maps
from shared.operations.initial_sync import initial_sync, latest_unfinished
from shared.operations.metadata import parse_metadata
from shared.operations.pause import pause, resume
from shared.operations.register_steps import EndpointConfig, register_steps
from shared.operations.status import flow_statuses
from shared.operations.views import plain
from shared.routing import DATAVERSE_ROUTER, FINANCE_ROUTER
from tests.integration.conftest import finance_writes, send, started
from tests.integration.test_finance_batch import finance_received
from tests.integration.test_flows import PROJECT, create_project, project_body


async def test_initial_sync_resumes_after_a_crash_without_double_writes(sandbox: Sandbox) -> None:
    for n in range(25):
        sandbox.dataverse.seed(
            "bookableresourcecategory",
            {"name": f"Role {n}", "msdyn_resourcecategorynumber": f"R{n:03d}"},
        )
    assert sandbox.runtime is not None
    table_map = CATALOG.by_name("resource-roles")
    with pytest.raises(InterruptedError):
        await initial_sync(sandbox.runtime, table_map, page_size=10, stop_after_pages=1)
    failed = await latest_unfinished(sandbox.runtime, "resource-roles")
    assert failed is not None and failed.status == "failed" and failed.counts["fed"] == 10 and failed.cursor
    done = await initial_sync(sandbox.runtime, table_map, page_size=10, resume=failed)
    assert done.status == "completed" and done.counts["fed"] == 25 and done.id == failed.id
    await sandbox.wait_quiet()
    # One role for all companies each, written once; Finance makes the 50 company-specific ones.
    assert len(sandbox.finance.rows("ResourceCategoriesShared")) == 25
    # Each once, alone or in a $batch with others (sessions drain their buckets side by side).
    written = [str(w.body["RoleId"]) for w in finance_received(sandbox) if "/ResourceCategoriesShared" in w.path]
    assert sorted(written) == [f"R{n:03d}" for n in range(25)]
    assert len(sandbox.finance.rows("ResourceCategories")) == 50


async def test_a_long_admin_initial_sync_goes_on_from_the_queue(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The HTTP call returns at once (202, the run's id) and the admin-runs queue carries every slice."""
    for n in range(25):
        sandbox.dataverse.seed(
            "bookableresourcecategory",
            {"name": f"Role {n}", "msdyn_resourcecategorynumber": f"R{n:03d}"},
        )
    # A slice stops after its first page: three slices of ten rows, each from the queue.
    monkeypatch.setattr(initial_sync_module, "SLICE_SECONDS", 0.0)
    monkeypatch.setattr(initial_sync_module, "ADMIN_PAGE_SIZE", 10)
    assert sandbox.host is not None and sandbox.runtime is not None
    keyed = {"x-functions-key": sandbox.host.function_key}
    async with httpx.AsyncClient(base_url=sandbox.host.http_url, headers=keyed) as client:
        started = await client.post("/api/admin/initial-sync/resource-roles", json={})
    assert started.status_code == 202
    run = started.json()
    assert run["status"] == "running" and run["counts"]["fed"] == 0 and not run["done"]
    await sandbox.wait_quiet()
    done = await sandbox.runtime.engine.state.get_run(run["id"])
    assert done is not None and done.status == "completed" and done.counts == {"fed": 25, "pages": 3}
    assert sandbox.host.invocations["admin_initial_sync_continue"].count == 3
    assert len(sandbox.finance.rows("ResourceCategoriesShared")) == 25


async def test_pause_keeps_the_backlog_and_resume_drains_it_in_order(sandbox: Sandbox) -> None:
    await create_project(sandbox)
    assert sandbox.runtime is not None and sandbox.runtime.switch is not None
    await pause(sandbox.runtime.switch, actuals.MAP)
    async with sandbox.person_dataverse() as dv:
        body = actual_body(
            "c0a1e000-0000-4000-8000-0000000a1001", "ACT-5001", classification=192350000, quantity="1", price="10"
        )
        body["msdyn_project@odata.bind"] = f"/msdyn_projects({PROJECT})"
        await send(dv, "POST", "msdyn_actuals", body)
        await send(
            dv,
            "PATCH",
            "msdyn_actuals(c0a1e000-0000-4000-8000-0000000a1001)",
            {"msdyn_quantity": 2, "msdyn_amount": 20},
        )
    for _ in range(200):
        if sandbox.bus.entity("flow-actuals").active_count == 2:
            break
        await asyncio.sleep(0.01)
    [status] = [s for s in await flow_statuses(sandbox.runtime, CATALOG) if s.flow == "actuals"]
    assert status.paused is True and status.backlog is not None and status.backlog.active == 2
    assert sandbox.finance.rows("ProjActualsImports") == []
    await resume(sandbox.runtime.switch, actuals.MAP)
    await sandbox.wait_quiet()
    [row] = sandbox.finance.rows("ProjActualsImports")
    assert row["Quantity"] == 2 and row["Amount"] == 20  # the update, applied after the create
    assert [m for m, _ in finance_writes(sandbox, "ProjActualsImports")] == ["POST", "PATCH"]
    [after] = [s for s in await flow_statuses(sandbox.runtime, CATALOG) if s.flow == "actuals"]
    assert after.paused is False and after.written == 2 and after.backlog is not None and after.backlog.active == 0
    assert "actuals" in status_text(plain([after])) and "running" in status_text(plain([after]))


async def test_check_maps_passes_on_the_simulators_and_catches_a_broken_map(sandbox: Sandbox) -> None:
    assert sandbox.runtime is not None
    dataverse = parse_metadata(await sandbox.runtime.engine.dataverse.metadata())
    finance = parse_metadata(await sandbox.runtime.engine.finance.metadata())
    assert check_maps(CATALOG, dataverse, finance) == []
    broken = dataclasses.replace(
        actuals.MAP,
        name="broken-actuals",
        fields=(
            *actuals.MAP.fields,
            FieldMap("msdyn_amout", "Amount"),
            FieldMap("msdyn_transactiontypecode", "TransactionType", FieldType.ENUM, ValueMap("bad", {1: "Costs"})),
        ),
    )
    problems = {(p.what, p.name) for p in check_maps(Registry((broken,)), dataverse, finance)}
    assert ("source field", "msdyn_amout") in problems
    assert ("enum symbol", "TransactionType=Costs") in problems


@pytest.fixture
async def unregistered() -> AsyncIterator[Sandbox]:
    """A sandbox whose Dataverse has no steps yet, as a new environment before register-steps."""
    async with started(SandboxOptions(register_steps=False)) as environment:
        yield environment


async def test_register_steps_is_idempotent_and_its_steps_deliver(unregistered: Sandbox) -> None:
    sandbox = unregistered
    assert sandbox.runtime is not None
    config = EndpointConfig("contoso-projops.servicebus.windows.net", "dataverse-send", "not-a-real-key")
    dry = await register_steps(sandbox.runtime.engine.dataverse, CATALOG, config, dry_run=True)
    assert dry.endpoint == "create" and sandbox.dataverse.rows("serviceendpoint") == []
    first = await register_steps(sandbox.runtime.engine.dataverse, CATALOG, config)
    assert first.endpoint == "create" and set(first.steps.values()) == {"create"}
    steps = sandbox.dataverse.rows("sdkmessageprocessingstep")
    update = next(s for s in steps if s["name"] == "projops-sync: projects-v2 Update of msdyn_project")
    assert "msdyn_subject" in update["filteringattributes"] and update["stage"] == 40 and update["mode"] == 1
    assert all(s["asyncautodelete"] is True for s in steps)
    second = await register_steps(sandbox.runtime.engine.dataverse, CATALOG, config)
    assert not second.changed
    assert len(sandbox.dataverse.rows("sdkmessageprocessingstep")) == len(steps)
    # A key rotated in Service Bus reaches the endpoint on the next run, though nothing else changed.
    rotated = EndpointConfig(config.namespace, config.sas_key_name, "the-rotated-key")
    third = await register_steps(sandbox.runtime.engine.dataverse, CATALOG, rotated)
    assert not third.changed and third.key_set
    assert [e["saskey"] for e in sandbox.dataverse.rows("serviceendpoint")] == ["the-rotated-key"]

    async with sandbox.person_dataverse() as dv:
        await send(dv, "POST", "msdyn_projects", project_body())
    await sandbox.wait_quiet()
    assert sandbox.finance.get("ProjectsV2", dataAreaId="usmf", ProjectId="PRJ-2001") is not None


async def test_admin_functions_need_the_function_key(sandbox: Sandbox) -> None:
    assert sandbox.host is not None
    async with httpx.AsyncClient(base_url=sandbox.host.http_url) as client:
        assert (await client.get("/api/admin/status")).status_code == 401
        assert (await client.get("/api/admin/console")).status_code == 401
        # The console's one public file, htmx, is fetched without the key: no URL holding it is cached.
        page = await client.get("/api/admin/console", params={"code": sandbox.host.function_key})
        assert '<script src="console/htmx.min.js"></script>' in page.text
        assert (await client.get("/api/admin/console/htmx.min.js")).status_code == 200
        keyed = {"x-functions-key": sandbox.host.function_key}
        status = (await client.get("/api/admin/status", headers=keyed)).json()
        assert [s["flow"] for s in status] == [m.name for m in CATALOG.maps] + [DATAVERSE_ROUTER, FINANCE_ROUTER]
        events = (await client.get("/api/admin/finance-events", headers=keyed)).json()
        assert {e["flow"] for e in events} == {m.name for m in CATALOG.maps if m.source.system.value == "finance"}
        assert {e["name"] for e in events} >= {"ProjActualsImportEntity", "OMLegalEntity"}
        replay = await client.post("/api/admin/replay", headers=keyed, json={})
        assert replay.status_code == 400


async def test_status_and_the_console_show_what_the_routers_parked(sandbox: Sandbox) -> None:
    """A message no router can read (or an event no flow takes) is parked under its router, not a flow:
    status counts it and the console's parked filter offers the router, or nobody would look."""
    assert sandbox.host is not None
    for n in range(3):
        await sandbox.bus.send(FINANCE_QUEUE, LocalMessage(b"not json {%d" % n, "application/json", message_id=f"f{n}"))
    for n in range(2):
        await sandbox.bus.send(DATAVERSE_TOPIC, LocalMessage(b"<xml/>%d" % n, "application/json", message_id=f"d{n}"))
    await sandbox.wait_quiet()
    code = {"code": sandbox.host.function_key}
    async with httpx.AsyncClient(base_url=sandbox.host.http_url) as client:
        status = (await client.get("/api/admin/status", params=code)).json()
        rows = {row["flow"]: row for row in status}
        assert [row["flow"] for row in status[-2:]] == [DATAVERSE_ROUTER, FINANCE_ROUTER]
        assert rows[FINANCE_ROUTER]["parked"] == 3 and rows[DATAVERSE_ROUTER]["parked"] == 2
        assert rows[FINANCE_ROUTER]["last_hour"]["parked"] == 3 and rows[FINANCE_ROUTER]["paused"] is False
        assert sum(row["parked"] for row in status) == 5
        line = next(t for t in status_text(status).splitlines() if t.startswith(FINANCE_ROUTER))
        assert line.split()[1:6] == ["running", "-", "-", "-", "3"]

        flows = (await client.get("/api/admin/console/flows", params=code)).text
        router_row = flows.split(f'<tr data-flow="{FINANCE_ROUTER}">', 1)[1].split("</tr>", 1)[0]
        assert "<button" not in router_row  # pause and resume take a flow, not a router
        parked = (await client.get("/api/admin/console/parked", params=code)).text
        assert f'<option value="{FINANCE_ROUTER}">' in parked and f'<option value="{DATAVERSE_ROUTER}">' in parked
        chosen = (await client.get("/api/admin/console/parked", params={**code, "flow": FINANCE_ROUTER})).text
        assert f'<option value="{FINANCE_ROUTER}" selected>' in chosen and chosen.count("data-parked=") == 3


async def test_an_initial_sync_for_a_wildcard_company_is_refused_before_it_reads(sandbox: Sandbox) -> None:
    """Finance reads * in eq as a pattern: 'US*' would read every legal entity it matches."""
    assert sandbox.runtime is not None
    table_map = CATALOG.by_name("workers")
    reads_before = len([r for r in sandbox.finance.requests if r.method == "GET"])
    with pytest.raises(OperatorError, match="company 'US\\*' holds '\\*': name each legal entity in full"):
        await initial_sync(sandbox.runtime, table_map, companies=["US*"])
    assert len([r for r in sandbox.finance.requests if r.method == "GET"]) == reads_before
    assert await latest_unfinished(sandbox.runtime, "workers") is None


async def test_an_initial_sync_by_company_filters_on_the_field_the_entity_names_its_company_by(
    sandbox: Sandbox,
) -> None:
    """ProjExpensesExport has no dataAreaId (live $metadata): its lines name the company ReferenceDataAreaId."""
    assert sandbox.runtime is not None
    await sandbox.finance.post_expense_report("usmf", "EXP-0200", [expense_line("Taxi", "42.10")])
    await sandbox.finance.post_expense_report("uspi", "EXP-0201", [expense_line("Hotel", "120.00")])
    await sandbox.wait_quiet()
    run = await initial_sync(sandbox.runtime, CATALOG.by_name("expenses"), companies=["USMF"])
    assert run.status == "completed" and run.counts["fed"] == 1
    [read] = [r for r in sandbox.finance.requests if r.method == "GET" and r.path.endswith("/ProjExpensesExport")]
    assert "ReferenceDataAreaId eq 'usmf'" in unquote_plus(read.query)


@pytest.mark.parametrize(
    ("flow", "arguments", "refusal"),
    [
        ("customers", {"since": datetime(2026, 11, 1, tzinfo=UTC)}, "has no modified-time field"),
        ("workers", {"companies": ["USMF"]}, "is not kept per legal entity"),
    ],
)
async def test_an_initial_sync_finance_cannot_answer_is_refused_before_it_reads(
    sandbox: Sandbox, flow: str, arguments: dict[str, Any], refusal: str
) -> None:
    assert sandbox.runtime is not None
    reads_before = len([r for r in sandbox.finance.requests if r.method == "GET"])
    with pytest.raises(OperatorError, match=refusal):
        await initial_sync(sandbox.runtime, CATALOG.by_name(flow), **arguments)
    assert len([r for r in sandbox.finance.requests if r.method == "GET"]) == reads_before
