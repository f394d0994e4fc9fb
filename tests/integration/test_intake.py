"""What comes in reaches its flows: message identity and size at the router, through the sandbox."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from functions.catalog import CATALOG
from sandbox.environment import WEBHOOK_SECRET, Sandbox
from shared import routing
from shared.operations.parked import replay, select_parked
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


async def _oversized_project_update(sandbox: Sandbox) -> tuple[bytes, dict[str, str]]:
    """The project synced, then its Update as Dataverse's webhook would send it, padded by a column no
    flow reads to just under the 256 KB Dataverse sends whole: the body and the call's headers."""
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
    return body, headers


async def _call_webhook(sandbox: Sandbox, body: bytes, headers: dict[str, str]) -> httpx.Response:
    assert sandbox.host is not None
    async with httpx.AsyncClient() as client:
        answer = await client.post(f"{sandbox.host.http_url}/api/dataverse/webhook", content=body, headers=headers)
    await sandbox.wait_quiet()
    return answer


async def test_a_webhook_body_over_what_the_topic_holds_reaches_finance(sandbox: Sandbox) -> None:
    """Dataverse sends a webhook body of up to 256 KB whole (it drops the images only above that); with
    the properties the router adds, that is over the 256 KB a Standard namespace holds in a message. The
    change goes on as the events the flows read, and Finance receives it."""
    body, headers = await _oversized_project_update(sandbox)
    answer = await _call_webhook(sandbox, body, headers)
    assert answer.status_code == 202
    row = sandbox.finance.get("ProjectsV2", dataAreaId="usmf", ProjectId="PRJ-2001")
    assert row is not None and row["ProjectName"] == "Warehouse automation II"
    assert [method for method, _ in finance_writes(sandbox, "ProjectsV2")] == ["POST", "PATCH"]
    assert FIGURES.oversized == {"events": 1}
    assert await parked(sandbox) == []


async def test_an_oversized_webhook_body_parked_undecodable_replays_once_it_decodes(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by review: the parked body went back to the topic, which refuses it for size as it did
    when the webhook came in; it could never be replayed, even with the decoder fixed. It is routed in
    place now, as the webhook routes it; while it still cannot be decoded the replay says so."""
    assert sandbox.runtime is not None
    body, headers = await _oversized_project_update(sandbox)
    decode = routing.decode_dataverse

    def a_decoder_bug(*_: Any) -> Any:
        raise RuntimeError("a shape the decoder did not expect")

    monkeypatch.setattr(routing, "decode_dataverse", a_decoder_bug)
    assert (await _call_webhook(sandbox, body, headers)).status_code == 202
    [row] = await select_parked(sandbox.runtime, reason="undecodable")
    assert json.loads(row.event)["ingress"] == "dataverse-changes"

    still = await replay(sandbox.runtime, CATALOG, [row], by="tester")
    await sandbox.wait_quiet()
    assert still.replayed == [] and still.failed[row.id].startswith("parked again: unexpected error while decoding")
    [again] = await select_parked(sandbox.runtime, reason="undecodable")
    assert again.id != row.id

    monkeypatch.setattr(routing, "decode_dataverse", decode)
    report = await replay(sandbox.runtime, CATALOG, [again], by="tester")
    await sandbox.wait_quiet()

    assert report.replayed == [again.id] and report.failed == {}
    project = sandbox.finance.get("ProjectsV2", dataAreaId="usmf", ProjectId="PRJ-2001")
    assert project is not None and project["ProjectName"] == "Warehouse automation II"
    assert await parked(sandbox) == []
