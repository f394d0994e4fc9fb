"""The canonical ChangeEvent: what routers produce and flows consume (DESIGN §3)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

from shared.jsonio import loads
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

    @field_serializer("record", "before", when_used="json")
    def _encode_values(self, value: dict[str, Value] | None) -> dict[str, Any] | None:
        return encode_record(value)

    def to_json(self) -> str:
        return self.model_dump_json(exclude_none=True)

    @classmethod
    def from_json(cls, data: str | bytes) -> ChangeEvent:
        """Raises ValueError (a pydantic ValidationError is one) for anything but a ChangeEvent."""
        # Parsed by msgspec and validated as Python data: a fifth cheaper than pydantic's own JSON
        # mode, which builds every tagged value's dict before the record validator rebuilds it.
        parsed = loads(data)
        if not isinstance(parsed, dict):
            raise ValueError(f"a ChangeEvent is a JSON object, not {type(parsed).__name__}")
        try:
            return cls.model_validate(parsed)
        except (ArithmeticError, LookupError, TypeError) as exc:  # a tagged value of the wrong shape
            raise ValueError(f"a record value of the wrong shape: {type(exc).__name__}: {exc}") from None

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


def derive_id(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def payload_hash(payload: dict[str, Any]) -> str:
    """Stable hash of a target payload, for the unchanged-payload guard."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
