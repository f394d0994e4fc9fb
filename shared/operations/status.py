"""status: per flow, paused or running, backlog and oldest message age, outcomes, parked count; and
per router, what it parked (a message it could not read, an event no flow took)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from shared.bus import Backlog
from shared.maps import Registry, TableMap
from shared.operations.reconcile import last_reconciles
from shared.routing import DATAVERSE_ROUTER, FINANCE_ROUTER
from shared.runtime import Runtime
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
    # Outcome counts (written, skipped, retry-later, parked) over the last hour and day, from the
    # state store: every instance's, whichever process asks.
    last_hour: dict[str, int] = field(default_factory=dict)
    last_day: dict[str, int] = field(default_factory=dict)
    # The newest finished reconcile: when, and how many rows were out of step.
    last_reconcile: str | None = None
    last_drift: int | None = None
    # A router's row: no map behind it, so no pause or resume, initial sync or reconcile.
    router: bool = False


# The routers' functions (functions/routers.py), each parking under its router's name.
ROUTER_FUNCTIONS = {DATAVERSE_ROUTER: "route_dataverse_changes", FINANCE_ROUTER: "route_finance_events"}


async def flow_statuses(runtime: Runtime, registry: Registry) -> list[FlowStatus]:
    disabled = await runtime.switch.disabled_functions() if runtime.switch is not None else None
    statuses = []
    reconciled = await last_reconciles(runtime)
    for table_map in registry.maps:
        last = reconciled.get(table_map.name)
        backlog = await runtime.backlog.backlog(table_map.flow_queue) if runtime.backlog is not None else None
        horizon = utc_now() - timedelta(hours=1)
        state = runtime.engine.state
        parked = await state.list_parked(flow=table_map.name)
        hour = await state.outcome_tally(table_map.name, horizon)
        day = await state.outcome_tally(table_map.name, utc_now() - timedelta(days=1))
        statuses.append(
            FlowStatus(
                flow=table_map.name,
                paused=None if disabled is None else table_map.function_name in disabled,
                backlog=backlog,
                parked=len(parked),
                parked_last_hour=sum(1 for p in parked if p.parked_at >= horizon),
                written=hour.counts.get("written", 0),
                skipped=hour.counts.get("skipped", 0),
                retried=hour.counts.get("retry-later", 0),
                last_write=day.last_write.isoformat() if day.last_write else None,
                needs_extension=_missing_extension(runtime, table_map),
                last_hour=hour.counts,
                last_day=day.counts,
                last_reconcile=last.updated_at.isoformat() if last else None,
                last_drift=last.counts.get("drift") if last else None,
            )
        )
    for router, function_name in ROUTER_FUNCTIONS.items():
        statuses.append(await _router_status(runtime, router, function_name, disabled))
    return statuses


async def _router_status(runtime: Runtime, router: str, function_name: str, disabled: set[str] | None) -> FlowStatus:
    """A router settles nothing, so no outcome is tallied for it: its parked rows are what it did that
    an operator must see (their own `parked_at`, while they are open)."""
    now = utc_now()
    parked = [p.parked_at for p in await runtime.engine.state.list_parked(flow=router)]
    hour = sum(1 for at in parked if at >= now - timedelta(hours=1))
    day = sum(1 for at in parked if at >= now - timedelta(days=1))
    return FlowStatus(
        flow=router,
        paused=None if disabled is None else function_name in disabled,
        backlog=None,
        parked=len(parked),
        parked_last_hour=hour,
        written=0,
        skipped=0,
        retried=0,
        last_write=None,
        last_hour={"parked": hour} if hour else {},
        last_day={"parked": day} if day else {},
        router=True,
    )


def _missing_extension(runtime: Runtime, table_map: TableMap) -> str | None:
    needs = table_map.target.requires_extension
    return needs if needs and needs not in runtime.settings.finance_extensions else None
