"""MessageSender over Azure Service Bus, identity-based (ServiceBus__fullyQualifiedNamespace)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import httpx
from azure.identity.aio import DefaultAzureCredential
from azure.servicebus import ServiceBusMessage
from azure.servicebus.aio import ServiceBusClient
from azure.servicebus.aio import ServiceBusSender as SdkSender
from azure.servicebus.exceptions import MessageSizeExceededError

from shared.bus import DATAVERSE_TOPIC, Backlog
from shared.events import ChangeEvent
from shared.settings import Settings
from shared.values import utc_now

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


class ServiceBusSender:
    def __init__(self, settings: Settings) -> None:
        assert settings.servicebus_namespace, "ServiceBus__fullyQualifiedNamespace is required"
        self._credential = DefaultAzureCredential(managed_identity_client_id=settings.managed_identity_client_id)
        self._client = ServiceBusClient(settings.servicebus_namespace, self._credential)
        self._senders: dict[str, SdkSender] = {}

    def _sender(self, entity: str) -> SdkSender:
        sender = self._senders.get(entity)
        if sender is None:
            if entity == DATAVERSE_TOPIC:
                sender = self._client.get_topic_sender(topic_name=entity)
            else:
                sender = self._client.get_queue_sender(queue_name=entity)
            self._senders[entity] = sender
        return sender

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
        sender = self._sender(queue)
        if delay_seconds > 0:
            await sender.schedule_messages(messages, utc_now() + timedelta(seconds=delay_seconds))
        else:
            await send_in_batches(sender, messages)

    async def send_raw(self, queue: str, body: bytes, properties: dict[str, str], content_type: str) -> None:
        message = ServiceBusMessage(body, content_type=content_type, application_properties=properties)  # type: ignore[arg-type]
        await self._sender(queue).send_messages(message)

    async def close(self) -> None:
        for sender in self._senders.values():
            await sender.close()
        await self._client.close()
        await self._credential.close()
