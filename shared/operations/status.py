"""status: per flow, paused or running, backlog and oldest message age, outcomes, parked count."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

from shared.bus import Backlog
from shared.extensions import WHAT_TO_ADD
from shared.maps import Registry, TableMap
from shared.operations.reconcile import last_reconciles
from shared.runtime import Runtime
from shared.telemetry import FIGURES
from shared.values import utc_now


@dataclass
class FlowStatus:
    flow: str
    paused: bool | None
    backlog: Backlog | None
    parked: int
    parked_last_hour: int
    written: int
    skipped: int
    retried: int
    last_write: str | None
    # The Finance extension the flow waits for, while it is off because Finance lacks its entity.
    needs_extension: str | None = None
    # The newest finished reconcile: when, and how many rows were out of step.
    last_reconcile: str | None = None
    last_drift: int | None = None


async def flow_statuses(runtime: Runtime, registry: Registry) -> list[FlowStatus]:
    disabled = await runtime.switch.disabled_functions() if runtime.switch is not None else None
    statuses = []
    reconciled = await last_reconciles(runtime)
    for table_map in registry.maps:
        last = reconciled.get(table_map.name)
        backlog = await runtime.backlog.backlog(table_map.flow_queue) if runtime.backlog is not None else None
        horizon = utc_now() - timedelta(hours=1)
        parked = await runtime.engine.state.list_parked(flow=table_map.name)
        # Outcome counts are this process's, over the last hour; across instances they are in
        # Application Insights (docs/operations.md has the query).
        figures = FIGURES.flows.get(table_map.name)
        hour = figures.last_hour() if figures else Counter()
        statuses.append(
            FlowStatus(
                flow=table_map.name,
                paused=None if disabled is None else table_map.function_name in disabled,
                backlog=backlog,
                parked=len(parked),
                parked_last_hour=sum(1 for p in parked if p.parked_at >= horizon),
                written=hour["written"],
                skipped=hour["skipped"],
                retried=hour["retry-later"],
                last_write=figures.last_write.isoformat() if figures and figures.last_write else None,
                needs_extension=_missing_extension(runtime, table_map),
                last_reconcile=last.updated_at.isoformat() if last else None,
                last_drift=last.counts.get("drift") if last else None,
            )
        )
    return statuses


def _missing_extension(runtime: Runtime, table_map: TableMap) -> str | None:
    needs = table_map.target.requires_extension
    return needs if needs and needs not in runtime.settings.finance_extensions else None


def status_table(statuses: list[FlowStatus]) -> str:
    header = (
        f"{'flow':<22}{'state':<9}{'backlog':>8}{'oldest s':>9}{'dead':>6}{'parked':>8}"
        f"{'parked 1h':>10}{'written 1h':>11}{'skipped 1h':>11}{'retried 1h':>11}  last write / last reconcile"
    )
    lines = [header]
    for s in statuses:
        state = "?" if s.paused is None else ("paused" if s.paused else "running")
        if s.needs_extension:
            state = "off"
        backlog = s.backlog
        oldest = f"{backlog.oldest_age_seconds:.0f}" if backlog and backlog.oldest_age_seconds is not None else "-"
        lines.append(
            f"{s.flow:<22}{state:<9}{(backlog.active if backlog else '-')!s:>8}{oldest:>9}"
            f"{(backlog.dead_lettered if backlog else '-')!s:>6}{s.parked:>8}{s.parked_last_hour:>10}"
            f"{s.written:>11}{s.skipped:>11}{s.retried:>11}"
            f"  {s.last_write or '-'}" + (f" / {s.last_reconcile} drift {s.last_drift}" if s.last_reconcile else "")
        )
    lines += [
        f"{s.flow}: off until Finance has the extension {s.needs_extension}: {WHAT_TO_ADD[s.needs_extension]}"
        for s in statuses
        if s.needs_extension
    ]
    return "\n".join(lines)
