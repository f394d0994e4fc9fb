"""Plug-in step emulation: what an asynchronous post-operation step on a Service Bus endpoint sends.

The body is written the way .NET's DataContractJsonSerializer writes a RemoteExecutionContext:
`{"key","value"}` collections, `__type` annotations on typed values, `\\/Date(ms)\\/` dates, images
without `__type` (as in Microsoft's sample), and the Claims properties beside it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from shared.jsonio import dumps

if TYPE_CHECKING:
    from sandbox.dataverse.server import DataverseSimulator, WriteEffect

CONTRACTS = "http://schemas.microsoft.com/xrm/2011/Contracts"
CLAIMS = "http://schemas.microsoft.com/xrm/2011/Claims/"
MAX_BYTES = 192 * 1024
DEFAULT_BUSINESS_UNIT = "5a0d0a55-0000-4000-8000-0000000000bb"
ORGANIZATION_ID = "5a0d0a55-0000-4000-8000-0000000000cc"


@dataclass
class Step:
    name: str
    entity: str
    message: str
    filtering_attributes: set[str] | None
    pre_image: bool
    post_image: bool
    destination: str
    id: str = ""
    # The columns the images hold, as registered on the step image; None: every column.
    image_attributes: set[str] | None = None
    # The keys the images arrive under in PreEntityImages and PostEntityImages: their entity aliases.
    pre_alias: str = "PreImage"
    post_alias: str = "PostImage"


class StepRegistry:
    def __init__(self) -> None:
        self.steps: list[Step] = []

    def add(self, step: Step) -> Step:
        step.id = step.id or str(uuid.uuid4())
        self.steps.append(step)
        return step

    def matching(self, entity: str, message: str, touched: set[str]) -> list[Step]:
        found = []
        for step in self.steps:
            if step.entity != entity or step.message != message:
                continue
            if message == "Update" and step.filtering_attributes and not (step.filtering_attributes & touched):
                continue
            found.append(step)
        return found


def ms_date(value: datetime | date) -> str:
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    millis = int(value.astimezone(UTC).timestamp() * 1000)
    return f"/Date({millis})/"


def _reference(simulator: DataverseSimulator, table: str, record_id: str) -> dict[str, Any]:
    name = None
    spec = simulator.schema.get(table)
    if spec is not None and spec.primary_name:
        row = simulator.data[table].get(record_id)
        if row is not None:
            name = row.get(spec.primary_name)
    return {
        "__type": f"EntityReference:{CONTRACTS}",
        "Id": record_id,
        "KeyAttributes": [],
        "LogicalName": table,
        "Name": name,
        "RowVersion": None,
    }


def _value(simulator: DataverseSimulator, kind: str, value: Any) -> Any:
    from sandbox.dataverse.server import LookupValue

    if value is None:
        return None
    if isinstance(value, LookupValue):
        return _reference(simulator, value.table, value.id)
    if kind == "picklist":
        return {"__type": f"OptionSetValue:{CONTRACTS}", "Value": value}
    if kind == "money":
        return {"__type": f"Money:{CONTRACTS}", "Value": value}
    if isinstance(value, datetime | date):
        return ms_date(value)
    if isinstance(value, Decimal | int | bool | str):
        return value
    return str(value)


def _attributes(
    simulator: DataverseSimulator,
    effect: WriteEffect,
    row: dict[str, Any],
    names: set[str] | None,
    *,
    with_nulls: bool = False,
) -> list[dict[str, Any]]:
    """Images leave empty columns out; Target keeps a cleared column as its key with a null value
    (Microsoft's webhook sample), which is how a flow learns a column was emptied."""
    table = effect.table
    return [
        {"key": name, "value": _value(simulator, table.columns[name].type, value)}
        for name, value in row.items()
        if (names is None or name in names) and name in table.columns and (value is not None or with_nulls)
    ]


def _entity(
    simulator: DataverseSimulator,
    effect: WriteEffect,
    row: dict[str, Any],
    names: set[str] | None,
    typed: bool,
) -> dict[str, Any]:
    entity: dict[str, Any] = {}
    if typed:
        entity["__type"] = f"Entity:{CONTRACTS}"
    entity.update(
        {
            "Attributes": _attributes(simulator, effect, row, names, with_nulls=typed and names is not None),
            "EntityState": None,
            "FormattedValues": [],
            "Id": effect.record_id,
            "KeyAttributes": [],
            "LogicalName": effect.table.logical,
            "RelatedEntities": [],
            # Real messages carry RowVersion null on Target and images alike: the version is the
            # versionnumber column, present only where a step's image registered it.
            "RowVersion": None,
        }
    )
    return entity


def _json(context: dict[str, Any]) -> bytes:
    # .NET escapes every "/" as "\/"; "/" only ever appears inside JSON strings, so this is safe.
    return dumps(context).replace("/", "\\/").encode()


def remote_execution_context(
    simulator: DataverseSimulator, step: Step, effect: WriteEffect
) -> tuple[bytes | None, dict[str, str]]:
    user = effect.user
    now = datetime.now(UTC)
    if effect.message == "Delete":
        target: dict[str, Any] = _reference(simulator, effect.table.logical, effect.record_id)
        if effect.before and effect.table.primary_name:
            target["Name"] = effect.before.get(effect.table.primary_name)
    elif effect.message == "Create":
        assert effect.after is not None
        target = _entity(simulator, effect, effect.after, None, True)
    else:
        assert effect.after is not None
        names = effect.touched | {"modifiedon", "modifiedby", effect.table.primary}
        target = _entity(simulator, effect, effect.after, names, True)

    pre = (
        [{"key": step.pre_alias, "value": _entity(simulator, effect, effect.before, step.image_attributes, False)}]
        if step.pre_image and effect.before
        else []
    )
    post = (
        [{"key": step.post_alias, "value": _entity(simulator, effect, effect.after, step.image_attributes, False)}]
        if step.post_image and effect.after
        else []
    )
    if effect.after is not None and effect.table.primary_name:
        # Dataverse adds this image to every asynchronous step: the primary name column alone.
        names = {effect.table.primary_name}
        primary_name = _entity(simulator, effect, effect.after, names, False)
        post.insert(0, {"key": "AsynchronousStepPrimaryName", "value": primary_name})
    context: dict[str, Any] = {
        "BusinessUnitId": DEFAULT_BUSINESS_UNIT,
        "CorrelationId": str(uuid.uuid4()),
        "Depth": 1,
        "InitiatingUserAzureActiveDirectoryObjectId": simulator.object_ids.get(
            user, "00000000-0000-0000-0000-000000000000"
        ),
        "InitiatingUserId": user,
        "InputParameters": [{"key": "Target", "value": target}],
        "IsExecutingOffline": False,
        "IsInTransaction": False,
        "IsOfflinePlayback": False,
        "IsolationMode": 1,
        "MessageName": effect.message,
        "Mode": 1,
        "OperationCreatedOn": f"/Date({int(now.timestamp() * 1000)}+0000)/",
        "OperationId": str(uuid.uuid4()),
        "OrganizationId": ORGANIZATION_ID,
        "OrganizationName": simulator.organization.split(".")[0],
        "OutputParameters": [{"key": "id", "value": effect.record_id}] if effect.message == "Create" else [],
        "OwningExtension": {
            "Id": step.id,
            "KeyAttributes": [],
            "LogicalName": "sdkmessageprocessingstep",
            "Name": step.name,
            "RowVersion": None,
        },
        "ParentContext": None,
        "PostEntityImages": post,
        "PreEntityImages": pre,
        "PrimaryEntityId": effect.record_id,
        "PrimaryEntityName": effect.table.logical,
        "RequestId": str(uuid.uuid4()),
        "SecondaryEntityName": "none",
        "SharedVariables": [],
        "Stage": 40,
        "UserId": user,
    }
    properties = {
        CLAIMS + "Organization": simulator.organization,
        CLAIMS + "User": user,
        CLAIMS + "InitiatingUser": user,
        CLAIMS + "EntityLogicalName": effect.table.logical,
        CLAIMS + "RequestName": effect.message,
    }
    body = _json(context)
    if len(body) > MAX_BYTES:
        # Dataverse's rule for Service Bus: drop these four, mark the message, or send nothing.
        for name in ("ParentContext", "InputParameters", "PreEntityImages", "PostEntityImages"):
            context.pop(name, None)
        body = _json(context)
        if len(body) > MAX_BYTES:
            return None, properties
        properties["MessageMaxSizeExceeded"] = "true"
    return body, properties
