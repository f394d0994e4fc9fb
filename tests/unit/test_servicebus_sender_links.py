"""ServiceBusSender's cached SDK senders. An azure-servicebus aio sender is not coroutine-safe (its
README, "Thread safety": guard it with an asyncio.Lock; Azure/azure-sdk-for-python #36334, #35618:
concurrent send_messages tear the link down under each other), and a long-lived one can be left with
no handler after the service's idle timeout (#48921: AttributeError on the next send). The stand-in
below fails the way such a sender does: an operation entered while another runs on it raises."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest
from azure.servicebus import ServiceBusMessage, ServiceBusMessageBatch
from azure.servicebus.exceptions import MessageSizeExceededError, ServiceBusError

from shared.events import ChangeEvent, Operation, Source
from shared.servicebus_sender import ServiceBusSender
from shared.settings import Settings


class OneAtATimeSender:
    """An SDK sender's surface: create_message_batch, send_messages, schedule_messages, close."""

    def __init__(self, number: int, fail: list[BaseException] | None = None) -> None:
        self.number = number
        self.fail = list(fail or [])
        self.busy = False
        self.closed = False
        self.sent: list[str] = []
        self.scheduled: list[str] = []

    async def _operation(self) -> None:
        if self.closed:
            raise AttributeError("'NoneType' object has no attribute 'client_ready_async'")
        if self.busy:
            # What the SDK does: the second _open closes the handler the first is still opening.
            self.closed = True
            raise ServiceBusError("Handler failed: 'NoneType' object has no attribute 'create_sender_link'.")
        self.busy = True
        try:
            await asyncio.sleep(0.005)  # a round trip: another coroutine gets the loop meanwhile
            if self.fail:
                raise self.fail.pop(0)
        finally:
            self.busy = False

    async def create_message_batch(self) -> ServiceBusMessageBatch:
        await self._operation()
        return ServiceBusMessageBatch(max_size_in_bytes=256 * 1024)

    async def send_messages(self, messages: Any) -> None:
        await self._operation()
        batch = messages._messages if isinstance(messages, ServiceBusMessageBatch) else [messages]
        self.sent += [str(m.message_id) for m in batch]

    async def schedule_messages(self, messages: list[ServiceBusMessage], at: datetime) -> list[int]:
        await self._operation()
        self.scheduled += [str(m.message_id) for m in messages]
        return list(range(len(messages)))

    async def close(self) -> None:
        self.closed = True


class Links:
    """The ServiceBusClient's part: a new stand-in per get_*_sender call, the i-th failing as told."""

    def __init__(self, failures: dict[int, list[BaseException]] | None = None) -> None:
        self.failures = failures or {}
        self.opened: list[OneAtATimeSender] = []

    def get_queue_sender(self, queue_name: str) -> OneAtATimeSender:
        link = OneAtATimeSender(len(self.opened), self.failures.get(len(self.opened)))
        self.opened.append(link)
        return link

    def get_topic_sender(self, topic_name: str) -> OneAtATimeSender:
        return self.get_queue_sender(topic_name)

    def delivered(self) -> list[str]:
        return sorted(m for link in self.opened for m in link.sent)


def make_sender(links: Links) -> ServiceBusSender:
    settings = Settings(
        servicebus_namespace="example.servicebus.windows.net",
        dataverse_url="https://org.crm.dynamics.com",
        finance_url="https://fin.operations.dynamics.com",
        state_tables_account_url="https://acct.table.core.windows.net",
    )
    sender = ServiceBusSender(settings)
    sender._client = links  # type: ignore[assignment]
    return sender


def event(n: int) -> ChangeEvent:
    return ChangeEvent(
        event_id=f"e{n:02d}", flow="actuals", source=Source.DATAVERSE, entity="msdyn_actual",
        operation=Operation.UPDATE, key=f"k{n}",
    )  # fmt: skip


async def test_concurrent_sends_to_one_queue_take_its_sender_in_turn() -> None:
    links = Links()
    sender = make_sender(links)
    # 16 invocations at once (maxConcurrentCalls), retries scheduled among them, a replay's raw send
    results = await asyncio.gather(
        *(sender.send_events("flow-actuals", [event(n)]) for n in range(12)),
        *(sender.send_events("flow-actuals", [event(n)], delay_seconds=30) for n in range(12, 15)),
        sender.send_raw("flow-actuals", b"{}", {}, "application/json"),
        return_exceptions=True,
    )
    assert [r for r in results if r is not None] == []
    assert len(links.opened) == 1, "one link for the queue, not one per send"
    # The raw send's message id is the SDK's random one: only the events' own ids are counted.
    ours = {f"e{n:02d}" for n in range(15)}
    events = [m for m in links.delivered() if m in ours]
    assert events == [f"e{n:02d}" for n in range(12)]
    assert len(links.opened[0].sent) == 13, "and the raw message"
    assert sorted(links.opened[0].scheduled) == ["e12", "e13", "e14"]


async def test_each_queue_has_its_own_sender_and_they_run_side_by_side() -> None:
    links = Links()
    sender = make_sender(links)
    await asyncio.gather(*(sender.send_events(f"flow-{n % 2}", [event(n)]) for n in range(8)))
    assert len(links.opened) == 2
    assert sorted(len(link.sent) for link in links.opened) == [4, 4]


@pytest.mark.parametrize(
    "stale",
    [
        AttributeError("'NoneType' object has no attribute 'client_ready_async'"),
        ServiceBusError("Handler failed: 'NoneType' object has no attribute 'create_sender_link'."),
    ],
    ids=["handler-gone", "handler-failed"],
)
async def test_a_stale_link_is_opened_again_and_the_send_made_once_more(stale: BaseException) -> None:
    links = Links({0: [stale]})
    sender = make_sender(links)
    await sender.send_events("flow-actuals", [event(1)])
    assert links.opened[0].closed
    assert links.opened[1].sent == ["e01"]
    await sender.send_events("flow-actuals", [event(2)])
    assert len(links.opened) == 2, "the new link is kept for the sends after"
    assert links.opened[1].sent == ["e01", "e02"]


async def test_a_link_stale_twice_in_a_row_raises_and_the_message_is_redelivered() -> None:
    gone = AttributeError("'NoneType' object has no attribute 'client_ready_async'")
    links = Links({0: [gone], 1: [gone]})
    sender = make_sender(links)
    with pytest.raises(AttributeError):
        await sender.send_events("flow-actuals", [event(1)])
    assert len(links.opened) == 2, "one retry, not a loop"
    await sender.send_events("flow-actuals", [event(2)])
    assert links.delivered() == ["e02"]


async def test_what_is_about_the_message_is_raised_without_a_new_link() -> None:
    links = Links({0: [MessageSizeExceededError(message="too big")]})
    sender = make_sender(links)
    with pytest.raises(MessageSizeExceededError):
        await sender.send_events("flow-actuals", [event(1)])
    assert len(links.opened) == 1 and not links.opened[0].closed
