"""MessageSender over Azure Service Bus, identity-based (ServiceBus__fullyQualifiedNamespace)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

import httpx
from azure.identity.aio import DefaultAzureCredential
from azure.servicebus import ServiceBusMessage
from azure.servicebus.aio import ServiceBusClient
from azure.servicebus.aio import ServiceBusSender as SdkSender
from azure.servicebus.exceptions import (
    MessageSizeExceededError,
    OperationTimeoutError,
    ServiceBusCommunicationError,
    ServiceBusConnectionError,
    ServiceBusError,
)

from shared.bus import DATAVERSE_TOPIC, Backlog
from shared.events import ChangeEvent
from shared.settings import Settings
from shared.values import utc_now

_log = logging.getLogger(__name__)

ARM = "https://management.azure.com"
SERVICEBUS_API_VERSION = "2022-10-01-preview"


class ArmServiceBusBacklog:
    """Queue counts from Resource Manager (the queue resource's countDetails), for `status`.

    The data-plane runtime properties (ServiceBusBacklog below) need the Manage right, which the app's
    identity does not hold; reading the queue resource needs only Microsoft.ServiceBus/namespaces/
    queues/read, the custom role infra/modules/roles.bicep grants on the namespace. Resource Manager
    gives no oldest message, so its age is left unknown; the lag alert reads it from telemetry.
    """

    def __init__(self, namespace_resource_id: str, credential: Any, client: httpx.AsyncClient | None = None) -> None:
        self.namespace_resource_id = namespace_resource_id.rstrip("/")
        self._credential = credential
        self._client = client or httpx.AsyncClient(base_url=ARM, timeout=60)

    async def backlog(self, queue: str) -> Backlog:
        token = await self._credential.get_token(f"{ARM}/.default")
        response = await self._client.get(
            f"{self.namespace_resource_id}/queues/{queue}",
            params={"api-version": SERVICEBUS_API_VERSION},
            headers={"Authorization": f"Bearer {token.token}"},
        )
        response.raise_for_status()
        counts = (response.json().get("properties") or {}).get("countDetails") or {}
        return Backlog(
            int(counts.get("activeMessageCount") or 0),
            int(counts.get("scheduledMessageCount") or 0),
            int(counts.get("deadLetterMessageCount") or 0),
            None,
        )

    async def close(self) -> None:
        await self._client.aclose()
        close = getattr(self._credential, "close", None)
        if close is not None:
            await close()


class ServiceBusBacklog:
    """Queue backlog from the Service Bus administration API (for `status`; needs the Manage right)."""

    def __init__(self, settings: Settings) -> None:
        from azure.servicebus.aio.management import ServiceBusAdministrationClient

        assert settings.servicebus_namespace
        self._credential = DefaultAzureCredential(managed_identity_client_id=settings.managed_identity_client_id)
        self._admin = ServiceBusAdministrationClient(settings.servicebus_namespace, self._credential)

    async def backlog(self, queue: str) -> Backlog:
        properties = await self._admin.get_queue_runtime_properties(queue)
        oldest = None
        if properties.active_message_count:
            async with ServiceBusClient(self._admin.fully_qualified_namespace, self._credential) as client:
                receiver = client.get_queue_receiver(queue) if "flow-" not in queue else None
                if receiver is not None:
                    async with receiver:
                        peeked = await receiver.peek_messages(max_message_count=1)
                        if peeked and peeked[0].enqueued_time_utc:
                            oldest = (utc_now() - peeked[0].enqueued_time_utc).total_seconds()
        return Backlog(
            properties.active_message_count or 0,
            properties.scheduled_message_count or 0,
            properties.dead_letter_message_count or 0,
            oldest,
        )

    async def close(self) -> None:
        await self._admin.close()
        await self._credential.close()


async def send_in_batches(sender: SdkSender, messages: Sequence[ServiceBusMessage]) -> None:
    """Send as many messages a batch as the entity takes. A list is sent by the SDK as one batch and
    refused whole (MessageSizeExceededError) past the tier's limit, 256 KB on Standard: an initial
    sync's chunk of 500 wide events is well over it. The batch the sender creates knows the limit
    the entity announced; a single message too big for any batch is the SDK's error, unchanged."""
    batch = await sender.create_message_batch()
    for message in messages:
        try:
            batch.add_message(message)
        except MessageSizeExceededError:
            if len(batch) == 0:
                raise
            await sender.send_messages(batch)
            batch = await sender.create_message_batch()
            batch.add_message(message)
    if len(batch):
        await sender.send_messages(batch)


# Errors of the link rather than of the message or the entity: the SDK's wrapper for what it did not
# expect ("Handler failed: ...", a handler another operation closed), a dropped connection, a link
# that did not answer in time, and the AttributeError a handler reset to None leaks after the
# service's idle timeout (Azure/azure-sdk-for-python #48921). A message too big, a missing entity or
# a refused identity are the same on a new link: they are raised as they are.
_LINK_ERRORS: tuple[type[BaseException], ...] = (
    AttributeError,
    ServiceBusConnectionError,
    ServiceBusCommunicationError,
    OperationTimeoutError,
)


def _stale_link(exc: BaseException) -> bool:
    return isinstance(exc, _LINK_ERRORS) or type(exc) is ServiceBusError


class _Link:
    """One entity's SDK sender, its operations one at a time: an aio sender is not coroutine-safe
    (the SDK's README, "Thread safety", guards it with an asyncio.Lock; #36334 and #35618: sends on
    one sender at once close the link under each other and fail). A link gone stale is opened again
    and the operation made once more. A retried send that had reached a flow queue is dropped there
    by duplicate detection, the message id being the event's; a raw message sent twice is routed to
    the same event ids, dropped the same way."""

    def __init__(self, open_sender: Callable[[], SdkSender]) -> None:
        self._open_sender = open_sender
        self._lock = asyncio.Lock()
        self.sender: SdkSender | None = None

    async def run(self, operation: Callable[[SdkSender], Awaitable[None]]) -> None:
        async with self._lock:
            if self.sender is None:
                self.sender = self._open_sender()
            try:
                await operation(self.sender)
                return
            except Exception as exc:
                if not _stale_link(exc):
                    raise
                _log.warning("Service Bus sender link failed (%s: %s); opening it again", type(exc).__name__, exc)
                stale, self.sender = self.sender, self._open_sender()
                await _close_quietly(stale)
            await operation(self.sender)

    async def close(self) -> None:
        async with self._lock:
            if self.sender is not None:
                await self.sender.close()
                self.sender = None


async def _close_quietly(sender: SdkSender) -> None:
    # Closing a broken link may fail in its own way; the sender is dropped either way.
    try:
        await sender.close()
    except Exception as exc:
        _log.info("closing a stale Service Bus sender: %s: %s", type(exc).__name__, exc)


class ServiceBusSender:
    def __init__(self, settings: Settings) -> None:
        assert settings.servicebus_namespace, "ServiceBus__fullyQualifiedNamespace is required"
        self._credential = DefaultAzureCredential(managed_identity_client_id=settings.managed_identity_client_id)
        self._client = ServiceBusClient(settings.servicebus_namespace, self._credential)
        self._links: dict[str, _Link] = {}

    def _link(self, entity: str) -> _Link:
        link = self._links.get(entity)
        if link is None:
            link = self._links[entity] = _Link(lambda: self._open_sender(entity))
        return link

    def _open_sender(self, entity: str) -> SdkSender:
        if entity == DATAVERSE_TOPIC:
            return self._client.get_topic_sender(topic_name=entity)
        return self._client.get_queue_sender(queue_name=entity)

    async def send_events(self, queue: str, events: Sequence[ChangeEvent], *, delay_seconds: float = 0.0) -> None:
        messages = [
            ServiceBusMessage(
                event.to_json(),
                content_type="application/json",
                session_id=event.session_id,
                message_id=event.event_id,
                correlation_id=event.correlation_id,
                subject=event.flow,
            )
            for event in events
        ]
        if delay_seconds > 0:
            at = utc_now() + timedelta(seconds=delay_seconds)

            async def schedule(sender: SdkSender) -> None:
                await sender.schedule_messages(messages, at)

            await self._link(queue).run(schedule)
        else:
            await self._link(queue).run(lambda sender: send_in_batches(sender, messages))

    async def send_raw(self, queue: str, body: bytes, properties: dict[str, str], content_type: str) -> None:
        message = ServiceBusMessage(body, content_type=content_type, application_properties=properties)  # type: ignore[arg-type]

        async def send(sender: SdkSender) -> None:
            await sender.send_messages(message)

        await self._link(queue).run(send)

    async def close(self) -> None:
        for link in self._links.values():
            await link.close()
        await self._client.close()
        await self._credential.close()
