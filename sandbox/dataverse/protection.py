"""Dataverse service protection, as documented (Service protection API limits; formats.md §4.5).

Per user (the identity of the bearer token), over a sliding window of 300 s: 6,000 requests and
1,200 s of combined execution time, and 52 requests at once. Past a limit Dataverse answers 429 with
`Retry-After` and one of three codes. The concurrency limit refuses at once; the request and
execution-time limits count what has already been let in, so a burst may run over them briefly
before they take effect, as the documentation says.

`ServiceProtection.scaled(f)` shortens the window and both budgets by the same factor and keeps the
rates (20 requests/s, 4 busy seconds per second, 52 at once), so a test meets the limits in seconds
and what it measures per second holds at full scale.

How long Dataverse works on a request is not documented; `request_ms` and `row_ms` model it
(inferred): a request takes `request_ms` plus `row_ms` per row it writes, and that time is what
counts against the execution-time budget.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from sandbox.odata import ODataError

REQUESTS_EXCEEDED = "0x80072322"
EXECUTION_TIME_EXCEEDED = "0x80072321"
CONCURRENCY_EXCEEDED = "0x80072326"

Clock = Callable[[], float]


@dataclass(frozen=True)
class ServiceProtection:
    window_seconds: float = 300.0
    max_requests: int = 6000
    max_execution_seconds: float = 1200.0
    max_concurrent: int = 52
    request_ms: float = 0.0
    row_ms: float = 0.0

    @classmethod
    def scaled(cls, factor: float, *, request_ms: float = 0.0, row_ms: float = 0.0) -> ServiceProtection:
        return cls(
            window_seconds=300.0 * factor,
            max_requests=max(1, round(6000 * factor)),
            max_execution_seconds=1200.0 * factor,
            request_ms=request_ms,
            row_ms=row_ms,
        )

    def execution_seconds(self, rows: int) -> float:
        return (self.request_ms + self.row_ms * rows) / 1000.0

    def ceiling_rows_per_second(self, rows_per_request: int) -> float:
        """The most rows a second one identity can write in requests of `rows_per_request` rows
        without a limit refusing any: the least of what each of the three limits allows."""
        busy = self.execution_seconds(rows_per_request)
        by_requests = self.max_requests / self.window_seconds * rows_per_request
        if busy <= 0:
            return by_requests
        by_execution = self.max_execution_seconds / self.window_seconds / busy * rows_per_request
        by_concurrency = self.max_concurrent / busy * rows_per_request
        return min(by_requests, by_execution, by_concurrency)


def _refusal(code: str, message: str, retry_after: float) -> ODataError:
    seconds = max(1, math.ceil(retry_after))  # Retry-After is whole seconds
    return ODataError(429, {"error": {"code": code, "message": message}}, {"Retry-After": str(seconds)})


@dataclass
class _Usage:
    # [arrival time, execution seconds once finished, 1.0 while in the window] of each request
    requests: deque[list[float]] = field(default_factory=deque)
    executing: float = 0.0
    in_flight: int = 0


@dataclass
class ProtectionCounts:
    admitted: int = 0
    refused: dict[str, int] = field(default_factory=dict)


class ServiceProtectionMeter:
    """The limits' bookkeeping per identity; `admit` refuses or lets a request in."""

    def __init__(self, limits: ServiceProtection, clock: Clock = time.monotonic) -> None:
        self.limits = limits
        self.clock = clock
        self._usage: dict[str, _Usage] = {}
        self.counts = ProtectionCounts()

    def _expire(self, usage: _Usage, now: float) -> None:
        horizon = now - self.limits.window_seconds
        while usage.requests and usage.requests[0][0] <= horizon:
            gone = usage.requests.popleft()
            gone[2] = 0.0  # out of the window: its time, when it finishes, no longer counts
            usage.executing -= gone[1]

    def _refuse(self, code: str, message: str, retry_after: float) -> ODataError:
        self.counts.refused[code] = self.counts.refused.get(code, 0) + 1
        return _refusal(code, message, retry_after)

    def _check(self, usage: _Usage, now: float) -> None:
        limits = self.limits
        window = f"{limits.window_seconds:g} seconds"
        if usage.in_flight >= limits.max_concurrent:
            raise self._refuse(
                CONCURRENCY_EXCEEDED,
                f"Number of concurrent requests exceeded the limit of {limits.max_concurrent}.",
                1,
            )
        if len(usage.requests) >= limits.max_requests:
            wait = usage.requests[len(usage.requests) - limits.max_requests][0] + limits.window_seconds - now
            raise self._refuse(
                REQUESTS_EXCEEDED,
                f"Number of requests exceeded the limit of {limits.max_requests} over time window of {window}.",
                wait,
            )
        if usage.executing >= limits.max_execution_seconds:
            # Wait until enough of the window's execution time has left it.
            excess, wait = usage.executing - limits.max_execution_seconds, 0.0
            for arrived, spent, _ in usage.requests:
                excess -= spent
                wait = arrived + limits.window_seconds - now
                if excess < 0:
                    break
            raise self._refuse(
                EXECUTION_TIME_EXCEEDED,
                "Combined execution time of incoming requests exceeded limit of "
                f"{limits.max_execution_seconds * 1000:,.0f} milliseconds over time window of {window}. "
                "Decrease number of concurrent requests or reduce the duration of requests and try again later.",
                wait,
            )

    async def run(self, identity: str, rows: int, work: Callable[[], object]) -> object:
        """Admit the request or raise the 429; then spend its execution time and do the work."""
        usage = self._usage.setdefault(identity, _Usage())
        now = self.clock()
        self._expire(usage, now)
        self._check(usage, now)
        entry = [now, 0.0, 1.0]
        usage.requests.append(entry)
        usage.in_flight += 1
        self.counts.admitted += 1
        started = time.perf_counter()
        try:
            result = work()
            if asyncio.iscoroutine(result):
                result = await result
            modelled = self.limits.execution_seconds(rows) - (time.perf_counter() - started)
            if modelled > 0:
                await asyncio.sleep(modelled)
            return result
        finally:
            usage.in_flight -= 1
            spent = time.perf_counter() - started
            if entry[2]:
                entry[1] = spent
                usage.executing += spent

    def remaining(self, identity: str) -> tuple[int, float]:
        """What the debug headers report: requests and execution seconds left in the window."""
        usage = self._usage.get(identity, _Usage())
        self._expire(usage, self.clock())
        return (
            max(0, self.limits.max_requests - len(usage.requests)),
            max(0.0, self.limits.max_execution_seconds - usage.executing),
        )
