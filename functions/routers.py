"""The three routers: Dataverse topic, Dataverse webhook, Finance queue (DESIGN §1, §10)."""

from __future__ import annotations

import hmac
import logging

import azure.functions as func
from azure.servicebus.exceptions import MessageSizeExceededError

from shared.bus import DATAVERSE_SUBSCRIPTION, DATAVERSE_TOPIC, FINANCE_QUEUE
from shared.decoding.dataverse import IncomingMessage
from shared.routing import route_dataverse, route_finance, route_oversized_webhook
from shared.runtime import get_runtime

bp = func.Blueprint()
logger = logging.getLogger("projops.webhook")

WEBHOOK_KEY_HEADER = "x-projops-webhook-key"
CLAIMS = "http://schemas.microsoft.com/xrm/2011/Claims/"
# Webhook headers carried over as the Service Bus properties a plug-in step would have set.
_HEADER_TO_PROPERTY = {
    "x-ms-dynamics-organization": CLAIMS + "Organization",
    "x-ms-dynamics-entity-name": CLAIMS + "EntityLogicalName",
    "x-ms-dynamics-request-name": CLAIMS + "RequestName",
    "x-ms-correlation-request-id": "x-ms-correlation-request-id",
    "x-ms-dynamics-msg-size-exceeded": "MessageMaxSizeExceeded",
}


def _incoming(msg: func.ServiceBusMessage) -> IncomingMessage:
    properties = {str(k): str(v) for k, v in (msg.application_properties or {}).items()}
    return IncomingMessage(
        body=msg.get_body(), content_type=msg.content_type, properties=properties, message_id=msg.message_id
    )


@bp.function_name("route_dataverse_changes")
@bp.service_bus_topic_trigger(
    arg_name="msg",
    topic_name=DATAVERSE_TOPIC,
    subscription_name=DATAVERSE_SUBSCRIPTION,
    connection="ServiceBus",
)
async def route_dataverse_changes(msg: func.ServiceBusMessage) -> None:
    runtime = await get_runtime()
    await route_dataverse(runtime, runtime.maps(), _incoming(msg))


@bp.function_name("route_finance_events")
@bp.service_bus_queue_trigger(arg_name="msg", queue_name=FINANCE_QUEUE, connection="ServiceBus")
async def route_finance_events(msg: func.ServiceBusMessage) -> None:
    runtime = await get_runtime()
    await route_finance(runtime, runtime.maps(), _incoming(msg))


@bp.function_name("route_dataverse_webhook")
@bp.route(route="dataverse/webhook", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
async def route_dataverse_webhook(req: func.HttpRequest) -> func.HttpResponse:
    """Accept a Dataverse webhook call and hand it to the topic: Dataverse waits at most 60 s and
    retries only 502/503/504, so the work is done from the queue and the answer is a quick 202."""
    try:
        runtime = await get_runtime()
    except Exception as exc:
        # Dataverse retries a webhook only on 502, 503 and 504: a 500 would lose the change. The caller
        # is unauthenticated here, so what is wrong goes to the log, not into the answer.
        logger.error("webhook: projops-sync cannot start: %s", exc)
        return func.HttpResponse("projops-sync is not running (see its log); retry", status_code=503)
    settings = runtime.settings
    expected = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
    given = req.headers.get(WEBHOOK_KEY_HEADER, "")
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        return func.HttpResponse("missing or wrong webhook key", status_code=401)
    too_big = func.HttpResponse(
        f"payload over {settings.webhook_max_bytes} bytes; register the step with fewer image columns",
        status_code=413,
    )
    # The declared length is checked before the body is touched, so an oversized call costs nothing.
    declared = req.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > settings.webhook_max_bytes:
        return too_big
    body = req.get_body()
    if len(body) > settings.webhook_max_bytes:
        return too_big
    properties = {prop: req.headers[header] for header, prop in _HEADER_TO_PROPERTY.items() if req.headers.get(header)}
    properties["projops-ingress"] = "webhook"
    content_type = req.headers.get("content-type", "application/json")
    try:
        try:
            await runtime.sender.send_raw(DATAVERSE_TOPIC, body, properties, content_type)
        except MessageSizeExceededError:
            message = IncomingMessage(body, content_type, properties, transport="webhook")
            await route_oversized_webhook(runtime, runtime.maps(), message)
    except Exception as exc:
        # Dataverse retries a webhook only on 502, 503 and 504: a 500 would lose the change.
        logger.warning("webhook: could not put the message on %s: %r", DATAVERSE_TOPIC, exc)
        return func.HttpResponse("the change could not be queued; retry", status_code=503)
    return func.HttpResponse(status_code=202)
