"""An in-process Service Bus with the semantics projops-sync relies on.

Queues and topics with subscriptions; sessions (one receiver per session at a time, FIFO within it,
the next message held back until the previous one is settled, and the session held by its receiver
until it has waited the idle timeout for another: see `receive_in_session`); scheduled messages; duplicate
detection by message id; delivery count and dead-lettering after MaxDeliveryCount. Sending to an
entity that does not exist fails, as it does on Azure, so a wrong queue name fails in the sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.servicebus.exceptions import MessageSizeExceededError

from shared.bus import Backlog
from shared.events import ChangeEvent

Clock = Callable[[], float]
# What a Standard namespace takes in one message, its properties included (Service Bus quotas; the
# service refuses more with amqp:link:message-size-exceeded, which the SDK raises as
# MessageSizeExceededError).
STANDARD_MAX_MESSAGE_BYTES = 256 * 1024


def message_size(message: LocalMessage) -> int:
    """The body and every property, as text; the AMQP framing Service Bus also counts is left out."""
    texts = [message.message_id, message.session_id, message.correlation_id, message.subject, message.content_type]
    texts += [str(part) for pair in message.application_properties.items() for part in pair]
    return len(message.body) + sum(len(text.encode()) for text in texts if text)


class EntityNotFoundError(LookupError):
    """Like Service Bus's MessagingEntityNotFound."""


@dataclass
class LocalMessage:
    body: bytes
    content_type: str | None = None
    application_properties: dict[str, Any] = field(default_factory=dict)
    message_id: str = ""
    session_id: str | None = None
    correlation_id: str | None = None
    subject: str | None = None
    enqueued_time: datetime | None = None
    scheduled_enqueue_time: datetime | None = None
    delivery_count: int = 0
    sequence_number: int = 0
    dead_letter_reason: str | None = None
    dead_letter_error_description: str | None = None

    def copy(self) -> LocalMessage:
        return LocalMessage(**{**self.__dict__, "application_properties": dict(self.application_properties)})


class ReadyMessages:
    """The messages ready for delivery, in arrival order within each session, sessions in the order
    their oldest ready message arrived. Taking the next message looks at sessions, not messages: a
    backlog of thousands in a few sessions held by receivers is not scanned message by message."""

    def __init__(self) -> None:
        self._sessions: dict[str, deque[LocalMessage]] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    def __iter__(self) -> Iterator[LocalMessage]:
        for messages in list(self._sessions.values()):
            yield from messages

    def append(self, message: LocalMessage) -> None:
        self._sessions.setdefault(message.session_id or "", deque()).append(message)
        self._count += 1

    def appendleft(self, message: LocalMessage) -> None:
        self._sessions.setdefault(message.session_id or "", deque()).appendleft(message)
        self._count += 1

    def clear(self) -> None:
        self._sessions.clear()
        self._count = 0

    def extend(self, messages: Iterable[LocalMessage]) -> None:
        for message in messages:
            self.append(message)

    def has_session(self, session: str) -> bool:
        return session in self._sessions

    def take(self, locked: set[str] | frozenset[str]) -> LocalMessage | None:
        """The oldest message of the first session that is not locked."""
        for session in self._sessions:
            if session not in locked:
                return self.take_from(session)
        return None

    def take_from(self, session: str) -> LocalMessage | None:
        messages = self._sessions.get(session)
        if messages is None:
            return None
        message = messages.popleft()
        if not messages:
            del self._sessions[session]
        self._count -= 1
        return message


_NONE_LOCKED: frozenset[str] = frozenset()


@dataclass
class Entity:
    path: str
    sessions: bool = False
    max_delivery_count: int = 10
    duplicate_detection: bool = False
    duplicate_window: float = 600.0
    ready: ReadyMessages = field(default_factory=ReadyMessages)
    scheduled: list[tuple[float, int, LocalMessage]] = field(default_factory=list)
    dead: list[LocalMessage] = field(default_factory=list)
    locked_sessions: set[str] = field(default_factory=set)
    in_flight: int = 0
    seen: dict[str, float] = field(default_factory=dict)
    delivered: int = 0
    # Receivers waiting on this entity, oldest first. A change (a message sent, a session released)
    # makes at most one more message receivable, so it wakes one receiver, not all of them: with
    # hundreds of session receivers a broadcast woke hundreds for every message.
    waiters: deque[asyncio.Future[None]] = field(default_factory=deque)
    # A session's receiver waiting for the session's next message, by session id.
    session_waiters: dict[str, asyncio.Future[None]] = field(default_factory=dict)

    def notify(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    @property
    def active_count(self) -> int:
        return len(self.ready)

    @property
    def busy(self) -> bool:
        return bool(self.ready or self.scheduled or self.in_flight)


class LocalBus:
    def __init__(
        self,
        *,
        max_delivery_count: int = 10,
        clock: Clock = time.monotonic,
        max_message_bytes: int = STANDARD_MAX_MESSAGE_BYTES,
    ) -> None:
        self.max_delivery_count = max_delivery_count
        self.max_message_bytes = max_message_bytes
        self.clock = clock
        self.queues: dict[str, Entity] = {}
        self.topics: dict[str, list[Entity]] = {}
        self._sequence = itertools.count(1)

    # --- entities ------------------------------------------------------------------------------

    def create_queue(
        self,
        name: str,
        *,
        sessions: bool = False,
        max_delivery_count: int | None = None,
        duplicate_detection: bool = False,
    ) -> Entity:
        entity = Entity(name, sessions, max_delivery_count or self.max_delivery_count, duplicate_detection)
        self.queues[name] = entity
        return entity

    def create_topic(self, name: str) -> None:
        self.topics.setdefault(name, [])

    def create_subscription(self, topic: str, name: str, *, sessions: bool = False) -> Entity:
        if topic not in self.topics:
            raise EntityNotFoundError(f"topic {topic} does not exist")
        entity = Entity(f"{topic}/Subscriptions/{name}", sessions, self.max_delivery_count)
        self.topics[topic].append(entity)
        self.queues[entity.path] = entity
        return entity

    def entity(self, path: str) -> Entity:
        try:
            return self.queues[path]
        except KeyError:
            raise EntityNotFoundError(f"the messaging entity {path} does not exist") from None

    # --- sending -------------------------------------------------------------------------------

    async def send(self, name: str, message: LocalMessage) -> None:
        if name in self.topics:
            targets = self.topics[name]
        elif name in self.queues and "/Subscriptions/" not in name:
            targets = [self.queues[name]]
        else:
            raise EntityNotFoundError(f"the messaging entity {name} does not exist")
        size = message_size(message)
        if size > self.max_message_bytes:
            raise MessageSizeExceededError(
                message=f"The received message (size:{size} bytes) exceeds the limit ({self.max_message_bytes} bytes)"
            )
        now = self.clock()
        for entity in targets:
            copy = message.copy()
            copy.sequence_number = next(self._sequence)
            copy.enqueued_time = datetime.now(UTC)
            if entity.duplicate_detection and copy.message_id:
                # Insertion order is arrival order, so expired ids are always at the front.
                while entity.seen and now - next(iter(entity.seen.values())) >= entity.duplicate_window:
                    del entity.seen[next(iter(entity.seen))]
                if copy.message_id in entity.seen:
                    continue
                entity.seen[copy.message_id] = now
            if copy.scheduled_enqueue_time is not None and copy.scheduled_enqueue_time > datetime.now(UTC):
                due = now + (copy.scheduled_enqueue_time - datetime.now(UTC)).total_seconds()
                entity.scheduled.append((due, copy.sequence_number, copy))
                entity.scheduled.sort(key=lambda item: (item[0], item[1]))
            else:
                entity.ready.append(copy)
            self._announce(entity, copy)

    def _announce(self, entity: Entity, message: LocalMessage) -> None:
        """Wake the receiver that can take `message`: its session's, when a receiver holds the session."""
        session = message.session_id or ""
        if entity.sessions and session in entity.locked_sessions:
            waiter = entity.session_waiters.get(session)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
            return
        entity.notify()

    def _promote(self, entity: Entity) -> float | None:
        """Make due scheduled messages visible; returns seconds until the next one, if any."""
        now = self.clock()
        while entity.scheduled and entity.scheduled[0][0] <= now:
            entity.ready.append(entity.scheduled.pop(0)[2])
        return entity.scheduled[0][0] - now if entity.scheduled else None

    # --- receiving and settling ----------------------------------------------------------------

    def try_receive(self, path: str) -> LocalMessage | None:
        entity = self.entity(path)
        self._promote(entity)
        message = entity.ready.take(entity.locked_sessions if entity.sessions else _NONE_LOCKED)
        if message is None:
            return None
        if entity.sessions:
            entity.locked_sessions.add(message.session_id or "")
        return self._delivered(entity, message)

    @staticmethod
    def _delivered(entity: Entity, message: LocalMessage) -> LocalMessage:
        message.delivery_count += 1
        entity.in_flight += 1
        entity.delivered += 1
        return message

    async def receive(
        self, path: str, wait_seconds: float | None = None, listening: Callable[[], bool] = lambda: True
    ) -> LocalMessage | None:
        """Wait for a message; `listening` going false (a function disabled meanwhile) ends the wait."""
        deadline = None if wait_seconds is None else self.clock() + wait_seconds
        entity = self.entity(path)
        loop = asyncio.get_running_loop()
        while True:
            if not listening():
                entity.notify()  # a wake-up this receiver may have had goes to one still listening
                return None
            message = self.try_receive(path)
            if message is not None:
                return message
            wait = self._promote(entity)
            if deadline is not None:
                remaining = deadline - self.clock()
                if remaining <= 0:
                    return None
                wait = remaining if wait is None else min(wait, remaining)
            waiter: asyncio.Future[None] = loop.create_future()
            entity.waiters.append(waiter)
            # No timer unless a scheduled message or the caller's deadline is due: an idle receiver costs nothing.
            timer = loop.call_later(wait, _wake, waiter) if wait is not None else None
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    entity.notify()  # the wake-up this receiver will not use goes to the next one
                raise
            finally:
                if timer is not None:
                    timer.cancel()
                with contextlib.suppress(ValueError):
                    entity.waiters.remove(waiter)  # still there when the timer woke it

    async def receive_in_session(
        self, path: str, session: str, wait_seconds: float, listening: Callable[[], bool] = lambda: True
    ) -> LocalMessage | None:
        """The next message of a session this receiver holds, waiting up to `wait_seconds` for one.

        The Functions host's session processor receives from the session it holds until a receive
        waits sessionIdleTimeout in vain, and only then closes it and accepts another
        (ServiceBusSessionProcessorOptions.SessionIdleTimeout): a session of one message keeps its
        slot for the whole idle timeout after that message. The caller ends with release_session."""
        entity = self.entity(path)
        deadline = self.clock() + wait_seconds
        loop = asyncio.get_running_loop()
        while listening():
            self._promote(entity)
            message = entity.ready.take_from(session)
            if message is not None:
                return self._delivered(entity, message)
            remaining = deadline - self.clock()
            if remaining <= 0:
                return None
            waiter: asyncio.Future[None] = loop.create_future()
            entity.session_waiters[session] = waiter
            timer = loop.call_later(remaining, _wake, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                if entity.session_waiters.get(session) is waiter:
                    del entity.session_waiters[session]
        return None

    def release_session(self, path: str, session: str) -> None:
        """The receiver closes the session: its messages may go to any receiver again."""
        entity = self.entity(path)
        entity.locked_sessions.discard(session)
        if entity.ready.has_session(session):
            entity.notify()

    def wake_all(self, path: str) -> None:
        """Every receiver of the entity looks again whether it should still listen (its function was
        just paused, and its workers let go of the queue as the platform's listener stops)."""
        entity = self.entity(path)
        while entity.waiters:
            _wake(entity.waiters.popleft())

    def _release(self, entity: Entity, message: LocalMessage, hold_session: bool) -> None:
        entity.in_flight -= 1
        if entity.sessions and not hold_session:
            entity.locked_sessions.discard(message.session_id or "")

    async def complete(self, path: str, message: LocalMessage, *, hold_session: bool = False) -> None:
        """Settle the message; `hold_session`: its receiver keeps the session (receive_in_session)."""
        entity = self.entity(path)
        self._release(entity, message, hold_session)
        if not hold_session:
            entity.notify()

    async def abandon(self, path: str, message: LocalMessage, *, hold_session: bool = False) -> None:
        entity = self.entity(path)
        self._release(entity, message, hold_session)
        if message.delivery_count >= entity.max_delivery_count:
            message.dead_letter_reason = "MaxDeliveryCountExceeded"
            message.dead_letter_error_description = (
                f"Message could not be consumed after {entity.max_delivery_count} delivery attempts."
            )
            entity.dead.append(message)
        else:
            # Back to the head: it is the oldest of its session, so FIFO holds on redelivery.
            entity.ready.appendleft(message)
        if not hold_session:
            entity.notify()

    async def dead_letter(self, path: str, message: LocalMessage, reason: str, description: str = "") -> None:
        entity = self.entity(path)
        self._release(entity, message, False)
        message.dead_letter_reason = reason
        message.dead_letter_error_description = description
        entity.dead.append(message)
        entity.notify()

    def dead_letters(self, path: str) -> list[LocalMessage]:
        return list(self.entity(path).dead)

    # --- observing -----------------------------------------------------------------------------

    def busy_entities(self) -> list[str]:
        return [path for path, entity in self.queues.items() if entity.busy]

    def oldest_active_age(self, path: str) -> float | None:
        entity = self.entity(path)
        if not entity.ready:
            return None
        oldest = min(m.enqueued_time or datetime.now(UTC) for m in entity.ready)
        return (datetime.now(UTC) - oldest).total_seconds()

    async def wait_idle(self, limit_seconds: float = 60.0, settle: float = 0.05) -> None:
        """Return once no entity has ready, scheduled or in-flight messages (checked twice)."""
        deadline = time.monotonic() + limit_seconds
        quiet_since: float | None = None
        while True:
            for entity in self.queues.values():
                self._promote(entity)
            if self.busy_entities():
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= settle:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"still busy after {limit_seconds} s: {', '.join(self.busy_entities())}")
            await asyncio.sleep(0.01)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class LocalBacklog:
    """shared.bus.BacklogReader on the local bus."""

    def __init__(self, bus: LocalBus) -> None:
        self.bus = bus

    async def backlog(self, queue: str) -> Backlog:
        entity = self.bus.entity(queue)
        return Backlog(entity.active_count, len(entity.scheduled), len(entity.dead), self.bus.oldest_active_age(queue))


class LocalBusSender:
    """shared.bus.MessageSender on the local bus."""

    def __init__(self, bus: LocalBus) -> None:
        self.bus = bus

    async def send_events(self, queue: str, events: Sequence[ChangeEvent], *, delay_seconds: float = 0.0) -> None:
        scheduled = datetime.now(UTC) + timedelta(seconds=delay_seconds) if delay_seconds > 0 else None
        for event in events:
            await self.bus.send(
                queue,
                LocalMessage(
                    body=event.to_json().encode(),
                    content_type="application/json",
                    message_id=event.event_id,
                    session_id=event.session_id,
                    correlation_id=event.correlation_id,
                    subject=event.flow,
                    scheduled_enqueue_time=scheduled,
                ),
            )

    async def send_raw(self, queue: str, body: bytes, properties: dict[str, str], content_type: str) -> None:
        message = LocalMessage(body, content_type, dict(properties), message_id=uuid.uuid4().hex)
        await self.bus.send(queue, message)

    async def close(self) -> None:
        return None


def sink_for(bus: LocalBus) -> Callable[[str, bytes, dict[str, str], str], Any]:
    """What the simulators emit through: a topic or queue name, a body, properties, a content type."""

    async def sink(destination: str, body: bytes, properties: dict[str, str], content_type: str) -> None:
        await bus.send(destination, LocalMessage(body, content_type, dict(properties), message_id=uuid.uuid4().hex))

    return sink
