"""Bad input, faults and ordering through the sandbox: each gets its specified outcome, nothing is lost."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from sandbox.bus import LocalMessage
from sandbox.environment import WEBHOOK_SECRET, Sandbox, SandboxOptions
from sandbox.scenario import USMF_ID, actual_body, import_id
from shared.telemetry import FIGURES
from tests.integration.conftest import finance_writes, parked, send, until
from tests.integration.test_flows import PROJECT, create_project, project_body


def staged(sandbox: Sandbox, label: str) -> dict[str, object] | None:
    return sandbox.finance.get("ProjActualsImports", dataAreaId="usmf", ActualsImportId=import_id(label))


FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CLAIMS = "http://schemas.microsoft.com/xrm/2011/Claims/"


async def put_on_topic(
    sandbox: Sandbox, body: bytes, content_type: str = "application/json", entity: str = "msdyn_project"
) -> None:
    properties = {CLAIMS + "EntityLogicalName": entity, CLAIMS + "RequestName": "Update"}
    await sandbox.bus.send(
        "dataverse-changes", LocalMessage(body, content_type, properties, message_id="m-" + str(len(body)))
    )
    await sandbox.wait_quiet()


async def test_malformed_json_is_parked_whole(sandbox: Sandbox) -> None:
    await put_on_topic(sandbox, b'{"MessageName": "Update", ')
    [(flow, reason, error)] = await parked(sandbox)
    assert (flow, reason) == ("route-dataverse-changes", "undecodable")
    assert "malformed JSON" in error
    assert sandbox.runtime is not None
    [item] = await sandbox.runtime.engine.state.list_parked()
    assert json.loads(item.event)["body"] == '{"MessageName": "Update", '


async def test_binary_xml_is_parked_with_the_fix(sandbox: Sandbox) -> None:
    await put_on_topic(sandbox, b"\x40\x06binary", content_type="application/msbin1")
    [(_, reason, error)] = await parked(sandbox)
    assert reason == "undecodable" and "message format to JSON" in error


async def test_missing_target_is_parked(sandbox: Sandbox) -> None:
    body = json.loads((FIXTURES / "synthetic_dataverse_create_remoteexecutioncontext.json").read_text())
    body["InputParameters"] = [{"key": "NotTarget", "value": 1}]
    await put_on_topic(sandbox, json.dumps(body).encode())
    [(_, reason, error)] = await parked(sandbox)
    assert reason == "undecodable" and "no Target" in error


async def test_unknown_entity_is_parked_naming_it(sandbox: Sandbox) -> None:
    await put_on_topic(
        sandbox,
        (FIXTURES / "dataverse_webhook_update_contact_remoteexecutioncontext.json").read_bytes(),
        entity="contact",
    )
    [(flow, reason, _)] = await parked(sandbox)
    assert (flow, reason) == ("route-dataverse-changes", "no flow for contact")


async def test_unknown_business_event_is_parked_and_test_event_skipped(sandbox: Sandbox) -> None:
    for name in (
        "synthetic_fno_business_event_sales_invoice_posted.json",
        "synthetic_fno_business_event_schema_download_defaults.json",
    ):
        await sandbox.bus.send(
            "finance-events", LocalMessage((FIXTURES / name).read_bytes(), "application/json", {}, message_id=name)
        )
    await sandbox.wait_quiet()
    assert [(f, r) for f, r, _ in await parked(sandbox)] == [
        ("route-finance-events", "no flow for SalesInvoicePostedBusinessEvent")
    ]


async def test_webhook_authenticates_limits_and_delivers(sandbox: Sandbox) -> None:
    assert sandbox.host is not None
    url = f"{sandbox.host.http_url}/api/dataverse/webhook"
    body = (FIXTURES / "dataverse_webhook_update_contact_remoteexecutioncontext.json").read_bytes()
    headers = {
        "content-type": "application/json",
        "x-ms-dynamics-entity-name": "contact",
        "x-ms-dynamics-request-name": "Update",
    }
    async with httpx.AsyncClient() as client:
        assert (await client.post(url, content=body, headers=headers)).status_code == 401
        wrong = await client.post(url, content=body, headers={**headers, "x-projops-webhook-key": "guess"})
        assert wrong.status_code == 401
        keyed = {**headers, "x-projops-webhook-key": WEBHOOK_SECRET}
        assert (await client.post(url, content=b"{" + b" " * 1_100_000 + b"}", headers=keyed)).status_code == 413
        assert (await client.post(url, content=body, headers=keyed)).status_code == 202
    await sandbox.wait_quiet()
    # The webhook's message took the topic's path: decoded, and parked because no flow takes contacts.
    assert [(f, r) for f, r, _ in await parked(sandbox)] == [("route-dataverse-changes", "no flow for contact")]


async def test_finance_validation_error_is_parked_with_the_infolog(sandbox: Sandbox) -> None:
    await create_project(sandbox)
    async with sandbox.person_dataverse() as dv:
        body = actual_body(
            "c0a1e000-0000-4000-8000-0000000d0001", "ACT-7001", classification=192350000, quantity="1", price="10"
        )
        body["msdyn_billingtype"] = 192350003  # Not Available: no line property set up in Finance
        body["msdyn_project@odata.bind"] = f"/msdyn_projects({PROJECT})"
        await send(dv, "POST", "msdyn_actuals", body)
    await sandbox.wait_quiet()
    [(flow, reason, error)] = await parked(sandbox)
    assert (flow, reason) == ("actuals", "rejected-by-target")
    assert "Line property NotAvailable doesn't exist" in error and "validateWrite failed" in error


async def test_line_before_its_header_is_retried_and_lands(sandbox: Sandbox) -> None:
    # The project exists in Dataverse only (seeded without its step): the actual must wait for it.
    sandbox.dataverse.seed(
        "msdyn_project",
        {
            "msdyn_projectid": PROJECT,
            "msdyn_projectnumber": "PRJ-1001",
            "msdyn_subject": "Late",
            "msdyn_OwningCompany@odata.bind": f"/cdm_companies({USMF_ID})",
        },
    )
    async with sandbox.person_dataverse() as dv:
        body = actual_body(
            "c0a1e000-0000-4000-8000-0000000d0002", "ACT-7002", classification=192350000, quantity="2", price="50"
        )
        body["msdyn_project@odata.bind"] = f"/msdyn_projects({PROJECT})"
        await send(dv, "POST", "msdyn_actuals", body)
    await until(lambda: FIGURES.flows["actuals"].retried > 0)
    async with sandbox.person_finance() as fo:
        await send(fo, "POST", "ProjectsV2", {"dataAreaId": "usmf", "ProjectId": "PRJ-1001", "ProjectName": "Late"})
    await sandbox.wait_quiet()
    assert (
        sandbox.finance.get("ProjActualsImports", dataAreaId="usmf", ActualsImportId=import_id("ACT-7002")) is not None
    )
    assert await parked(sandbox) == []
    assert FIGURES.flows["actuals"].retried >= 1


async def test_missing_header_is_parked_naming_it_and_replay_lands(sandbox: Sandbox) -> None:
    sandbox.dataverse.seed(
        "msdyn_project",
        {
            "msdyn_projectid": PROJECT,
            "msdyn_projectnumber": "PRJ-404",
            "msdyn_subject": "Never synced",
            "msdyn_OwningCompany@odata.bind": f"/cdm_companies({USMF_ID})",
        },
    )
    async with sandbox.person_dataverse() as dv:
        body = actual_body(
            "c0a1e000-0000-4000-8000-0000000d0003", "ACT-7003", classification=192350000, quantity="1", price="1"
        )
        body["msdyn_project@odata.bind"] = f"/msdyn_projects({PROJECT})"
        await send(dv, "POST", "msdyn_actuals", body)
    await sandbox.wait_quiet()
    [(flow, reason, error)] = await parked(sandbox)
    assert (flow, reason) == ("actuals", "retry-budget-exhausted: missing-dependency")
    assert "ProjectsV2(dataAreaId='usmf',ProjectId='PRJ-404') does not exist in Finance" in error

    from functions.catalog import CATALOG
    from shared.operations.parked import replay, select_parked

    # Replayed while the header is still missing: it goes round again and is parked again, still named.
    assert sandbox.runtime is not None
    again = await replay(sandbox.runtime, CATALOG, await select_parked(sandbox.runtime, flow="actuals"), by="tester")
    assert len(again.replayed) == 1
    await sandbox.wait_quiet()
    [(_, reason, error)] = await parked(sandbox)
    assert reason == "retry-budget-exhausted: missing-dependency" and "PRJ-404" in error

    async with sandbox.person_finance() as fo:
        await send(fo, "POST", "ProjectsV2", {"dataAreaId": "usmf", "ProjectId": "PRJ-404", "ProjectName": "Now there"})
    assert sandbox.runtime is not None
    report = await replay(sandbox.runtime, CATALOG, await select_parked(sandbox.runtime, flow="actuals"), by="tester")
    assert len(report.replayed) == 1
    await sandbox.wait_quiet()
    assert (
        sandbox.finance.get("ProjActualsImports", dataAreaId="usmf", ActualsImportId=import_id("ACT-7003")) is not None
    )
    assert await parked(sandbox) == []
    closed = await sandbox.runtime.engine.state.list_parked(status="replayed")
    assert [c.closed_by for c in closed] == ["tester", "tester"]


@pytest.fixture
def options() -> SandboxOptions:
    return SandboxOptions(http_max_retries=6)


async def test_throttling_errors_and_dropped_connections_lose_nothing(sandbox: Sandbox) -> None:
    await create_project(sandbox)
    sandbox.finance.set_faults(throttle_share=0.3, retry_after_seconds=0, error_share=0.1, drop_share=0.1, seed=7)
    sandbox.dataverse.set_faults(throttle_share=0.2, retry_after_seconds=0, error_share=0.05, seed=11)
    async with sandbox.person_dataverse() as dv:
        sandbox.dataverse.set_faults(throttle_share=0, error_share=0)  # the person's own writes go through
        for n in range(20):
            body = actual_body(
                f"c0a1e000-0000-4000-8000-0000000e{n:04d}",
                f"ACT-8{n:03d}",
                classification=192350000,
                quantity=str(n + 1),
                price="12.34",
            )
            body["msdyn_project@odata.bind"] = f"/msdyn_projects({PROJECT})"
            await send(dv, "POST", "msdyn_actuals", body)
        sandbox.dataverse.set_faults(throttle_share=0.2, error_share=0.05)
    await sandbox.wait_quiet(120)
    staged = {r["ActualsImportId"]: r["Amount"] for r in sandbox.finance.rows("ProjActualsImports")}
    assert staged == {import_id(f"ACT-8{n:03d}"): Decimal(n + 1) * Decimal("12.34") for n in range(20)}
    statuses = [r.status for r in sandbox.finance.requests]
    assert 429 in statuses and 503 in statuses and -1 in statuses  # the faults really happened
    assert await parked(sandbox) == []


async def test_timeouts_become_retries_then_land(sandbox: Sandbox) -> None:
    await create_project(sandbox)
    assert sandbox.runtime is not None
    sandbox.finance.set_faults(latency_ms=400)
    http = sandbox.runtime.engine.finance.http  # type: ignore[attr-defined]
    http.timeout = 0.1
    async with sandbox.person_dataverse() as dv:
        body = actual_body(
            "c0a1e000-0000-4000-8000-0000000f0001", "ACT-6001", classification=192350000, quantity="1", price="5"
        )
        body["msdyn_project@odata.bind"] = f"/msdyn_projects({PROJECT})"
        await send(dv, "POST", "msdyn_actuals", body)
    await until(lambda: FIGURES.flows["actuals"].retried > 0)
    http.timeout = 30
    sandbox.finance.set_faults(latency_ms=0)
    await sandbox.wait_quiet()
    assert (
        sandbox.finance.get("ProjActualsImports", dataAreaId="usmf", ActualsImportId=import_id("ACT-6001")) is not None
    )


async def test_duplicates_and_reordering_leave_the_newest_state_with_one_write_each(sandbox: Sandbox) -> None:
    captured: list[tuple[bytes, dict[str, str]]] = []
    sink = sandbox.dataverse.sink

    async def capture(destination: str, body: bytes, properties: dict[str, str], content_type: str) -> None:
        captured.append((body, properties))

    async with sandbox.person_dataverse() as dv:
        await send(dv, "POST", "msdyn_projects", project_body())
        await sandbox.wait_quiet()
        sandbox.dataverse.sink = capture
        await send(dv, "PATCH", f"msdyn_projects({PROJECT})", {"msdyn_subject": "Version two"})
        await send(dv, "PATCH", f"msdyn_projects({PROJECT})", {"msdyn_subject": "Version three"})
        sandbox.dataverse.sink = sink
    writes_before = len(finance_writes(sandbox, "ProjectsV2"))
    events_before = FIGURES.flows["projects-v2"].events
    newer, older = captured[1], captured[0]
    for body, properties in (newer, newer, older):  # newest first, then a duplicate, then the stale one
        await sandbox.bus.send("dataverse-changes", LocalMessage(body, "application/json", properties, message_id="x"))
        await sandbox.wait_quiet()
    row = sandbox.finance.get("ProjectsV2", dataAreaId="usmf", ProjectId="PRJ-2001")
    assert row is not None and row["ProjectName"] == "Version three"
    assert len(finance_writes(sandbox, "ProjectsV2")) == writes_before + 1
    # The repeated message has the same event id, so the flow queue's duplicate detection drops it;
    # the stale one reaches the flow and is skipped by the version guard.
    figures = FIGURES.flows["projects-v2"]
    assert figures.skipped["stale"] == 1
    assert figures.events == events_before + 2
