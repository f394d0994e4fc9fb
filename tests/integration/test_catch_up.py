"""initial-sync --changes: Dataverse change tracking brings what the steps did not deliver, deletes too."""

from __future__ import annotations

import httpx
import pytest

from functions.catalog import CATALOG
from sandbox.environment import Sandbox
from shared.operations.changes import catch_up
from tests.integration.conftest import finance_writes, send
from tests.integration.test_reconcile import CONNECTIONS, connection, steps_off


async def test_changes_deliver_a_create_and_a_delete_no_step_carried(sandbox: Sandbox) -> None:
    assert sandbox.runtime is not None
    table_map = CATALOG.by_name("transaction-connections")
    async with sandbox.person_dataverse() as dv:
        for connection_id in CONNECTIONS[:2]:
            await send(dv, "POST", "msdyn_transactionconnections", connection(connection_id))
    await sandbox.wait_quiet()
    first = await catch_up(sandbox.runtime, table_map)
    assert first.counts == {"fed": 2, "deleted": 0, "pages": 1} and first.cursor and "$deltatoken=" in first.cursor
    await sandbox.wait_quiet()
    writes = len(finance_writes(sandbox, "ProjectTransactionRelationships"))
    assert writes == 2  # the rows read again were already there: nothing written twice

    with steps_off(sandbox):
        async with sandbox.person_dataverse() as dv:
            await send(dv, "POST", "msdyn_transactionconnections", connection(CONNECTIONS[2]))
            await send(dv, "DELETE", f"msdyn_transactionconnections({CONNECTIONS[0]})")
    await sandbox.wait_quiet()
    assert sandbox.finance.get("ProjectTransactionRelationships", ConnectionId=CONNECTIONS[0]) is not None

    caught = await catch_up(sandbox.runtime, table_map)
    assert caught.counts == {"fed": 1, "deleted": 1, "pages": 1} and caught.cursor != first.cursor
    await sandbox.wait_quiet()
    assert sandbox.finance.get("ProjectTransactionRelationships", ConnectionId=CONNECTIONS[0]) is None
    assert sandbox.finance.get("ProjectTransactionRelationships", ConnectionId=CONNECTIONS[2]) is not None
    assert [m for m, _ in finance_writes(sandbox, "ProjectTransactionRelationships")[writes:]] in (
        ["POST", "DELETE"],
        ["DELETE", "POST"],
    )
    state = await sandbox.runtime.engine.state.get_state(table_map.name, CONNECTIONS[0])
    assert state is not None and state.tombstone

    again = await catch_up(sandbox.runtime, table_map)
    assert again.counts == {"fed": 0, "deleted": 0, "pages": 1}


async def test_changes_over_the_admin_api_and_finance_flows_are_told_why_not(sandbox: Sandbox) -> None:
    assert sandbox.host is not None and sandbox.runtime is not None
    keyed = {"x-functions-key": sandbox.host.function_key}
    async with httpx.AsyncClient(base_url=sandbox.host.http_url, headers=keyed) as client:
        done = await client.post("/api/admin/initial-sync/transaction-connections", json={"changes": True})
        refused = await client.post("/api/admin/initial-sync/expenses", json={"changes": True})
    assert done.status_code == 200 and done.json()["status"] == "completed" and done.json()["cursor"]
    assert refused.status_code == 400 and "has no change tracking" in refused.json()["error"]
    with pytest.raises(ValueError, match="initial-sync --since"):
        await catch_up(sandbox.runtime, CATALOG.by_name("expenses"))
