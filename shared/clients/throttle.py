"""How many requests one identity has in flight to one service: adaptive, shared, throttle-aware.

Dataverse's service protection counts per identity (requests and execution time per 5 minutes, 52 at
once) and Finance throttles the whole environment on resource use; both answer 429 with
`Retry-After`. A fixed concurrency is either too timid for a backlog or, pushed, a 429 storm. So the
limit adapts the way TCP's congestion window does (additive increase, multiplicative decrease):
every request that is answered without throttling raises it by 1/limit (about one more per round
trip), a 429 cuts it to 0.7 of itself and holds *every* request to that service back until
Retry-After has passed.

One limiter serves every flow of one process that talks to the same service as the same identity
(`limiter_for`). It does not reach past the process: on Flex Consumption each non-HTTP function, so
each flow's trigger, scales into instances of its own (per-function scaling), and each of those
instances holds its own limiter, blind to the other flows' requests. Dataverse's per-identity limits
(and Finance's, on the whole environment) apply to all of them together, so during a backlog on
several flows at once 429s are expected: each limiter cuts its limit and holds back until
Retry-After has passed.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

Clock = Callable[[], float]
# The longest the limiter holds every request back on one 429, whatever the caller passes: a few
# minutes, the services' own throttling window (formats.md §3, §4.5).
MAX_PAUSE_SECONDS = 300.0


@dataclass(frozen=True)
class ThrottlePolicy:
    initial: float = 8.0
    minimum: float = 1.0
    maximum: float = 52.0  # Dataverse's documented concurrent-request limit per identity
    # Halving (TCP's Reno) idles half the budget after every overload; 0.7 is CUBIC's.
    decrease: float = 0.7


# Documented for Dataverse (52 at once per identity). Finance publishes no concurrency limit since
# 10.0.36 (its throttling is on resource use); 32 is ours (inferred), the AIMD finds the real one.
DATAVERSE_POLICY = ThrottlePolicy(initial=8.0, maximum=52.0)
FINANCE_POLICY = ThrottlePolicy(initial=8.0, maximum=32.0)


class AdaptiveLimiter:
    def __init__(self, policy: ThrottlePolicy, clock: Clock = time.monotonic) -> None:
        self.policy = policy
        self.clock = clock
        self.limit = policy.initial
        self.in_flight = 0
        self.paused_until = 0.0
        self.throttled_count = 0
        self.succeeded_count = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        # A burst of 429s from one overload lowers the limit once: a 429 for a request sent before the
        # last decrease says nothing new.
        self._decreased_at = -1.0
        self._wake: asyncio.TimerHandle | None = None

    @property
    def capacity(self) -> int:
        return max(int(self.limit), 1)

    def _can_start(self) -> bool:
        return self.in_flight < self.capacity and self.clock() >= self.paused_until

    async def ready(self) -> None:
        """Wait until a request could start now (without taking its place)."""
        while not self._can_start():
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[float]:
        """Hold one of the limit's places while a request is in flight; yields when it was sent."""
        await self.ready()
        self.in_flight += 1
        try:
            yield self.clock()
        finally:
            self.in_flight -= 1
            self._release()

    def _release(self) -> None:
        """Wake as many waiters as may start now; if paused, wake them when the pause ends."""
        now = self.clock()
        if now < self.paused_until:
            if self._wake is None:
                loop = asyncio.get_running_loop()
                self._wake = loop.call_later(self.paused_until - now, self._resume)
            return
        free = self.capacity - self.in_flight
        while free > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                free -= 1

    def _resume(self) -> None:
        self._wake = None
        self._release()

    def succeeded(self) -> None:
        self.succeeded_count += 1
        self.limit = min(self.policy.maximum, self.limit + 1.0 / self.limit)
        self._release()

    def throttled(self, sent_at: float, retry_after: float | None) -> None:
        """A 429: back off together for Retry-After, and halve the limit once per overload."""
        self.throttled_count += 1
        now = self.clock()
        if sent_at >= self._decreased_at:
            self.limit = max(self.policy.minimum, self.limit * self.policy.decrease)
            self._decreased_at = now
        if retry_after and math.isfinite(retry_after):
            self.paused_until = max(self.paused_until, now + min(retry_after, MAX_PAUSE_SECONDS))
        self._release()


_LIMITERS: dict[tuple[str, str, str], AdaptiveLimiter] = {}


def policy_for(system: str) -> ThrottlePolicy:
    return DATAVERSE_POLICY if system == "dataverse" else FINANCE_POLICY


def limiter_for(system: str, service_url: str, identity: str, policy: ThrottlePolicy | None = None) -> AdaptiveLimiter:
    """The process's one limiter for this identity at this service."""
    policy = policy or policy_for(system)
    key = (system, service_url.rstrip("/").lower(), identity)
    limiter = _LIMITERS.get(key)
    if limiter is None:
        limiter = _LIMITERS[key] = AdaptiveLimiter(policy)
    return limiter


def forget_limiters() -> None:
    """Start afresh (a new sandbox or test in the same process)."""
    _LIMITERS.clear()
