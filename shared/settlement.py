"""Turning an outcome into its consequence (DESIGN §7): re-send later, or park with the reason."""

from __future__ import annotations

import hashlib
import math

from shared.bus import MessageSender, flow_queue
from shared.events import ChangeEvent, Source, derive_id
from shared.outcomes import RETRY_BUDGET, Outcome, OutcomeKind
from shared.settings import Settings
from shared.state.base import OutcomeRecord, ParkedEvent, StateStore, run_scope
from shared.values import utc_now


def retry_delay(settings: Settings, attempt: int, asked: float | None) -> float:
    """Growing delay: base * 2^(attempt-1); a longer Retry-After from the service wins, but never past
    retry_max_delay_seconds: what a service answers is untrusted, and an unbounded ask would put the
    retry out of reach (or past what the schedule can hold, raising into redelivery)."""
    grown = settings.retry_base_delay_seconds * (2 ** (attempt - 1))
    wanted = max(grown, asked) if asked is not None and not math.isnan(asked) else grown
    return min(wanted, settings.retry_max_delay_seconds)


def parked_id(*delivery: str) -> str:
    """The id of the row a delivery parks into, from what identifies that delivery. Parking is not a
    delivery's last step (the settlement's history follows it, a router may still have a queue to
    feed): a delivery abandoned after it parked comes again and parks again, into the same row, so
    the event is parked once and replayed once."""
    return derive_id("parked", *delivery)


def message_identity(message_id: str | None, body: bytes) -> str:
    """A wire message as parking tells deliveries apart: a redelivery has the same id and the same
    bytes; a sender's id is untrusted, so other bytes under the same id, or none, are another message."""
    return derive_id(message_id or "", hashlib.sha256(body).hexdigest())


async def park(
    state: StateStore, *, parked_id: str, flow: str, key: str, reason: str, error: str, attempts: int, event: str
) -> ParkedEvent:
    parked = ParkedEvent(id=parked_id, flow=flow, key=key, reason=reason, error=error, attempts=attempts, event=event)
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
            await _park_event(state, flow, event, final.reason or RETRY_BUDGET, final.detail or "")
            return final
        delay = retry_delay(settings, event.attempt, outcome.delay_seconds)
        again = (outcome.again or event).replace(
            attempt=event.attempt + 1,
            event_id=derive_id(event.event_id, f"attempt-{event.attempt + 1}"),
        )
        await sender.send_events(flow_queue(flow), [again], delay_seconds=delay)
        return Outcome.retry_later(outcome.reason or "", outcome.detail or "", delay)
    if outcome.kind is OutcomeKind.PARKED:
        await _park_event(state, flow, event, outcome.reason or "parked", outcome.detail or "")
    return outcome


async def _park_event(state: StateStore, flow: str, event: ChangeEvent, reason: str, error: str) -> None:
    text = event.to_json()
    # The event id is the flow message's id, the text what a redelivery of it decodes to again; the
    # text as well, because an id is the sender's word: two events under one id stay two rows.
    await park(
        state,
        parked_id=parked_id(flow, event.event_id, text),
        flow=flow,
        key=event.key,
        reason=reason,
        error=error,
        attempts=event.attempt,
        event=text,
    )
