"""status's queue counts through Resource Manager: the queue resource's countDetails."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import httpx

from shared.bus import Backlog
from shared.servicebus_sender import ArmServiceBusBacklog

NAMESPACE = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ServiceBus/namespaces/sb-contosopo"


class Credential:
    async def get_token(self, *scopes: str) -> Any:
        assert scopes == ("https://management.azure.com/.default",)
        return SimpleNamespace(token="t")


async def test_counts_come_from_the_queue_resource() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path != f"{NAMESPACE}/queues/flow-actuals":
            return httpx.Response(404)
        counts = {"activeMessageCount": 12, "scheduledMessageCount": 3, "deadLetterMessageCount": 1}
        return httpx.Response(200, json={"properties": {"status": "Active", "countDetails": counts}})

    client = httpx.AsyncClient(base_url="https://management.azure.com", transport=httpx.MockTransport(handle))
    reader = ArmServiceBusBacklog(NAMESPACE, Credential(), client)
    assert await reader.backlog("flow-actuals") == Backlog(12, 3, 1, None)
    assert seen[0].headers["Authorization"] == "Bearer t"
    assert seen[0].url.params["api-version"] == "2022-10-01-preview"
    await reader.close()


async def test_an_empty_queue_has_no_backlog() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"properties": {}}))
    client = httpx.AsyncClient(base_url="https://management.azure.com", transport=transport)
    reader = ArmServiceBusBacklog(NAMESPACE, Credential(), client)
    assert await reader.backlog("flow-actuals") == Backlog(0, 0, 0, None)
    await reader.close()
