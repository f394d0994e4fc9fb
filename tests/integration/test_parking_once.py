"""A delivery parks into one row, however often it is delivered. Parking is not the delivery's last
step: the settlement's history write follows it in a flow, and a router may park one event of a
message and then fail to send the next. The message is then abandoned and redelivered, and parks
again: into the same row, or an operator's "replay all" would replay the event once per delivery."""

from __future__ import annotations

import json
from typing import Any

import pytest

from functions.catalog import CATALOG
from sandbox.bus import LocalMessage
from sandbox.environment import Sandbox
from shared.bus import FINANCE_QUEUE
from shared.decoding.dataverse import IncomingMessage
from shared.events import ChangeEvent, Operation, Source
from shared.operations.parked import replay
from shared.routing import FINANCE_ROUTER, route_finance

KEY = "a0000000-0000-4000-8000-00000000beef"


async def parked_rows(sandbox: Sandbox, flow: str) -> list[Any]:
    assert sandbox.runtime is not None
    return [p for p in await sandbox.runtime.engine.state.list_parked(status=None) if p.flow == flow]


async def test_a_flow_event_parked_then_redelivered_is_one_parked_row(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert sandbox.runtime is not None
    state = sandbox.runtime.engine.state
    real_settlement, real_get_state = state.record_settlement, state.get_state
    settlements = {"failed": 0}

    async def settlement_fails_thrice(history: Any, scopes: Any) -> None:
        # A Table Storage blip after the park succeeded: the message is abandoned and redelivered.
        if history.kind == "parked" and settlements["failed"] < 3:
            settlements["failed"] += 1
            raise OSError("Table Storage: 503 ServerBusy")
        await real_settlement(history, scopes)

    async def get_state(flow: str, key: str) -> Any:
        if key == KEY:
            raise RuntimeError("a bug reading this record's state")
        return await real_get_state(flow, key)

    monkeypatch.setattr(state, "record_settlement", settlement_fails_thrice)
    monkeypatch.setattr(state, "get_state", get_state)
    last = sandbox.options.retry_max_attempts
    event = ChangeEvent(
        event_id="ev-1", flow="actuals", source=Source.DATAVERSE, entity="msdyn_actual",
        operation=Operation.UPDATE, key=KEY, version=5, attempt=last,
    )  # fmt: skip
    await sandbox.runtime.sender.send_events("flow-actuals", [event])
    await sandbox.wait_quiet()

    assert settlements["failed"] == 3, "delivered four times"
    [row] = await parked_rows(sandbox, "actuals")
    assert (row.status, row.reason, row.attempts) == ("parked", "retry-budget-exhausted: unexpected-error", last)
    assert json.loads(row.event)["event_id"] == "ev-1"
    assert sandbox.bus.dead_letters("flow-actuals") == []

    # Replayed while the cause is still there: the replay is a new event, parked in a row of its own.
    await replay(sandbox.runtime, CATALOG, [row], by="operator")
    await sandbox.wait_quiet()
    rows = {p.id: p for p in await parked_rows(sandbox, "actuals")}
    assert len(rows) == 2 and rows[row.id].status == "replayed"
    [again] = [p for p in rows.values() if p.status == "parked"]
    assert json.loads(again.event)["source"] == "replay"


async def test_a_router_message_parked_in_part_then_redelivered_is_one_parked_row(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert sandbox.runtime is not None
    sender = sandbox.runtime.sender
    real_send = sender.send_events
    failures = {"flow-vendor-invoice-lines": 1}

    async def send_events(queue: str, events: Any, **kwargs: Any) -> None:
        if failures.get(queue):
            failures[queue] -= 1
            raise ConnectionError(f"send to {queue} failed")
        await real_send(queue, events, **kwargs)

    monkeypatch.setattr(sender, "send_events", send_events)
    no_flow = {
        "BusinessEventId": "CustFreeTextInvoicePostedBusinessEvent", "EventId": "7f0c0f3a-0000-4000-8000-000000000001",
        "ControlNumber": 5637144576, "BusinessEventLegalEntity": "USMF", "EventTime": "/Date(1767225600000)/",
    }  # fmt: skip
    posted = {
        "BusinessEventId": "VendorInvoicePostedBusinessEvent", "EventId": "7f0c0f3a-0000-4000-8000-000000000002",
        "ControlNumber": 5637144577, "BusinessEventLegalEntity": "USMF", "EventTime": "/Date(1767225600000)/",
        "InvoiceId": "VI-0001", "InvoiceAccount": "1001", "VendorAccount": "1001",
    }  # fmt: skip
    body = json.dumps([no_flow, posted]).encode()
    await sandbox.bus.send(FINANCE_QUEUE, LocalMessage(body, "application/json", message_id="finance-batch-1"))
    await sandbox.wait_quiet()

    assert failures["flow-vendor-invoice-lines"] == 0, "the first delivery failed after its park"
    [row] = await parked_rows(sandbox, FINANCE_ROUTER)
    assert row.reason == "no flow for CustFreeTextInvoicePostedBusinessEvent"
    assert sandbox.bus.dead_letters(FINANCE_QUEUE) == []


async def test_an_undecodable_message_delivered_again_is_one_parked_row(sandbox: Sandbox) -> None:
    assert sandbox.runtime is not None
    # A redelivery is the same bytes under the same message id (its lock lost before it was
    # completed, say); other bytes under that id, or the same bytes without one, are other messages.
    deliveries: list[tuple[bytes, str | None]] = [
        (b"not json {", "m-1"), (b"not json {", "m-1"), (b"other {", "m-1"), (b"not json {", None),
    ]  # fmt: skip
    for body, message_id in deliveries:
        message = IncomingMessage(body=body, content_type="application/json", properties={}, message_id=message_id)
        result = await route_finance(sandbox.runtime, CATALOG, message)
        assert len(result.parked) == 1
    rows = await parked_rows(sandbox, FINANCE_ROUTER)
    kept = sorted((json.loads(p.event)["body"], json.loads(p.event)["message_id"] or "") for p in rows)
    assert kept == [("not json {", ""), ("not json {", "m-1"), ("other {", "m-1")]
