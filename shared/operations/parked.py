"""Parked events: list, show, replay, dismiss (DESIGN §7, §8).

A replay sends the parked event back where it failed, with its attempt count reset: a flow's event
to its flow queue, an undecodable raw message to the ingress it came from (or, a webhook body the
topic cannot take, routed in place as the webhook routed it), an event no flow took back through
routing (a flow for it may exist by now). Parked rows are never deleted: replayed and
dismissed ones keep who, why and when, for audit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from azure.servicebus.exceptions import MessageSizeExceededError

from shared.bus import DATAVERSE_TOPIC
from shared.decoding.dataverse import IncomingMessage
from shared.events import ChangeEvent, Source, derive_id
from shared.maps import Registry, System
from shared.routing import (
    DATAVERSE_ROUTER,
    FINANCE_ROUTER,
    RouteResult,
    dispatch,
    kept_bytes,
    route_oversized_webhook,
)
from shared.runtime import Runtime
from shared.state.base import ParkedEvent
from shared.values import utc_now

ROUTERS = {DATAVERSE_ROUTER, FINANCE_ROUTER}
# A dismissal's reason is kept on each parked row it closes, and a Table Storage property holds 32K
# UTF-16 units: a reason is a sentence or two, so longer is refused, not cut without saying.
DISMISS_REASON_CHARS = 2_000


@dataclass
class ReplayReport:
    replayed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


async def select_parked(
    runtime: Runtime,
    *,
    ids: list[str] | None = None,
    flow: str | None = None,
    reason: str | None = None,
    key: str | None = None,
    status: str | None = "parked",
    limit: int | None = None,
) -> list[ParkedEvent]:
    state = runtime.engine.state
    if ids:
        found = [await state.get_parked(parked_id) for parked_id in ids]
        return [p for p in found if p is not None and (status is None or p.status == status)]
    return await state.list_parked(flow=flow, reason=reason, key=key, status=status, limit=limit)


async def replay(runtime: Runtime, registry: Registry, parked: list[ParkedEvent], *, by: str) -> ReplayReport:
    report = ReplayReport()
    for item in parked:
        try:
            parked_again = await _resend(runtime, registry, item)
        except (ValueError, KeyError) as exc:
            report.failed[item.id] = f"cannot replay: {exc}"
            continue
        # Closed even when routing parked it again: the replay's own row is the open one, with the
        # reason as it is now. Left open too, the same event would be listed twice and a second
        # replay would send both.
        item.status = "replayed"
        item.closed_by = by
        item.closed_reason = "replayed"
        item.closed_at = utc_now()
        await runtime.engine.state.update_parked(item)
        if parked_again:
            report.failed[item.id] = "parked again: " + "; ".join(parked_again)
        else:
            report.replayed.append(item.id)
    return report


async def _resend(runtime: Runtime, registry: Registry, item: ParkedEvent) -> list[str]:
    """Send the parked event back; what routing parked again, and why (nothing when all went on)."""
    data = json.loads(item.event)
    if "ingress" in data:
        body = kept_bytes(data)
        if body is None:
            raise KeyError("body")
        properties = {str(k): str(v) for k, v in (data.get("properties") or {}).items()}
        content_type = data.get("content_type") or ""
        try:
            await runtime.sender.send_raw(data["ingress"], body, properties, content_type)
        except MessageSizeExceededError:
            if data["ingress"] != DATAVERSE_TOPIC:
                raise
            # A body the topic cannot take came by the webhook, which routed it where it arrived: so
            # does the replay, or the topic refuses it every time. A message id of its own, as the topic
            # would give it, so that what is parked again is a row of its own.
            message = IncomingMessage(body, content_type, properties, derive_id(item.id, "replay"), "webhook")
            return (await route_oversized_webhook(runtime, registry, message)).parked
        return []
    raw = kept_bytes(data, "raw_body")
    if raw is not None:
        # What a flow queue could not read: read again, by a version that may now can.
        try:
            event = ChangeEvent.from_json(raw)
        except ValueError as exc:
            raise ValueError(f"the parked message is still not a ChangeEvent ({exc}); fix its sender") from None
    else:
        event = ChangeEvent.from_json(item.event)
    fresh = event.replace(
        attempt=1,
        source=_replayed_source(event.source),
        event_id=derive_id(event.event_id, "replay", item.id),
    )
    if item.flow in ROUTERS:
        result = RouteResult()
        maps = registry.for_dataverse_entity(event.entity) + registry.for_finance_event(event.entity)
        if not maps:
            raise ValueError(f"still no flow for {event.entity}")
        await dispatch(runtime, item.flow, maps, fresh, result)
        return result.parked
    table_map = registry.by_name(item.flow)
    if table_map.source.system is System.FINANCE and not _keyed_by_us(event):
        # A Finance event its router could not key was parked under the virtual row's id, the only key
        # it came with: keyed again here it reaches the flow under the record's key and session (or is
        # parked again, saying why), never as a second record.
        result = RouteResult()
        await dispatch(runtime, FINANCE_ROUTER, [table_map], fresh, result)
        return result.parked
    await runtime.sender.send_events(table_map.flow_queue, [fresh.for_flow(table_map.name, event.key)])
    return []


def _keyed_by_us(event: ChangeEvent) -> bool:
    """An event with no record to key it from, that we keyed: reconcile's orphan delete (the target
    row's key) or a notification the router sent under the record's key. Keyed again it could only be
    parked again; a router's unkeyable event without a record is keyed again, and parked again, still
    not sent under the id it came with."""
    no_record = event.record is None and event.before is None
    return no_record and (event.source is Source.RECONCILE or event.notification_only)


def _replayed_source(source: Source) -> Source:
    """A reconcile event keeps its source: the flow applies reconcile's rules by it (an orphan delete
    asks whether its record exists again, a repair writes whatever the flow last wrote). Any other is a
    replay: an initial-sync one must not count toward its run again, nor skip reading its row again."""
    return Source.RECONCILE if source is Source.RECONCILE else Source.REPLAY


async def dismiss(runtime: Runtime, parked: list[ParkedEvent], *, by: str, why: str) -> list[str]:
    if not why.strip():
        raise ValueError("say why the events are dismissed: it is kept for audit")
    if len(why) > DISMISS_REASON_CHARS:
        raise ValueError(
            f"the reason is {len(why):,} characters: say why in at most {DISMISS_REASON_CHARS:,} (it is kept for audit)"
        )
    closed = []
    for item in parked:
        item.status = "dismissed"
        item.closed_by = by
        item.closed_reason = why
        item.closed_at = utc_now()
        await runtime.engine.state.update_parked(item)
        closed.append(item.id)
    return closed
