"""The canonical ChangeEvent: what routers produce and flows consume (DESIGN §3)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

import msgspec
from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.jsonio import MalformedJsonError
from shared.values import Value, decode_record, encode_record, to_utc, utc_now


class Source(StrEnum):
    DATAVERSE = "dataverse"
    FINANCE = "finance"
    INITIAL_SYNC = "initial-sync"
    REPLAY = "replay"
    RECONCILE = "reconcile"


class Operation(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    UPSERT = "upsert"


class Initiator(BaseModel):
    """Who caused the change: the Dataverse systemuser id and/or the Entra object id."""

    model_config = ConfigDict(frozen=True)

    user_id: str | None = None
    aad_object_id: str | None = None


class ChangeEvent(BaseModel):
    """One change to one source record, normalized. JSON on the queues; unknown keys are ignored."""

    model_config = ConfigDict(extra="ignore", arbitrary_types_allowed=True)

    event_id: str
    flow: str | None = None
    source: Source
    entity: str
    operation: Operation
    key: str
    company: str | None = None
    changed: list[str] | None = None
    record: dict[str, Value] | None = None
    before: dict[str, Value] | None = None
    version: int | None = None
    occurred_at: datetime = Field(default_factory=utc_now)
    initiated_by: Initiator = Field(default_factory=Initiator)
    correlation_id: str | None = None
    attempt: int = 1
    # True when the source sent only a notification (images dropped for size): the flow re-reads the row.
    notification_only: bool = False
    # True when `record` holds only the columns the change touched (an Update without a post image,
    # a Finance data event without PreImage): the flow reads the rest from the source.
    partial: bool = False
    # Name of the source message (Create, Update, OnExternalUpdated, a business event id ...), for people.
    message: str | None = None
    # A delete reconcile asks for: the target row it found orphaned, by its key, when no source
    # record (and so no state or pre image) is left to derive it from.
    target_key: dict[str, Any] | None = None

    @field_validator("occurred_at")
    @classmethod
    def _aware_utc(cls, value: datetime) -> datetime:
        return to_utc(value)

    @field_validator("record", "before", mode="before")
    @classmethod
    def _decode_values(cls, value: Any) -> Any:
        # Values built in code pass through unchanged; tagged JSON forms become typed values again.
        return decode_record(value) if isinstance(value, dict) else value

    def to_json(self) -> str:
        return _WIRE_ENCODER.encode(_to_wire(self)).decode()

    @classmethod
    def from_json(cls, data: str | bytes) -> ChangeEvent:
        """Raises ValueError for anything but a ChangeEvent."""
        return _from_wire(cls, data)

    def for_flow(self, flow: str, key: str | None = None) -> ChangeEvent:
        """A copy addressed to one flow; the event id stays unique per flow for duplicate detection."""
        return self.model_copy(
            update={
                "flow": flow,
                "key": key if key is not None else self.key,
                "event_id": derive_id(self.event_id, flow),
            }
        )

    @property
    def session_id(self) -> str:
        """Service Bus session id: per-record FIFO. Session ids are limited to 128 characters."""
        return self.key if len(self.key) <= 128 else derive_id(self.key)

    def value(self, column: str) -> Value:
        """The current value of a column: the record (post image) wins over the before image."""
        if self.record is not None and column in self.record:
            return self.record[column]
        return None


# The event on the flow queues, written and read by msgspec against its shape. Through pydantic's JSON
# mode the hop cost 34 µs of an msdyn_actual's engine time (the envelope field by field, the record
# through a Python callback); here the envelope's types are checked in C (an unknown source or
# operation, a malformed timestamp, text where a number belongs are refused as before), the record's
# tagged values are rebuilt in one pass (shared.values), and pydantic validates the typed result as
# Python data. The text is pydantic's, less the fields at their defaults, which readers fill in.
class _WireInitiator(msgspec.Struct, omit_defaults=True, gc=False):
    user_id: str | None = None
    aad_object_id: str | None = None


class _WireEvent(msgspec.Struct, omit_defaults=True, gc=False):
    event_id: str
    source: Source
    entity: str
    operation: Operation
    key: str
    flow: str | None = None
    company: str | None = None
    changed: list[str] | None = None
    record: dict[str, Any] | None = None
    before: dict[str, Any] | None = None
    version: int | None = None
    occurred_at: datetime | None = None
    initiated_by: _WireInitiator | None = None
    correlation_id: str | None = None
    attempt: int = 1
    notification_only: bool = False
    partial: bool = False
    message: str | None = None
    target_key: dict[str, Any] | None = None


# A field added to the event and not here would be dropped on every hop without a word.
if set(_WireEvent.__struct_fields__) != set(ChangeEvent.model_fields):
    raise RuntimeError("the queue's wire shape (_WireEvent) does not name the ChangeEvent's fields")

_WIRE_ENCODER = msgspec.json.Encoder(decimal_format="number")
# A fraction in a hand-edited replay's target key stays exact, as everywhere else.
_WIRE_DECODER = msgspec.json.Decoder(_WireEvent, float_hook=Decimal)
_ENVELOPE = tuple(name for name in _WireEvent.__struct_fields__ if name not in ("record", "before", "initiated_by"))


def _to_wire(event: ChangeEvent) -> _WireEvent:
    initiator = event.initiated_by
    return _WireEvent(
        **{name: getattr(event, name) for name in _ENVELOPE},
        record=encode_record(event.record),
        before=encode_record(event.before),
        initiated_by=_WireInitiator(initiator.user_id, initiator.aad_object_id),
    )


def _from_wire(cls: type[ChangeEvent], data: str | bytes) -> ChangeEvent:
    try:
        wire = _WIRE_DECODER.decode(data)
    except msgspec.ValidationError as exc:
        raise ValueError(f"not a ChangeEvent: {exc}") from None
    except msgspec.DecodeError as exc:
        raise MalformedJsonError(str(exc), data) from None
    try:
        record, before = decode_record(wire.record), decode_record(wire.before)
    except (ArithmeticError, LookupError, TypeError) as exc:  # a tagged value of the wrong shape
        raise ValueError(f"a record value of the wrong shape: {type(exc).__name__}: {exc}") from None
    fields = {name: getattr(wire, name) for name in _ENVELOPE}
    if wire.occurred_at is None:
        del fields["occurred_at"]  # the default: now
    if wire.initiated_by is not None:
        fields["initiated_by"] = {
            "user_id": wire.initiated_by.user_id,
            "aad_object_id": wire.initiated_by.aad_object_id,
        }
    # Validated again as Python data, already typed (pydantic's model_construct cost more in Python).
    return cls.model_validate({**fields, "record": record, "before": before})


def derive_id(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def payload_hash(payload: dict[str, Any]) -> str:
    """Stable hash of a target payload, for the unchanged-payload guard."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
