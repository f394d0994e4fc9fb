"""register-steps: the Dataverse service endpoint and plug-in steps, derived from the maps.

One asynchronous post-operation step per Dataverse source table and message: Create and Update with a
post image, Update filtered on the columns its flows read, Delete with a pre image. Idempotent: steps
are found by name, compared, and only created or updated where they differ.

The endpoint's SAS key cannot be compared (Dataverse does not return it), so every run sets it again:
after a key is rotated in Service Bus, running register-steps with the new key is what puts it in
Dataverse.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from shared.bus import DATAVERSE_TOPIC
from shared.clients.addressing import bind_reference, filter_for_key
from shared.clients.base import DataverseApi
from shared.events import Operation
from shared.maps import Registry, System, TableMap

DATAVERSE = System.DATAVERSE

ENDPOINT_NAME = "projops-sync dataverse-changes"
STEP_PREFIX = "projops-sync"
# serviceendpoint option values (formats.md §1.2)
CONTRACT_TOPIC = 5
MESSAGE_FORMAT_JSON = 2
AUTH_SAS_KEY = 2
USER_CLAIM_USER_ID = 2
CONNECTION_MODE_NORMAL = 1
STAGE_POST_OPERATION = 40
MODE_ASYNCHRONOUS = 1
IMAGE_PRE, IMAGE_POST = 0, 1

_MESSAGES = {Operation.CREATE: "Create", Operation.UPDATE: "Update", Operation.DELETE: "Delete"}


@dataclass(frozen=True)
class EndpointConfig:
    namespace: str  # contoso-projops.servicebus.windows.net
    sas_key_name: str
    sas_key: str


@dataclass(frozen=True)
class StepPlan:
    name: str
    flow: str
    entity: str
    message: str
    filtering_attributes: str | None
    image: tuple[int, str, str] | None  # (type, alias, message property)
    # The image's columns: what the flows read, and versionnumber, the only version a real message
    # carries (Target's and the images' RowVersion arrive null).
    image_attributes: str | None = None


@dataclass
class RegistrationReport:
    endpoint: str = "unchanged"
    steps: dict[str, str] = field(default_factory=dict)
    # The key is written on every run (it cannot be read back to compare); not counted as a change.
    key_set: bool = False

    @property
    def changed(self) -> bool:
        return self.endpoint != "unchanged" or any(v != "unchanged" for v in self.steps.values())


def plan_steps(registry: Registry, extensions: Collection[str] = ()) -> list[StepPlan]:
    """One step per table and message, shared by every flow on that table (the router fans out).

    A flow whose Finance entity needs an extension that is not installed gets no step: nothing it
    could write exists yet, and once the extension is there, register-steps and initial-sync catch up."""
    by_entity: dict[str, list[TableMap]] = {}
    for table_map in registry.maps:
        needs = table_map.target.requires_extension
        if needs and needs not in extensions:
            continue
        if table_map.source.system is DATAVERSE:
            by_entity.setdefault(table_map.source.entity, []).append(table_map)
    plans = []
    for entity, maps in by_entity.items():
        for operation, message in _MESSAGES.items():
            takers = [m for m in maps if m.allows(operation)]
            if takers:
                plans.append(_plan(entity, operation, message, takers))
    return plans


def _plan(entity: str, operation: Operation, message: str, maps: list[TableMap]) -> StepPlan:
    flows = ",".join(m.name for m in maps)
    name = f"{STEP_PREFIX}: {flows} {message} of {entity}"
    if operation is Operation.DELETE:
        image = (IMAGE_PRE, "PreImage", "Target")
    else:
        image = (IMAGE_POST, "PostImage", "Id" if operation is Operation.CREATE else "Target")
    attributes = None
    if operation is Operation.UPDATE:
        attributes = ",".join(sorted({a for m in maps for a in m.update_filtering_attributes}))
    columns = {c for m in maps for c in m.source_columns} | {"versionnumber"}
    return StepPlan(name, flows, entity, message, attributes, image, ",".join(sorted(columns)))


def _endpoint_body(config: EndpointConfig) -> dict[str, Any]:
    return {
        "name": ENDPOINT_NAME,
        "contract": CONTRACT_TOPIC,
        "connectionmode": CONNECTION_MODE_NORMAL,
        "authtype": AUTH_SAS_KEY,
        "namespaceaddress": f"sb://{config.namespace}/",
        "path": DATAVERSE_TOPIC,
        "saskeyname": config.sas_key_name,
        "saskey": config.sas_key,
        "messageformat": MESSAGE_FORMAT_JSON,
        "userclaim": USER_CLAIM_USER_ID,
    }


async def _first(dataverse: DataverseApi, entity_set: str, filter: str, select: list[str]) -> dict[str, Any] | None:
    async for page in dataverse.query(entity_set, filter=filter, select=select, page_size=50):
        return page[0] if page else None
    return None


async def register_steps(
    dataverse: DataverseApi,
    registry: Registry,
    config: EndpointConfig,
    *,
    dry_run: bool = False,
    extensions: Collection[str] = (),
) -> RegistrationReport:
    report = RegistrationReport()
    body = _endpoint_body(config)
    compared = [k for k in body if k != "saskey"]
    existing = await _first(
        dataverse, "serviceendpoints", filter_for_key({"name": ENDPOINT_NAME}), ["serviceendpointid", *compared]
    )
    if existing is None:
        report.endpoint = "create"
        endpoint_id = None
        if not dry_run:
            endpoint_id = (await dataverse.create("serviceendpoints", body)).entity_id
    else:
        endpoint_id = str(existing["serviceendpointid"])
        if any(existing.get(k) != body[k] for k in compared):
            report.endpoint = "update"
            if not dry_run:
                await dataverse.write("serviceendpoints", {"serviceendpointid": endpoint_id}, body, "update")
        elif not dry_run:
            await dataverse.write(
                "serviceendpoints", {"serviceendpointid": endpoint_id}, {"saskey": config.sas_key}, "update"
            )
        report.key_set = not dry_run

    for plan in plan_steps(registry, extensions):
        report.steps[plan.name] = await _register_step(dataverse, plan, endpoint_id, dry_run=dry_run)
    return report


async def _register_step(dataverse: DataverseApi, plan: StepPlan, endpoint_id: str | None, *, dry_run: bool) -> str:
    wanted: dict[str, Any] = {
        "name": plan.name,
        "stage": STAGE_POST_OPERATION,
        "mode": MODE_ASYNCHRONOUS,
        "rank": 1,
        "supporteddeployment": 0,
        # Succeeded system jobs are deleted at once: one per change otherwise fills asyncoperation.
        "asyncautodelete": True,
        "filteringattributes": plan.filtering_attributes,
    }
    existing = await _first(
        dataverse,
        "sdkmessageprocessingsteps",
        filter_for_key({"name": plan.name}),
        ["sdkmessageprocessingstepid", *wanted],
    )
    if existing is not None and all(existing.get(k) == v for k, v in wanted.items()):
        return "unchanged"
    if dry_run:
        return "create" if existing is None else "update"
    if existing is not None:
        await dataverse.write(
            "sdkmessageprocessingsteps",
            {"sdkmessageprocessingstepid": existing["sdkmessageprocessingstepid"]},
            wanted,
            "update",
        )
        return "update"
    message = await _first(dataverse, "sdkmessages", filter_for_key({"name": plan.message}), ["sdkmessageid"])
    if message is None:
        raise LookupError(f"Dataverse has no sdkmessage {plan.message}")
    message_filter = await _first(
        dataverse,
        "sdkmessagefilters",
        filter_for_key({"primaryobjecttypecode": plan.entity, "_sdkmessageid_value": message["sdkmessageid"]}),
        ["sdkmessagefilterid"],
    )
    if message_filter is None:
        raise LookupError(f"Dataverse has no {plan.message} message filter for {plan.entity}")
    body = {
        **wanted,
        "sdkmessageid@odata.bind": bind_reference("sdkmessages", {"id": message["sdkmessageid"]}),
        "sdkmessagefilterid@odata.bind": bind_reference(
            "sdkmessagefilters", {"id": message_filter["sdkmessagefilterid"]}
        ),
        "eventhandler_serviceendpoint@odata.bind": bind_reference("serviceendpoints", {"id": endpoint_id}),
    }
    step_id = (await dataverse.create("sdkmessageprocessingsteps", body)).entity_id
    if plan.image is not None:
        image_type, alias, property_name = plan.image
        await dataverse.create(
            "sdkmessageprocessingstepimages",
            {
                "name": alias,
                "entityalias": alias,
                "imagetype": image_type,
                "messagepropertyname": property_name,
                "attributes": plan.image_attributes,
                "sdkmessageprocessingstepid@odata.bind": bind_reference("sdkmessageprocessingsteps", {"id": step_id}),
            },
        )
    return "create"


def report_text(report: RegistrationReport, *, dry_run: bool) -> str:
    verb = "would" if dry_run else "did"
    key = " (SAS key set again)" if report.key_set and report.endpoint == "unchanged" else ""
    lines = [f"service endpoint {ENDPOINT_NAME}: {report.endpoint}{key}"]
    lines += [f"step {name}: {action}" for name, action in report.steps.items()]
    lines.append(
        f"{verb} change nothing: every step is already as the maps want it"
        if not report.changed
        else f"{'plan only (--dry-run)' if dry_run else 'registered'}"
    )
    return "\n".join(lines)
