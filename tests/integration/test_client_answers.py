"""What the clients make of the answers a service (or whatever stands in its place) may send: each is
followed by what the service receives next and by the outcome the message gets, never an error that
escapes into redelivery. The simulators where a real service answers so; a scripted server for what
no real service sends but a proxy, a fault or an attacker can."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from functions import resource_roles
from sandbox.bus import LocalBus, LocalBusSender
from sandbox.finance.server import FinanceSimulator
from shared.auth import StaticToken
from shared.cache import TtlCache
from shared.clients.finance import FinanceClient
from shared.clients.http import MAX_RETRY_AFTER_SECONDS, retry_after_seconds
from shared.clients.throttle import forget_limiters
from shared.engine import Engine
from shared.events import ChangeEvent, Operation, Source
from shared.flow_runner import run_flow_message
from shared.outcomes import OutcomeKind
from shared.settings import Settings
from shared.settlement import retry_delay
from tests.unit.fakes import FakeDataverse, MemoryState

TOKEN = "integration-token"
USER = "aa000000-0000-4000-8000-000000000002"


def settings(**values: Any) -> Settings:
    return Settings.model_validate(
        {
            "dataverse_url": "http://127.0.0.1:1",
            "finance_url": "http://127.0.0.1:2",
            "auth_mode": "none",
            "state_backend": "sqlite",
            "bus_backend": "local",
            "companies": ["USMF"],
            "dataverse_bulk_rows": 0,
            "finance_batch_rows": 0,
            "retry_max_attempts": 3,
            **values,
        }
    )


async def no_sleep(_seconds: float) -> None:
    return None


@pytest.fixture(autouse=True)
def fresh_limiters() -> None:
    forget_limiters()


@pytest.fixture
async def finance() -> AsyncIterator[FinanceSimulator]:
    simulator = FinanceSimulator(users={TOKEN: USER})
    await simulator.start()
    yield simulator
    await simulator.stop()


def role_event(number: str = "ARCH") -> ChangeEvent:
    return ChangeEvent(
        event_id=f"role-{number}",
        source=Source.DATAVERSE,
        entity="bookableresourcecategory",
        operation=Operation.CREATE,
        key="b0000000-0000-4000-8000-000000000001",
        record={"name": "Architect", "msdyn_resourcecategorynumber": number, "statecode": 0},
    )


@dataclass
class Flow:
    """The resource-roles flow (a Dataverse row POSTed to Finance) with the real Finance client."""

    client: FinanceClient
    state: MemoryState
    bus: LocalBus
    runtime: Any

    async def run(self, event: ChangeEvent) -> Any:
        return await run_flow_message(self.runtime, resource_roles.MAP, event.to_json().encode(), event.event_id)

    def scheduled(self) -> list[datetime | None]:
        entity = self.bus.entity(resource_roles.MAP.flow_queue)
        return [message.scheduled_enqueue_time for _, _, message in entity.scheduled]


@contextlib.asynccontextmanager
async def flow(config: Settings, tokens: Any = None) -> AsyncIterator[Flow]:
    client = FinanceClient(config, tokens or StaticToken(TOKEN), sleep=no_sleep)
    state = MemoryState()
    bus = LocalBus()
    bus.create_queue(resource_roles.MAP.flow_queue, sessions=True)
    engine = Engine(config, FakeDataverse(), client, state, TtlCache(60))
    runtime = SimpleNamespace(engine=engine, settings=config, sender=LocalBusSender(bus))
    try:
        yield Flow(client, state, bus, runtime)
    finally:
        await client.close()


# --- Retry-After ----------------------------------------------------------------------------------


def _answer(retry_after: str) -> httpx.Response:
    return httpx.Response(429, headers={"Retry-After": retry_after})


def test_retry_after_is_read_as_a_finite_bounded_number_of_seconds() -> None:
    """Both services send Retry-After in seconds, a few of them: their limits are counted over five
    minutes (formats.md §3, §4.5). Whatever else the header says is either refused or held to that."""
    in_2100 = format_datetime(datetime(2100, 1, 1, tzinfo=UTC), usegmt=True)
    in_a_minute = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    assert retry_after_seconds(_answer("7")) == 7.0
    assert 55 <= (retry_after_seconds(_answer(in_a_minute)) or 0) <= 60
    assert retry_after_seconds(_answer("-3")) == 0.0
    for absurd in ("1e12", "86400", in_2100):
        assert retry_after_seconds(_answer(absurd)) == MAX_RETRY_AFTER_SECONDS
    for meaningless in ("inf", "-inf", "nan", "Infinity", "soon"):
        assert retry_after_seconds(_answer(meaningless)) is None
    assert MAX_RETRY_AFTER_SECONDS <= 300


async def test_an_endless_retry_after_holds_back_neither_other_records_nor_the_retry(
    finance: FinanceSimulator,
) -> None:
    """A 429 asking to wait 10^12 seconds: the record is retried later within the retry delay's cap,
    and another record's request reaches the service as soon as the in-call wait has passed."""
    config = settings(finance_url=finance.url, http_max_retry_wait_seconds=0.5, retry_max_delay_seconds=600)
    async with flow(config) as run:
        finance.set_faults(throttle_share=1.0, retry_after_seconds=10**12)
        before = datetime.now(UTC)
        outcome = await run.run(role_event("ARCH"))
        assert outcome.kind is OutcomeKind.RETRY_LATER and outcome.reason == "transient"
        [due] = run.scheduled()
        assert due is not None and due <= before + timedelta(seconds=601)
        assert outcome.delay_seconds is not None and math.isfinite(outcome.delay_seconds)

        finance.set_faults(throttle_share=0.0)
        sent = len(finance.requests)
        other = await asyncio.wait_for(run.run(role_event("DEV")), timeout=10)
        assert other.kind is OutcomeKind.WRITTEN
        assert [r.method for r in finance.requests[sent:]][-1] == "POST"
        assert finance.get("ResourceCategoriesShared", RoleId="DEV") is not None


def test_the_retry_delay_never_passes_its_cap_whatever_was_asked() -> None:
    config = settings(retry_base_delay_seconds=30, retry_max_delay_seconds=3600)
    assert retry_delay(config, 1, 10**12) == 3600
    assert retry_delay(config, 1, math.inf) == 3600
    assert retry_delay(config, 1, math.nan) == 30
    assert retry_delay(config, 2, 45) == 60
    assert retry_delay(config, 1, 120) == 120
