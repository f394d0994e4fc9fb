"""Changes that arrive late, twice or out of order end with both systems holding the newest value.

Each case was found ending with the systems diverged for good (a review of ordering and loops).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from functions.catalog import CATALOG
from sandbox.demo_data import CUSTOMER_GROUP_ID, USD_ID, USMF_ID
from sandbox.environment import Sandbox, SandboxOptions
from shared.bus import DATAVERSE_SUBSCRIPTION, DATAVERSE_TOPIC
from shared.errors import TransientServiceError
from shared.operations.initial_sync import initial_sync
from tests.integration.conftest import send, started, until
from tests.integration.test_flows import project_body

CUSTOMER = "CustomersV3(dataAreaId='usmf',CustomerAccount='US-500')"
REQUEST_NAME = "http://schemas.microsoft.com/xrm/2011/Claims/RequestName"


def names(sandbox: Sandbox) -> tuple[str, str]:
    """The customer's name in Dataverse and in Finance."""
    row = sandbox.finance.get("CustomersV3", dataAreaId="usmf", CustomerAccount="US-500")
    [account] = [r for r in sandbox.dataverse.rows("account") if r.get("accountnumber") == "US-500"]
    assert row is not None
    return account["name"], row["OrganizationName"]


async def create_customer(sandbox: Sandbox) -> str:
    async with sandbox.person_dataverse() as dv:
        await send(
            dv,
            "POST",
            "accounts",
            {
                "accountnumber": "US-500",
                "name": "Alpha",
                "customertypecode": 3,
                # Every mapped column set: the post image is then whole and is written as it is, unread.
                "creditlimit": 1000,
                "description": "memo",
                "emailaddress1": "a@example.com",
                "telephone1": "555",
                "address1_city": "Oslo",
                "address1_country": "NO",
                "transactioncurrencyid@odata.bind": f"/transactioncurrencies({USD_ID})",
                "msdyn_customergroupid@odata.bind": f"/msdyn_customergroups({CUSTOMER_GROUP_ID})",
                "msdyn_company@odata.bind": f"/cdm_companies({USMF_ID})",
            },
        )
    await sandbox.wait_quiet()
    [account] = [r for r in sandbox.dataverse.rows("account") if r.get("accountnumber") == "US-500"]
    return str(account["accountid"])


async def test_a_change_reverted_after_the_other_system_changed_it_reaches_that_system(sandbox: Sandbox) -> None:
    """customers both ways: what the reverse flow wrote makes the last payload written stale."""
    account = await create_customer(sandbox)
    for renamed in ("Beta", "Gamma"):
        async with sandbox.person_finance() as fo:
            await send(fo, "PATCH", CUSTOMER, {"OrganizationName": renamed})
        await sandbox.wait_quiet()
        assert names(sandbox) == (renamed, renamed)
        async with sandbox.person_dataverse() as dv:
            await send(dv, "PATCH", f"accounts({account})", {"name": "Alpha"})
        await sandbox.wait_quiet()
        assert names(sandbox) == ("Alpha", "Alpha")


@pytest.fixture
def options() -> SandboxOptions:
    return SandboxOptions(retry_base_delay_seconds=1.0, retry_max_delay_seconds=1.0)


@pytest.fixture
async def slow_retries(options: SandboxOptions) -> AsyncIterator[Sandbox]:
    async with started(options) as environment:
        yield environment


async def test_a_retried_change_older_than_what_came_back_is_not_written_over_it(slow_retries: Sandbox) -> None:
    sandbox = slow_retries
    account = await create_customer(sandbox)
    assert sandbox.runtime is not None
    finance = sandbox.runtime.engine.finance
    update = finance.update
    failed = asyncio.Event()

    async def once_unavailable(entity_set: str, key: Any, body: Any) -> Any:
        if entity_set == "CustomersV3" and not failed.is_set():
            failed.set()
            raise TransientServiceError("finance", 503, "Service Unavailable")
        return await update(entity_set, key, body)

    finance.update = once_unavailable  # type: ignore[method-assign]
    async with sandbox.person_dataverse() as dv:
        await send(dv, "PATCH", f"accounts({account})", {"name": "Dataverse, older"})
    await failed.wait()
    # While the Dataverse change waits for its retry, a Finance user renames the customer.
    async with sandbox.person_finance() as fo:
        await send(fo, "PATCH", CUSTOMER, {"OrganizationName": "Finance, newer"})
    await sandbox.wait_quiet()
    assert names(sandbox) == ("Finance, newer", "Finance, newer")


async def test_a_row_read_by_initial_sync_before_a_live_change_is_not_written_over_it(sandbox: Sandbox) -> None:
    project = "c0a1e000-0000-4000-8000-00000000ad01"
    async with sandbox.person_dataverse() as dv:
        await send(dv, "POST", "msdyn_projects", {**project_body("PRJ-4001"), "msdyn_projectid": project})
    await sandbox.wait_quiet()
    assert sandbox.runtime is not None
    dataverse = sandbox.runtime.engine.dataverse
    pages = dataverse.pages

    def read_then_edited(entity_set: str, **options: Any) -> Any:
        async def edited_before_fed() -> Any:
            async for page in pages(entity_set, **options):
                async with sandbox.person_dataverse() as dv:
                    await send(dv, "PATCH", f"msdyn_projects({project})", {"msdyn_subject": "Renamed"})
                await sandbox.wait_quiet()
                yield page

        return edited_before_fed()

    dataverse.pages = read_then_edited  # type: ignore[method-assign]
    await initial_sync(sandbox.runtime, CATALOG.by_name("projects-v2"))
    await sandbox.wait_quiet()
    row = sandbox.finance.get("ProjectsV2", dataAreaId="usmf", ProjectId="PRJ-4001")
    assert row is not None and row["ProjectName"] == "Renamed"


async def test_a_create_delivered_after_its_delete_does_not_bring_the_row_back(sandbox: Sandbox) -> None:
    """The asynchronous service keeps no order between a record's Create and Delete jobs."""
    assert sandbox.runtime is not None and sandbox.runtime.switch is not None
    project = "c0a1e000-0000-4000-8000-00000000ac01"
    await sandbox.runtime.switch.set_disabled("route_dataverse_changes", True)
    async with sandbox.person_dataverse() as dv:
        await send(dv, "POST", "msdyn_projects", {**project_body("PRJ-5001"), "msdyn_projectid": project})
        await send(dv, "DELETE", f"msdyn_projects({project})")
    waiting = sandbox.bus.entity(f"{DATAVERSE_TOPIC}/Subscriptions/{DATAVERSE_SUBSCRIPTION}").ready
    *others, create, delete = list(waiting)
    assert [m.application_properties[REQUEST_NAME] for m in (create, delete)] == ["Create", "Delete"]
    waiting.clear()
    waiting.extend([*others, delete, create])
    await sandbox.runtime.switch.set_disabled("route_dataverse_changes", False)
    await sandbox.wait_quiet()
    assert sandbox.finance.get("ProjectsV2", dataAreaId="usmf", ProjectId="PRJ-5001") is None


async def test_a_backlog_resumed_after_a_pause_does_not_undo_what_came_back_meanwhile(sandbox: Sandbox) -> None:
    """accounts-to-customers paused: a Dataverse rename waits, a Finance rename comes back to Dataverse
    meanwhile. Resumed, the older image is not written; the account as it is now is."""
    assert sandbox.runtime is not None and sandbox.runtime.switch is not None
    account = await create_customer(sandbox)
    flow = CATALOG.by_name("accounts-to-customers").function_name
    await sandbox.runtime.switch.set_disabled(flow, True)
    async with sandbox.person_dataverse() as dv:
        await send(dv, "PATCH", f"accounts({account})", {"name": "Dataverse, older"})
    async with sandbox.person_finance() as fo:
        await send(fo, "PATCH", CUSTOMER, {"OrganizationName": "Finance, newer"})
    await until(lambda: names(sandbox) == ("Finance, newer", "Finance, newer"))
    await sandbox.runtime.switch.set_disabled(flow, False)
    await sandbox.wait_quiet()
    assert names(sandbox) == ("Finance, newer", "Finance, newer")
