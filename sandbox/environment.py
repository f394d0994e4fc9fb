"""The sandbox: both simulators, the local bus and the local host running the real function app.

Everything runs in one asyncio loop over real loopback sockets: the flows call the simulators with
the same httpx clients they use against Azure, and the simulators emit the same message formats the
real services do. Used by `make sandbox` and by the integration tests.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from sandbox.bus import LocalBacklog, LocalBus, LocalBusSender, sink_for
from sandbox.dataverse.protection import ServiceProtection
from sandbox.dataverse.server import DataverseSimulator
from sandbox.finance.server import FinanceSimulator
from sandbox.finance.throttling import ResourceBudget
from sandbox.host import LocalHost, LocalSwitch
from shared.bus import ADMIN_RUNS_QUEUE, DATAVERSE_SUBSCRIPTION, DATAVERSE_TOPIC, FINANCE_QUEUE
from shared.events import use_session_buckets
from shared.extensions import EXTENSION_INVOICE_PROPOSALS, EXTENSION_TRANSACTION_RELATIONSHIPS
from shared.host_json import max_concurrent_sessions
from shared.maps import Registry, System
from shared.operations.register_steps import IMAGE_POST, IMAGE_PRE, StepPlan, plan_steps
from shared.runtime import Runtime, build_runtime, set_runtime
from shared.settings import AuthMode, BusBackend, Settings, StateBackend

# Identities of the sandbox: the integration's application user, and a person using the apps.
INTEGRATION_TOKEN = "sandbox-integration"
PERSON_TOKEN = "sandbox-person"
INTEGRATION_USER_ID = "5a0d0a55-0000-4000-8000-00000000a001"
PERSON_USER_ID = "5a0d0a55-0000-4000-8000-00000000b002"
INTEGRATION_OBJECT_ID = "5a0d0a55-0000-4000-8000-00000000c003"
PERSON_OBJECT_ID = "5a0d0a55-0000-4000-8000-00000000d004"
FINANCE_POSTING_OBJECT_ID = "5a0d0a55-0000-4000-8000-00000000e005"
WEBHOOK_SECRET = "sandbox-webhook-key"


@dataclass
class SandboxOptions:
    companies: tuple[str, ...] = ("USMF", "USPI")
    state_path: str | None = None  # None: a temporary SQLite file
    retry_base_delay_seconds: float = 0.05
    retry_max_delay_seconds: float = 0.5
    retry_max_attempts: int = 6
    http_max_retries: int = 4
    dataverse_faults: dict[str, Any] = field(default_factory=dict)
    finance_faults: dict[str, Any] = field(default_factory=dict)
    # None: host.json's maxConcurrentSessions and sessionIdleTimeout, as the deployed host runs.
    max_concurrent_sessions: int | None = None
    session_idle_timeout: float | None = None
    extra_settings: dict[str, Any] = field(default_factory=dict)
    # False leaves the Dataverse steps to `projops-sync register-steps`, as in a real deployment.
    register_steps: bool = True
    # Finance extensions the demo switches on: the simulator then serves the entities they publish
    # (labelled "(extension)"), which no standard Finance $metadata has, and the maps needing them run.
    finance_extensions: tuple[str, ...] = (EXTENSION_TRANSACTION_RELATIONSHIPS, EXTENSION_INVOICE_PROPOSALS)
    # A customer's map extension file, and the columns of their own that its Dataverse needs for it
    # ({table: {column: {"type": ...}}}): added only when an extension asks, as a customer's solution would.
    map_extensions: str | None = None
    custom_columns: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    # (Dataverse URL, Finance URL) of simulators served by another process: the functions then have this
    # process to themselves, as on an Azure instance, and what it spends is theirs (the throughput bench).
    remote_simulators: tuple[str, str] | None = None
    # Dataverse's documented service protection limits, enforced (usually scaled down); None: off.
    dataverse_protection: ServiceProtection | None = None
    # Finance's resource-based throttling: a budget past which it answers 429; None: never busy.
    finance_budget: ResourceBudget | None = None


DEMO_MAP_EXTENSIONS = Path(__file__).resolve().parent / "map-extensions.yaml"
# The columns Contoso's own solution adds, which DEMO_MAP_EXTENSIONS maps.
DEMO_CUSTOM_COLUMNS: dict[str, dict[str, dict[str, Any]]] = {
    "msdyn_project": {"cnt_costcenter": {"type": "string", "max": 40}},
    "cdm_worker": {"cnt_knownas": {"type": "string", "max": 100}},
}


def demo_options() -> SandboxOptions:
    """The demo's sandbox: with a customer's map extensions, as `make sandbox` runs it."""
    return SandboxOptions(map_extensions=str(DEMO_MAP_EXTENSIONS), custom_columns=DEMO_CUSTOM_COLUMNS)


class Sandbox:
    def __init__(self, options: SandboxOptions | None = None) -> None:
        self.options = options or SandboxOptions()
        self.bus = LocalBus()
        sink = sink_for(self.bus)
        self.dataverse = DataverseSimulator(
            users={INTEGRATION_TOKEN: INTEGRATION_USER_ID, PERSON_TOKEN: PERSON_USER_ID},
            object_ids={INTEGRATION_USER_ID: INTEGRATION_OBJECT_ID, PERSON_USER_ID: PERSON_OBJECT_ID},
            sink=sink,
        )
        self.finance = FinanceSimulator(
            users={
                INTEGRATION_TOKEN: INTEGRATION_OBJECT_ID,
                PERSON_TOKEN: PERSON_OBJECT_ID,
            },
            sink=sink,
            posting_object_id=FINANCE_POSTING_OBJECT_ID,
            extensions=frozenset(self.options.finance_extensions),
        )
        self.host: LocalHost | None = None
        self.runtime: Runtime | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.registry: Registry | None = None

    async def start(self) -> Sandbox:
        from functions.catalog import catalog

        registry = catalog(self.options.map_extensions)
        self.registry = registry
        for table, columns in self.options.custom_columns.items():
            for name, spec in columns.items():
                self.dataverse.add_custom_column(table, name, spec)
        self.bus.create_topic(DATAVERSE_TOPIC)
        self.bus.create_subscription(DATAVERSE_TOPIC, DATAVERSE_SUBSCRIPTION)
        self.bus.create_queue(FINANCE_QUEUE)
        self.bus.create_queue(ADMIN_RUNS_QUEUE)
        for table_map in registry.maps:
            self.bus.create_queue(table_map.flow_queue, sessions=True, duplicate_detection=True)
        if self.options.remote_simulators is None:
            await self.start_simulators()

        settings = self.settings()
        self.runtime = build_runtime(settings, sender=LocalBusSender(self.bus))
        set_runtime(self.runtime)
        # Imported once the runtime is in place: function_app checks the settings it runs with, which
        # are the sandbox's own, not the environment's.
        import function_app

        self.host = await self._start_host(function_app.app)
        self.runtime.switch = LocalSwitch(self.host)
        self.runtime.backlog = LocalBacklog(self.bus)
        if self.options.remote_simulators is None:
            await self.register_sources(registry)
        return self

    async def start_simulators(self) -> None:
        await self.dataverse.start()
        await self.finance.start()
        if self.options.dataverse_faults:
            self.dataverse.set_faults(**self.options.dataverse_faults)
        if self.options.finance_faults:
            self.finance.set_faults(**self.options.finance_faults)
        self.dataverse.set_service_protection(self.options.dataverse_protection)
        self.finance.budget = self.options.finance_budget

    @property
    def service_urls(self) -> tuple[str, str]:
        return self.options.remote_simulators or (self.dataverse.url, self.finance.url)

    async def _start_host(self, app: Any) -> LocalHost:
        host = LocalHost(
            app,
            self.bus,
            settings=self.app_settings(),
            max_concurrent_sessions=self.options.max_concurrent_sessions,
            session_idle_timeout=self.options.session_idle_timeout,
        )
        # The app's buckets follow the host's sessions, as host.json makes them in a deployment.
        use_session_buckets(host.max_concurrent_sessions)
        await host.start()
        return host

    async def restart_host(self) -> None:
        """The host crashes (every in-flight message abandoned, delivered again) and a new one starts."""
        import function_app

        assert self.host is not None and self.runtime is not None
        old = self.host
        await old.stop()
        self.host = await self._start_host(function_app.app)
        self.host.function_key = old.function_key
        self.runtime.switch = LocalSwitch(self.host)

    def settings(self) -> Settings:
        if self.options.state_path:
            state_path = self.options.state_path
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="projops-sandbox-")
            state_path = str(Path(self._tmp.name) / "state.db")
        dataverse_url, finance_url = self.service_urls
        values: dict[str, Any] = {
            "dataverse_url": dataverse_url,
            "finance_url": finance_url,
            "auth_mode": AuthMode.NONE,
            "integration_user_ids": [INTEGRATION_USER_ID],
            "integration_object_ids": [INTEGRATION_OBJECT_ID],
            "companies": list(self.options.companies),
            "state_backend": StateBackend.SQLITE,
            "state_sqlite_path": state_path,
            "bus_backend": BusBackend.LOCAL,
            "retry_base_delay_seconds": self.options.retry_base_delay_seconds,
            "retry_max_delay_seconds": self.options.retry_max_delay_seconds,
            "retry_max_attempts": self.options.retry_max_attempts,
            "http_max_retries": self.options.http_max_retries,
            "http_max_retry_wait_seconds": 1.0,
            "webhook_secret": WEBHOOK_SECRET,
            "finance_extensions": list(self.options.finance_extensions),
            "map_extensions_path": self.options.map_extensions,
            **self.options.extra_settings,
        }
        os.environ.setdefault("PROJOPS_SANDBOX_TOKEN", INTEGRATION_TOKEN)
        return Settings.model_validate(values)

    def cli_profile(self) -> dict[str, str]:
        """The settings `projops-sync` needs from another terminal: the admin API (the bus lives in this
        process, so everything that sends goes through it) and, for the commands that talk to Dataverse
        and Finance themselves (register-steps, maps), the simulators'."""
        assert self.host is not None and self.runtime is not None
        settings = self.runtime.settings
        profile = {
            "PROJOPS_ADMIN_URL": self.host.http_url,
            "PROJOPS_ADMIN_KEY": self.host.function_key,
            "PROJOPS_DATAVERSE_URL": settings.dataverse_url,
            "PROJOPS_FINANCE_URL": settings.finance_url,
            "PROJOPS_AUTH_MODE": AuthMode.NONE.value,
            "PROJOPS_SANDBOX_TOKEN": INTEGRATION_TOKEN,
            "PROJOPS_STATE_BACKEND": StateBackend.SQLITE.value,
            "PROJOPS_STATE_SQLITE_PATH": str(Path(settings.state_sqlite_path).resolve()),
            "PROJOPS_BUS_BACKEND": BusBackend.LOCAL.value,
            "PROJOPS_COMPANIES": ",".join(settings.companies),
            "PROJOPS_FINANCE_EXTENSIONS": ",".join(settings.finance_extensions),
            # inferred: the endpoint register-steps would point Dataverse at; the sandbox has no namespace.
            "ServiceBus__fullyQualifiedNamespace": "sandbox.servicebus.windows.net",
        }
        if settings.map_extensions_path:
            profile["PROJOPS_MAP_EXTENSIONS"] = str(Path(settings.map_extensions_path).resolve())
        return profile

    def app_settings(self) -> dict[str, str]:
        return {}

    async def register_sources(self, registry: Registry) -> None:
        """What an administrator configures: plug-in steps in Dataverse, data and business events in Finance."""
        extensions = self.options.finance_extensions
        dataverse_maps = [
            m
            for m in registry.maps
            if m.source.system is System.DATAVERSE
            and (m.target.requires_extension is None or m.target.requires_extension in extensions)
        ]
        # The administrator turns on Track changes for the tables the flows read (initial-sync --changes).
        self.dataverse.change_tracking.update(m.source.entity for m in dataverse_maps)
        if self.options.register_steps:
            for plan in plan_steps(registry, extensions):
                self.register_step(plan)
        for table_map in registry.maps:
            if table_map.source.system is System.DATAVERSE:
                continue
            if table_map.document is not None:
                for event_id in table_map.source.events:
                    if event_id not in self.finance.activated:
                        await self.finance.activate_business_event(event_id)
            else:
                self.finance.subscribe_data_event(table_map.source.entity_set)

    def register_step(self, plan: StepPlan) -> None:
        """A step as register-steps registers it: its filter, and its image under its alias with its columns."""
        image_type, alias = plan.image[:2] if plan.image else (None, "")
        step = self.dataverse.register_step(
            plan.entity,
            plan.message,
            set(plan.filtering_attributes.split(",")) if plan.filtering_attributes else None,
            pre_image=image_type == IMAGE_PRE,
            post_image=image_type == IMAGE_POST,
            name=plan.name,
        )
        step.image_attributes = set(plan.image_attributes.split(",")) if plan.image_attributes else None
        if image_type == IMAGE_PRE:
            step.pre_alias = alias
        elif image_type == IMAGE_POST:
            step.post_alias = alias

    def person_dataverse(self) -> httpx.AsyncClient:
        """An HTTP client acting as a person in Dataverse (their changes are not the integration's)."""
        return httpx.AsyncClient(
            base_url=self.dataverse.api_url + "/",
            headers={
                "Authorization": f"Bearer {PERSON_TOKEN}",
                "OData-MaxVersion": "4.0",
                "OData-Version": "4.0",
                "Accept": "application/json",
                "Content-Type": "application/json",
            },
            timeout=30,
        )

    def person_finance(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.finance.data_url + "/",
            headers={
                "Authorization": f"Bearer {PERSON_TOKEN}",
                "Accept": "application/json",
                "Content-Type": "application/json",
            },
            timeout=30,
        )

    async def wait_quiet(self, limit_seconds: float = 60.0) -> None:
        await self.bus.wait_idle(limit_seconds)

    async def stop(self) -> None:
        if self.host is not None:
            await self.host.stop()
            use_session_buckets(max_concurrent_sessions())
        if self.runtime is not None:
            await self.runtime.close()
            set_runtime(None)
        if self.options.remote_simulators is None:
            await self.dataverse.stop()
            await self.finance.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    async def __aenter__(self) -> Sandbox:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
