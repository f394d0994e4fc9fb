"""What comes in reaches its flows: message identity and size at the router, through the sandbox."""

from __future__ import annotations

import json

import httpx

from sandbox.environment import WEBHOOK_SECRET, Sandbox
from shared.telemetry import FIGURES
from tests.integration.conftest import finance_writes, parked, send
from tests.integration.test_flows import PROJECT, project_body

EMPTY_GUID = "00000000-0000-0000-0000-000000000000"
# Dataverse sends a webhook's body whole up to 256 KB (formats.md §1.1).
WEBHOOK_WHOLE_BYTES = 256 * 1024


async def test_two_updates_in_no_system_job_both_reach_finance(sandbox: Sandbox) -> None:
    """A synchronous step runs in no system job, so its context names none (OperationId is the
    system job's id). Its two updates of one project within the flow queue's ten-minute duplicate
    window are two messages, not one and its duplicate."""
    emit = sandbox.dataverse.sink
    assert emit is not None

    async def synchronous(destination: str, body: bytes, properties: dict[str, str], content_type: str) -> None:
        context = json.loads(body)
        context["OperationId"] = EMPTY_GUID
        await emit(destination, json.dumps(context).encode(), properties, content_type)

    sandbox.dataverse.sink = synchronous
    async with sandbox.person_dataverse() as dv:
        await send(dv, "POST", "msdyn_projects", project_body())
        await sandbox.wait_quiet()
        await send(dv, "PATCH", f"msdyn_projects({PROJECT})", {"msdyn_subject": "Warehouse automation II"})
        await sandbox.wait_quiet()
        await send(dv, "PATCH", f"msdyn_projects({PROJECT})", {"msdyn_subject": "Warehouse automation III"})
        await sandbox.wait_quiet()
    row = sandbox.finance.get("ProjectsV2", dataAreaId="usmf", ProjectId="PRJ-2001")
    assert row is not None and row["ProjectName"] == "Warehouse automation III"
    assert [method for method, _ in finance_writes(sandbox, "ProjectsV2")] == ["POST", "PATCH", "PATCH"]


async def test_a_webhook_body_over_what_the_topic_holds_reaches_finance(sandbox: Sandbox) -> None:
    """Dataverse sends a webhook body of up to 256 KB whole (it drops the images only above that); with
    the properties the router adds, that is over the 256 KB a Standard namespace holds in a message. The
    change goes on as the events the flows read, and Finance receives it."""
    assert sandbox.host is not None
    emit = sandbox.dataverse.sink
    assert emit is not None
    diverted: list[bytes] = []

    async def to_webhook(destination: str, body: bytes, properties: dict[str, str], content_type: str) -> None:
        context = json.loads(body)
        if (context["PrimaryEntityName"], context["MessageName"]) == ("msdyn_project", "Update"):
            diverted.append(body)
        else:
            await emit(destination, body, properties, content_type)

    sandbox.dataverse.sink = to_webhook
    async with sandbox.person_dataverse() as dv:
        await send(dv, "POST", "msdyn_projects", project_body())
        await sandbox.wait_quiet()
        await send(dv, "PATCH", f"msdyn_projects({PROJECT})", {"msdyn_subject": "Warehouse automation II"})
    [update] = diverted
    context = json.loads(update)
    # A column no flow reads, wide enough to bring the body just under Dataverse's 256 KB.
    padding = {"key": "new_sitesurveynotes", "value": ""}
    context["InputParameters"][0]["value"]["Attributes"].append(padding)
    padding["value"] = "n" * (WEBHOOK_WHOLE_BYTES - 100 - len(json.dumps(context).encode()))
    body = json.dumps(context).encode()
    assert WEBHOOK_WHOLE_BYTES - 200 < len(body) <= WEBHOOK_WHOLE_BYTES
    headers = {
        "content-type": "application/json",
        "x-projops-webhook-key": WEBHOOK_SECRET,
        "x-ms-dynamics-organization": "contoso.crm.dynamics.com",
        "x-ms-dynamics-entity-name": "msdyn_project",
        "x-ms-dynamics-request-name": "Update",
        "x-ms-correlation-request-id": context["CorrelationId"],
    }
    async with httpx.AsyncClient() as client:
        answer = await client.post(f"{sandbox.host.http_url}/api/dataverse/webhook", content=body, headers=headers)
    await sandbox.wait_quiet()
    assert answer.status_code == 202
    row = sandbox.finance.get("ProjectsV2", dataAreaId="usmf", ProjectId="PRJ-2001")
    assert row is not None and row["ProjectName"] == "Warehouse automation II"
    assert [method for method, _ in finance_writes(sandbox, "ProjectsV2")] == ["POST", "PATCH"]
    assert FIGURES.oversized == {"events": 1}
    assert await parked(sandbox) == []
