"""register-steps: the Dataverse service endpoint and plug-in steps, derived from the maps.

One asynchronous post-operation step per Dataverse source table and message: Create and Update with a
post image, Update filtered on the columns its flows read, Delete with a pre image. Idempotent: our
steps are found by what they are (on our service endpoint, named with our prefix, for a table and
message), not by their name, which lists the flows and changes when a release adds or removes one. Each
is compared with the plan, images included, and only created, updated or deleted where it differs.

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
from shared.decoding.images import complete_image_alias
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
STATE_ENABLED = 0  # sdkmessageprocessingstep.statecode: 0 Enabled, 1 Disabled

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
    # Each step by name: create, update, unchanged or delete.
    steps: dict[str, str] = field(default_factory=dict)
    # What differed, by step name: the columns patched, the name it had, why a step goes.
    details: dict[str, str] = field(default_factory=dict)
    # Steps left as they are although they are disabled: someone turned them off, and turning them on
    # again is theirs to decide; until then they deliver nothing.
    disabled: list[str] = field(default_factory=list)
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
                plans.append(_plan(entity, operation, message, takers, registry.dataverse_columns(entity)))
    return plans


def _plan(
    entity: str, operation: Operation, message: str, maps: list[TableMap], read: frozenset[str] | None
) -> StepPlan:
    """`read`: the columns the router keeps of the table (None: every column, for a document map)."""
    flows = ",".join(m.name for m in maps)
    name = f"{STEP_PREFIX}: {flows} {message} of {entity}"
    columns = {c for m in maps for c in m.source_columns} | {"versionnumber"}
    if operation is Operation.DELETE:
        image = (IMAGE_PRE, "PreImage", "Target")
    elif read is None:
        image = (IMAGE_POST, "PostImage", "Id" if operation is Operation.CREATE else "Target")
    else:
        # Every column the router keeps, under the alias that says so: the decoder then reads the
        # record from the image alone and leaves Target's copy of the row unread (decoding/images.py).
        columns = set(read)
        image = (IMAGE_POST, complete_image_alias(read), "Id" if operation is Operation.CREATE else "Target")
    attributes = None
    if operation is Operation.UPDATE:
        attributes = ",".join(sorted({a for m in maps for a in m.update_filtering_attributes}))
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


async def _all(dataverse: DataverseApi, entity_set: str, filter: str, select: list[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    async for page in dataverse.query(entity_set, filter=filter, select=select):
        rows.extend(page)
    return rows


def _columns(value: Any) -> frozenset[str]:
    """A comma-separated column list as Dataverse compares it: order, case and spaces do not matter."""
    return frozenset(c.strip().lower() for c in str(value or "").split(",") if c.strip())


@dataclass
class _Registered:
    """One of our steps as Dataverse holds it, with the table and message it fires on."""

    row: dict[str, Any]
    entity: str | None
    message: str | None

    @property
    def id(self) -> str:
        return str(self.row["sdkmessageprocessingstepid"])

    @property
    def name(self) -> str:
        return str(self.row.get("name") or "")

    @property
    def enabled(self) -> bool:
        return self.row.get("statecode") in (None, STATE_ENABLED)


async def _registered_steps(dataverse: DataverseApi, endpoint_id: str) -> list[_Registered]:
    """Our steps: the ones on our service endpoint whose name carries the prefix, whatever flows the
    name lists (it changes when a release adds or removes a flow on a table). A step someone else put on
    the endpoint under another name is left alone."""
    rows = await _all(
        dataverse,
        "sdkmessageprocessingsteps",
        filter_for_key({"_eventhandler_value": endpoint_id}),
        ["sdkmessageprocessingstepid", *_STEP_COLUMNS, "statecode", "_sdkmessageid_value", "_sdkmessagefilterid_value"],
    )
    messages: dict[str, str | None] = {}
    entities: dict[str, str | None] = {}
    found = []
    for row in rows:
        if not str(row.get("name") or "").startswith(f"{STEP_PREFIX}:"):
            continue
        message_id = row.get("_sdkmessageid_value")
        filter_id = row.get("_sdkmessagefilterid_value")
        if message_id and message_id not in messages:
            message = await dataverse.get("sdkmessages", {"sdkmessageid": message_id}, ["name"])
            messages[message_id] = None if message is None else message.get("name")
        if filter_id and filter_id not in entities:
            message_filter = await dataverse.get(
                "sdkmessagefilters", {"sdkmessagefilterid": filter_id}, ["primaryobjecttypecode"]
            )
            entities[filter_id] = None if message_filter is None else message_filter.get("primaryobjecttypecode")
        entity = entities.get(filter_id) if filter_id else None
        found.append(_Registered(row, entity, messages.get(message_id) if message_id else None))
    return found


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

    # A new endpoint (or a dry run before it exists) has no steps yet.
    registered = await _registered_steps(dataverse, endpoint_id) if existing is not None and endpoint_id else []
    plans = plan_steps(registry, extensions)
    for plan in plans:
        same = [r for r in registered if (r.entity, r.message) == (plan.entity, plan.message)]
        # The one kept is an enabled step, the one already named as planned if there is one: renaming
        # it in place leaves no moment in which no step fires for the table and message.
        same.sort(key=lambda r: (not r.enabled, r.name != plan.name))
        kept = same[0] if same else None
        action, what = await _register_step(dataverse, plan, kept, endpoint_id, dry_run=dry_run)
        report.steps[plan.name] = action
        if what:
            report.details[plan.name] = what
        if kept is not None and not kept.enabled:
            report.disabled.append(plan.name)
        for extra in same[1:]:
            # A second step on the same table and message sends every change twice.
            await _remove(dataverse, extra, f"a second step for {plan.message} of {plan.entity}", report, dry_run)
    wanted = {(p.entity, p.message) for p in plans}
    for stale in registered:
        if (stale.entity, stale.message) not in wanted:
            await _remove(dataverse, stale, "no map reads this table and message any more", report, dry_run)
    return report


async def _remove(
    dataverse: DataverseApi, step: _Registered, why: str, report: RegistrationReport, dry_run: bool
) -> None:
    """Deleted rather than disabled: register-steps can make any of our steps again from the maps, and a
    disabled step a person enables again in the Plug-in Registration Tool would send every change twice
    again. Its images go with it."""
    # A second step may carry the very name of the one kept: the report names it by its id as well.
    name = step.name if step.name not in report.steps else f"{step.name} [{step.id}]"
    report.steps[name] = "delete"
    report.details[name] = why
    if not dry_run:
        await dataverse.delete("sdkmessageprocessingsteps", {"sdkmessageprocessingstepid": step.id})


def _wanted_step(plan: StepPlan) -> dict[str, Any]:
    return {
        "name": plan.name,
        "stage": STAGE_POST_OPERATION,
        "mode": MODE_ASYNCHRONOUS,
        "rank": 1,
        "supporteddeployment": 0,
        # Succeeded system jobs are deleted at once: one per change otherwise fills asyncoperation.
        "asyncautodelete": True,
        "filteringattributes": plan.filtering_attributes,
    }


_STEP_COLUMNS = list(_wanted_step(StepPlan("", "", "", "", None, None)))
_IMAGE_COLUMNS = ["name", "entityalias", "imagetype", "messagepropertyname", "attributes"]


def _differs(name: str, existing: Any, wanted: Any) -> bool:
    if name in ("filteringattributes", "attributes"):
        return _columns(existing) != _columns(wanted)
    return bool(existing != wanted)


def _wanted_image(plan: StepPlan) -> dict[str, Any] | None:
    if plan.image is None:
        return None
    image_type, alias, property_name = plan.image
    return {
        "name": alias,
        "entityalias": alias,
        "imagetype": image_type,
        "messagepropertyname": property_name,
        "attributes": plan.image_attributes,
    }


async def _register_step(
    dataverse: DataverseApi, plan: StepPlan, kept: _Registered | None, endpoint_id: str | None, *, dry_run: bool
) -> tuple[str, str]:
    """The action on the step (create, update, unchanged) and what differed."""
    wanted = _wanted_step(plan)
    if kept is None:
        if not dry_run:
            await _create_step(dataverse, plan, wanted, endpoint_id)
        return "create", ""
    changed = [k for k, v in wanted.items() if _differs(k, kept.row.get(k), v)]
    what = [f"renamed from {kept.name!r}" if k == "name" else k for k in changed]
    if changed and not dry_run:
        await dataverse.write(
            "sdkmessageprocessingsteps",
            {"sdkmessageprocessingstepid": kept.id},
            {k: wanted[k] for k in changed},
            "update",
        )
    what += await _register_images(dataverse, plan, kept.id, dry_run=dry_run)
    return ("update" if what else "unchanged"), ", ".join(what)


async def _register_images(dataverse: DataverseApi, plan: StepPlan, step_id: str, *, dry_run: bool) -> list[str]:
    """The step's image as the plan wants it: created when missing (a run that failed between the step
    and its image left none), patched where it differs, and any other image of the step deleted."""
    wanted = _wanted_image(plan)
    images = await _all(
        dataverse,
        "sdkmessageprocessingstepimages",
        filter_for_key({"_sdkmessageprocessingstepid_value": step_id}),
        ["sdkmessageprocessingstepimageid", *_IMAGE_COLUMNS],
    )
    what: list[str] = []
    kept = None
    if wanted is not None and images:
        kept = next((i for i in images if i.get("entityalias") == wanted["entityalias"]), images[0])
    for image in images:
        if image is not kept:
            what.append(f"image {image.get('entityalias')!r} deleted")
            if not dry_run:
                await dataverse.delete(
                    "sdkmessageprocessingstepimages",
                    {"sdkmessageprocessingstepimageid": image["sdkmessageprocessingstepimageid"]},
                )
    if wanted is None:
        return what
    if kept is None:
        what.append("image created")
        if not dry_run:
            await _create_image(dataverse, step_id, wanted)
        return what
    changed = [k for k, v in wanted.items() if _differs(k, kept.get(k), v)]
    if changed:
        what.append("image " + ", ".join(changed))
        if not dry_run:
            await dataverse.write(
                "sdkmessageprocessingstepimages",
                {"sdkmessageprocessingstepimageid": kept["sdkmessageprocessingstepimageid"]},
                {k: wanted[k] for k in changed},
                "update",
            )
    return what


async def _create_step(
    dataverse: DataverseApi, plan: StepPlan, wanted: dict[str, Any], endpoint_id: str | None
) -> None:
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
    image = _wanted_image(plan)
    if image is not None:
        await _create_image(dataverse, step_id, image)


async def _create_image(dataverse: DataverseApi, step_id: str | None, image: dict[str, Any]) -> None:
    await dataverse.create(
        "sdkmessageprocessingstepimages",
        {
            **image,
            "sdkmessageprocessingstepid@odata.bind": bind_reference("sdkmessageprocessingsteps", {"id": step_id}),
        },
    )


def report_text(report: RegistrationReport, *, dry_run: bool) -> str:
    verb = "would" if dry_run else "did"
    key = " (SAS key set again)" if report.key_set and report.endpoint == "unchanged" else ""
    lines = [f"service endpoint {ENDPOINT_NAME}: {report.endpoint}{key}"]
    for name, action in report.steps.items():
        detail = report.details.get(name)
        lines.append(f"step {name}: {action}" + (f" ({detail})" if detail else ""))
    lines += [f"step {name} is disabled in Dataverse: it sends nothing until it is enabled" for name in report.disabled]
    lines.append(
        f"{verb} change nothing: every step is already as the maps want it"
        if not report.changed
        else f"{'plan only (--dry-run)' if dry_run else 'registered'}"
    )
    return "\n".join(lines)
