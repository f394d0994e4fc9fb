"""Initial sync reads the next page while it feeds the current one, over HTTP against the Dataverse
simulator: what the simulator received, and when, relative to what the flow queue received."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from urllib.parse import parse_qs

import pytest

from functions.catalog import CATALOG
from sandbox.environment import Sandbox, SandboxOptions
from shared.errors import TransientServiceError
from shared.events import ChangeEvent
from shared.operations.initial_sync import initial_sync, latest_unfinished
from shared.operations.pause import pause, resume

ROLES = "/api/data/v9.2/bookableresourcecategories"


def seed_roles(sandbox: Sandbox, n: int) -> None:
    for i in range(n):
        sandbox.dataverse.seed(
            "bookableresourcecategory", {"name": f"Role {i}", "msdyn_resourcecategorynumber": f"R{i:03d}"}
        )


def page_number(url_or_query: str) -> str | None:
    """The page a nextLink asks for: its paging cookie's pagenumber (page one has no cookie)."""
    token = parse_qs(url_or_query.split("?", 1)[-1]).get("$skiptoken")
    found = re.search(r'pagenumber="(\d+)"', token[0]) if token else None
    return found.group(1) if found else None


def page_reads(sandbox: Sandbox, page: str) -> list[int]:
    """The statuses of the GETs Dataverse received for page number `page`."""
    return [
        r.status
        for r in sandbox.dataverse.requests
        if r.method == "GET" and r.path == ROLES and page_number(r.query) == page
    ]


async def until_read(sandbox: Sandbox, page: str, answered: int | None = None, seconds: float = 5.0) -> bool:
    """Whether Dataverse receives (and with `answered`, has answered with that status) the page's GET
    within `seconds`. Read sequentially the GET never comes while a send is held, so this is a
    bound on a wait that either ends at once or never, not a timing."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        statuses = page_reads(sandbox, page)
        if statuses and (answered is None or answered in statuses):
            return True
        await asyncio.sleep(0.01)
    return False


async def test_the_next_page_is_read_before_this_pages_events_are_sent(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each page's send is held until Dataverse has received the next page's GET: a sync that reads
    only after feeding never gets past its first page's wait."""
    seed_roles(sandbox, 25)
    assert sandbox.runtime is not None
    sender = sandbox.runtime.sender
    real_send = sender.send_events
    read_during_send: list[tuple[str, bool]] = []

    table_map = CATALOG.by_name("resource-roles")

    async def send_events(queue: str, events: Sequence[ChangeEvent]) -> None:
        if queue == table_map.flow_queue:  # the flows send on other queues through the same sender
            nxt = str(len(read_during_send) + 2)
            read_during_send.append((nxt, await until_read(sandbox, nxt)))
        await real_send(queue, events)

    monkeypatch.setattr(sender, "send_events", send_events)
    run = await initial_sync(sandbox.runtime, table_map, page_size=10)
    assert run.status == "completed" and run.counts == {"fed": 25, "pages": 3}
    # Pages two and three were asked for while pages one and two were still to be sent; the last
    # page has no next one (a page four is never read).
    assert read_during_send[:2] == [("2", True), ("3", True)]
    assert page_reads(sandbox, "4") == []
    # Read once each: reading ahead does not read a page twice.
    assert page_reads(sandbox, "2") == [200] and page_reads(sandbox, "3") == [200]
    await sandbox.wait_quiet()
    assert len(sandbox.finance.rows("ResourceCategoriesShared")) == 25


async def test_without_prefetch_the_next_page_waits_for_this_one_to_be_sent(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same check the other way round, so the one above is known to be able to fail."""
    seed_roles(sandbox, 15)
    assert sandbox.runtime is not None
    sender = sandbox.runtime.sender
    real_send = sender.send_events
    seen: list[bool] = []
    table_map = CATALOG.by_name("resource-roles")

    async def send_events(queue: str, events: Sequence[ChangeEvent]) -> None:
        if queue == table_map.flow_queue and not seen:
            seen.append(await until_read(sandbox, "2", seconds=0.5))
        await real_send(queue, events)

    monkeypatch.setattr(sender, "send_events", send_events)
    await initial_sync(sandbox.runtime, table_map, page_size=10, prefetch=False)
    assert seen == [False]


@pytest.fixture
def options() -> SandboxOptions:
    # A failed read is not retried within the call, so the failure injected below is the one seen.
    return SandboxOptions(http_max_retries=0)


async def test_a_page_that_fails_while_read_ahead_fails_the_run_after_the_page_before_is_fed(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dataverse fails the second page's GET while the first page is still being sent: the first
    page is fed whole, the run fails with the cursor on the second page, and a resume feeds the rest
    once (nothing skipped, nothing twice)."""
    seed_roles(sandbox, 25)
    assert sandbox.runtime is not None and sandbox.runtime.switch is not None
    table_map = CATALOG.by_name("resource-roles")
    await pause(sandbox.runtime.switch, table_map)
    sender = sandbox.runtime.sender
    real_send = sender.send_events
    failed_ahead: list[bool] = []

    async def send_events(queue: str, events: Sequence[ChangeEvent]) -> None:
        if queue == table_map.flow_queue and not failed_ahead:
            sandbox.dataverse.set_faults(error_share=1.0)
            failed_ahead.append(await until_read(sandbox, "2", answered=500))
            sandbox.dataverse.set_faults(error_share=0.0)
        await real_send(queue, events)

    monkeypatch.setattr(sender, "send_events", send_events)
    with pytest.raises(TransientServiceError, match=r"dataverse 500 .*\$skiptoken=%3Ccookie%20pagenumber=%222%22"):
        await initial_sync(sandbox.runtime, table_map, page_size=10)
    assert failed_ahead == [True]
    failed = await latest_unfinished(sandbox.runtime, "resource-roles")
    assert failed is not None and failed.status == "failed"
    assert failed.counts == {"fed": 10, "pages": 1}
    assert failed.cursor is not None and page_number(failed.cursor) == "2"
    [error] = failed.errors
    assert error.startswith("TransientServiceError: dataverse 500 [0x80040216]: An unexpected error occurred.")
    assert re.search(r"/bookableresourcecategories\?\$skiptoken=%3Ccookie%20pagenumber=%222%22.*\)$", error)
    assert sandbox.bus.entity(table_map.flow_queue).active_count == 10

    monkeypatch.setattr(sender, "send_events", real_send)
    done = await initial_sync(sandbox.runtime, table_map, page_size=10, resume=failed)
    assert done.status == "completed" and done.counts == {"fed": 25, "pages": 3}
    assert sandbox.bus.entity(table_map.flow_queue).active_count == 25
    await resume(sandbox.runtime.switch, table_map)
    await sandbox.wait_quiet()
    assert len(sandbox.finance.rows("ResourceCategoriesShared")) == 25
