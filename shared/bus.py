"""Sending ChangeEvents to flow queues: Azure Service Bus in production, the local bus in the sandbox."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from shared.events import ChangeEvent

FLOW_QUEUE_PREFIX = "flow-"
DATAVERSE_TOPIC = "dataverse-changes"
DATAVERSE_SUBSCRIPTION = "router"
FINANCE_QUEUE = "finance-events"
# An admin initial sync goes on in slices: each message names a run to continue.
ADMIN_RUNS_QUEUE = "admin-runs"


def flow_queue(flow: str) -> str:
    return f"{FLOW_QUEUE_PREFIX}{flow}"


@dataclass(frozen=True)
class Backlog:
    active: int
    scheduled: int
    dead_lettered: int
    oldest_age_seconds: float | None


class BacklogReader(Protocol):
    async def backlog(self, queue: str) -> Backlog: ...


class MessageSender(Protocol):
    async def send_events(self, queue: str, events: Sequence[ChangeEvent], *, delay_seconds: float = 0.0) -> None:
        """Send events as JSON messages: SessionId = event.session_id, MessageId = event.event_id,
        scheduled `delay_seconds` in the future when > 0."""
        ...

    async def send_raw(self, queue: str, body: bytes, properties: dict[str, str], content_type: str) -> None:
        """Send a raw message (the webhook router forwards the body it received)."""
        ...

    async def close(self) -> None: ...
