"""Hostile messages end parked on Table Storage (Azurite), never raised into redelivery.

A park that Table Storage refuses raises out of the function, and Service Bus then redelivers the
message until it dead-letters it, with no row to show why. Each case here was found doing that.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from functions.catalog import CATALOG
from shared.cache import TtlCache
from shared.decoding.dataverse import IncomingMessage
from shared.flow_runner import run_flow_message
from shared.operations.parked import replay
from shared.outcomes import OutcomeKind
from shared.pipeline import Engine
from shared.routing import route_dataverse, route_finance
from shared.runtime import Runtime
from shared.state.table_store import TableStateStore
from tests.unit.fakes import FakeDataverse, FakeFinance, RecordingSender
from tests.unit.test_pipeline import make_settings

FIXTURES = Path(__file__).parent.parent / "fixtures"


@pytest.fixture
async def runtime(azurite_connection_string: str) -> AsyncIterator[Runtime]:
    store = TableStateStore(connection_string=azurite_connection_string, table_prefix=f"t{uuid.uuid4().hex[:10]}")
    engine = Engine(make_settings(), FakeDataverse(), FakeFinance(), store, TtlCache(60))
    yield Runtime(engine=engine, sender=RecordingSender(), registry=CATALOG)
    await store.close()


async def _route_dataverse(runtime: Runtime, body: bytes) -> None:
    await route_dataverse(runtime, CATALOG, IncomingMessage(body, "application/json", message_id="m-1"))


async def test_a_256_kb_body_of_control_characters_is_parked_whole(runtime: Runtime) -> None:
    # Escaped in JSON each character is six: 1.3 MB, more than a Table Storage entity holds.
    body = b"\x01" * 220_000
    await _route_dataverse(runtime, body)
    [item] = await runtime.engine.state.list_parked()
    assert item.reason == "undecodable"
    assert json.loads(item.event)["body"].encode() == body


async def test_an_unknown_entity_of_a_40_000_character_name_is_parked(runtime: Runtime) -> None:
    context = json.loads((FIXTURES / "synthetic_dataverse_create_remoteexecutioncontext.json").read_bytes())
    context["PrimaryEntityName"] = "e" * 40_000
    await _route_dataverse(runtime, json.dumps(context).encode())
    [item] = await runtime.engine.state.list_parked()
    assert item.reason == "no flow for " + "e" * 200 + "…"
    assert len(json.loads(item.event)["entity"]) == 40_000


async def test_a_finance_key_longer_than_any_record_has_is_parked_by_the_router(runtime: Runtime) -> None:
    # A worker's data event, whose key is the personnel number the record holds.
    payload = json.loads((FIXTURES / "synthetic_fno_data_event_onexternalupdated.json").read_bytes())
    payload["PrimaryEntityName"] = "mserp_hcmworkerentity"
    for parameter in payload["InputParameters"]:
        parameter["value"]["LogicalName"] = "mserp_hcmworkerentity"
        parameter["value"]["Attributes"] = [{"key": "mserp_personnelnumber", "value": "P" * 40_000}]
    await route_finance(runtime, CATALOG, IncomingMessage(json.dumps(payload).encode(), "application/json"))
    assert isinstance(runtime.sender, RecordingSender) and runtime.sender.sent == []
    [item] = await runtime.engine.state.list_parked()
    assert item.reason == "mapping-error" and "40,0" in item.error and "over 1,024" in item.error


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"attempt": -5000}, "attempt is -5000"),
        ({"occurred_at": "0001-01-01T00:00:00+01:00"}, "outside the calendar"),
        ({"record": {"msdyn_scheduledstart": {"$datetime": "9999-12-31T23:30:00-01:00"}}}, "outside the calendar"),
        ({"key": "k" * 40_000}, "over 1,024"),
        ({"target_key": {"a": "[" * 5000}}, "nested too deeply"),
    ],
)
async def test_a_malformed_event_on_a_flow_queue_is_parked_and_replays_once_readable(
    runtime: Runtime, change: dict[str, object], why: str
) -> None:
    event = {"event_id": "e1", "source": "replay", "entity": "msdyn_project", "operation": "update", "key": "k1"}
    text = json.dumps({**event, **change})
    if "target_key" in change:
        text = text.replace('"' + "[" * 5000 + '"', "[" * 5000 + "]" * 5000)
    table_map = CATALOG.by_name("projects-v2")
    outcome = await run_flow_message(runtime, table_map, text.encode(), "m-1")
    assert outcome.kind is OutcomeKind.PARKED
    [item] = await runtime.engine.state.list_parked()
    assert item.reason == "undecodable" and why in item.error
    # Still unreadable: the replay says so and sends nothing.
    report = await replay(runtime, CATALOG, [item], by="finance.admin")
    assert report.replayed == [] and "still not a ChangeEvent" in report.failed[item.id]
    assert isinstance(runtime.sender, RecordingSender) and runtime.sender.sent == []


async def test_a_flow_queue_body_that_is_not_utf8_is_kept_byte_for_byte(runtime: Runtime) -> None:
    body = b'{"event_id": "\xff\xfe"}'
    await run_flow_message(runtime, CATALOG.by_name("projects-v2"), body, "m-1")
    [item] = await runtime.engine.state.list_parked()
    assert json.loads(item.event)["raw_body_base64"] == "eyJldmVudF9pZCI6ICL//iJ9"
