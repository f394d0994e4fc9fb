"""Running one flow message end to end: decode the ChangeEvent, apply it, settle, record."""

from __future__ import annotations

import json
import logging
import time

from shared.events import ChangeEvent
from shared.maps import TableMap
from shared.outcomes import UNDECODABLE, UNEXPECTED, Outcome
from shared.pipeline import apply_event
from shared.routing import kept_body
from shared.runtime import Runtime
from shared.settlement import message_identity, park, parked_id, settle
from shared.telemetry import record_outcome

_log = logging.getLogger(__name__)


async def run_flow_message(runtime: Runtime, table_map: TableMap, body: bytes, message_id: str | None) -> Outcome:
    try:
        event = ChangeEvent.from_json(body)
    except Exception as exc:  # decoding does no I/O: whatever it raises is about this message
        # A message on a flow queue that is not a ChangeEvent: keep it whole so nothing is lost.
        why = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
        detail = f"the message on {table_map.flow_queue} is not a ChangeEvent: {why}"[:2000]
        await park(
            runtime.engine.state,
            parked_id=parked_id(table_map.name, message_identity(message_id, body)),
            flow=table_map.name,
            key=message_id or "unknown",
            reason=UNDECODABLE,
            error=detail,
            attempts=1,
            event=json.dumps({**kept_body(body, "raw_body"), "queue": table_map.flow_queue}, ensure_ascii=False),
        )
        return Outcome.parked(UNDECODABLE, detail)

    started = time.perf_counter()
    try:
        outcome = await apply_event(runtime.engine, table_map, event)
    except Exception as exc:
        # Raised here it would be redelivered until Service Bus dead-letters it, costing the whole work
        # each time and leaving nobody a reason; as an outcome it is retried within the budget, then
        # parked with the event whole, replayable once the cause is fixed.
        _log.exception("flow %s: unexpected error for %s", table_map.name, event.key)
        outcome = Outcome.retry_later(UNEXPECTED, f"{type(exc).__name__}: {exc}"[:2000])
    final = await settle(runtime.settings, runtime.engine.state, runtime.sender, table_map.name, event, outcome)
    record_outcome(event, table_map.name, final, (time.perf_counter() - started) * 1000)
    return final
