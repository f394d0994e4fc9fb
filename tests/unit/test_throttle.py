"""The adaptive limiter alone: lowers the limit once per overload, holds everyone back for Retry-After, grows again."""

from __future__ import annotations

import asyncio
import math
import time

from shared.clients.throttle import MAX_PAUSE_SECONDS, AdaptiveLimiter, ThrottlePolicy, limiter_for


async def test_a_burst_of_429s_halves_the_limit_once_and_pauses_every_request() -> None:
    limiter = AdaptiveLimiter(ThrottlePolicy(initial=8.0, maximum=52.0))
    sent: list[float] = []
    async with limiter.slot() as first, limiter.slot() as second:
        sent += [first, second]
    limiter.throttled(sent[0], 0.2)
    limiter.throttled(sent[1], 0.2)  # sent before the decrease: the same overload
    assert limiter.limit == 8.0 * 0.7

    started = time.monotonic()
    waited = []

    async def request() -> None:
        async with limiter.slot():
            waited.append(time.monotonic() - started)

    await asyncio.gather(*(request() for _ in range(3)))
    assert min(waited) >= 0.19, "a request went out before Retry-After had passed"


async def test_the_limit_caps_requests_in_flight_and_grows_back_on_success() -> None:
    limiter = AdaptiveLimiter(ThrottlePolicy(initial=2.0, maximum=4.0))
    peak = 0

    async def request() -> None:
        nonlocal peak
        async with limiter.slot():
            peak = max(peak, limiter.in_flight)
            await asyncio.sleep(0.01)
        limiter.succeeded()

    await asyncio.gather(*(request() for _ in range(40)))
    assert peak <= 4
    assert limiter.limit == 4.0


def test_one_limiter_per_identity_and_service() -> None:
    a = limiter_for("dataverse", "https://x.crm.dynamics.com/api/data/v9.2/", "app-1")
    assert limiter_for("dataverse", "https://X.crm.dynamics.com/api/data/v9.2", "app-1") is a
    assert limiter_for("dataverse", "https://x.crm.dynamics.com/api/data/v9.2/", "app-2") is not a
    assert limiter_for("finance", "https://x.crm.dynamics.com/api/data/v9.2/", "app-1") is not a


async def test_a_pause_is_never_longer_than_a_few_minutes_whatever_is_asked() -> None:
    now = [1000.0]
    limiter = AdaptiveLimiter(ThrottlePolicy(), clock=lambda: now[0])
    for asked in (math.inf, math.nan, 1e12):
        limiter.paused_until = 0.0
        limiter.throttled(now[0], asked)
        assert limiter.paused_until <= now[0] + MAX_PAUSE_SECONDS
    limiter.paused_until = 0.0
    limiter.throttled(now[0], 2.0)
    assert limiter.paused_until == now[0] + 2.0
