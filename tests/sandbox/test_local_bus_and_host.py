"""The local bus keeps Service Bus's promises; the local host runs functions the way Azure does."""

from __future__ import annotations

import asyncio
import json
import random

import azure.functions as func
import httpx
import pytest

from sandbox.bus import EntityNotFoundError, LocalBus, LocalMessage
from sandbox.host import LocalHost
from shared.host_json import HOST_JSON


def message(session: str, n: int, body: str | None = None) -> LocalMessage:
    return LocalMessage(
        (body or f"{session}:{n}").encode(), "text/plain", {}, message_id=f"{session}-{n}", session_id=session
    )


async def test_fifo_per_session_with_concurrent_sessions() -> None:
    bus = LocalBus()
    bus.create_queue("q", sessions=True)
    for n in range(50):
        for session in ("a", "b", "c"):
            await bus.send("q", message(session, n))
    seen: dict[str, list[int]] = {"a": [], "b": [], "c": []}
    rng = random.Random(3)

    async def worker() -> None:
        while (received := await bus.receive("q", wait_seconds=0.05)) is not None:
            session, n = received.body.decode().split(":")
            await asyncio.sleep(rng.random() / 1000)  # slow handlers must not let a later message overtake
            seen[session].append(int(n))
            await bus.complete("q", received)

    await asyncio.gather(*(worker() for _ in range(4)))
    assert all(order == list(range(50)) for order in seen.values())


async def test_dead_letter_after_max_delivery_count() -> None:
    bus = LocalBus(max_delivery_count=3)
    bus.create_queue("q", sessions=True)
    await bus.send("q", message("s", 1))
    counts = []
    while (received := await bus.receive("q", wait_seconds=0.05)) is not None:
        counts.append(received.delivery_count)
        await bus.abandon("q", received)
    assert counts == [1, 2, 3]
    [dead] = bus.dead_letters("q")
    assert dead.dead_letter_reason == "MaxDeliveryCountExceeded"


async def test_scheduled_messages_wait_for_their_time() -> None:
    now = [1000.0]
    bus = LocalBus(clock=lambda: now[0])
    bus.create_queue("q")
    from datetime import UTC, datetime, timedelta

    later = message("s", 1)
    later.scheduled_enqueue_time = datetime.now(UTC) + timedelta(seconds=30)
    await bus.send("q", later)
    assert bus.try_receive("q") is None
    now[0] += 31
    received = bus.try_receive("q")
    assert received is not None and received.body == b"s:1"


async def test_duplicates_dropped_and_unknown_entities_refused() -> None:
    bus = LocalBus()
    bus.create_queue("q", duplicate_detection=True)
    await bus.send("q", message("s", 1))
    await bus.send("q", message("s", 1))
    assert bus.entity("q").active_count == 1
    with pytest.raises(EntityNotFoundError):
        await bus.send("flow-typo", message("s", 2))


async def test_topic_copies_to_each_subscription() -> None:
    bus = LocalBus()
    bus.create_topic("t")
    bus.create_subscription("t", "one")
    bus.create_subscription("t", "two")
    await bus.send("t", message("s", 1))
    assert bus.entity("t/Subscriptions/one").active_count == 1 and bus.entity("t/Subscriptions/two").active_count == 1


def make_app(received: list[tuple[str, int, str | None]]) -> func.FunctionApp:
    app = func.FunctionApp()

    @app.function_name("work")
    @app.service_bus_queue_trigger(arg_name="msg", queue_name="work", connection="ServiceBus", is_sessions_enabled=True)
    async def work(msg: func.ServiceBusMessage) -> None:
        if msg.get_body() == b"boom":
            raise RuntimeError("boom")
        received.append((msg.get_body().decode(), msg.delivery_count or 0, msg.session_id))

    @app.function_name("hello")
    @app.route(route="hello/{name}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
    async def hello(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse(f"hello {req.route_params['name']}", status_code=200)

    return app


async def test_host_runs_functions_and_pauses_them() -> None:
    received: list[tuple[str, int, str | None]] = []
    bus = LocalBus(max_delivery_count=2)
    bus.create_queue("work", sessions=True)
    host = LocalHost(make_app(received), bus, settings={"AzureWebJobs.work.Disabled": "true"})
    url = await host.start()
    try:
        for n in range(5):
            await bus.send("work", message("s", n))
        await bus.send("work", message("t", 0, "boom"))
        await asyncio.sleep(0.2)
        assert received == [] and bus.entity("work").active_count == 6  # paused: the backlog waits
        host.set_disabled("work", False)
        await bus.wait_idle(5)
        assert [body for body, _, _ in received] == [f"s:{n}" for n in range(5)]
        assert received[0][1] == 1 and received[0][2] == "s"
        [dead] = bus.dead_letters("work")
        assert dead.body == b"boom" and dead.delivery_count == 2
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{url}/api/hello/ana")).status_code == 401
            ok = await client.get(f"{url}/api/hello/ana", headers={"x-functions-key": host.function_key})
            assert ok.status_code == 200 and ok.text == "hello ana"
    finally:
        await host.stop()


async def test_a_session_keeps_its_receiver_for_the_idle_timeout_after_its_last_message() -> None:
    """The Functions host's session processor holds a session until a receive has waited
    sessionIdleTimeout for another message; only then does its slot take another session."""
    received: list[tuple[str, int, str | None]] = []
    bus = LocalBus()
    bus.create_queue("work", sessions=True)
    host = LocalHost(make_app(received), bus, max_concurrent_sessions=1, session_idle_timeout=3600)
    await host.start()
    try:
        await bus.send("work", message("a", 1))
        await bus.send("work", message("b", 1))
        for _ in range(100):
            if received:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        assert [body for body, _, _ in received] == ["a:1"]  # b waits: the one slot still holds a
        await bus.send("work", message("a", 2))
        for _ in range(100):
            if len(received) == 2:
                break
            await asyncio.sleep(0.01)
        assert [body for body, _, _ in received] == ["a:1", "a:2"]  # taken by the receiver holding a
    finally:
        await host.stop()
    assert "b" not in bus.entity("work").locked_sessions


async def test_the_host_reads_the_session_idle_timeout_from_host_json() -> None:
    bus = LocalBus()
    host = LocalHost(func.FunctionApp(), bus)
    service_bus = json.loads(HOST_JSON.read_text())["extensions"]["serviceBus"]
    assert service_bus["sessionIdleTimeout"] == "00:00:00.500"
    assert host.session_idle_timeout == 0.5
