"""Turning an outcome into its consequence (DESIGN §7): re-send later, or park with the reason."""

from __future__ import annotations

import uuid

from shared.bus import MessageSender, flow_queue
from shared.events import ChangeEvent, Source, derive_id
from shared.outcomes import RETRY_BUDGET, Outcome, OutcomeKind
from shared.settings import Settings
from shared.state.base import OutcomeRecord, ParkedEvent, StateStore, run_scope
from shared.values import utc_now


def retry_delay(settings: Settings, attempt: int, asked: float | None) -> float:
    """Growing delay: base * 2^(attempt-1), capped; a longer Retry-After from the service wins."""
    grown = min(settings.retry_base_delay_seconds * (2 ** (attempt - 1)), settings.retry_max_delay_seconds)
    return max(grown, asked or 0.0)


async def park(
    state: StateStore, *, flow: str, key: str, reason: str, error: str, attempts: int, event: str
) -> ParkedEvent:
    parked = ParkedEvent(
        id=uuid.uuid4().hex, flow=flow, key=key, reason=reason, error=error, attempts=attempts, event=event
    )
    await state.park(parked)
    return parked


async def settle(
    settings: Settings,
    state: StateStore,
    sender: MessageSender,
    flow: str,
    event: ChangeEvent,
    outcome: Outcome,
) -> Outcome:
    """Act on the outcome; returns the final one (a retry past the budget becomes parked), kept in
    the record's history (for trace) and in the shared tallies (for status and an initial sync's
    progress, whichever process asks)."""
    final = await _consequence(settings, state, sender, flow, event, outcome)
    kind, at = final.kind.value, utc_now()
    history = OutcomeRecord(
        flow=flow,
        key=event.key,
        kind=kind,
        reason=final.reason,
        detail=final.detail,
        source=event.source.value,
        operation=event.operation.value,
        event_id=event.event_id,
        at=at,
    )
    scopes = [flow]
    if event.source is Source.INITIAL_SYNC and event.correlation_id:
        scopes.append(run_scope(event.correlation_id))
    # One call, so the store can carry the history row and the counts in one commit (SQLite) or in
    # parallel requests (Table Storage); it returns once all are stored and raises if any is not,
    # and then the message is not completed.
    await state.record_settlement(history, scopes)
    return final


async def _consequence(
    settings: Settings,
    state: StateStore,
    sender: MessageSender,
    flow: str,
    event: ChangeEvent,
    outcome: Outcome,
) -> Outcome:
    if outcome.kind is OutcomeKind.RETRY_LATER:
        if event.attempt >= settings.retry_max_attempts:
            final = Outcome.parked(f"{RETRY_BUDGET}: {outcome.reason}", outcome.detail or "")
            await park(
                state,
                flow=flow,
                key=event.key,
                reason=final.reason or RETRY_BUDGET,
                error=final.detail or "",
                attempts=event.attempt,
                event=event.to_json(),
            )
            return final
        delay = retry_delay(settings, event.attempt, outcome.delay_seconds)
        again = event.replace(
            attempt=event.attempt + 1,
            event_id=derive_id(event.event_id, f"attempt-{event.attempt + 1}"),
        )
        await sender.send_events(flow_queue(flow), [again], delay_seconds=delay)
        return Outcome.retry_later(outcome.reason or "", outcome.detail or "", delay)
    if outcome.kind is OutcomeKind.PARKED:
        await park(
            state,
            flow=flow,
            key=event.key,
            reason=outcome.reason or "parked",
            error=outcome.detail or "",
            attempts=event.attempt,
            event=event.to_json(),
        )
    return outcome
