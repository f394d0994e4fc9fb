"""trace FLOW KEY against the sandbox: a written record, a parked one with Finance's own error text,
and a deleted one, each with its state, outcomes and both rows."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from functions.catalog import CATALOG
from sandbox.environment import Sandbox, SandboxOptions
from sandbox.scenario import actual_body, import_id
from shared.operations.reconcile_text import trace_text
from shared.operations.trace import trace
from tests.integration.conftest import send
from tests.integration.test_flows import PROJECT, create_project
from tests.integration.test_reconcile import connection

WRITTEN, REFUSED = "c0a1e000-0000-4000-8000-0000000f0001", "c0a1e000-0000-4000-8000-0000000f0002"


async def test_trace_shows_a_written_and_a_parked_actual(sandbox: Sandbox) -> None:
    await create_project(sandbox)
    assert sandbox.runtime is not None
    async with sandbox.person_dataverse() as dv:
        body = actual_body(WRITTEN, "ACT-T1", classification=192350000, quantity="2", price="7.5")
        body["msdyn_project@odata.bind"] = f"/msdyn_projects({PROJECT})"
        await send(dv, "POST", "msdyn_actuals", body)
        await sandbox.wait_quiet()
        # Finance lacks the line property the next actual's billing type names: it refuses the row.
        sandbox.finance.line_properties.discard("Chargeable")
        body = actual_body(REFUSED, "ACT-T2", classification=192350000, quantity="1", price="3")
        body["msdyn_project@odata.bind"] = f"/msdyn_projects({PROJECT})"
        await send(dv, "POST", "msdyn_actuals", body)
    await sandbox.wait_quiet()
    table_map = CATALOG.by_name("actuals")

    written = await trace(sandbox.runtime, table_map, WRITTEN)
    assert written["state"]["target_key"] and written["state"]["tombstone"] is False
    assert [(o["kind"], o["source"], o["operation"]) for o in written["outcomes"]] == [
        ("written", "dataverse", "create")
    ]
    assert written["parked"] == [] and written["differences"] == []
    assert written["target"]["ActualsImportId"] == import_id("ACT-T1") and written["target"]["Amount"] == Decimal("15")
    assert written["source"]["msdyn_actualid"] == WRITTEN

    refused = await trace(sandbox.runtime, table_map, REFUSED)
    assert refused["state"] is None
    assert [(o["kind"], o["reason"]) for o in refused["outcomes"]] == [("parked", "rejected-by-target")]
    [parked] = refused["parked"]
    assert "Line property Chargeable doesn't exist." in parked["error"]
    assert refused["target"] is None
    assert refused["differences"] == [
        {"field": "(row)", "source": {"dataAreaId": "usmf", "ActualsImportId": import_id("ACT-T2")}, "target": None}
    ]
    text = trace_text(refused)
    assert "Line property Chargeable doesn't exist." in text and "target row: absent" in text


async def test_trace_shows_a_deleted_record_by_its_tombstone(sandbox: Sandbox) -> None:
    assert sandbox.runtime is not None
    gone = "c0a1e000-0000-4000-8000-0000000f0003"
    async with sandbox.person_dataverse() as dv:
        await send(dv, "POST", "msdyn_transactionconnections", connection(gone))
        await sandbox.wait_quiet()
        await send(dv, "DELETE", f"msdyn_transactionconnections({gone})")
    await sandbox.wait_quiet()
    found = await trace(sandbox.runtime, CATALOG.by_name("transaction-connections"), gone)
    assert found["state"]["tombstone"] is True and gone in found["state"]["target_key"]
    assert [(o["kind"], o["operation"]) for o in found["outcomes"]] == [("written", "create"), ("written", "delete")]
    assert found["source"] is None and found["target"] is None
    assert "tombstone True" in trace_text(found)


async def admin_trace(sandbox: Sandbox, flow: str, key: str) -> httpx.Response:
    assert sandbox.host is not None
    async with httpx.AsyncClient(base_url=sandbox.host.http_url) as client:
        return await client.get(f"/api/admin/trace/{flow}", params={"key": key, "code": sandbox.host.function_key})


async def test_a_mistyped_finance_key_is_refused_with_its_reason_through_the_admin_api(sandbox: Sandbox) -> None:
    """`projops-sync trace workers USMF|000001|extra --url ...`: the operator is told the key's parts."""
    answer = await admin_trace(sandbox, "workers", "USMF|000001|extra")
    assert answer.status_code == 400
    assert answer.json() == {"error": "'USMF|000001|extra' is not a workers key: it has the parts PersonnelNumber"}


@pytest.mark.parametrize("options", [SandboxOptions(http_max_retries=0)])
async def test_a_service_failing_the_trace_is_named_through_the_admin_api(sandbox: Sandbox) -> None:
    sandbox.finance.set_faults(error_share=1.0)
    answer = await admin_trace(sandbox, "workers", "000001")
    sandbox.finance.set_faults(error_share=0.0)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error.startswith("workers trace failed: finance 503: ") and "Workers(PersonnelNumber='000001')" in error
