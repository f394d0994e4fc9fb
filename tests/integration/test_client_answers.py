"""What the clients make of the answers a service (or whatever stands in its place) may send: each is
followed by what the service receives next and by the outcome the message gets, never an error that
escapes into redelivery. The simulators where a real service answers so; a scripted server for what
no real service sends but a proxy, a fault or an attacker can."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from aiohttp import web

from functions import resource_roles
from sandbox.bus import LocalBus, LocalBusSender
from sandbox.dataverse.server import DataverseSimulator
from sandbox.finance.server import FinanceSimulator
from sandbox.odata import build_batch_response, parse_batch
from shared.auth import StaticToken
from shared.cache import TtlCache
from shared.clients.batch import BatchRequest
from shared.clients.dataverse import DataverseClient
from shared.clients.finance import FinanceClient
from shared.clients.http import MAX_RETRY_AFTER_SECONDS, retry_after_seconds
from shared.clients.throttle import forget_limiters
from shared.engine import Engine
from shared.errors import AuthError, PermanentServiceError, TransientServiceError
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


Answer = tuple[int, dict[str, str], bytes]


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Scripted:
    """A server on 127.0.0.1 that answers each request with the next scripted answer (a triple, or a
    function of the request's body and Content-Type for a $batch), then 201 with an empty object."""

    answers: list[Answer | Any]
    received: list[Received] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append(Received(request.method, request.path, dict(request.headers), body))
        answer = self.answers.pop(0) if self.answers else (201, {"Content-Type": "application/json"}, b"{}")
        if callable(answer):
            answer = answer(body, request.headers.get("Content-Type", ""))
        status, headers, content = answer
        return web.Response(status=status, headers=headers, body=content)


@contextlib.asynccontextmanager
async def scripted(*answers: Answer | Any) -> AsyncIterator[Scripted]:
    server = Scripted(list(answers))
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    server.url = f"http://127.0.0.1:{port}"
    try:
        yield server
    finally:
        await runner.cleanup()


def batch_answer(status: int, headers: dict[str, str]) -> Any:
    """A $batch answered 200 whose every part answers `status`."""

    def answer(body: bytes, content_type: str) -> Answer:
        parts = parse_batch(body, content_type)
        content, media_type = build_batch_response([(part, status, headers, b"") for part in parts])
        return 200, {"Content-Type": media_type}, content

    return answer


@pytest.fixture
async def dataverse() -> AsyncIterator[DataverseSimulator]:
    simulator = DataverseSimulator(users={TOKEN: USER})
    await simulator.start()
    yield simulator
    await simulator.stop()


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


# --- redirects ------------------------------------------------------------------------------------


async def test_a_write_answered_with_a_redirect_is_retried_until_it_lands() -> None:
    """A POST answered 302 (a proxy's sign-in page, a moved environment) wrote nothing we know of:
    the record is retried later, naming the status and where it pointed, and its next delivery is
    sent again (not skipped as unchanged), so the row lands."""
    location = "https://login.example.com/signin"
    async with scripted((302, {"Location": location}, b"")) as server, flow(settings(finance_url=server.url)) as run:
        first = await run.run(role_event())
        assert first.kind is OutcomeKind.RETRY_LATER
        assert "302" in (first.detail or "") and location in (first.detail or "")
        assert await run.state.get_state(resource_roles.MAP.name, role_event().key) is None

        again = await run.run(role_event().replace(attempt=2))
        assert again.kind is OutcomeKind.WRITTEN
        assert [(r.method, r.path) for r in server.received] == [("POST", "/data/ResourceCategoriesShared")] * 2
        assert b'"RoleId":"ARCH"' in server.received[1].body


async def test_a_dataverse_write_answered_307_is_a_transient_error_naming_where_it_pointed() -> None:
    async with scripted((307, {"Location": "/api/data/v9.2/accounts(x)"}, b"")) as server:
        client = DataverseClient(settings(dataverse_url=server.url), StaticToken(TOKEN), sleep=no_sleep)
        try:
            with pytest.raises(TransientServiceError, match=r"307.*accounts\(x\)"):
                await client.write("accounts", {"accountnumber": "A-1"}, {"name": "n"})
        finally:
            await client.close()
        assert len(server.received) == 1  # not followed: the token goes only to the service URL


async def test_a_batch_part_answered_with_a_redirect_is_not_taken_as_written() -> None:
    moved = {"Location": "https://elsewhere.example/data/ResourceCategoriesShared"}
    async with scripted(batch_answer(302, moved)) as server:
        client = FinanceClient(settings(finance_url=server.url), StaticToken(TOKEN), sleep=no_sleep)
        try:
            [outcome] = await client._write_batch([BatchRequest("POST", "ResourceCategoriesShared", {"RoleId": "A"})])
        finally:
            await client.close()
    assert isinstance(outcome, TransientServiceError) and "elsewhere.example" in str(outcome)

    async with scripted(batch_answer(303, moved)) as server:
        dataverse = DataverseClient(settings(dataverse_url=server.url), StaticToken(TOKEN), sleep=no_sleep)
        try:
            with pytest.raises(TransientServiceError, match="303"):
                await dataverse.write_many("accounts", [({"accountnumber": "A-1"}, {"name": "n"})])
        finally:
            await dataverse.close()


# --- tokens ---------------------------------------------------------------------------------------


class Tokens:
    """Hands out `first` until told the service refused it, then `fresh` (what a provider does once
    the token it cached is refused: asks Entra again); logs when each token was taken."""

    def __init__(self, first: str, fresh: str) -> None:
        self.first, self.fresh = first, fresh
        self.taken: list[tuple[str, float]] = []
        self.refused: list[str | None] = []

    async def token(self, resource: str, *, refused: str | None = None) -> str:
        self.refused.append(refused)
        value = self.fresh if refused is not None else self.first
        self.taken.append((value, asyncio.get_running_loop().time()))
        return value


async def test_a_refused_token_is_replaced_once_in_the_call_and_the_write_lands(dataverse: DataverseSimulator) -> None:
    """A token can be refused before it expires (revoked, its roles changed, a clock skewed): the
    write is sent again at once with a token asked afresh, and lands."""
    tokens = Tokens("revoked-token", TOKEN)
    client = DataverseClient(settings(dataverse_url=dataverse.url), tokens, sleep=no_sleep)
    try:
        created = await client.create("accounts", {"name": "Contoso", "accountnumber": "A-401"})
    finally:
        await client.close()
    sent = [(r.method, r.headers.get("authorization"), r.status) for r in dataverse.requests]
    assert sent == [("POST", "Bearer revoked-token", 401), ("POST", f"Bearer {TOKEN}", 204)]
    assert tokens.refused == [None, "revoked-token"]
    assert created.entity_id and [r["name"] for r in dataverse.rows("account")] == ["Contoso"]


async def test_a_token_refused_twice_is_retried_later_with_the_services_reason(dataverse: DataverseSimulator) -> None:
    tokens = Tokens("revoked-token", "also-refused")
    client = DataverseClient(settings(dataverse_url=dataverse.url), tokens, sleep=no_sleep)
    try:
        with pytest.raises(AuthError) as raised:
            await client.create("accounts", {"name": "Contoso"})
    finally:
        await client.close()
    assert [r.status for r in dataverse.requests] == [401, 401]
    text = str(raised.value)
    assert "401" in text and "authorization_uri" in text and "not a member of the organization" in text
    assert dataverse.rows("account") == []


async def test_a_refused_token_in_a_flow_is_retried_later_not_parked_as_rejected(finance: FinanceSimulator) -> None:
    async with flow(settings(finance_url=finance.url), Tokens("revoked-token", "also-refused")) as run:
        outcome = await run.run(role_event())
        assert outcome.kind is OutcomeKind.RETRY_LATER and "token" in (outcome.detail or "")
        assert "401" in (outcome.detail or "") and "Unauthorized" in (outcome.detail or "")
        assert await run.state.list_parked() == []
    assert [r.status for r in finance.requests] == [401, 401]


async def test_the_token_is_taken_after_a_throttle_pause_not_before() -> None:
    """A pause shared after a 429 holds a request back: the token it carries is one taken when its
    turn came, so the wait does not use up the token's life."""
    async with scripted((200, {"Content-Type": "application/json"}, b'{"RoleId": "A"}')) as server:
        tokens = Tokens(TOKEN, TOKEN)
        client = FinanceClient(settings(finance_url=server.url), tokens, sleep=no_sleep)
        try:
            loop = asyncio.get_running_loop()
            paused_until = loop.time() + 0.5
            client.http.throttle.throttled(client.http.throttle.clock(), 0.5)
            await client.get("ResourceCategoriesShared", {"RoleId": "A"})
        finally:
            await client.close()
    [(_, taken)] = tokens.taken
    assert taken >= paused_until - 0.05
    assert server.received[0].headers["Authorization"] == f"Bearer {TOKEN}"


# --- error bodies ---------------------------------------------------------------------------------

JSON = {"Content-Type": "application/json"}


async def test_a_refusal_whose_error_is_a_string_is_parked_with_the_answer() -> None:
    """OData's error is an object, but whatever answers may send `"error": "..."` (a gateway's OAuth
    error): a 400 is still a refusal a person can read, parked at once, not retried as a crash."""
    body = b'{"error":"invalid_request","error_description":"the gateway refused it"}'
    async with scripted((400, JSON, body)) as server, flow(settings(finance_url=server.url)) as run:
        outcome = await run.run(role_event())
        [parked] = await run.state.list_parked()
    assert outcome.kind is OutcomeKind.PARKED and outcome.reason == "rejected-by-target"
    assert "the gateway refused it" in parked.error
    assert len(server.received) == 1


async def test_an_outage_whose_innererror_is_a_string_is_retried_in_the_call() -> None:
    busy = (503, JSON, b'{"error":{"message":"busy","innererror":"see the log"}}')
    async with scripted(busy, busy) as server, flow(settings(finance_url=server.url)) as run:
        outcome = await run.run(role_event())
    assert outcome.kind is OutcomeKind.WRITTEN
    assert [r.method for r in server.received] == ["POST"] * 3


async def test_a_dataverse_error_that_is_a_string_keeps_the_answers_text() -> None:
    async with scripted((400, JSON, b'{"error":"not an object"}')) as server:
        client = DataverseClient(settings(dataverse_url=server.url), StaticToken(TOKEN), sleep=no_sleep)
        try:
            with pytest.raises(PermanentServiceError, match="not an object"):
                await client.create("accounts", {"name": "n"})
        finally:
            await client.close()


# --- bodies that cannot be decoded ----------------------------------------------------------------


async def test_an_answer_that_is_not_the_encoding_it_claims_is_retried_in_the_call() -> None:
    """A body labelled gzip that is not (a proxy that re-encoded it, a cut connection's remains)
    says nothing of the row: sent again in the call, and the next answer is taken."""
    mislabelled = (201, {**JSON, "Content-Encoding": "gzip"}, b'{"RoleId":"ARCH"}')
    async with scripted(mislabelled) as server, flow(settings(finance_url=server.url)) as run:
        outcome = await run.run(role_event())
    assert outcome.kind is OutcomeKind.WRITTEN
    assert [r.method for r in server.received] == ["POST", "POST"]


async def test_answers_that_never_decode_are_a_transient_failure_not_a_crash() -> None:
    mislabelled = (200, {**JSON, "Content-Encoding": "gzip"}, b'{"RoleId":"ARCH"}')
    async with scripted(*[mislabelled] * 6) as server:
        client = FinanceClient(settings(finance_url=server.url, http_max_retries=2), StaticToken(TOKEN), sleep=no_sleep)
        try:
            with pytest.raises(TransientServiceError, match="DecodingError"):
                await client.get("ResourceCategoriesShared", {"RoleId": "ARCH"})
        finally:
            await client.close()
    assert len(server.received) == 3
