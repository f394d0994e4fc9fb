"""ServiceBusSender's sends against the SDK's own batch, at the Standard tier's 256 KB: a page of
wide events goes as several batches, each within the limit, every message once and in order."""

from __future__ import annotations

from typing import Any

import pytest
from azure.servicebus import ServiceBusMessage, ServiceBusMessageBatch
from azure.servicebus.exceptions import MessageSizeExceededError

from shared.servicebus_sender import send_in_batches

STANDARD_BATCH_BYTES = 256 * 1024


class SdkSenderStandIn:
    """The two calls send_in_batches makes, with the SDK's real ServiceBusMessageBatch doing the sizing."""

    def __init__(self) -> None:
        self.sent: list[ServiceBusMessageBatch] = []

    async def create_message_batch(self) -> ServiceBusMessageBatch:
        return ServiceBusMessageBatch(max_size_in_bytes=STANDARD_BATCH_BYTES)

    async def send_messages(self, batch: Any) -> None:
        # The SDK would refuse a plain list past the limit: only batches may arrive here.
        assert isinstance(batch, ServiceBusMessageBatch)
        self.sent.append(batch)


def event_messages(count: int, size: int) -> list[ServiceBusMessage]:
    return [ServiceBusMessage("x" * size, session_id=f"s{n}", message_id=f"m{n:05d}") for n in range(count)]


async def test_a_page_of_wide_events_goes_in_batches_within_the_limit() -> None:
    sender = SdkSenderStandIn()
    messages = event_messages(500, 1500)  # about 750 KB: one list would be refused
    await send_in_batches(sender, messages)  # type: ignore[arg-type]
    assert len(sender.sent) == 3
    assert all(b.size_in_bytes <= STANDARD_BATCH_BYTES for b in sender.sent)
    ids = [m.message_id for b in sender.sent for m in b._messages]
    assert ids == [m.message_id for m in messages]


async def test_a_few_small_events_go_as_one_batch() -> None:
    sender = SdkSenderStandIn()
    await send_in_batches(sender, event_messages(3, 100))  # type: ignore[arg-type]
    assert [len(b) for b in sender.sent] == [3]


async def test_one_message_too_big_for_any_batch_is_the_sdks_error() -> None:
    sender = SdkSenderStandIn()
    with pytest.raises(MessageSizeExceededError):
        await send_in_batches(sender, event_messages(1, STANDARD_BATCH_BYTES + 1))  # type: ignore[arg-type]
    assert sender.sent == []
