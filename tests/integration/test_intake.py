"""What comes in reaches its flows: message identity and size at the router, through the sandbox."""

from __future__ import annotations

import json

from sandbox.environment import Sandbox
from tests.integration.conftest import finance_writes, send
from tests.integration.test_flows import PROJECT, project_body

EMPTY_GUID = "00000000-0000-0000-0000-000000000000"


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
