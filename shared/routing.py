"""The routers' logic (DESIGN §1): decode a wire message, pick the flows, feed their queues.

Routers know wire formats and nothing about mapping. Whatever cannot be routed is parked whole,
with a reason a person can act on, so nothing is lost.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from azure.servicebus.exceptions import MessageSizeExceededError

from shared.decoding.dataverse import IncomingMessage, decode_dataverse
from shared.decoding.finance import FinanceTestEvent, decode_finance
from shared.errors import DecodeError, MappingError
from shared.events import ChangeEvent, check_key_length
from shared.maps import Registry, TableMap
from shared.outcomes import FINANCE_TEST_EVENT, MAPPING, UNDECODABLE
from shared.pipeline import source_key
from shared.runtime import Runtime
from shared.settlement import message_identity, park, parked_id
from shared.telemetry import record_oversized, record_router_parking

_log = logging.getLogger(__name__)

DATAVERSE_ROUTER = "route-dataverse-changes"
CLAIMS_ENTITY = "http://schemas.microsoft.com/xrm/2011/Claims/EntityLogicalName"
FINANCE_ROUTER = "route-finance-events"


@dataclass
class RouteResult:
    sent: dict[str, int] = field(default_factory=dict)
    parked: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    # Flows sent a notification only, the event being over what their queue's message holds.
    notified: list[str] = field(default_factory=list)


def kept_body(body: bytes, name: str = "body") -> dict[str, str]:
    """A message's bytes as a parked row keeps them: `name` the text when it is UTF-8, else
    `<name>_base64` the exact bytes."""
    try:
        return {name: body.decode("utf-8")}
    except UnicodeDecodeError:
        return {f"{name}_base64": base64.b64encode(body).decode("ascii")}


def kept_bytes(data: dict[str, Any], name: str = "body") -> bytes | None:
    """The bytes kept_body kept under `name`, or None when it kept none."""
    if name in data:
        return str(data[name]).encode()
    if f"{name}_base64" in data:
        return base64.b64decode(data[f"{name}_base64"])
    return None


def raw_envelope(message: IncomingMessage, ingress: str) -> str:
    """The raw message as JSON, so a parked undecodable message can be fixed and replayed."""
    body = kept_body(message.body)
    # Text as it is, not \u-escaped: an escape is six characters, and the copy must fit a parked row.
    return json.dumps(
        {
            "ingress": ingress,
            "content_type": message.content_type,
            "properties": dict(message.properties),
            "message_id": message.message_id,
            **body,
        },
        ensure_ascii=False,
    )


async def route_dataverse(runtime: Runtime, registry: Registry, message: IncomingMessage) -> RouteResult:
    result = RouteResult()
    try:
        event = decode_dataverse(message, registry.dataverse_columns)
    except Exception as exc:  # decoding does no I/O: whatever it raises is about this message
        reason = _decode_failure(exc)
        await _park_undecodable(runtime, DATAVERSE_ROUTER, message, reason, "dataverse-changes")
        result.parked.append(reason)
        return result
    await dispatch(runtime, DATAVERSE_ROUTER, registry.for_dataverse_entity(event.entity), event, result, message)
    return result


async def route_oversized_webhook(runtime: Runtime, registry: Registry, message: IncomingMessage) -> RouteResult:
    """A webhook call whose body the topic cannot take, routed where it arrived: Dataverse sends up
    to 256 KB whole (it drops the images only above that), and a Standard namespace holds 256 KB in
    a message, its properties included. Refused, the call would be answered 503 and, once Dataverse's
    single retry failed the same way, the change lost. Only the columns the flows read go on."""
    record_oversized(DATAVERSE_ROUTER, "events", message.property(CLAIMS_ENTITY) or "webhook", len(message.body))
    return await route_dataverse(runtime, registry, message)


async def route_finance(runtime: Runtime, registry: Registry, message: IncomingMessage) -> RouteResult:
    result = RouteResult()
    try:
        events = decode_finance(message)
    except FinanceTestEvent:
        result.skipped.append(FINANCE_TEST_EVENT)
        return result
    except Exception as exc:  # decoding does no I/O: whatever it raises is about this message
        reason = _decode_failure(exc)
        await _park_undecodable(runtime, FINANCE_ROUTER, message, reason, "finance-events")
        result.parked.append(reason)
        return result
    for place, event in enumerate(events):
        await dispatch(runtime, FINANCE_ROUTER, registry.for_finance_event(event.entity), event, result, message, place)
    return result


async def dispatch(
    runtime: Runtime,
    router: str,
    maps: list[TableMap],
    event: ChangeEvent,
    result: RouteResult,
    message: IncomingMessage | None = None,
    place: int = 0,
) -> None:
    """Feed the event to its flows' queues, parking what none takes. `message` is the wire message
    the event came in and `place` its place in it, so a redelivery parks into the rows the first
    delivery did; a replay has none, and its fresh event id is its identity."""

    def parked_here(flow: str) -> str:
        if message is None:
            return parked_id(flow, event.event_id)
        # Its place too: a Finance batch is the sender's, and two items in it may carry one EventId.
        return parked_id(flow, message_identity(message.message_id, message.body), str(place), event.event_id)

    if not maps:
        # The name is the sender's: a reason is a short label people filter by, the error says it whole.
        shown = event.entity if len(event.entity) <= 200 else event.entity[:200] + "…"
        reason = f"no flow for {shown}"
        record_router_parking(router, event.key or event.event_id, reason, reason, event.event_id)
        await park(
            runtime.engine.state,
            parked_id=parked_here(router),
            flow=router,
            key=event.key or event.event_id,
            reason=reason,
            error=f"{reason}: no table map takes {event.message or event.operation.value} of {event.entity}",
            attempts=1,
            event=event.to_json(),
        )
        result.parked.append(reason)
        return
    for table_map in maps:
        try:
            key = source_key(table_map, event)
            check_key_length(key, MappingError)
        except MappingError as exc:
            record_router_parking(router, event.key or event.event_id, MAPPING, str(exc), event.event_id)
            await park(
                runtime.engine.state,
                parked_id=parked_here(table_map.name),
                flow=table_map.name,
                key=event.key or event.event_id,
                reason=MAPPING,
                error=str(exc),
                attempts=1,
                event=event.for_flow(table_map.name).to_json(),
            )
            result.parked.append(str(exc))
            continue
        await _send_to_flow(runtime, router, table_map, event.for_flow(table_map.name, key), result)
        result.sent[table_map.name] = result.sent.get(table_map.name, 0) + 1


async def _send_to_flow(
    runtime: Runtime, router: str, table_map: TableMap, event: ChangeEvent, result: RouteResult
) -> None:
    try:
        await runtime.sender.send_events(table_map.flow_queue, [event])
    except MessageSizeExceededError:
        # The columns the flow reads are more than its queue's message holds: the flow reads the row
        # again by its id, as for a message Dataverse sent without its images. Raised, the router's
        # message would be redelivered to the same refusal until it was dead-lettered.
        notification = event.replace(record=None, before=None, changed=None, partial=False, notification_only=True)
        await runtime.sender.send_events(table_map.flow_queue, [notification])
        record_oversized(router, "notification", event.key, len(event.to_json()))
        result.notified.append(table_map.name)


def _decode_failure(exc: Exception) -> str:
    if isinstance(exc, DecodeError):
        return str(exc)
    # A bug, or a shape no decoder rule names yet: parked whole, replayable once it is handled,
    # instead of redelivered until Service Bus dead-letters it.
    _log.exception("a message the decoders did not expect")
    return f"unexpected error while decoding: {type(exc).__name__}: {exc}"[:2000]


async def _park_undecodable(runtime: Runtime, router: str, message: IncomingMessage, error: str, ingress: str) -> None:
    record_router_parking(router, message.message_id or "unknown", UNDECODABLE, error, message.message_id)
    await park(
        runtime.engine.state,
        parked_id=parked_id(router, message_identity(message.message_id, message.body)),
        flow=router,
        key=message.message_id or "unknown",
        reason=UNDECODABLE,
        error=error,
        attempts=1,
        event=raw_envelope(message, ingress),
    )
