"""Admin HTTP functions under /api/admin/ (function key; Entra with App Service authentication).

The same operations as the `projops-sync` command, sharing its implementations.
"""

from __future__ import annotations

import dataclasses
import json
import os
from datetime import datetime
from typing import Any

import azure.functions as func

from shared.bus import ADMIN_RUNS_QUEUE
from shared.jsonio import dumps
from shared.operations.admin_runs import continue_admin_run, queue_reconcile, schedule_reconciles
from shared.operations.changes import catch_up
from shared.operations.check_maps import check_maps, waiting_for_extensions
from shared.operations.finance_events import activations
from shared.operations.initial_sync import latest_unfinished, run_slice
from shared.operations.metadata import parse_metadata
from shared.operations.parked import dismiss, replay, select_parked
from shared.operations.pause import pause, resume
from shared.operations.status import flow_statuses
from shared.operations.trace import trace
from shared.runtime import get_runtime
from shared.values import parse_since

bp = func.Blueprint()
ADMIN = func.AuthLevel.FUNCTION


def _json(value: Any, status: int = 200) -> func.HttpResponse:
    def default(item: Any) -> Any:
        if dataclasses.is_dataclass(item) and not isinstance(item, type):
            return dataclasses.asdict(item)
        if isinstance(item, datetime):
            return item.isoformat()
        return str(item)

    return func.HttpResponse(json.dumps(value, default=default), status_code=status, mimetype="application/json")


def _body(req: func.HttpRequest) -> dict[str, Any]:
    try:
        data = req.get_json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _who(req: func.HttpRequest) -> str:
    # App Service authentication puts the signed-in principal in this header and strips any the
    # caller sent; without it in front (WEBSITE_AUTH_ENABLED unset) anyone can send the header, so
    # it is not a name to record.
    if os.environ.get("WEBSITE_AUTH_ENABLED", "").lower() == "true":
        return req.headers.get("x-ms-client-principal-name") or "function-key"
    return "function-key"


def _bad_request(message: str) -> func.HttpResponse:
    return _json({"error": message}, 400)


@bp.function_name("admin_status")
@bp.route(route="admin/status", methods=["GET"], auth_level=ADMIN)
async def admin_status(req: func.HttpRequest) -> func.HttpResponse:
    runtime = await get_runtime()
    return _json(await flow_statuses(runtime, runtime.maps()))


@bp.function_name("admin_parked")
@bp.route(route="admin/parked", methods=["GET"], auth_level=ADMIN)
async def admin_parked(req: func.HttpRequest) -> func.HttpResponse:
    limit = req.params.get("limit", "200")
    if not limit.isdigit() or not 0 < int(limit) <= 10_000:
        return _bad_request(f"limit must be a whole number from 1 to 10000, not {limit!r}")
    items = await select_parked(
        await get_runtime(),
        flow=req.params.get("flow"),
        reason=req.params.get("reason"),
        key=req.params.get("key"),
        status=req.params.get("status", "parked") or None,
        limit=int(limit),
    )
    return _json(items)


@bp.function_name("admin_parked_one")
@bp.route(route="admin/parked/{id}", methods=["GET"], auth_level=ADMIN)
async def admin_parked_one(req: func.HttpRequest) -> func.HttpResponse:
    items = await select_parked(await get_runtime(), ids=[req.route_params["id"]], status=None)
    return _json(items[0]) if items else _json({"error": "no such parked event"}, 404)


@bp.function_name("admin_replay")
@bp.route(route="admin/replay", methods=["POST"], auth_level=ADMIN)
async def admin_replay(req: func.HttpRequest) -> func.HttpResponse:
    body = _body(req)
    if not any(body.get(k) for k in ("ids", "flow", "reason", "key", "all")):
        return _json({"error": "name what to replay: ids, flow, reason, key, or all"}, 400)
    runtime = await get_runtime()
    items = await select_parked(
        runtime, ids=body.get("ids"), flow=body.get("flow"), reason=body.get("reason"), key=body.get("key")
    )
    return _json(await replay(runtime, runtime.maps(), items, by=_who(req)))


@bp.function_name("admin_dismiss")
@bp.route(route="admin/dismiss", methods=["POST"], auth_level=ADMIN)
async def admin_dismiss(req: func.HttpRequest) -> func.HttpResponse:
    body = _body(req)
    selected = any(body.get(k) for k in ("ids", "flow", "reason", "key"))
    if not selected and not body.get("all"):
        return _bad_request("name what to dismiss: ids, flow, reason, key, or all with confirm (the count)")
    runtime = await get_runtime()
    items = await select_parked(
        runtime, ids=body.get("ids"), flow=body.get("flow"), reason=body.get("reason"), key=body.get("key")
    )
    if not selected and body.get("confirm") != len(items):
        return _bad_request(f"all selects {len(items)} parked event(s): send confirm={len(items)} to close them")
    try:
        closed = await dismiss(runtime, items, by=_who(req), why=str(body.get("why") or ""))
    except ValueError as exc:
        return _bad_request(str(exc))
    return _json({"dismissed": closed})


async def _switch(req: func.HttpRequest, paused: bool) -> func.HttpResponse:
    runtime = await get_runtime()
    if runtime.switch is None:
        return _json({"error": "set PROJOPS_FUNCTION_APP_RESOURCE_ID"}, 501)
    try:
        table_map = runtime.maps().by_name(req.route_params["flow"])
    except KeyError as exc:
        return _json({"error": str(exc)}, 404)
    await (pause if paused else resume)(runtime.switch, table_map)
    return _json({"flow": table_map.name, "paused": paused})


@bp.function_name("admin_pause")
@bp.route(route="admin/pause/{flow}", methods=["POST"], auth_level=ADMIN)
async def admin_pause(req: func.HttpRequest) -> func.HttpResponse:
    return await _switch(req, True)


@bp.function_name("admin_resume")
@bp.route(route="admin/resume/{flow}", methods=["POST"], auth_level=ADMIN)
async def admin_resume(req: func.HttpRequest) -> func.HttpResponse:
    return await _switch(req, False)


@bp.function_name("admin_initial_sync")
@bp.route(route="admin/initial-sync/{flow}", methods=["POST"], auth_level=ADMIN)
async def admin_initial_sync(req: func.HttpRequest) -> func.HttpResponse:
    runtime = await get_runtime()
    try:
        table_map = runtime.maps().by_name(req.route_params["flow"])
    except KeyError as exc:
        return _json({"error": str(exc)}, 404)
    body = _body(req)
    if body.get("changes"):
        # A delta read is what changed since the last one: small, so it runs within the call.
        try:
            return _json(await catch_up(runtime, table_map))
        except ValueError as exc:
            return _bad_request(str(exc))
    resume_run = None if body.get("restart") else await latest_unfinished(runtime, table_map.name)
    try:
        since = parse_since(str(body["since"])) if body.get("since") else None
    except ValueError as exc:
        return _bad_request(str(exc))
    # A run longer than one slice goes on from the admin-runs queue: 202, and `status` shows its counts.
    run = await run_slice(runtime, table_map, companies=body.get("companies"), since=since, resume=resume_run)
    return _json(run, 202 if run.status == "running" else 200)


@bp.function_name("admin_initial_sync_continue")
@bp.service_bus_queue_trigger(arg_name="msg", queue_name=ADMIN_RUNS_QUEUE, connection="ServiceBus")
async def admin_initial_sync_continue(msg: func.ServiceBusMessage) -> None:
    runtime = await get_runtime()
    await continue_admin_run(runtime, runtime.maps(), msg.get_body().decode())


@bp.function_name("admin_reconcile")
@bp.route(route="admin/reconcile/{flow}", methods=["POST", "GET"], auth_level=ADMIN)
async def admin_reconcile(req: func.HttpRequest) -> func.HttpResponse:
    """POST queues a reconcile (it runs from the admin-runs queue: 202 and the run's id); GET shows
    the flow's reconciles, newest first, each with its stored report."""
    runtime = await get_runtime()
    try:
        table_map = runtime.maps().by_name(req.route_params["flow"])
    except KeyError as exc:
        return _json({"error": str(exc)}, 404)
    if req.method == "GET":
        runs = [r for r in await runtime.engine.state.list_runs(table_map.name) if r.options.get("kind") == "reconcile"]
        return _json(runs)
    body = _body(req)
    try:
        since = parse_since(str(body["since"])) if body.get("since") else None
    except ValueError as exc:
        return _bad_request(str(exc))
    company = str(body["company"]) if body.get("company") else None
    run = await queue_reconcile(runtime, table_map, company=company, since=since, repair=bool(body.get("repair")))
    return _json(run, 202)


@bp.function_name("admin_trace")
@bp.route(route="admin/trace/{flow}", methods=["GET"], auth_level=ADMIN)
async def admin_trace(req: func.HttpRequest) -> func.HttpResponse:
    runtime = await get_runtime()
    key = req.params.get("key")
    if not key:
        return _bad_request("name the record: ?key=<source key>")
    try:
        table_map = runtime.maps().by_name(req.route_params["flow"])
    except KeyError as exc:
        return _json({"error": str(exc)}, 404)
    return func.HttpResponse(dumps(await trace(runtime, table_map, key)), mimetype="application/json")


@bp.function_name("reconcile_scheduled")
@bp.timer_trigger(arg_name="timer", schedule="%PROJOPS_RECONCILE_SCHEDULE%", run_on_startup=False)
async def reconcile_scheduled(timer: func.TimerRequest) -> None:
    runtime = await get_runtime()
    await schedule_reconciles(runtime, runtime.maps())


@bp.function_name("admin_check_maps")
@bp.route(route="admin/check-maps", methods=["GET"], auth_level=ADMIN)
async def admin_check_maps(req: func.HttpRequest) -> func.HttpResponse:
    runtime = await get_runtime()
    dataverse = parse_metadata(await runtime.engine.dataverse.metadata())
    finance = parse_metadata(await runtime.engine.finance.metadata())
    extensions = runtime.settings.finance_extensions
    problems = check_maps(runtime.maps(), dataverse, finance, extensions)
    waiting = waiting_for_extensions(runtime.maps(), extensions)
    return _json({"problems": problems, "waiting_for_extensions": waiting}, 200 if not problems else 409)


@bp.function_name("admin_finance_events")
@bp.route(route="admin/finance-events", methods=["GET"], auth_level=ADMIN)
async def admin_finance_events(req: func.HttpRequest) -> func.HttpResponse:
    return _json(activations((await get_runtime()).maps()))
