"""A local Functions host: runs the real function app's functions, unchanged, on the local bus.

Service Bus triggers consume from the local bus with the platform's settlement (complete on
success, abandon on an exception, dead-letter after MaxDeliveryCount) and its concurrency (sessions
or plain competing calls); HTTP triggers are served on a loopback socket under /api. A function
whose `AzureWebJobs.<name>.Disabled` setting is true receives nothing, so its backlog waits.
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import logging
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func
from azure.functions.servicebus import ServiceBusMessage
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.bus import LocalBus, LocalMessage
from sandbox.odata import Served
from shared import host_json

log = logging.getLogger("projops.sandbox.host")


@dataclass
class Invocations:
    count: int = 0
    failures: int = 0
    seconds: float = 0.0
    last_error: str | None = None


@dataclass
class HostedFunction:
    name: str
    user_function: Any
    trigger: dict[str, Any]
    stats: Invocations = field(default_factory=Invocations)

    @property
    def kind(self) -> str:
        return str(self.trigger.get("type"))

    @property
    def entity_path(self) -> str:
        if "queueName" in self.trigger:
            return str(self.trigger["queueName"])
        return f"{self.trigger['topicName']}/Subscriptions/{self.trigger['subscriptionName']}"


_DISCOVERED: dict[int, list[Any]] = {}


def discover_functions(app: func.FunctionApp) -> list[Any]:
    # The FunctionApp indexes its functions once; asking again (a second host in one process) raises.
    if id(app) not in _DISCOVERED:
        _DISCOVERED[id(app)] = list(app.get_functions())
    return _DISCOVERED[id(app)]


def _sb_message(message: LocalMessage) -> ServiceBusMessage:
    return ServiceBusMessage(
        body=message.body,
        application_properties=dict(message.application_properties),
        content_type=message.content_type,
        correlation_id=message.correlation_id,
        delivery_count=message.delivery_count,
        enqueued_time_utc=message.enqueued_time,
        message_id=message.message_id,
        scheduled_enqueue_time_utc=message.scheduled_enqueue_time,
        sequence_number=message.sequence_number,
        session_id=message.session_id,
        subject=message.subject,
        user_properties=dict(message.application_properties),
    )


class LocalSwitch:
    """shared.operations.pause.FunctionSwitch on the local host (the app setting, locally)."""

    def __init__(self, host: LocalHost) -> None:
        self.host = host

    async def set_disabled(self, function_name: str, disabled: bool) -> None:
        self.host.set_disabled(function_name, disabled)

    async def disabled_functions(self) -> set[str]:
        return {name for name in self.host.functions if self.host.is_disabled(name)}


class LocalHost:
    def __init__(
        self,
        app: func.FunctionApp,
        bus: LocalBus,
        *,
        settings: Mapping[str, str] | None = None,
        function_key: str | None = None,
        max_concurrent_sessions: int | None = None,
        max_concurrent_calls: int = 16,
        session_idle_timeout: float | None = None,
    ) -> None:
        """None for a session setting: host.json's."""
        self.bus = bus
        self.session_idle_timeout = (
            host_json.session_idle_timeout() if session_idle_timeout is None else session_idle_timeout
        )
        self.settings = dict(settings or {})
        self.function_key = function_key or secrets.token_urlsafe(24)
        self.max_concurrent_sessions = (
            host_json.max_concurrent_sessions() if max_concurrent_sessions is None else max_concurrent_sessions
        )
        self.max_concurrent_calls = max_concurrent_calls
        self.functions: dict[str, HostedFunction] = {}
        for function in discover_functions(app):
            trigger = function.get_trigger()
            name = function.get_function_name()
            if trigger is None or name is None:
                raise ValueError(f"function {name or function.get_user_function()} has no trigger or name")
            self.functions[name] = HostedFunction(name, function.get_user_function(), dict(trigger.get_dict_repr()))
        # Read once: the platform applies an app setting by restarting the host, so no worker polls it.
        # A function's workers wait on its event while it is disabled.
        self._enabled = {name: asyncio.Event() for name in self.functions}
        for name, enabled in self._enabled.items():
            if not self._setting_disables(name):
                enabled.set()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._served = Served()
        self.http_url = ""

    @property
    def invocations(self) -> dict[str, Invocations]:
        return {name: f.stats for name, f in self.functions.items()}

    def _setting_disables(self, name: str) -> bool:
        key = f"AzureWebJobs.{name}.Disabled"
        value = self.settings.get(key, os.environ.get(key, ""))
        return str(value).lower() in ("true", "1")

    def is_disabled(self, name: str) -> bool:
        return not self._enabled[name].is_set()

    def set_disabled(self, name: str, disabled: bool) -> None:
        if name not in self.functions:
            raise KeyError(f"no function {name}")
        self.settings[f"AzureWebJobs.{name}.Disabled"] = "true" if disabled else "false"
        if disabled:
            self._enabled[name].clear()
            function = self.functions[name]
            if function.kind == "serviceBusTrigger":
                # Its waiting workers let go of the queue now, as the platform stops the listener.
                self.bus.wake_all(function.entity_path)
        else:
            self._enabled[name].set()

    async def start(self) -> str:
        routes = []
        for function in self.functions.values():
            if function.kind == "serviceBusTrigger":
                self.bus.entity(function.entity_path)  # fails now if the bus lacks the entity
                workers = (
                    self.max_concurrent_sessions
                    if function.trigger.get("isSessionsEnabled")
                    else self.max_concurrent_calls
                )
                self._tasks += [asyncio.create_task(self._consume(function)) for _ in range(workers)]
            elif function.kind == "httpTrigger":
                methods = [str(getattr(m, "value", m)) for m in function.trigger.get("methods") or ["GET", "POST"]]
                routes.append(Route(f"/api/{function.trigger['route']}", self._http_handler(function), methods=methods))
        self.http_url = await self._served.start(Starlette(routes=routes))
        return self.http_url

    async def stop(self) -> None:
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        # Consumers finish their in-flight message or are cancelled; none may hold up shutdown for long.
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10)
        await self._served.stop()

    async def _invoke(self, function: HostedFunction, argument: Any) -> Any:
        name = function.trigger.get("name", "msg")
        result = function.user_function(**{name: argument})
        if inspect.isawaitable(result):
            result = await result
        return result

    async def _consume(self, function: HostedFunction) -> None:
        path = function.entity_path
        enabled = self._enabled[function.name]
        while not self._stopping.is_set():
            if not enabled.is_set():
                await enabled.wait()
                continue
            message = await self.bus.receive(path, None, enabled.is_set)
            if message is None:
                continue
            if not function.trigger.get("isSessionsEnabled"):
                await self._deliver(function, message, hold_session=False)
                continue
            # The session processor keeps the session it accepted while messages keep coming, and
            # holds it sessionIdleTimeout after the last before it accepts another.
            session = message.session_id or ""
            try:
                while message is not None:
                    await self._deliver(function, message, hold_session=True)
                    if self._stopping.is_set():
                        break
                    message = await self.bus.receive_in_session(
                        path, session, self.session_idle_timeout, enabled.is_set
                    )
            finally:
                self.bus.release_session(path, session)

    async def _deliver(self, function: HostedFunction, message: LocalMessage, *, hold_session: bool) -> None:
        path = function.entity_path
        started = time.perf_counter()
        function.stats.count += 1
        try:
            await self._invoke(function, _sb_message(message))
        except asyncio.CancelledError:
            await self.bus.abandon(path, message)
            raise
        except Exception as exc:  # the platform abandons on any exception; so do we
            function.stats.failures += 1
            function.stats.last_error = f"{type(exc).__name__}: {exc}"
            log.exception(
                "%s failed on message %s (delivery %s)", function.name, message.message_id, message.delivery_count
            )
            await self.bus.abandon(path, message, hold_session=hold_session)
        else:
            await self.bus.complete(path, message, hold_session=hold_session)
        finally:
            function.stats.seconds += time.perf_counter() - started

    def _http_handler(self, function: HostedFunction) -> Any:
        async def handler(request: Request) -> Response:
            if self.is_disabled(function.name):
                return Response(status_code=404)
            level = str(
                getattr(function.trigger.get("authLevel"), "value", function.trigger.get("authLevel", "function"))
            )
            if level.lower() != "anonymous":
                given = request.headers.get("x-functions-key") or request.query_params.get("code") or ""
                if not hmac.compare_digest(given.encode(), self.function_key.encode()):
                    return Response("a function key is required", status_code=401)
            body = await request.body()
            http_request = func.HttpRequest(
                method=request.method,
                url=str(request.url),
                headers=dict(request.headers),
                params=dict(request.query_params),
                route_params=dict(request.path_params),
                body=body,
            )
            function.stats.count += 1
            try:
                result = await self._invoke(function, http_request)
            except Exception as exc:
                function.stats.failures += 1
                log.exception("%s failed", function.name)
                return Response(f"{type(exc).__name__}: {exc}", status_code=500)
            response: func.HttpResponse = result
            headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
            return Response(
                response.get_body(), status_code=response.status_code, headers=headers, media_type=response.mimetype
            )

        return handler
