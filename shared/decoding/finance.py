"""Finance business events and data events → ChangeEvents (formats.md §2)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.decoding.dataverse import (
    MALFORMED,
    IncomingMessage,
    _parse_json,
    check_content_type,
    context_from_json,
    event_from_context,
    malformed,
)
from shared.errors import DecodeError
from shared.events import ChangeEvent, Initiator, Operation, Source, check_key_length, derive_id, source_version
from shared.values import Value, is_ms_date, parse_iso_datetime, parse_ms_date, utc_now

ENVELOPE = frozenset(
    {
        "BusinessEventId",
        "BusinessEventLegalEntity",
        "ContextRecordSubject",
        "ControlNumber",
        "EventId",
        "EventTime",
        "EventTimeIso8601",
        "InitiatingUserAADObjectId",
        "MajorVersion",
        "MinorVersion",
        "ParentContextRecordSubjects",
    }
)
DATA_EVENT_PREFIX = "mserp_"
_EMPTY_GUID = "00000000-0000-0000-0000-000000000000"


class FinanceTestEvent(Exception):
    """The message Finance sends when an endpoint is activated; it carries no change."""


def is_test_event(payload: Mapping[str, Any]) -> bool:
    """Finance sends a test message on activation (formats.md §2.1). It has the catalog's default
    values: an empty or all-zero EventId and control number 0 (the business event id may be empty or
    name the event activated: inferred). A real event always has its EventId; one without, or with a
    number, is not a test and is decoded (or refused) as what it is."""
    event_id = str(payload.get("EventId") or "").strip("{}")
    return event_id in ("", _EMPTY_GUID) and not payload.get("ControlNumber")


def _event_id(payload: Mapping[str, Any]) -> str:
    event_id = str(payload.get("EventId") or "").strip("{}").lower()
    if event_id in ("", _EMPTY_GUID):
        raise DecodeError(f"the {payload.get('BusinessEventId') or 'business'} event has no EventId")
    return event_id


def _member(name: str, value: Any) -> Value:
    """A business event member: contracts serialize scalars (enums as symbols, dates as /Date(ms)/)."""
    if isinstance(value, str) and is_ms_date(value):
        return parse_ms_date(value)
    if isinstance(value, dict | list):
        raise DecodeError(f"business event member {name} is a JSON {type(value).__name__}, not a value")
    return value


def _business_event(payload: Mapping[str, Any]) -> ChangeEvent:
    if is_test_event(payload):
        raise FinanceTestEvent(str(payload.get("BusinessEventId") or "test message"))
    iso = payload.get("EventTimeIso8601")
    occurred = parse_iso_datetime(iso) if isinstance(iso, str) and iso else None
    if occurred is None and isinstance(payload.get("EventTime"), str) and is_ms_date(payload["EventTime"]):
        occurred = parse_ms_date(payload["EventTime"])
    company = str(payload.get("BusinessEventLegalEntity") or "").upper() or None
    event_id = _event_id(payload)
    if not payload.get("BusinessEventId"):
        raise DecodeError(f"the business event {event_id} names no BusinessEventId")
    record = {name: _member(name, value) for name, value in payload.items() if name not in ENVELOPE}
    check_key_length(str(payload.get("ContextRecordSubject") or event_id), DecodeError)
    return ChangeEvent(
        event_id=event_id,
        source=Source.FINANCE,
        entity=str(payload["BusinessEventId"]),
        operation=Operation.UPSERT,
        key=str(payload.get("ContextRecordSubject") or event_id),
        company=company,
        record=record,
        version=source_version(payload.get("ControlNumber")),
        occurred_at=occurred or utc_now(),
        initiated_by=Initiator(
            aad_object_id=str(payload.get("InitiatingUserAADObjectId") or "").strip("{}").lower() or None
        ),
        message=str(payload["BusinessEventId"]),
    )


def _strip(record: Mapping[str, Value] | None) -> dict[str, Value] | None:
    if record is None:
        return None
    return {
        (name[len(DATA_EVENT_PREFIX) :] if name.startswith(DATA_EVENT_PREFIX) else name): value
        for name, value in record.items()
    }


def _data_event(payload: dict[str, Any]) -> ChangeEvent:
    context = context_from_json(payload)
    event = event_from_context(context)
    entity = context.primary_entity_name
    if entity.startswith(DATA_EVENT_PREFIX):
        entity = entity[len(DATA_EVENT_PREFIX) :]
    target = (context.input_parameters or {}).get("PreImage")
    before = _strip(event.before)
    if before is None and isinstance(target, dict):
        from shared.decoding.dataverse import normalize_entity

        before = _strip(normalize_entity(target))
    record = _strip(event.record)
    merged = {**(before or {}), **(record or {})}
    company = merged.get("dataareaid")
    changed = [
        name[len(DATA_EVENT_PREFIX) :] if name.startswith(DATA_EVENT_PREFIX) else name for name in event.changed or []
    ]
    return event.replace(
        source=Source.FINANCE,
        entity=entity,
        record=record,
        before=before,
        changed=changed if event.changed is not None else None,
        company=str(company).upper() if company else None,
        # Updated carries only the changed fields; with PreImage the row is whole again.
        partial=event.operation is Operation.UPDATE and before is None,
        event_id=derive_id(event.event_id, "finance"),
    )


def decode_finance(message: IncomingMessage) -> list[ChangeEvent]:
    check_content_type(message.content_type, message.body)
    data = _parse_json(message.body)
    items = data if isinstance(data, list) else [data]
    events: list[ChangeEvent] = []
    tests = 0
    for item in items:
        if not isinstance(item, dict):
            raise DecodeError("not a Finance business event or data event: expected a JSON object")
        try:
            if "BusinessEventId" in item:
                if len(items) > 1 and is_test_event(item):
                    # Finance's activation test comes alone: in a batch, an item without an EventId is an
                    # event that lost it, refused (and the message parked whole) rather than dropped.
                    raise DecodeError(f"item {len(events) + 1} of the batch has no EventId")
                try:
                    events.append(_business_event(item))
                except FinanceTestEvent:
                    tests += 1
            elif "MessageName" in item:
                events.append(_data_event(item))
            else:
                raise DecodeError("not a Finance business event or data event: no BusinessEventId or MessageName")
        except MALFORMED as exc:
            raise malformed("the Finance event", exc) from None
    if not events and tests:
        raise FinanceTestEvent("activation test message")
    if not events:
        raise DecodeError("the Finance message holds no event (an empty list)")
    return events
