"""Reconcile against the sandbox: drift made behind the integration's back is reported exactly,
repaired through the flow, and a second run finds none."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from functions.catalog import CATALOG
from sandbox.demo_data import USMF_ID, USPI_ID
from sandbox.demo_documents import create_vendor, expense_category, expense_line, vendor_invoice, vendor_line
from sandbox.environment import Sandbox, SandboxOptions
from sandbox.scenario import actual_body, create_project_setup, import_id
from shared.console.output import status_text
from shared.errors import PermanentServiceError
from shared.operations import reconcile as reconcile_module
from shared.operations.admin_runs import schedule_reconciles
from shared.operations.changes import catch_up
from shared.operations.initial_sync import initial_sync
from shared.operations.parked import replay, select_parked
from shared.operations.reconcile import last_reconciles, reconcile
from shared.operations.reconcile_text import report_text
from shared.operations.status import flow_statuses
from shared.operations.views import plain, runs_view
from tests.azurite import AzuriteTables
from tests.integration.conftest import finance_writes, send, started
from tests.integration.test_flows import PROJECT, create_project, project_body

ACTUALS = [f"c0a1e000-0000-4000-8000-0000000d000{n}" for n in range(1, 4)]


async def _three_actuals(sandbox: Sandbox) -> None:
    await create_project(sandbox)
    async with sandbox.person_dataverse() as dv:
        for n, actual_id in enumerate(ACTUALS, start=1):
            body = actual_body(actual_id, f"ACT-R{n}", classification=192350000, quantity=str(n), price="10.25")
            body["msdyn_project@odata.bind"] = f"/msdyn_projects({PROJECT})"
            await send(dv, "POST", "msdyn_actuals", body)
    await sandbox.wait_quiet()


def _finance_key(label: str) -> str:
    return f"ProjActualsImports(dataAreaId='usmf',ActualsImportId={import_id(label)})"


async def test_finance_drift_in_actuals_is_reported_by_company_and_currency_and_repaired(sandbox: Sandbox) -> None:
    await _three_actuals(sandbox)
    assert sandbox.runtime is not None
    table_map = CATALOG.by_name("actuals")
    clean = await reconcile(sandbox.runtime, table_map)
    assert clean.drift == 0 and clean.totals["matched"] == 3
    # Behind the integration's back: one row deleted in Finance, one amount changed there.
    async with sandbox.person_finance() as fo:
        await send(fo, "DELETE", _finance_key("ACT-R1"))
        await send(fo, "PATCH", _finance_key("ACT-R2"), {"Amount": Decimal("99.5")})
    await sandbox.wait_quiet()

    report = await reconcile(sandbox.runtime, table_map)
    usmf = report.companies["USMF"]
    assert (usmf.source_rows, usmf.target_rows, usmf.matched) == (3, 2, 1)
    assert [d.key["ActualsImportId"] for d in usmf.missing] == [import_id("ACT-R1")]
    assert usmf.missing[0].source_key == ACTUALS[0]
    [different] = usmf.different
    assert different.source_key == ACTUALS[1]
    assert [(f.field, f.source, f.target) for f in different.fields] == [("Amount", Decimal("20.50"), Decimal("99.5"))]
    assert usmf.orphaned_count == 0
    usd = usmf.money["USD"]
    assert (usd.source_count, usd.source_sum) == (3, Decimal("61.50"))
    assert (usd.target_count, usd.target_sum) == (2, Decimal("130.25"))
    assert usd.difference == Decimal("-68.75")
    text = report_text(report)
    assert "Amount: source Decimal('20.50') | target Decimal('99.5')" in text and "drift: 2 rows" in text

    writes_before = len(finance_writes(sandbox, "ProjActualsImports"))
    repaired = await reconcile(sandbox.runtime, table_map, repair=True)
    assert repaired.repair == {"sent": 2, "deletes": 0, "orphans_listed": 0}
    await sandbox.wait_quiet()
    # The repair went through the flow: the deleted row created again (its update refused first, as
    # state says it was written), the changed one put back.
    repairs = sorted(m for m, _ in finance_writes(sandbox, "ProjActualsImports")[writes_before:])
    assert repairs == ["PATCH", "PATCH", "POST"]
    row = sandbox.finance.get("ProjActualsImports", dataAreaId="usmf", ActualsImportId=import_id("ACT-R2"))
    assert row is not None and row["Amount"] == Decimal("20.50")
    again = await reconcile(sandbox.runtime, table_map)
    assert again.drift == 0 and again.totals["matched"] == 3
    assert again.companies["USMF"].money["USD"].difference == 0
    latest = (await last_reconciles(sandbox.runtime, "actuals"))["actuals"]
    assert latest.id == again.id and latest.counts["drift"] == 0


CONNECTIONS = [f"c0a1e000-0000-4000-8000-0000000e000{n}" for n in range(1, 4)]


def connection(connection_id: str) -> dict[str, str]:
    return {
        "msdyn_transactionconnectionid": connection_id,
        "msdyn_transaction1": "c0a1e000-0000-4000-8000-0000000e1001",
        "msdyn_transaction1role": "Billed Sales",
        "msdyn_transaction1type": "msdyn_invoicelinetransaction",
        "msdyn_transaction2": "c0a1e000-0000-4000-8000-0000000e1002",
        "msdyn_transaction2role": "Unbilled Sales",
        "msdyn_transaction2type": "msdyn_actual",
    }


@contextlib.contextmanager
def steps_off(sandbox: Sandbox) -> Iterator[None]:
    """No plug-in step delivers while inside: changes made now reach nobody."""
    steps, sandbox.dataverse.steps.steps = sandbox.dataverse.steps.steps, []
    try:
        yield
    finally:
        sandbox.dataverse.steps.steps = steps


async def steps_off_create_and_delete(sandbox: Sandbox) -> None:
    """Two connections synced; then, with no step delivering, a third created and the first deleted."""
    async with sandbox.person_dataverse() as dv:
        for connection_id in CONNECTIONS[:2]:
            await send(dv, "POST", "msdyn_transactionconnections", connection(connection_id))
    await sandbox.wait_quiet()
    with steps_off(sandbox):
        async with sandbox.person_dataverse() as dv:
            await send(dv, "POST", "msdyn_transactionconnections", connection(CONNECTIONS[2]))
            await send(dv, "DELETE", f"msdyn_transactionconnections({CONNECTIONS[0]})")
    await sandbox.wait_quiet()
    assert sandbox.finance.get("ProjectTransactionRelationships", ConnectionId=CONNECTIONS[0]) is not None
    assert sandbox.finance.get("ProjectTransactionRelationships", ConnectionId=CONNECTIONS[2]) is None


async def test_a_dataverse_create_and_delete_missed_by_the_steps_are_found_and_repaired(sandbox: Sandbox) -> None:
    await steps_off_create_and_delete(sandbox)
    assert sandbox.runtime is not None
    table_map = CATALOG.by_name("transaction-connections")
    report = await reconcile(sandbox.runtime, table_map)
    [entry] = report.companies.values()
    assert [d.source_key for d in entry.missing] == [CONNECTIONS[2]]
    assert [d.key for d in entry.orphaned] == [{"ConnectionId": CONNECTIONS[0]}]
    assert entry.different_count == 0 and entry.matched == 1

    repaired = await reconcile(sandbox.runtime, table_map, repair=True)
    assert repaired.repair == {"sent": 1, "deletes": 1, "orphans_listed": 0}
    await sandbox.wait_quiet()
    assert sandbox.finance.get("ProjectTransactionRelationships", ConnectionId=CONNECTIONS[0]) is None
    assert sandbox.finance.get("ProjectTransactionRelationships", ConnectionId=CONNECTIONS[2]) is not None
    again = await reconcile(sandbox.runtime, table_map)
    assert again.drift == 0 and again.totals["matched"] == 2


async def test_orphans_of_a_map_without_deletes_are_listed_not_deleted(sandbox: Sandbox) -> None:
    await _three_actuals(sandbox)
    assert sandbox.runtime is not None
    with steps_off(sandbox):
        async with sandbox.person_dataverse() as dv:
            await send(dv, "DELETE", f"msdyn_actuals({ACTUALS[2]})")
    report = await reconcile(sandbox.runtime, CATALOG.by_name("actuals"), repair=True)
    assert [d.key["ActualsImportId"] for d in report.companies["USMF"].orphaned] == [import_id("ACT-R3")]
    assert report.repair == {"sent": 0, "deletes": 0, "orphans_listed": 1}
    await sandbox.wait_quiet()
    assert sandbox.finance.get("ProjActualsImports", dataAreaId="usmf", ActualsImportId=import_id("ACT-R3"))


async def test_reconcile_from_the_admin_api_and_the_schedule_runs_on_the_admin_runs_queue(sandbox: Sandbox) -> None:
    await steps_off_create_and_delete(sandbox)
    assert sandbox.host is not None and sandbox.runtime is not None
    keyed = {"x-functions-key": sandbox.host.function_key}
    async with httpx.AsyncClient(base_url=sandbox.host.http_url, headers=keyed) as client:
        queued = await client.post("/api/admin/reconcile/transaction-connections", json={"repair": True})
        assert queued.status_code == 202 and queued.json()["status"] == "queued"
        await sandbox.wait_quiet()
        [run] = (await client.get("/api/admin/reconcile/transaction-connections")).json()
    assert run["id"] == queued.json()["id"] and run["status"] == "completed"
    assert run["counts"]["missing"] == 1 and run["counts"]["orphaned"] == 1 and run["counts"]["drift"] == 2
    assert run["options"]["report"]["repair"] == {"sent": 1, "deletes": 1, "orphans_listed": 0}
    assert sandbox.finance.get("ProjectTransactionRelationships", ConnectionId=CONNECTIONS[0]) is None
    assert sandbox.host.invocations["admin_initial_sync_continue"].count == 1

    # Off by default: the timer queues nothing until flows are named.
    assert await schedule_reconciles(sandbox.runtime, CATALOG) == []
    settings = sandbox.runtime.engine.settings
    sandbox.runtime.engine.settings = settings.model_copy(update={"reconcile_flows": ["transaction-connections"]})
    [scheduled] = await schedule_reconciles(sandbox.runtime, CATALOG)
    await sandbox.wait_quiet()
    done = await sandbox.runtime.engine.state.get_run(scheduled.id)
    assert done is not None and done.status == "completed" and done.counts["drift"] == 0
    assert done.options["trigger"] == "schedule"
    [status] = [s for s in await flow_statuses(sandbox.runtime, CATALOG) if s.flow == "transaction-connections"]
    assert status.last_drift == 0 and status.last_reconcile == done.updated_at.isoformat()
    assert "drift 0" in status_text([plain(status)])


async def test_company_and_since_narrow_what_is_compared(sandbox: Sandbox) -> None:
    await _three_actuals(sandbox)
    assert sandbox.runtime is not None
    table_map = CATALOG.by_name("actuals")
    other = await reconcile(sandbox.runtime, table_map, company="uspi")
    assert other.totals["source_rows"] == 0 and other.totals["target_rows"] == 0 and other.drift == 0
    usmf = await reconcile(sandbox.runtime, table_map, company="usmf")
    assert list(usmf.companies) == ["USMF"] and usmf.totals["matched"] == 3
    recent = await reconcile(sandbox.runtime, table_map, since=datetime.now(UTC) - timedelta(hours=1))
    assert recent.totals["matched"] == 3 and recent.drift == 0
    later = await reconcile(sandbox.runtime, table_map, since=datetime.now(UTC) + timedelta(days=1))
    # Nothing changed since: no source rows, and the target's rows are not called orphans for it.
    assert later.totals["source_rows"] == 0 and later.totals["orphaned"] == 0 and later.drift == 0
    # Nor are they counted and summed against the rows read: a tie-out compares like with like.
    assert later.totals["target_rows"] == 0
    assert all(m.target_count == 0 for c in later.companies.values() for m in c.money.values())
    assert later.notes == ["orphans are not judged with --since: the rows changed before it were not read"]


async def test_initial_sync_runs_list_no_reconcile_or_catch_up_runs(sandbox: Sandbox) -> None:
    """Reconcile and catch-up keep their runs in the same table; `initial-sync --status` and the
    console's initial-sync list show initial syncs only."""
    assert sandbox.runtime is not None
    table_map = CATALOG.by_name("transaction-connections")
    synced = await initial_sync(sandbox.runtime, table_map)
    await reconcile(sandbox.runtime, table_map)
    await catch_up(sandbox.runtime, table_map)
    kinds = {run.kind for run in await sandbox.runtime.engine.state.list_runs()}
    assert kinds >= {"initial-sync", "reconcile", "changes"}  # all three are in the table
    listed = await runs_view(sandbox.runtime, "transaction-connections")
    assert [run["id"] for run in listed] == [synced.id]


async def test_repair_keeps_a_row_created_while_reconcile_read_the_source(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a large table the source pass takes minutes: a row a user creates meanwhile is in the target
    but not in the source snapshot. It is no orphan, and its source record says so."""
    assert sandbox.runtime is not None
    async with sandbox.person_dataverse() as dv:
        await send(dv, "POST", "msdyn_transactionconnections", connection(CONNECTIONS[0]))
    await sandbox.wait_quiet()
    target_pages = reconcile_module._target_pages

    async def created_between_the_passes(run: Any) -> Any:
        async with sandbox.person_dataverse() as dv:
            await send(dv, "POST", "msdyn_transactionconnections", connection(CONNECTIONS[1]))
        await sandbox.wait_quiet()
        async for page in target_pages(run):
            yield page

    monkeypatch.setattr(reconcile_module, "_target_pages", created_between_the_passes)
    report = await reconcile(sandbox.runtime, CATALOG.by_name("transaction-connections"), repair=True)
    assert report.totals["orphaned"] == 1 and report.repair["deletes"] == 1
    await sandbox.wait_quiet()
    assert sandbox.finance.get("ProjectTransactionRelationships", ConnectionId=CONNECTIONS[1]) is not None


async def test_repair_keeps_a_row_whose_source_it_could_not_map(sandbox: Sandbox) -> None:
    """The project's new customer is not in Finance yet: the row is unmappable, not orphaned, and the
    Finance project stays (the flow itself would only wait for the customer)."""
    assert sandbox.runtime is not None
    await create_project(sandbox)
    account = "c0a1e000-0000-4000-8000-0000000000a9"
    with steps_off(sandbox):
        async with sandbox.person_dataverse() as dv:
            company = f"/cdm_companies({USMF_ID})"
            new = {"accountid": account, "accountnumber": "US-NEW", "name": "New", "msdyn_company@odata.bind": company}
            await send(dv, "POST", "accounts", new)
            await send(
                dv, "PATCH", f"msdyn_projects({PROJECT})", {"msdyn_customer@odata.bind": f"/accounts({account})"}
            )
    await sandbox.wait_quiet()
    await reconcile(sandbox.runtime, CATALOG.by_name("projects-v2"), repair=True)
    await sandbox.wait_quiet()
    assert sandbox.finance.get("ProjectsV2", dataAreaId="usmf", ProjectId="PRJ-1001") is not None


async def test_a_company_taken_out_of_scope_is_neither_drift_nor_deleted(sandbox: Sandbox) -> None:
    """USPI handed to another deployment: the flow skips its projects, and so does reconcile."""
    assert sandbox.runtime is not None
    await create_project(sandbox)
    async with sandbox.person_dataverse() as dv:
        body = project_body("PRJ-3001", msdyn_projectid="c0a1e000-0000-4000-8000-00000000aa02")
        body["msdyn_OwningCompany@odata.bind"] = f"/cdm_companies({USPI_ID})"
        body.pop("msdyn_customer@odata.bind")
        await send(dv, "POST", "msdyn_projects", body)
    await sandbox.wait_quiet()
    engine = sandbox.runtime.engine
    engine.settings = engine.settings.model_copy(update={"companies": ["USMF"]})
    report = await reconcile(sandbox.runtime, CATALOG.by_name("projects-v2"), repair=True)
    assert report.totals["unmappable"] == 0 and report.filtered_out == 1
    await sandbox.wait_quiet()
    assert sandbox.finance.get("ProjectsV2", dataAreaId="uspi", ProjectId="PRJ-3001") is not None


async def test_a_money_row_bound_to_another_currency_is_drift_and_its_total_counts_there(sandbox: Sandbox) -> None:
    """Expenses reach Dataverse bound to their currency: a line moved to EUR behind the integration's
    back is different, and the tie-out counts it under EUR, not under the first matched row's USD."""
    assert sandbox.runtime is not None
    eur_id = "c0a1e000-0000-4000-8000-0000000000e1"
    await create_project_setup(sandbox)
    async with sandbox.person_dataverse() as dv:
        euro = {"transactioncurrencyid": eur_id, "isocurrencycode": "EUR", "currencyname": "Euro"}
        await send(dv, "POST", "transactioncurrencies", euro)
    async with sandbox.person_finance() as fo:
        await send(fo, "POST", "ProjExpenseCategoriesExport", expense_category("usmf"))
    await sandbox.wait_quiet()
    await sandbox.finance.post_expense_report(
        "usmf", "EXP-1", [expense_line("Hotel", "100.00"), expense_line("Taxi", "20.00")]
    )
    await sandbox.wait_quiet()
    table_map = CATALOG.by_name("expenses")
    assert (await reconcile(sandbox.runtime, table_map)).drift == 0
    [hotel] = [r for r in sandbox.dataverse.rows("msdyn_expense") if r["msdyn_amount"] == Decimal("100.00")]
    with steps_off(sandbox):
        async with sandbox.person_dataverse() as dv:
            moved = {"transactioncurrencyid@odata.bind": f"/transactioncurrencies({eur_id})"}
            await send(dv, "PATCH", f"msdyn_expenses({hotel['msdyn_expenseid']})", moved)
    report = await reconcile(sandbox.runtime, table_map)
    [usmf] = report.companies.values()
    assert usmf.different_count == 1
    [difference] = usmf.different[0].fields
    assert (difference.source, difference.target) == ("USD", "EUR")
    usd, eur = usmf.money["USD"], usmf.money["EUR"]
    assert (usd.source_count, usd.source_sum) == (2, Decimal("120.00"))
    assert (usd.target_count, usd.target_sum) == (1, Decimal("20.00"))
    assert (eur.target_count, eur.target_sum) == (1, Decimal("100.00"))


async def test_a_document_the_map_does_not_sync_is_not_missing(sandbox: Sandbox) -> None:
    """A vendor invoice without a project line stays in Finance (the flow skips it): not drift either."""
    assert sandbox.runtime is not None
    await create_project_setup(sandbox)
    await create_vendor(sandbox)
    await sandbox.finance.post_vendor_invoice("usmf", vendor_invoice("VI-0001"), [vendor_line(1)])
    await sandbox.finance.post_vendor_invoice("usmf", vendor_invoice("VI-0002"), [vendor_line(1, project="")])
    await sandbox.wait_quiet()
    report = await reconcile(sandbox.runtime, CATALOG.by_name("vendor-invoices"))
    assert report.drift == 0 and report.totals["matched"] == 1 and report.filtered_out == 1


async def test_a_finance_target_row_deleted_during_the_target_read_makes_no_other_row_missing(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by review: the target read followed Finance's $skip nextLink, so the first actual deleted
    once page one (two rows) was compared made the $skip=2 page start past the third, which then
    counted as missing and a repair would have sent it again."""
    await _three_actuals(sandbox)
    assert sandbox.runtime is not None
    sandbox.finance.page_size = 2
    compare_page = reconcile_module._compare_page
    compared: list[str] = []

    async def delete_after_first_page(run: Any, rows: list[dict[str, Any]], orphans: bool) -> None:
        await compare_page(run, rows, orphans)
        if not compared:
            first = rows[0]
            del sandbox.finance.data["ProjActualsImports"][(first["dataAreaId"], first["ActualsImportId"])]
        compared.extend(str(row["ActualsImportId"]) for row in rows)

    monkeypatch.setattr(reconcile_module, "_compare_page", delete_after_first_page)
    report = await reconcile(sandbox.runtime, CATALOG.by_name("actuals"))
    assert sorted(compared) == sorted(import_id(f"ACT-R{n}") for n in range(1, 4))
    assert report.totals["missing"] == 0 and report.totals["matched"] == 3
    reads = [r for r in sandbox.finance.requests if r.method == "GET" and r.path == "/data/ProjActualsImports"]
    assert all("skip" not in r.query for r in reads)


def _refused(what: str, system: str = "Finance") -> Any:
    async def refuse(*_: Any) -> Any:
        raise PermanentServiceError(system, 400, what)

    return refuse


async def test_a_parked_orphan_delete_replayed_once_its_record_is_back_keeps_the_row(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by review: a replay went out as source=replay, and the flow asks whether an orphan's source
    record exists again only of reconcile's events. The project deleted with no step delivering, its
    orphan delete refused by Finance and parked, the project made again in Dataverse: the replayed
    delete removed the Finance project a live Dataverse project syncs to."""
    assert sandbox.runtime is not None
    await create_project(sandbox)
    with steps_off(sandbox):
        async with sandbox.person_dataverse() as dv:
            await send(dv, "DELETE", f"msdyn_projects({PROJECT})")
    finance = sandbox.runtime.engine.finance
    monkeypatch.setattr(finance, "delete", _refused("Cannot delete a record in Projects (ProjTable). It is in use."))
    report = await reconcile(sandbox.runtime, CATALOG.by_name("projects-v2"), company="USMF", repair=True)
    assert report.repair["deletes"] == 1
    await sandbox.wait_quiet()
    [row] = await select_parked(sandbox.runtime, flow="projects-v2")
    assert (row.reason, json.loads(row.event)["operation"]) == ("rejected-by-target", "delete")
    monkeypatch.undo()
    async with sandbox.person_dataverse() as dv:
        await send(dv, "POST", "msdyn_projects", project_body("PRJ-1001"))
    await sandbox.wait_quiet()

    replayed = await replay(sandbox.runtime, CATALOG, [row], by="tester")
    await sandbox.wait_quiet()

    assert replayed.replayed == [row.id]
    assert sandbox.finance.get("ProjectsV2", dataAreaId="usmf", ProjectId="PRJ-1001") is not None
    assert [path for method, path in finance_writes(sandbox, "ProjectsV2") if method == "DELETE"] == []
    assert await select_parked(sandbox.runtime, flow="projects-v2") == []


async def test_a_parked_repair_replayed_puts_the_drift_right(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by review: a replayed repair went out as source=replay, and the flow ignores what it last
    wrote only for reconcile's events: it found its own payload unchanged, skipped the write, and the
    project edited in Finance stayed as edited, drift again at the next reconcile."""
    assert sandbox.runtime is not None
    await create_project(sandbox)
    async with sandbox.person_finance() as fo:
        await send(fo, "PATCH", "ProjectsV2(dataAreaId='usmf',ProjectId='PRJ-1001')", {"ProjectName": "Edited"})
    await sandbox.wait_quiet()
    monkeypatch.setattr(sandbox.runtime.engine.finance, "update", _refused("The project is locked for editing."))
    report = await reconcile(sandbox.runtime, CATALOG.by_name("projects-v2"), company="USMF", repair=True)
    assert report.totals["different"] == 1
    await sandbox.wait_quiet()
    [row] = await select_parked(sandbox.runtime, flow="projects-v2")
    assert row.reason == "rejected-by-target"
    monkeypatch.undo()

    replayed = await replay(sandbox.runtime, CATALOG, [row], by="tester")
    await sandbox.wait_quiet()

    assert replayed.replayed == [row.id]
    project = sandbox.finance.get("ProjectsV2", dataAreaId="usmf", ProjectId="PRJ-1001")
    assert project is not None and project["ProjectName"] == "Warehouse automation"
    again = await reconcile(sandbox.runtime, CATALOG.by_name("projects-v2"), company="USMF")
    assert again.drift == 0


async def test_a_parked_orphan_delete_of_a_finance_flow_replays_into_the_flow(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by review: a replayed Finance-source event was keyed again from its record, and an orphan
    delete has none (only the target row's key): the replay was parked again as a mapping error every
    time, and the Dataverse category Finance no longer has could never be deleted."""
    assert sandbox.runtime is not None
    async with sandbox.person_finance() as fo:
        await send(fo, "POST", "ProjExpenseCategoriesExport", expense_category("usmf", "Hotel", "Hotel"))
    await sandbox.wait_quiet()
    # Deleted in Finance with no event reaching the integration.
    categories = sandbox.finance.data["ProjExpenseCategoriesExport"]
    [hotel] = [key for key, category in categories.items() if category["CostType"] == "Hotel"]
    del categories[hotel]
    monkeypatch.setattr(
        sandbox.runtime.engine.dataverse, "delete", _refused("The record is referenced by expenses.", "Dataverse")
    )
    report = await reconcile(sandbox.runtime, CATALOG.by_name("expense-categories"), repair=True)
    assert report.repair["deletes"] == 1
    await sandbox.wait_quiet()
    [row] = await select_parked(sandbox.runtime, flow="expense-categories")
    assert (row.reason, json.loads(row.event)["operation"]) == ("rejected-by-target", "delete")
    monkeypatch.undo()

    replayed = await replay(sandbox.runtime, CATALOG, [row], by="tester")
    await sandbox.wait_quiet()

    assert replayed.replayed == [row.id]
    assert [r for r in sandbox.dataverse.rows("msdyn_expensecategory") if r["msdyn_name"] == "Hotel"] == []
    assert await select_parked(sandbox.runtime, flow="expense-categories") == []


@pytest.mark.parametrize("backend", ["sqlite", "tables"])
async def test_a_report_longer_than_a_run_row_holds_is_stored_shortened_and_the_run_completes(backend: str) -> None:
    """The stored report was the whole report: past Table Storage's 64 KB a property holds, storing it
    failed after all the work, and the run read "running" for ever (SQLite took it, hiding that)."""
    extra: dict[str, Any] = {}
    if backend == "tables":
        if os.environ.get("PROJOPS_SKIP_AZURITE") == "1":
            pytest.skip("PROJOPS_SKIP_AZURITE=1")
        # A fresh Azurite: the sandbox's store names its tables without a prefix.
        azurite = AzuriteTables()
        extra = {"state_backend": "tables", "state_tables_connection_string": azurite.start()}
    try:
        async with started(SandboxOptions(extra_settings=extra)) as sb:
            assert sb.runtime is not None
            assert type(sb.runtime.engine.state).__name__ == ("TableStateStore" if extra else "SqliteStateStore")
            async with sb.person_finance() as fo:
                for n in range(12):
                    customer = {
                        "dataAreaId": "usmf",
                        "CustomerAccount": f"US-7{n:02d}",
                        "OrganizationName": f"Customer {n}",
                        "PartyType": "Organization",
                        "CustomerGroupId": "30",
                        "SalesMemo": f"memo {n} " + "m€" * 1500,
                    }
                    await send(fo, "POST", "CustomersV3", customer)
            await sb.wait_quiet()
            accounts = [
                r for r in sb.dataverse.data["account"].values() if str(r.get("accountnumber")).startswith("US-7")
            ]
            assert len(accounts) == 12
            for row in accounts:  # behind the integration's back
                row["description"] = "changed in Dataverse " + "d" * 3000

            report = await reconcile(sb.runtime, CATALOG.by_name("customers"))
            assert report.drift == 12 and len(report.companies["USMF"].different) == 12

            [run] = await last_reconciles_of(sb, "customers")
            assert run.status == "completed" and run.counts["different"] == 12 and run.counts["drift"] == 12
            stored = run.options["report"]
            assert len(json.dumps(run.options, default=str)) < 32 * 1024
            assert stored["totals"]["different"] == 12 and stored["companies"]["USMF"]["different_count"] == 12
            assert any("shortened" in note for note in stored["notes"])
            text = report_text(stored)  # what `reconcile --url` prints from the stored report
            assert "drift: 12 rows" in text and "USMF different (12)" in text
    finally:
        if extra:
            azurite.stop()


async def last_reconciles_of(sb: Sandbox, flow: str) -> list[Any]:
    assert sb.runtime is not None
    return [r for r in await sb.runtime.engine.state.list_runs(flow) if r.kind == "reconcile"]
