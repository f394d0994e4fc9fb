"""A map whose Finance entity only an extension publishes stays off, and says what to add, until then."""

from __future__ import annotations

import pytest

from functions.catalog import CATALOG
from sandbox.environment import Sandbox, SandboxOptions
from shared.console.output import status_text
from shared.events import ChangeEvent, Operation, Source
from shared.extensions import EXTENSION_TRANSACTION_RELATIONSHIPS
from shared.operations.check_maps import check_live
from shared.operations.register_steps import plan_steps
from shared.operations.status import flow_statuses
from shared.operations.views import plain
from tests.integration.conftest import parked


@pytest.fixture
def options() -> SandboxOptions:
    """A Finance without either extension: only the standard published entities."""
    return SandboxOptions(finance_extensions=())


async def test_without_its_extension_a_map_is_off_and_says_what_to_add(sandbox: Sandbox) -> None:
    assert sandbox.runtime is not None
    assert "ProjectTransactionRelationships" not in sandbox.finance.schema
    problems, report = await check_live(sandbox.runtime, CATALOG)
    assert problems == []
    assert "transaction-connections: off until Finance has the extension public-transaction-relationships" in report
    assert not [p for p in plan_steps(CATALOG) if "transaction-connections" in p.flow]
    assert [
        p for p in plan_steps(CATALOG, [EXTENSION_TRANSACTION_RELATIONSHIPS]) if "transaction-connections" in p.flow
    ]
    statuses = {s.flow: s for s in await flow_statuses(sandbox.runtime, CATALOG)}
    assert statuses["transaction-connections"].needs_extension == EXTENSION_TRANSACTION_RELATIONSHIPS
    assert "ProjCDSTransactionRelationshipImportEntity" in status_text(plain(list(statuses.values())))

    # A change that reaches the flow anyway (an initial sync, a replay) is kept, not lost.
    event = ChangeEvent(
        event_id="tc-1",
        flow="transaction-connections",
        source=Source.INITIAL_SYNC,
        entity="msdyn_transactionconnection",
        operation=Operation.UPSERT,
        key="c0a1e000-0000-4000-8000-00000000c0c1",
    )
    await sandbox.runtime.sender.send_events("flow-transaction-connections", [event])
    await sandbox.wait_quiet()
    [(flow, reason, error)] = await parked(sandbox)
    assert (flow, reason) == ("transaction-connections", "extension-missing")
    assert "PROJOPS_FINANCE_EXTENSIONS" in error and "ProjectTransactionRelationships" in error
    assert not [r for r in sandbox.finance.requests if "ProjectTransactionRelationships" in r.path]
