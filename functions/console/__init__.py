"""The web console under /api/admin/console: what the command line does, as a page, for administrators
used to dual-write's pages (maps with their state, errors with retry, initial sync with progress).

Server-rendered HTML (Jinja2, autoescaped: every value either system sent is untrusted) with htmx
swapping fragments in place: no front-end build, no API of its own (it renders the same views as the
admin API and the command line), one vendored script served by the app. Behind the same protection
as the admin API: a function key (the page passes the one it was opened with on every request), or
App Service authentication in front.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import azure.functions as func
import jinja2

from functions.admin import ADMIN, _who, start_initial_sync
from shared.console.output import age, flow_state, short_duration
from shared.errors import OperatorError
from shared.operations import views
from shared.operations.status import ROUTER_FUNCTIONS
from shared.runtime import get_runtime
from shared.values import utc_now

bp = func.Blueprint()
HERE = Path(__file__).parent
PAGE = "admin/console"

_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_templates.filters.update(age=age, duration=short_duration, state=flow_state)

# The key rides in the page's own URL, so no referrer may carry it away; scripts only from the app.
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}

ROUTER_TITLES = {
    router: f"{router}: parks the messages it cannot read and the events no flow takes" for router in ROUTER_FUNCTIONS
}

# The parked filter's "older than" choices, in hours.
AGES = {"1h": 1, "1d": 24, "7d": 168}

Handler = Callable[[func.HttpRequest], Awaitable[func.HttpResponse]]


def _html(template: str, status: int = 200, **context: Any) -> func.HttpResponse:
    body = _templates.get_template(template).render(**context)
    return func.HttpResponse(body, status_code=status, mimetype="text/html", charset="utf-8", headers=HEADERS)


def fragment(handler: Handler) -> Handler:
    """An expected failure becomes a message in the page, where the swap would have gone."""

    @functools.wraps(handler)
    async def wrapped(req: func.HttpRequest) -> func.HttpResponse:
        try:
            return await handler(req)
        except OperatorError as exc:
            return _html("message.html", 200, message=str(exc), error=True)

    return wrapped


def _key(req: func.HttpRequest) -> str:
    return req.headers.get("x-functions-key") or req.params.get("code") or ""


def _form(req: func.HttpRequest) -> dict[str, str]:
    try:
        return {k: str(v) for k, v in req.form.items()}
    except ValueError:
        return {}


async def _flows_context(message: str | None = None) -> dict[str, Any]:
    runtime = await get_runtime()
    return {
        "rows": await views.status_view(runtime),
        "titles": {m.name: m.title for m in runtime.maps().maps} | ROUTER_TITLES,
        "reconcile": True,
        "message": message,
    }


async def _flows(message: str | None = None) -> func.HttpResponse:
    return _html("flows.html", **await _flows_context(message))


async def _parked(filters: dict[str, str], message: str | None = None) -> func.HttpResponse:
    runtime = await get_runtime()
    hours = AGES.get(filters.get("age", ""))
    older_than = (utc_now() - timedelta(hours=hours)).isoformat() if hours else None
    rows = await views.parked_view(
        runtime,
        flow=filters.get("flow") or None,
        reason=filters.get("reason") or None,
        older_than=older_than,
        limit=200,
    )
    # The routers park too: a message they could not read, an event no flow took.
    flows = [m.name for m in runtime.maps().maps] + list(ROUTER_FUNCTIONS)
    return _html("parked.html", rows=rows, flows=flows, filters=filters, message=message)


@bp.function_name("admin_console")
@bp.route(route=PAGE, methods=["GET"], auth_level=ADMIN)
async def admin_console(req: func.HttpRequest) -> func.HttpResponse:
    return _html("page.html", key=_key(req), **await _flows_context())


# The vendored htmx, public code: served without the key, so no URL with the key in it lands in the
# browser's cache for the day the script is kept.
@bp.function_name("admin_console_script")
@bp.route(route=f"{PAGE}/htmx.min.js", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def admin_console_script(req: func.HttpRequest) -> func.HttpResponse:
    body = (HERE / "static" / "htmx.min.js").read_bytes()
    headers = {**HEADERS, "Cache-Control": "private, max-age=86400"}
    return func.HttpResponse(body, mimetype="text/javascript", charset="utf-8", headers=headers)


@bp.function_name("admin_console_flows")
@bp.route(route=f"{PAGE}/flows", methods=["GET"], auth_level=ADMIN)
@fragment
async def admin_console_flows(req: func.HttpRequest) -> func.HttpResponse:
    return await _flows()


@bp.function_name("admin_console_switch")
@bp.route(route=PAGE + "/flows/{flow}/{action}", methods=["POST"], auth_level=ADMIN)
@fragment
async def admin_console_switch(req: func.HttpRequest) -> func.HttpResponse:
    action = req.route_params["action"]
    if action not in ("pause", "resume"):
        raise OperatorError(f"no action {action!r}: pause or resume")
    result = await views.switch_view(await get_runtime(), req.route_params["flow"], action == "pause")
    done = "paused: Service Bus keeps its backlog" if result["paused"] else "resumed: the backlog drains in order"
    return await _flows(f"{result['flow']} {done}")


@bp.function_name("admin_console_parked")
@bp.route(route=f"{PAGE}/parked", methods=["GET"], auth_level=ADMIN)
@fragment
async def admin_console_parked(req: func.HttpRequest) -> func.HttpResponse:
    return await _parked(dict(req.params))


@bp.function_name("admin_console_parked_one")
@bp.route(route=PAGE + "/parked/{id}", methods=["GET"], auth_level=ADMIN)
@fragment
async def admin_console_parked_one(req: func.HttpRequest) -> func.HttpResponse:
    item = await views.parked_one_view(await get_runtime(), req.route_params["id"])
    return _html("parked_detail.html", item=item, event=json.dumps(item["event"], indent=2, default=str))


@bp.function_name("admin_console_parked_act")
@bp.route(route=PAGE + "/parked/{id}/{action}", methods=["POST"], auth_level=ADMIN)
@fragment
async def admin_console_parked_act(req: func.HttpRequest) -> func.HttpResponse:
    runtime = await get_runtime()
    parked_id, action, form = req.route_params["id"], req.route_params["action"], _form(req)
    if action == "replay":
        report = await views.replay_view(runtime, {"ids": [parked_id]}, by=_who(req))
        failed = report["failed"].get(parked_id)
        message = failed or f"replayed {parked_id}: sent back to its flow"
    elif action == "dismiss":
        await views.dismiss_view(runtime, {"ids": [parked_id], "why": form.get("why", "")}, by=_who(req))
        message = f"dismissed {parked_id}: {form.get('why', '')}"
    else:
        raise OperatorError(f"no action {action!r}: replay or dismiss")
    return await _parked({k: form[k] for k in ("flow", "reason", "age") if form.get(k)}, message)


@bp.function_name("admin_console_sync")
@bp.route(route=f"{PAGE}/sync", methods=["GET", "POST"], auth_level=ADMIN)
@fragment
async def admin_console_sync(req: func.HttpRequest) -> func.HttpResponse:
    runtime = await get_runtime()
    run = None
    if req.method == "POST":
        form = _form(req)
        companies = [c.strip().upper() for c in form.get("companies", "").replace(";", ",").split(",") if c.strip()]
        run = await start_initial_sync({"companies": companies}, form.get("flow", ""))
    flows = [m.name for m in runtime.maps().maps]
    return _html("sync.html", flows=flows, run=run, runs=await views.runs_view(runtime, limit=10))


@bp.function_name("admin_console_run")
@bp.route(route=PAGE + "/runs/{id}", methods=["GET"], auth_level=ADMIN)
@fragment
async def admin_console_run(req: func.HttpRequest) -> func.HttpResponse:
    return _html("run.html", run=await views.run_one_view(await get_runtime(), req.route_params["id"]))


@bp.function_name("admin_console_maps")
@bp.route(route=f"{PAGE}/maps", methods=["GET"], auth_level=ADMIN)
@fragment
async def admin_console_maps(req: func.HttpRequest) -> func.HttpResponse:
    runtime = await get_runtime()
    check = await views.check_maps_view(runtime)
    maps = [m.describe() for m in runtime.maps().maps]
    return _html("maps.html", check=check, maps=maps, shown=req.params.get("flow") or "")
