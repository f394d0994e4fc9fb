"""Running one flow message end to end: decode the ChangeEvent, apply it, settle, record."""

from __future__ import annotations

import json
import time

from shared.events import ChangeEvent
from shared.maps import TableMap
from shared.outcomes import UNDECODABLE, Outcome
from shared.pipeline import apply_event
from shared.runtime import Runtime
from shared.settlement import park, settle
from shared.telemetry import record_outcome


async def run_flow_message(runtime: Runtime, table_map: TableMap, body: bytes, message_id: str | None) -> Outcome:
    try:
        event = ChangeEvent.from_json(body)
    except ValueError as exc:
        # A message on a flow queue that is not a ChangeEvent: keep it whole so nothing is lost.
        detail = f"the message on {table_map.flow_queue} is not a ChangeEvent: {exc}"
        await park(
            runtime.engine.state,
            flow=table_map.name,
            key=message_id or "unknown",
            reason=UNDECODABLE,
            error=detail,
            attempts=1,
            event=json.dumps({"raw_body": body.decode("utf-8", "replace"), "queue": table_map.flow_queue}),
        )
        return Outcome.parked(UNDECODABLE, detail)

    started = time.perf_counter()
    outcome = await apply_event(runtime.engine, table_map, event)
    final = await settle(runtime.settings, runtime.engine.state, runtime.sender, table_map.name, event, outcome)
    record_outcome(event, table_map.name, final, (time.perf_counter() - started) * 1000)
    return final
