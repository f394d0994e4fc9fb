"""What the review found raised into redelivery now ends parked with a reason, over the sandbox."""

from __future__ import annotations

from typing import Any

import pytest

from functions.catalog import CATALOG
from sandbox.environment import Sandbox
from shared import flow_runner
from tests.integration.conftest import parked, send


async def test_a_bug_in_a_flow_is_retried_within_the_budget_then_parked_whole(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    async def broken(engine: Any, table_map: Any, event: Any) -> Any:
        calls.append(event.key)
        raise ZeroDivisionError("a bug in a transform")

    monkeypatch.setattr(flow_runner, "apply_event", broken)
    async with sandbox.person_dataverse() as dv:
        await send(
            dv,
            "POST",
            "bookableresourcecategories",
            {"bookableresourcecategoryid": "c0a1e000-0000-4000-8000-0000000000e9", "name": "Tester"},
        )
    await sandbox.wait_quiet()
    record = "c0a1e000-0000-4000-8000-0000000000e9"
    # Bounded by the retry budget, not redelivered until Service Bus gives up.
    assert calls.count(record) == sandbox.options.retry_max_attempts
    assert [p[1:] for p in await parked(sandbox) if p[0] == "resource-roles"] == [
        ("retry-budget-exhausted: unexpected-error", "ZeroDivisionError: a bug in a transform")
    ]
    assert sandbox.bus.dead_letters(CATALOG.by_name("resource-roles").flow_queue) == []
