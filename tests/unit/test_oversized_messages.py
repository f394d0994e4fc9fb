"""A message over what a Service Bus message holds: refused by the local bus as by Azure, and what the
router sends instead of letting the refusal redeliver the message until it is dead-lettered."""

from __future__ import annotations

import json

import pytest
from azure.servicebus.exceptions import MessageSizeExceededError

from functions.catalog import CATALOG
from sandbox.bus import STANDARD_MAX_MESSAGE_BYTES, LocalBus, LocalBusSender, LocalMessage
from shared.cache import TtlCache
from shared.decoding.dataverse import IncomingMessage
from shared.events import ChangeEvent
from shared.pipeline import Engine
from shared.routing import route_dataverse
from shared.runtime import Runtime
from shared.telemetry import FIGURES
from tests.unit.fakes import FakeDataverse, FakeFinance, MemoryState
from tests.unit.test_pipeline import make_settings

PROJECT = "c0a1e000-0000-4000-8000-00000000aa01"


async def test_the_local_bus_refuses_a_message_over_a_standard_namespaces_size_properties_included() -> None:
    bus = LocalBus()
    bus.create_queue("q")
    properties = {"projops-ingress": "webhook"}
    overhead = len("projops-ingress") + len("webhook") + len("m-1")
    at_limit = LocalMessage(b"x" * (STANDARD_MAX_MESSAGE_BYTES - overhead), None, properties, message_id="m-1")
    await bus.send("q", at_limit)
    with pytest.raises(MessageSizeExceededError):
        await bus.send("q", LocalMessage(at_limit.body + b"x", None, properties, message_id="m-1"))
    assert [len(m.body) for m in bus.entity("q").ready] == [len(at_limit.body)]


def _project_update(unread_columns: int) -> bytes:
    """An Update of a project whose Target touched many columns no flow reads: the event lists them all
    in `changed`, for the person reading it."""
    attributes: list[dict[str, object]] = [{"key": "msdyn_subject", "value": "Warehouse automation II"}]
    attributes += [{"key": f"new_unreadcolumn{n:05d}", "value": None} for n in range(unread_columns)]
    context = {
        "MessageName": "Update",
        "PrimaryEntityName": "msdyn_project",
        "PrimaryEntityId": PROJECT,
        "OperationId": "0ff1ce00-0000-4000-8000-000000000001",
        "InputParameters": [
            {
                "key": "Target",
                "value": {"Attributes": attributes, "Id": PROJECT, "LogicalName": "msdyn_project"},
            }
        ],
        "PostEntityImages": [],
        "PreEntityImages": [],
    }
    return json.dumps(context).encode()


async def test_an_event_over_its_flow_queues_message_size_goes_as_a_notification() -> None:
    FIGURES.reset()
    bus = LocalBus(max_message_bytes=8 * 1024)
    for table_map in CATALOG.for_dataverse_entity("msdyn_project"):
        bus.create_queue(table_map.flow_queue, sessions=True, duplicate_detection=True)
    engine = Engine(make_settings(), FakeDataverse(), FakeFinance(), MemoryState(), TtlCache(60))
    runtime = Runtime(engine=engine, sender=LocalBusSender(bus), registry=CATALOG)
    body = _project_update(unread_columns=400)
    assert len(body) < bus.max_message_bytes * 3

    result = await route_dataverse(runtime, CATALOG, IncomingMessage(body, "application/json", message_id="m-1"))

    [flow] = [m.name for m in CATALOG.for_dataverse_entity("msdyn_project") if m.name == "projects-v2"]
    assert flow in result.notified and result.parked == []
    [message] = bus.entity(f"flow-{flow}").ready
    event = ChangeEvent.from_json(message.body)
    assert event.notification_only and event.record is None and event.changed is None
    assert (event.key, event.flow, event.operation.value) == (PROJECT, flow, "update")
    assert FIGURES.oversized["notification"] == len(result.notified)
    # A small change goes whole, as before.
    small = await route_dataverse(
        runtime, CATALOG, IncomingMessage(_project_update(unread_columns=2), "application/json", message_id="m-2")
    )
    assert small.notified == [] and small.sent
