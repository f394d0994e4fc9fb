"""The per-process runtime: settings, clients, state store and sender, created once.

Azure Functions keeps a Python worker alive between invocations, so clients (with their connection
pools and MSAL token caches) are built on first use and reused. The sandbox and tests install their
own runtime with `set_runtime` before the functions run.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from shared.bus import BacklogReader, MessageSender
from shared.cache import TtlCache
from shared.maps import Registry
from shared.operations.pause import FunctionSwitch
from shared.pipeline import Engine
from shared.settings import BusBackend, Settings, SettingsError, get_settings, load_settings
from shared.telemetry import configure_telemetry


@dataclass
class Runtime:
    engine: Engine
    sender: MessageSender
    # Operations: flipping a function's Disabled setting, and reading queue backlogs.
    switch: FunctionSwitch | None = None
    backlog: BacklogReader | None = None
    # The maps this deployment runs: ours with the customer's map extensions merged in.
    registry: Registry | None = None

    def maps(self) -> Registry:
        if self.registry is None:
            from functions.catalog import CATALOG

            return CATALOG
        return self.registry

    @property
    def settings(self) -> Settings:
        return self.engine.settings

    async def close(self) -> None:
        for closable in (
            self.engine.dataverse,
            self.engine.finance,
            self.engine.state,
            self.sender,
            self.switch,
            self.backlog,
        ):
            close = getattr(closable, "close", None) or getattr(closable, "aclose", None)
            if close is not None:
                await close()


_current: Runtime | None = None
_lock = asyncio.Lock()


def set_runtime(runtime: Runtime | None) -> None:
    global _current
    _current = runtime


def check_startup_settings() -> Settings:
    """The settings this process will run with, checked as the host imports function_app.

    Raised there, a SettingsError leaves the host with no function indexed: nothing takes a message off
    its queue, so messages wait instead of failing every delivery into the dead-letter queue. A runtime
    the sandbox or a test installed before the import carries settings it built and checked itself.
    """
    if _current is not None:
        return _current.settings
    settings = load_settings()
    _refuse_local_bus(settings)
    return settings


def _refuse_local_bus(settings: Settings) -> None:
    """The local bus is the sandbox's, which passes its own sender: anywhere else there is none."""
    if settings.bus_backend is BusBackend.LOCAL:
        raise SettingsError(
            "invalid projops-sync settings: PROJOPS_BUS_BACKEND: local exists only inside the sandbox "
            "(`make sandbox`); a deployed app uses servicebus"
        )


async def get_runtime() -> Runtime:
    global _current
    if _current is not None:
        return _current
    async with _lock:
        if _current is None:
            _current = build_runtime(get_settings())
    return _current


def build_runtime(settings: Settings, sender: MessageSender | None = None) -> Runtime:
    """The production runtime from settings (the sandbox passes its local bus sender)."""
    from shared.auth import create_token_provider
    from shared.clients.dataverse import DataverseClient
    from shared.clients.finance import FinanceClient
    from shared.state.factory import create_state_store

    configure_telemetry()
    tokens = create_token_provider(settings)
    if sender is None:
        _refuse_local_bus(settings)
        from shared.servicebus_sender import ServiceBusSender

        sender = ServiceBusSender(settings)
    engine = Engine(
        settings=settings,
        dataverse=DataverseClient(settings, tokens),
        finance=FinanceClient(settings, tokens),
        state=create_state_store(settings),
        cache=TtlCache(settings.lookup_cache_ttl_seconds),
    )
    switch = None
    if settings.function_app_resource_id:
        from azure.identity.aio import DefaultAzureCredential

        from shared.operations.pause import ArmFunctionSwitch

        credential = DefaultAzureCredential(managed_identity_client_id=settings.managed_identity_client_id)
        switch = ArmFunctionSwitch(settings.function_app_resource_id, credential)
    backlog: BacklogReader | None = None
    if settings.bus_backend is BusBackend.SERVICEBUS and settings.servicebus_resource_id:
        from azure.identity.aio import DefaultAzureCredential

        from shared.servicebus_sender import ArmServiceBusBacklog

        backlog = ArmServiceBusBacklog(
            settings.servicebus_resource_id,
            DefaultAzureCredential(managed_identity_client_id=settings.managed_identity_client_id),
        )
    elif settings.bus_backend is BusBackend.SERVICEBUS and settings.servicebus_namespace:
        from shared.servicebus_sender import ServiceBusBacklog

        backlog = ServiceBusBacklog(settings)
    # The functions layer holds the maps; the runtime only merges the customer's extensions in, and
    # a wrong extension file stops the app here, at start-up, naming its line.
    from functions.catalog import catalog

    registry = catalog(settings.map_extensions_path)
    return Runtime(engine=engine, sender=sender, switch=switch, backlog=backlog, registry=registry)
