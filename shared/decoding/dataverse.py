"""Dataverse RemoteExecutionContext JSON → ChangeEvent (formats.md §1).

The body is what an asynchronous post-operation step sends to Service Bus, or a webhook receives:
.NET DataContractJsonSerializer output, with collections as `{"key","value"}` arrays, `__type`
annotations and `/Date(ms)/` dates. Unknown keys are ignored; nothing here does I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import Any, Literal

import msgspec

from shared.decoding.context import RemoteExecutionContext, created_on, lower_id
from shared.decoding.images import holds_every_column
from shared.decoding.lazy_context import (
    LazyPairs,
    NotStandardShape,
    RawPairs,
    RawValues,
    raw_values,
    read_context,
    read_pairs,
)
from shared.decoding.typed_values import decode_values
from shared.errors import DecodeError
from shared.events import ChangeEvent, Initiator, Operation, Source, check_key_length, derive_id, source_version
from shared.jsonio import (
    MAX_MESSAGE_BYTES,
    MalformedJsonError,
    UntrustedJsonError,
    bounded_decimal,
    decode_fragment,
    loads_untrusted,
)
from shared.values import MS_DATE_CHARS, Ref, Value, short_ms_date_or_text, utc_now

CLAIMS = "http://schemas.microsoft.com/xrm/2011/Claims/"
SIZE_EXCEEDED = "MessageMaxSizeExceeded"
WEBHOOK_SIZE_EXCEEDED = "x-ms-dynamics-msg-size-exceeded"

# Columns every write touches; an Update that changed only these changed nothing a map reads.
SYSTEM_COLUMNS = frozenset(
    {
        "modifiedon",
        "modifiedby",
        "modifiedonbehalfby",
        "versionnumber",
        "timezoneruleversionnumber",
        "utcconversiontimezonecode",
        "overriddencreatedon",
        "importsequencenumber",
    }
)

_OPERATIONS = {
    "create": Operation.CREATE,
    "update": Operation.UPDATE,
    "delete": Operation.DELETE,
    "onexternalcreated": Operation.CREATE,
    "onexternalupdated": Operation.UPDATE,
    "onexternaldeleted": Operation.DELETE,
}


@dataclass(frozen=True)
class IncomingMessage:
    """A raw message, whatever carried it: Service Bus properties or webhook headers."""

    body: bytes
    content_type: str | None
    properties: Mapping[str, str] = field(default_factory=dict)
    message_id: str | None = None
    transport: Literal["servicebus", "webhook"] = "servicebus"

    @cached_property
    def _folded(self) -> dict[str, str]:
        # Names lower-cased once a message (a decode asks three times); the first of two spellings wins.
        return {key.lower(): value for key, value in reversed(list(self.properties.items()))}

    def property(self, name: str) -> str | None:
        return self._folded.get(name.lower())

    @cached_property
    def _names(self) -> str:
        # Every folded name in one text: a search of it is one call, not one per property.
        return "\n".join(self._folded)

    def has_property_containing(self, fragment: str) -> bool:
        wanted = fragment.lower()
        return "\n" not in wanted and wanted in self._names


def _type_name(value: Mapping[str, Any]) -> str | None:
    annotation = value.get("__type")
    if not isinstance(annotation, str):
        return None
    return annotation.split(":", 1)[0]


def _pairs(items: Any) -> dict[str, Any]:
    """A DataContract collection: an array of {"key","value"} (a plain object is tolerated)."""
    if items is None:
        return {}
    items = read_pairs(items)
    if type(items) is RawPairs:
        return {pair.key: pair.value for pair in items}
    if isinstance(items, dict):
        return dict(items)
    if not isinstance(items, list):
        raise TypeError(f"a collection is a JSON {type(items).__name__}, not a list of key/value pairs")
    result: dict[str, Any] = {}
    for item in items:
        if isinstance(item, dict) and "key" in item:
            result[str(item["key"])] = item.get("value")
    return result


def _is_entity(value: Mapping[str, Any]) -> bool:
    return "Attributes" in value and "LogicalName" in value


Columns = frozenset[str] | None  # the columns to keep; None: all of them


# How deep a value may nest (a party list's entities, a collection inside): real ones reach three or
# four. Past it the record could not even be written onto a queue (its encoder recurses per level).
MAX_VALUE_DEPTH = 16


def normalize_entity(value: Mapping[str, Any], columns: Columns = None, depth: int = 0) -> dict[str, Value]:
    return normalize_attributes(value.get("Attributes"), columns, depth)


def normalize_attributes(attributes: Any, columns: Columns = None, depth: int = 0) -> dict[str, Value]:
    attributes = read_pairs(attributes)
    if type(attributes) is RawPairs:
        attributes = raw_values([attributes], columns)
    if type(attributes) is RawValues:
        if not attributes:
            return {}
        typed = decode_values(list(attributes.values()))
        if typed is not None:
            return dict(zip(attributes, typed, strict=True))
        # The kept raw values, parsed in one call rather than one call each.
        decoded = decode_fragment(b"[" + b",".join(attributes.values()) + b"]")
        return {name: normalize_value(raw, depth) for name, raw in zip(attributes, decoded, strict=True)}
    pairs = _pairs(attributes)
    if columns is not None:
        pairs = {name: raw for name, raw in pairs.items() if name in columns}
    return {name: normalize_value(raw, depth) for name, raw in pairs.items()}


def normalize_value(raw: Any, depth: int = 0) -> Value:
    """One attribute value: `__type` dispatch, dates, and plain JSON values."""
    if depth > MAX_VALUE_DEPTH:
        raise UntrustedJsonError(f"a value nested over {MAX_VALUE_DEPTH} levels deep")
    kind_of = type(raw)
    if kind_of is msgspec.Raw:
        raw = decode_fragment(raw)
        kind_of = type(raw)
    if kind_of is str:
        return short_ms_date_or_text(raw) if raw.startswith("/Date(") and len(raw) <= MS_DATE_CHARS else raw
    if raw is None or kind_of in (bool, int, Decimal):
        return raw
    if kind_of is float:
        return Decimal(str(raw))
    if kind_of is list:
        return [normalize_value(item, depth + 1) for item in raw]
    if kind_of is not dict:
        return None
    annotation = raw.get("__type")
    kind = annotation.split(":", 1)[0] if isinstance(annotation, str) else None
    if kind == "EntityReference" or (kind is None and {"Id", "LogicalName"} <= raw.keys() and "Attributes" not in raw):
        return Ref(str(raw.get("LogicalName") or ""), str(raw.get("Id") or "").lower(), raw.get("Name"))
    if kind == "OptionSetValue":
        return int(raw["Value"]) if raw.get("Value") is not None else None
    if kind == "Money":
        value = raw.get("Value")
        return None if value is None else bounded_decimal(str(value))
    if kind == "EntityCollection":
        entities = raw.get("Entities") or []
        return [normalize_entity(entity, None, depth + 1) for entity in entities if isinstance(entity, dict)]
    if kind == "OptionSetValueCollection":
        return [
            int(item["Value"]) if isinstance(item, dict) else int(item)
            for item in raw.get("Values") or raw.get("Value") or []
        ]
    if kind == "Entity" or _is_entity(raw):
        return normalize_entity(raw, None, depth + 1)
    if "Value" in raw:
        return normalize_value(raw["Value"], depth + 1)
    # An unknown shape: keep nothing rather than a structure no map can read.
    return None


def _refused(exc: UntrustedJsonError) -> DecodeError:
    return DecodeError(f"the body is not a message either system sends: {exc}")


def _parse_json(body: bytes) -> Any:
    try:
        return loads_untrusted(body)
    except MalformedJsonError as exc:
        raise DecodeError(f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except UnicodeDecodeError as exc:
        raise DecodeError(f"the body is not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    except UntrustedJsonError as exc:
        raise _refused(exc) from None


# What malformed values raise in the normalizers: a wrong type where a list, object, number or date
# belongs. Raised inside a decoder they describe the input, not a bug, and become its DecodeError.
MALFORMED = (ValueError, TypeError, KeyError, AttributeError, ArithmeticError, IndexError, RecursionError)


def malformed(what: str, exc: BaseException) -> DecodeError:
    return DecodeError(f"{what} has a value of the wrong shape: {type(exc).__name__}: {exc}")


def check_content_type(content_type: str | None, body: bytes) -> None:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == "application/msbin1":
        raise DecodeError(
            "the body is .NET binary XML (application/msbin1), which cannot be read outside .NET: set the "
            "Dataverse service endpoint's message format to JSON (messageformat = 2)"
        )
    if media in ("application/xml", "text/xml") or body.lstrip()[:1] == b"<":
        raise DecodeError(
            "the body is XML: set the Dataverse service endpoint's message format to JSON (messageformat = 2)"
        )
    if media and media not in ("application/json", "text/json", "text/plain"):
        raise DecodeError(f"unexpected content type {content_type!r}: expected application/json")


def parse_remote_execution_context(body: bytes) -> RemoteExecutionContext:
    try:
        # msgspec refuses a lone surrogate anywhere it decodes; the generic parser then names it.
        if len(body) <= MAX_MESSAGE_BYTES:
            return read_context(body)
    except NotStandardShape:
        pass
    except UntrustedJsonError as exc:
        raise _refused(exc) from None
    except MALFORMED as exc:
        raise malformed("the RemoteExecutionContext", exc) from None
    data = _parse_json(body)
    try:
        return context_from_json(data)
    except MALFORMED as exc:
        raise malformed("the RemoteExecutionContext", exc) from None


def context_from_json(data: Any) -> RemoteExecutionContext:
    if not isinstance(data, dict) or "MessageName" not in data:
        raise DecodeError("not a RemoteExecutionContext: the JSON object has no MessageName")
    primary_id = data.get("PrimaryEntityId")
    return RemoteExecutionContext(
        message_name=str(data["MessageName"]),
        primary_entity_name=str(data.get("PrimaryEntityName") or "").lower(),
        primary_entity_id=str(primary_id).lower() if primary_id else None,
        input_parameters=_pairs(data["InputParameters"]) if "InputParameters" in data else None,
        output_parameters=_pairs(data.get("OutputParameters")),
        pre_images=_pairs(data.get("PreEntityImages")),
        post_images=_pairs(data.get("PostEntityImages")),
        initiating_user_id=lower_id(data.get("InitiatingUserId")),
        initiating_aad_object_id=lower_id(data.get("InitiatingUserAzureActiveDirectoryObjectId")),
        correlation_id=lower_id(data.get("CorrelationId")),
        operation_id=lower_id(data.get("OperationId")),
        operation_created_on=created_on(data.get("OperationCreatedOn")),
        depth=data.get("Depth") if isinstance(data.get("Depth"), int) else None,
    )


def _images(images: dict[str, Any], columns: Columns = None) -> dict[str, Value] | None:
    """Every image of one kind, merged: a step can register several, and Dataverse adds its own
    `AsynchronousStepPrimaryName` image (the primary name only) to asynchronous steps, so the first
    image alone may hold none of the columns the step registered."""
    merged: dict[str, Value] | None = None
    for image in images.values():
        if isinstance(image, dict):
            # In place: a message of many images would otherwise copy the merge so far once per image.
            merged = merged if merged is not None else {}
            merged.update(normalize_entity(image, columns))
    return merged


def _merged_attributes(entities: list[dict[str, Any]], columns: Columns) -> Any:
    """The entities' attributes as one collection, later ones winning; raw values stay raw."""
    collections = [read_pairs(entity.get("Attributes")) for entity in entities]
    if all(type(collection) is RawPairs for collection in collections):
        return raw_values(collections, columns)
    if len(collections) == 1:
        return collections[0]
    combined: dict[str, Any] = {}
    for collection in collections:
        combined.update(_pairs(collection))
    return combined


def _changed_columns(target: dict[str, Any], primary: str) -> list[str]:
    attributes = target.get("Attributes")
    names = attributes.names() if type(attributes) is LazyPairs else None
    if names is None:
        names = list(_pairs(attributes))
    return sorted({n for n in names if n.lower() not in SYSTEM_COLUMNS and n.lower() != primary})


def _version(target: Any, record: Mapping[str, Value] | None) -> int | None:
    version: int | None = None
    if isinstance(target, dict) and target.get("RowVersion") not in (None, ""):
        try:
            version = int(str(target["RowVersion"]))
        except ValueError:
            version = None
    if version is None and record and isinstance(record.get("versionnumber"), int):
        version = int(str(record["versionnumber"]))
    return source_version(version)  # versionnumber is SQL's rowversion, a bigint


# A synchronous step runs in no system job: its OperationId is the empty Guid, or absent.
_NO_OPERATION = frozenset({"", "00000000-0000-0000-0000-000000000000"})


def _event_id(context: RemoteExecutionContext, key: str, target: Any, content: bytes | None) -> str:
    """What a redelivery of the change repeats and another change does not: the system job it ran
    in, or without one the message itself (its hash, else its time, version and correlation). The
    flow queues drop a message id they saw in the last ten minutes, so two changes of one record
    under one id would lose the second."""
    operation = context.operation_id or ""
    if operation not in _NO_OPERATION:
        return derive_id(operation, context.message_name, key)
    if content is not None:
        digest = hashlib.sha256(content).hexdigest()
    else:
        created = context.operation_created_on.isoformat() if context.operation_created_on else ""
        version = _version(target, None)
        digest = derive_id(created, "" if version is None else str(version), context.correlation_id or "")
    return derive_id("", context.message_name, key, digest)


def event_from_context(
    context: RemoteExecutionContext,
    *,
    size_exceeded: bool = False,
    correlation_id: str | None = None,
    columns: Columns = None,
    content: bytes | None = None,
) -> ChangeEvent:
    """The change as an event; with `columns`, the record and before image keep only those.
    `content` is the message the context came in, the event's identity when no system job names it."""
    message = context.message_name
    operation = _OPERATIONS.get(message.lower(), Operation.UPDATE)
    params = context.input_parameters
    target = params.get("Target") if params else None
    key = context.primary_entity_id
    if not key and operation is Operation.CREATE:
        created_id = context.output_parameters.get("id")
        key = str(created_id).lower() if created_id else None
    if not key and isinstance(target, dict) and target.get("Id"):
        key = str(target["Id"]).lower()
    if not key:
        raise DecodeError("RemoteExecutionContext has no PrimaryEntityId")
    check_key_length(key, DecodeError)

    base: dict[str, Any] = {
        "event_id": _event_id(context, key, target, content),
        "source": Source.DATAVERSE,
        "entity": context.primary_entity_name,
        "operation": operation,
        "key": key,
        "occurred_at": context.operation_created_on or utc_now(),
        "initiated_by": Initiator(user_id=context.initiating_user_id, aad_object_id=context.initiating_aad_object_id),
        "correlation_id": correlation_id or context.correlation_id,
        "message": message,
        "depth": context.depth,
    }
    if size_exceeded or not params:
        # Dataverse dropped InputParameters and the images to fit the message: re-read by id. The
        # property saying so does not survive a message saved to a file, and the parameters may come
        # back as an empty collection rather than absent, so their absence alone is enough.
        return ChangeEvent(**base, notification_only=True)

    before = _images(context.pre_images, columns)
    if operation is Operation.DELETE:
        return ChangeEvent(**base, before=before, version=_version(target, before))

    if not isinstance(target, dict):
        raise DecodeError("RemoteExecutionContext has no Target in InputParameters")
    images = [image for image in context.post_images.values() if isinstance(image, dict)]
    # Beside the image register-steps registers, Target adds nothing a flow reads (images.py). Beside
    # any other image Target's values win, as they would merged: each kept column is decoded once,
    # from the side whose value the record keeps.
    complete = holds_every_column(context.post_images, columns)
    entities = [*images, target] if _is_entity(target) and not complete else images
    record = normalize_attributes(_merged_attributes(entities, columns), columns)
    if complete and operation is Operation.UPDATE and columns is not None:
        # The image lists every kept column and leaves out only the empty ones: a column it lacks is
        # empty, said so here, where the flow would otherwise read the whole row again to find out.
        primary = f"{context.primary_entity_name}id"
        record.update(dict.fromkeys(column for column in columns - record.keys() if column != primary))
    post = record if images else None
    changed = None
    if operation is Operation.UPDATE:
        # Every column the change touched, kept or not: a person reading the event sees the whole change.
        changed = _changed_columns(target, f"{context.primary_entity_name}id") if _is_entity(target) else []
    partial = operation is Operation.UPDATE and post is None
    return ChangeEvent(
        **base,
        record=record,
        before=before,
        changed=changed,
        partial=partial,
        version=_version(target, record),
    )


def decode_dataverse(message: IncomingMessage, columns_for: Callable[[str], Columns] | None = None) -> ChangeEvent:
    """Decode one Dataverse message; raises DecodeError with a reason a person can act on.

    `columns_for` names, per table, the columns the flows read: only those are decoded and kept."""
    check_content_type(message.content_type, message.body)
    context = parse_remote_execution_context(message.body)
    size_exceeded = message.has_property_containing(SIZE_EXCEEDED) or bool(message.property(WEBHOOK_SIZE_EXCEEDED))
    try:
        return event_from_context(
            context,
            size_exceeded=size_exceeded,
            correlation_id=lower_id(message.property("x-ms-correlation-request-id")),
            columns=columns_for(context.primary_entity_name) if columns_for else None,
            content=message.body,
        )
    except UntrustedJsonError as exc:
        raise _refused(exc) from None
    except MALFORMED as exc:
        raise malformed("the RemoteExecutionContext", exc) from None
