"""initial-sync --changes: Dataverse change tracking brings what the steps did not deliver, deletes too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote_plus

import httpx
import pytest

from functions.catalog import CATALOG
from sandbox.environment import Sandbox, SandboxOptions
from shared.console.profile import write_profile
from shared.operations.changes import catch_up
from tests.integration.conftest import finance_writes, send, started
from tests.integration.test_console_cli import cli
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


def connection_reads(sandbox: Sandbox, since: int) -> list[str]:
    """The queries of Dataverse's reads of the connections since request `since`, decoded."""
    return [
        unquote_plus(r.query)
        for r in sandbox.dataverse.requests[since:]
        if r.method == "GET" and r.path.endswith("/msdyn_transactionconnections")
    ]


async def test_an_expired_delta_link_is_dropped_and_the_table_read_again(sandbox: Sandbox) -> None:
    """Found by review: once Dataverse refused the stored link (a token past ExpireChangeTrackingInDays),
    every later catch-up failed the same way and the stored link never changed."""
    assert sandbox.runtime is not None
    table_map = CATALOG.by_name("transaction-connections")
    async with sandbox.person_dataverse() as dv:
        for connection_id in CONNECTIONS[:2]:
            await send(dv, "POST", "msdyn_transactionconnections", connection(connection_id))
    await sandbox.wait_quiet()
    first = await catch_up(sandbox.runtime, table_map)
    with steps_off(sandbox):
        async with sandbox.person_dataverse() as dv:
            await send(dv, "POST", "msdyn_transactionconnections", connection(CONNECTIONS[2]))
            await send(dv, "DELETE", f"msdyn_transactionconnections({CONNECTIONS[0]})")
    await sandbox.wait_quiet()
    issued = datetime.now(UTC)
    sandbox.dataverse.change_tracking_clock = lambda: issued + timedelta(days=8)
    before = len(sandbox.dataverse.requests)

    caught = await catch_up(sandbox.runtime, table_map)
    assert caught.status == "completed" and caught.counts == {"fed": 2, "deleted": 0, "pages": 1}
    refused, fresh = connection_reads(sandbox, before)
    assert "$deltatoken" in refused and "$deltatoken" not in fresh
    assert caught.cursor and "$deltatoken=" in caught.cursor and caught.cursor != first.cursor
    notice = caught.options["notice"]
    assert "Version stamp associated with the client has expired" in notice
    assert "projops-sync reconcile transaction-connections" in notice
    await sandbox.wait_quiet()
    # What the gap created reached Finance; what it deleted is the reconcile's to find, as said.
    assert sandbox.finance.get("ProjectTransactionRelationships", ConnectionId=CONNECTIONS[2]) is not None
    assert sandbox.finance.get("ProjectTransactionRelationships", ConnectionId=CONNECTIONS[0]) is not None

    again = await catch_up(sandbox.runtime, table_map)
    assert again.counts == {"fed": 0, "deleted": 0, "pages": 1} and "notice" not in again.options


async def test_restart_over_the_admin_api_reads_again_and_a_failed_read_answers_its_reason(sandbox: Sandbox) -> None:
    """Found by review: {"changes": true, "restart": true} never reached the read (the restart was
    not passed on) and an expired link answered 500."""
    assert sandbox.host is not None and sandbox.runtime is not None
    await catch_up(sandbox.runtime, CATALOG.by_name("transaction-connections"))
    keyed = {"x-functions-key": sandbox.host.function_key}
    before = len(sandbox.dataverse.requests)
    async with httpx.AsyncClient(base_url=sandbox.host.http_url, headers=keyed) as client:
        body = {"changes": True, "restart": True}
        restarted = await client.post("/api/admin/initial-sync/transaction-connections", json=body)
        assert restarted.status_code == 200 and "--restart" in restarted.json()["options"]["notice"]
        [fresh] = connection_reads(sandbox, before)
        assert "$deltatoken" not in fresh

        sandbox.dataverse.change_tracking.discard("msdyn_transactionconnection")
        failed = await client.post("/api/admin/initial-sync/transaction-connections", json=body)
    assert failed.status_code == 502
    assert "Change tracking is not enabled for the entity msdyn_transactionconnection" in failed.json()["error"]


async def test_changes_restart_on_the_command_line_reads_again_and_says_what_to_reconcile(tmp_path: Path) -> None:
    """Found by review: the command line called the catch-up before it looked at --restart."""
    async with started(SandboxOptions(state_path=str(tmp_path / "state.db"))) as sandbox:
        assert sandbox.runtime is not None
        profile = tmp_path / "cli.env"
        write_profile(profile, sandbox.cli_profile(), title="test")
        await catch_up(sandbox.runtime, CATALOG.by_name("transaction-connections"))
        before = len(sandbox.dataverse.requests)
        result = await cli("initial-sync", "transaction-connections", "--changes", "--restart", profile=profile)
        assert result.code == 0, result.err
        assert "started over as asked (--restart)" in result.out
        assert "projops-sync reconcile transaction-connections" in result.out
        [fresh] = connection_reads(sandbox, before)
        assert "$deltatoken" not in fresh
