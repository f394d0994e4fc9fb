"""Admin HTTP functions under /api/admin/ (function key; Entra with App Service authentication).

The same operations as the `projops-sync` command, sharing its implementations.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

import azure.functions as func

from shared.bus import ADMIN_RUNS_QUEUE
from shared.errors import MappingError, OperatorError, ServiceError
from shared.jsonio import dumps
from shared.operations import views
from shared.operations.admin_runs import continue_admin_run, queue_reconcile, schedule_reconciles
from shared.operations.changes import catch_up
from shared.operations.finance_events import activations
from shared.operations.initial_sync import run_to_resume, start_in_background
from shared.operations.reconcile import reconcile_runs
from shared.operations.trace import trace
from shared.runtime import get_runtime

bp = func.Blueprint()
ADMIN = func.AuthLevel.FUNCTION


Handler = Callable[[func.HttpRequest], Awaitable[func.HttpResponse]]


def _json(value: Any, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(views.plain(value)), status_code=status, mimetype="application/json")


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


def answers(handler: Handler) -> Handler:
    """An expected failure (OperatorError) is a 4xx with its one line, the same text the CLI prints."""

    @functools.wraps(handler)
    async def wrapped(req: func.HttpRequest) -> func.HttpResponse:
        try:
            return await handler(req)
        except OperatorError as exc:
            message = str(exc)
            return _json({"error": message}, 404 if message.startswith("no ") else 400)

    return wrapped


@bp.function_name("admin_status")
@bp.route(route="admin/status", methods=["GET"], auth_level=ADMIN)
@answers
async def admin_status(req: func.HttpRequest) -> func.HttpResponse:
    return _json(await views.status_view(await get_runtime()))


@bp.function_name("admin_parked")
@bp.route(route="admin/parked", methods=["GET"], auth_level=ADMIN)
@answers
async def admin_parked(req: func.HttpRequest) -> func.HttpResponse:
    limit = req.params.get("limit", "200")
    if not limit.isdigit() or not 0 < int(limit) <= 10_000:
        return _bad_request(f"limit must be a whole number from 1 to 10000, not {limit!r}")
    items = await views.parked_view(
        await get_runtime(),
        flow=req.params.get("flow") or None,
        reason=req.params.get("reason") or None,
        key=req.params.get("key") or None,
        status=req.params.get("status", "parked") or None,
        older_than=req.params.get("older_than") or None,
        since=req.params.get("since") or None,
        limit=int(limit),
    )
    return _json(items)


@bp.function_name("admin_parked_one")
@bp.route(route="admin/parked/{id}", methods=["GET"], auth_level=ADMIN)
@answers
async def admin_parked_one(req: func.HttpRequest) -> func.HttpResponse:
    return _json(await views.parked_one_view(await get_runtime(), req.route_params["id"]))


@bp.function_name("admin_replay")
@bp.route(route="admin/replay", methods=["POST"], auth_level=ADMIN)
@answers
async def admin_replay(req: func.HttpRequest) -> func.HttpResponse:
    return _json(await views.replay_view(await get_runtime(), _body(req), by=_who(req)))


@bp.function_name("admin_dismiss")
@bp.route(route="admin/dismiss", methods=["POST"], auth_level=ADMIN)
@answers
async def admin_dismiss(req: func.HttpRequest) -> func.HttpResponse:
    return _json(await views.dismiss_view(await get_runtime(), _body(req), by=_who(req)))


@bp.function_name("admin_pause")
@bp.route(route="admin/pause/{flow}", methods=["POST"], auth_level=ADMIN)
@answers
async def admin_pause(req: func.HttpRequest) -> func.HttpResponse:
    return _json(await views.switch_view(await get_runtime(), req.route_params["flow"], True))


@bp.function_name("admin_resume")
@bp.route(route="admin/resume/{flow}", methods=["POST"], auth_level=ADMIN)
@answers
async def admin_resume(req: func.HttpRequest) -> func.HttpResponse:
    return _json(await views.switch_view(await get_runtime(), req.route_params["flow"], False))


async def start_initial_sync(body: dict[str, Any], flow: str) -> dict[str, Any]:
    """Start a run in the background (its slices go on from the admin-runs queue) and answer its view
    at once. The admin API and the console start runs through here."""
    runtime = await get_runtime()
    table_map = views.flow_map(runtime, flow)
    since = views.when(str(body["since"]) if body.get("since") else None, "since")
    companies = [str(c) for c in body.get("companies") or []] or None
    resume_run = await run_to_resume(
        runtime, table_map, companies=companies, since=since, restart=bool(body.get("restart"))
    )
    run = await start_in_background(runtime, table_map, companies=companies, since=since, resume=resume_run)
    return await views.run_view(runtime, run)


@bp.function_name("admin_initial_sync")
@bp.route(route="admin/initial-sync/{flow}", methods=["POST"], auth_level=ADMIN)
@answers
async def admin_initial_sync(req: func.HttpRequest) -> func.HttpResponse:
    body = _body(req)
    if body.get("changes"):
        # A delta read is what changed since the last one: small, so it runs within the call.
        runtime = await get_runtime()
        table_map = views.flow_map(runtime, req.route_params["flow"])
        try:
            return _json(await catch_up(runtime, table_map, restart=bool(body.get("restart"))))
        except ValueError as exc:
            raise OperatorError(str(exc)) from None
        except ServiceError as exc:
            # Kept on the flow's changes run too; the caller is told what Dataverse said, not a 500.
            return _json({"error": f"{table_map.name} catch-up failed: {exc}"}, 502)
    # The run goes on in the background, from the admin-runs queue: 202, and admin/runs/{id} follows it.
    return _json(await start_initial_sync(body, req.route_params["flow"]), 202)


@bp.function_name("admin_runs")
@bp.route(route="admin/runs", methods=["GET"], auth_level=ADMIN)
@answers
async def admin_runs(req: func.HttpRequest) -> func.HttpResponse:
    return _json(await views.runs_view(await get_runtime(), req.params.get("flow") or None))


@bp.function_name("admin_run")
@bp.route(route="admin/runs/{id}", methods=["GET"], auth_level=ADMIN)
@answers
async def admin_run(req: func.HttpRequest) -> func.HttpResponse:
    return _json(await views.run_one_view(await get_runtime(), req.route_params["id"]))


@bp.function_name("admin_initial_sync_continue")
@bp.service_bus_queue_trigger(arg_name="msg", queue_name=ADMIN_RUNS_QUEUE, connection="ServiceBus")
async def admin_initial_sync_continue(msg: func.ServiceBusMessage) -> None:
    runtime = await get_runtime()
    await continue_admin_run(runtime, runtime.maps(), msg.get_body().decode())


@bp.function_name("admin_reconcile")
@bp.route(route="admin/reconcile/{flow}", methods=["POST", "GET"], auth_level=ADMIN)
@answers
async def admin_reconcile(req: func.HttpRequest) -> func.HttpResponse:
    """POST queues a reconcile (it runs from the admin-runs queue: 202 and the run's id); GET shows
    the flow's reconciles, newest first, each with its stored report."""
    runtime = await get_runtime()
    table_map = views.flow_map(runtime, req.route_params["flow"])
    if req.method == "GET":
        return _json(await reconcile_runs(runtime, table_map.name))
    body = _body(req)
    since = views.when(str(body["since"]) if body.get("since") else None, "since")
    company = str(body["company"]) if body.get("company") else None
    run = await queue_reconcile(runtime, table_map, company=company, since=since, repair=bool(body.get("repair")))
    return _json(run, 202)


@bp.function_name("admin_trace")
@bp.route(route="admin/trace/{flow}", methods=["GET"], auth_level=ADMIN)
@answers
async def admin_trace(req: func.HttpRequest) -> func.HttpResponse:
    runtime = await get_runtime()
    key = req.params.get("key")
    if not key:
        raise OperatorError("name the record: ?key=<source key>")
    table_map = views.flow_map(runtime, req.route_params["flow"])
    # A key that is not the flow's (its parts miscounted) and an answer of the service the key was read
    # from are the operator's to act on, as the command line run in-process says them: not a 500.
    try:
        found = await trace(runtime, table_map, key)
    except MappingError as exc:
        raise OperatorError(str(exc)) from None
    except ServiceError as exc:
        raise OperatorError(f"{table_map.name} trace failed: {exc}") from None
    return func.HttpResponse(dumps(found), mimetype="application/json")


@bp.function_name("reconcile_scheduled")
@bp.timer_trigger(arg_name="timer", schedule="%PROJOPS_RECONCILE_SCHEDULE%", run_on_startup=False)
async def reconcile_scheduled(timer: func.TimerRequest) -> None:
    runtime = await get_runtime()
    await schedule_reconciles(runtime, runtime.maps())


@bp.function_name("admin_check_maps")
@bp.route(route="admin/check-maps", methods=["GET"], auth_level=ADMIN)
@answers
async def admin_check_maps(req: func.HttpRequest) -> func.HttpResponse:
    result = await views.check_maps_view(await get_runtime())
    return _json(result, 200 if not result["problems"] else 409)


@bp.function_name("admin_finance_events")
@bp.route(route="admin/finance-events", methods=["GET"], auth_level=ADMIN)
async def admin_finance_events(req: func.HttpRequest) -> func.HttpResponse:
    return _json(activations((await get_runtime()).maps()))
