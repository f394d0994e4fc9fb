"""One Service Bus-triggered function per flow, built from its table map."""

from __future__ import annotations

import azure.functions as func

from shared.bus import flow_queue
from shared.flow_runner import run_flow_message
from shared.maps import TableMap
from shared.runtime import get_runtime


def flow_blueprint(table_map: TableMap) -> func.Blueprint:
    """Register `flow_<name>` on the session-enabled queue `flow-<name>`.

    Sessions (SessionId = record key) give per-record FIFO and keep two instances from writing the
    same record at once.
    """
    blueprint = func.Blueprint()

    async def handle(msg: func.ServiceBusMessage) -> None:
        runtime = await get_runtime()
        # The map as this deployment runs it: with the customer's extensions, if any.
        await run_flow_message(runtime, runtime.maps().by_name(table_map.name), msg.get_body(), msg.message_id)

    handle.__name__ = table_map.function_name
    handle.__qualname__ = table_map.function_name
    trigger = blueprint.service_bus_queue_trigger(
        arg_name="msg",
        queue_name=flow_queue(table_map.name),
        connection="ServiceBus",
        is_sessions_enabled=True,
    )
    blueprint.function_name(table_map.function_name)(trigger(handle))
    return blueprint
