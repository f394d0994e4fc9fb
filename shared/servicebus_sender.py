"""MessageSender over Azure Service Bus, identity-based (ServiceBus__fullyQualifiedNamespace)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from azure.identity.aio import DefaultAzureCredential
from azure.servicebus import ServiceBusMessage
from azure.servicebus.aio import ServiceBusClient
from azure.servicebus.aio import ServiceBusSender as SdkSender

from shared.bus import DATAVERSE_TOPIC, Backlog
from shared.events import ChangeEvent
from shared.settings import Settings
from shared.values import utc_now


class ServiceBusBacklog:
    """Queue backlog from the Service Bus administration API (for `status`)."""

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
            await sender.send_messages(messages)

    async def send_raw(self, queue: str, body: bytes, properties: dict[str, str], content_type: str) -> None:
        message = ServiceBusMessage(body, content_type=content_type, application_properties=properties)  # type: ignore[arg-type]
        await self._sender(queue).send_messages(message)

    async def close(self) -> None:
        for sender in self._senders.values():
            await sender.close()
        await self._client.close()
        await self._credential.close()
