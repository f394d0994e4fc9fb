"""Long admin runs in the background: the admin-runs queue carries a run's id, and its function
carries the run out (an initial sync's next slice, or a whole reconcile), since an HTTP call is cut
off after 230 s. Scheduled reconciles are queued here too, one message per flow."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from shared.bus import ADMIN_RUNS_QUEUE
from shared.maps import Registry, TableMap
from shared.operations.initial_sync import continue_run
from shared.operations.reconcile import reconcile
from shared.runtime import Runtime
from shared.state.base import SyncRun
from shared.values import utc_now

# host.json's functionTimeout, and the margin after it past which a run still "running" is one the
# host stopped (its message is delivered again once its lock lapses).
FUNCTION_TIMEOUT = timedelta(minutes=10)
GONE_AFTER = FUNCTION_TIMEOUT + timedelta(minutes=5)


async def queue_reconcile(
    runtime: Runtime,
    table_map: TableMap,
    *,
    company: str | None = None,
    since: datetime | None = None,
    repair: bool = False,
    trigger: str = "admin",
) -> SyncRun:
    run = SyncRun(
        id=uuid.uuid4().hex,
        flow=table_map.name,
        status="queued",
        options={
            "kind": "reconcile",
            "company": company,
            "since": since.isoformat() if since else None,
            "repair": repair,
            "trigger": trigger,
        },
    )
    await runtime.engine.state.put_run(run)
    await runtime.sender.send_raw(ADMIN_RUNS_QUEUE, run.id.encode(), {"flow": run.flow}, "text/plain")
    return run


async def continue_admin_run(runtime: Runtime, registry: Registry, run_id: str) -> SyncRun | None:
    run = await runtime.engine.state.get_run(run_id)
    if run is None or run.kind != "reconcile":
        return await continue_run(runtime, registry, run_id)
    if run.status == "running" and utc_now() - run.updated_at > GONE_AFTER:
        # Running longer than any invocation may (host.json functionTimeout): the host stopped it. Said
        # so, or it would read "running" for ever and a waiting command line with it.
        run.status = "failed"
        run.errors.append(
            f"stopped before it finished: no invocation runs past {FUNCTION_TIMEOUT} (the host's functionTimeout); "
            "reconcile it again, by company or with --since for a smaller run"
        )
        run.updated_at = utc_now()
        await runtime.engine.state.put_run(run)
        return run
    if run.status != "queued":
        # Delivered again after it ran (or while it runs): one reconcile per request is enough.
        return run
    since = run.options.get("since")
    await reconcile(
        runtime,
        registry.by_name(run.flow),
        company=run.options.get("company"),
        since=datetime.fromisoformat(since) if since else None,
        repair=bool(run.options.get("repair")),
        run_id=run.id,
    )
    return await runtime.engine.state.get_run(run_id)


async def schedule_reconciles(runtime: Runtime, registry: Registry) -> list[SyncRun]:
    """The timer's work: one queued reconcile per flow in PROJOPS_RECONCILE_FLOWS (none by default)."""
    settings = runtime.settings
    return [
        await queue_reconcile(runtime, registry.by_name(flow), repair=settings.reconcile_repair, trigger="schedule")
        for flow in settings.reconcile_flows
    ]
