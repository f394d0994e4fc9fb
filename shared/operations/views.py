"""What the admin API answers, the command line prints and the web console shows: plain JSON-ready dicts.

One set of views, so `projops-sync status` in-process, `projops-sync status --url ...` through the
admin API, and the console page read the same figures the same way. Expected failures raise
OperatorError with one line a person can act on; the admin API turns them into 4xx bodies.
"""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import datetime, timedelta
from typing import Any

from shared.errors import OperatorError
from shared.maps import TableMap
from shared.operations.check_maps import check_maps, waiting_for_extensions
from shared.operations.metadata import parse_metadata
from shared.operations.parked import dismiss, replay, select_parked
from shared.operations.pause import pause, resume
from shared.operations.status import flow_statuses
from shared.runtime import Runtime
from shared.state.base import ParkedEvent, SyncRun, run_scope
from shared.values import parse_since, utc_now

# The columns that name a record to a person, in the order tried: the primary name of most Project
# Operations tables, then numbers and ids. A Dataverse key is a GUID nobody recognises.
_LABEL_COLUMNS = ("msdyn_name", "name", "fullname", "msdyn_subject", "title", "msdyn_description")


_GUID = re.compile(r"\{?[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\}?")


DRAINED_AFTER_SECONDS = 30.0


def plain(value: Any) -> Any:
    """Dataclasses, datetimes and the rest as JSON values."""
    return json.loads(json.dumps(value, default=_default))


def _default(item: Any) -> Any:
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        return dataclasses.asdict(item)
    if isinstance(item, datetime):
        return item.isoformat()
    return str(item)


def flow_map(runtime: Runtime, flow: str) -> TableMap:
    try:
        return runtime.maps().by_name(flow)
    except KeyError as exc:
        raise OperatorError(str(exc.args[0])) from None


def when(text: str | None, what: str) -> datetime | None:
    if not text:
        return None
    try:
        return parse_since(text)
    except ValueError as exc:
        raise OperatorError(str(exc).replace("since", what, 1)) from None


async def status_view(runtime: Runtime) -> list[dict[str, Any]]:
    return list(plain(await flow_statuses(runtime, runtime.maps())))


def record_label(event_text: str) -> str | None:
    """The record's own number or name, from the parked event's record, if it has one."""
    try:
        data = json.loads(event_text)
    except ValueError:
        return None
    record = data.get("record") if isinstance(data, dict) else None
    if not isinstance(record, dict):
        return None
    for column in _LABEL_COLUMNS:
        if isinstance(record.get(column), str | int) and str(record[column]).strip():
            return str(record[column])
    for suffix in ("number", "id", "name"):
        for column, value in record.items():
            text = str(value).strip() if isinstance(value, str | int) else ""
            named = column.lower().endswith(suffix) and column.lower() != "dataareaid"
            if named and text and len(text) <= 60 and not _GUID.fullmatch(text):
                return text
    return None


def parked_row(item: ParkedEvent) -> dict[str, Any]:
    row = plain(item)
    row["label"] = record_label(item.event)
    row["error"] = item.error
    del row["event"]
    return dict(row)


async def parked_view(
    runtime: Runtime,
    *,
    flow: str | None = None,
    reason: str | None = None,
    key: str | None = None,
    status: str | None = "parked",
    older_than: str | None = None,
    since: str | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    if flow:
        flow_map_or_router(runtime, flow)
    before = when(older_than, "older-than")
    after = when(since, "since")
    items = await select_parked(runtime, flow=flow, reason=reason, key=key, status=status)
    kept = [i for i in items if (before is None or i.parked_at < before) and (after is None or i.parked_at >= after)]
    return [parked_row(item) for item in kept[:limit]]


def flow_map_or_router(runtime: Runtime, flow: str) -> None:
    from shared.operations.parked import ROUTERS

    if flow not in ROUTERS:
        flow_map(runtime, flow)


async def parked_one_view(runtime: Runtime, parked_id: str) -> dict[str, Any]:
    items = await select_parked(runtime, ids=[parked_id], status=None)
    if not items:
        raise OperatorError(f"no parked event {parked_id}: `projops-sync parked` lists their ids")
    item = items[0]
    row = parked_row(item)
    try:
        row["event"] = json.loads(item.event)
    except ValueError:
        row["event"] = item.event
    return row


async def _selection(runtime: Runtime, body: dict[str, Any]) -> list[ParkedEvent]:
    if body.get("flow"):
        flow_map_or_router(runtime, str(body["flow"]))
    ids = [str(i) for i in body.get("ids") or []]
    items = await select_parked(
        runtime, ids=ids or None, flow=body.get("flow"), reason=body.get("reason"), key=body.get("key")
    )
    before = when(body.get("older_than"), "older-than")
    if before is not None:
        items = [i for i in items if i.parked_at < before]
    missing = sorted(set(ids) - {i.id for i in items})
    if missing:
        raise OperatorError(f"no open parked event {', '.join(missing)}: `projops-sync parked` lists their ids")
    return items


def require_selection(body: dict[str, Any], verb: str) -> bool:
    """Whether the body names events (ids or filters); refused when it names nothing and not `all`."""
    selected = any(body.get(k) for k in ("ids", "flow", "reason", "key", "older_than"))
    if not selected and not body.get("all"):
        also = " with --confirm COUNT" if verb == "dismiss" else ""
        raise OperatorError(f"name what to {verb}: parked ids, --flow, --reason, --key, --older-than, or --all{also}")
    return selected


async def replay_view(runtime: Runtime, body: dict[str, Any], *, by: str) -> dict[str, Any]:
    require_selection(body, "replay")
    items = await _selection(runtime, body)
    return dict(plain(await replay(runtime, runtime.maps(), items, by=by)))


async def dismiss_view(runtime: Runtime, body: dict[str, Any], *, by: str) -> dict[str, Any]:
    selected = require_selection(body, "dismiss")
    items = await _selection(runtime, body)
    if not selected and body.get("confirm") != len(items):
        raise OperatorError(
            f"--all selects {len(items)} parked event(s): confirm their count to close them "
            f"(--confirm {len(items)}; confirm={len(items)} through the admin API)"
        )
    try:
        closed = await dismiss(runtime, items, by=by, why=str(body.get("why") or ""))
    except ValueError as exc:
        raise OperatorError(str(exc)) from None
    return {"dismissed": closed}


async def switch_view(runtime: Runtime, flow: str, paused: bool) -> dict[str, Any]:
    table_map = flow_map(runtime, flow)
    if runtime.switch is None:
        raise OperatorError("set PROJOPS_FUNCTION_APP_RESOURCE_ID so pause and resume can reach the function app")
    await (pause if paused else resume)(runtime.switch, table_map)
    return {"flow": table_map.name, "paused": paused}


async def run_view(runtime: Runtime, run: SyncRun) -> dict[str, Any]:
    """A run with what its rows became so far (written, skipped, parked) and its flow's queue."""
    tally = await runtime.engine.state.outcome_tally(run_scope(run.id), run.started_at - timedelta(minutes=10))
    row = dict(plain(run))
    row["landed"] = {"landed": tally.landed, **tally.counts}
    backlog = None
    if runtime.backlog is not None:
        backlog = plain(await runtime.backlog.backlog(flow_map(runtime, run.flow).flow_queue))
    row["backlog"] = backlog
    fed = run.counts.get("fed", 0)
    # A row fed twice (a resumed run) is dropped by duplicate detection and lands once, so a run whose
    # queue has stayed empty a while is done too; not at once, as the last messages may be in flight.
    drained = backlog is not None and backlog["active"] == 0 and backlog["scheduled"] == 0
    quiet = (utc_now() - run.updated_at).total_seconds() > DRAINED_AFTER_SECONDS
    row["done"] = run.status == "completed" and (tally.landed >= fed or (drained and quiet))
    return row


async def runs_view(runtime: Runtime, flow: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    if flow:
        flow_map(runtime, flow)
    runs = [run for run in await runtime.engine.state.list_runs(flow) if run.kind == "initial-sync"]
    return [await run_view(runtime, run) for run in runs[:limit]]


async def run_one_view(runtime: Runtime, run_id: str) -> dict[str, Any]:
    run = await runtime.engine.state.get_run(run_id)
    if run is None:
        raise OperatorError(f"no initial-sync run {run_id}: `projops-sync initial-sync --status` lists them")
    return await run_view(runtime, run)


async def check_maps_view(runtime: Runtime) -> dict[str, Any]:
    dataverse = parse_metadata(await runtime.engine.dataverse.metadata())
    finance = parse_metadata(await runtime.engine.finance.metadata())
    extensions = runtime.settings.finance_extensions
    problems = check_maps(runtime.maps(), dataverse, finance, extensions)
    return {
        "problems": plain(problems),
        "waiting_for_extensions": waiting_for_extensions(runtime.maps(), extensions),
        "checked_at": utc_now().isoformat(),
    }
