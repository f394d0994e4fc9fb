"""One structured record per settled event, and per-flow figures for `status` and the sandbox.

In Azure, azure-monitor-opentelemetry exports the `projops` logger to Application Insights; the
record's extra attributes become customDimensions (flow, operation, key, outcome, reason, attempt,
latency_ms, lag_ms), which the workbook and alert queries in docs/operations.md read.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.events import ChangeEvent
from shared.outcomes import Outcome, OutcomeKind
from shared.values import utc_now

log = logging.getLogger("projops.events")
_configured = False


def configure_telemetry() -> bool:
    """Configure the Azure Monitor exporter once, only when a connection string is set.

    When the Functions host exports Python logs itself (PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY),
    configuring the distro as well would send every record twice, so we leave it to the host.
    """
    global _configured
    if _configured or not os.environ.get("APPLICATIONINSIGHTS_CONNECTION_STRING"):
        return False
    if os.environ.get("PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY", "").lower() == "true":
        return False
    from azure.monitor.opentelemetry import configure_azure_monitor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    configure_azure_monitor(logger_name="projops")
    HTTPXClientInstrumentor().instrument()
    _configured = True
    return True


def traced_transport(transport: Any) -> Any:
    """A transport that is not httpx's own, traced: the global instrumentation patches only httpx's."""
    if not _configured:
        return transport
    from opentelemetry.instrumentation.httpx import AsyncOpenTelemetryTransport

    return AsyncOpenTelemetryTransport(transport)


@dataclass
class FlowFigures:
    events: int = 0
    written: int = 0
    writes: int = 0
    retried: int = 0
    parked: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    last_write: datetime | None = None
    # (monotonic second, outcome) of recent events, for "in the last hour" figures.
    recent: deque[tuple[float, str]] = field(default_factory=lambda: deque(maxlen=200_000))

    def last_hour(self) -> Counter[str]:
        horizon = time.monotonic() - 3600
        while self.recent and self.recent[0][0] < horizon:
            self.recent.popleft()
        return Counter(kind for _, kind in self.recent)

    def percentile(self, share: float) -> float | None:
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
        return ordered[index]


class Figures:
    """Per-process figures; bounded so a long-running host does not grow without limit."""

    max_samples = 20_000

    def __init__(self) -> None:
        self.flows: dict[str, FlowFigures] = defaultdict(FlowFigures)
        # Messages too big for the queue they were bound for, by what went on instead (record_oversized).
        self.oversized: Counter[str] = Counter()

    def add(self, flow: str, outcome: Outcome, latency_ms: float) -> None:
        figures = self.flows[flow]
        figures.events += 1
        figures.recent.append((time.monotonic(), outcome.kind.value))
        if outcome.kind is OutcomeKind.WRITTEN:
            figures.written += 1
            figures.writes += outcome.writes
            figures.last_write = utc_now()
        elif outcome.kind is OutcomeKind.SKIPPED:
            figures.skipped[outcome.reason or "unknown"] += 1
        elif outcome.kind is OutcomeKind.RETRY_LATER:
            figures.retried += 1
        else:
            figures.parked += 1
        if len(figures.latencies_ms) < self.max_samples:
            figures.latencies_ms.append(latency_ms)

    def reset(self) -> None:
        self.flows.clear()
        self.oversized.clear()


FIGURES = Figures()


def record_router_parking(router: str, key: str, reason: str, error: str, message_id: str | None) -> None:
    """A router parked what it could not route: logged like a flow's parking, so alerts see it."""
    FIGURES.add(router, Outcome.parked(reason, error), 0.0)
    log.warning(
        "%s %s: parked (%s)",
        router,
        key,
        reason,
        extra={
            "flow": router,
            "record_key": key,
            "outcome": OutcomeKind.PARKED.value,
            "reason": reason,
            "detail": error[:1000],
            "message_id": message_id or "",
        },
    )


def record_oversized(router: str, sent_as: str, key: str, size: int) -> None:
    """A message over what its queue holds went on as `sent_as` (its decoded events, or a
    notification the flow reads the row again for): counted, and logged for the alert queries."""
    FIGURES.oversized[sent_as] += 1
    log.warning(
        "%s %s: %s bytes, over the queue's message size; sent as %s",
        router,
        key,
        size,
        sent_as,
        extra={"event": "oversized-message", "flow": router, "record_key": key, "bytes": size, "sent_as": sent_as},
    )


def record_outcome(event: ChangeEvent, flow: str, outcome: Outcome, latency_ms: float) -> None:
    lag_ms = (utc_now() - event.occurred_at).total_seconds() * 1000
    FIGURES.add(flow, outcome, latency_ms)
    level = logging.WARNING if outcome.kind is OutcomeKind.PARKED else logging.INFO
    log.log(
        level,
        "%s %s %s: %s%s",
        flow,
        event.operation.value,
        event.key,
        outcome.kind.value,
        f" ({outcome.reason})" if outcome.reason else "",
        extra={
            "flow": flow,
            "operation": event.operation.value,
            "entity": event.entity,
            "record_key": event.key,
            "company": event.company or "",
            "outcome": outcome.kind.value,
            "reason": outcome.reason or "",
            "detail": (outcome.detail or "")[:1000],
            "attempt": event.attempt,
            "writes": outcome.writes,
            "latency_ms": round(latency_ms, 2),
            "lag_ms": round(lag_ms, 2),
            "event_id": event.event_id,
            "correlation_id": event.correlation_id or "",
            "source": event.source.value,
        },
    )


def record_reconcile(flow: str, report_id: str, counts: dict[str, int]) -> None:
    """A finished reconcile, with its counts: the "drift found" alert reads `drift`."""
    drift = counts.get("drift", 0)
    log.log(
        logging.WARNING if drift else logging.INFO,
        "reconcile %s: %s rows out of step",
        flow,
        drift,
        extra={"event": "reconcile", "flow": flow, "report_id": report_id, **counts},
    )
