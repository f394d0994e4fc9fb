"""The canonical ChangeEvent: what routers produce and flows consume (DESIGN §3)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import msgspec

from shared.host_json import max_concurrent_sessions
from shared.jsonio import TOO_DEEP_REASON, MalformedJsonError
from shared.values import TaggedValue, Value, decode_record, encode_record, to_utc, untag_record, utc_now

if TYPE_CHECKING:
    RecordOnWire = dict[str, Value]
else:
    # How msgspec reads a record off the queue: the plain values and the tagged ones of the common
    # kinds (shared.values.TaggedValue) in C, typed as they are read. The rest of the code sees the
    # record as what the untagging makes of it, a dict of normalized values.
    RecordOnWire = dict[str, str | int | bool | TaggedValue | None]


# A record id is a Guid (36 characters) and a Finance natural key a few short fields. Far longer is no
# record's, and kept it would not fit a state store's key properties (Table Storage: 32K).
MAX_KEY_CHARS = 1024


def check_key_length(key: str, error: type[Exception] = ValueError) -> None:
    """Raises `error` (what the caller parks it as) for a key longer than any record's."""
    if len(key) > MAX_KEY_CHARS:
        raise error(f"the record key is {len(key):,} characters long, over {MAX_KEY_CHARS:,}: no record has one")


# A version the state stores keep is a signed 64-bit integer (SQLite INTEGER, Table Storage Edm.Int64),
# as the sources' are: Dataverse's versionnumber is SQL's rowversion, a bigint, and Finance's
# ControlNumber an int64 (inferred: the sandbox's, like Finance's, are RecId-sized). A version outside
# 0..2**63-1 no source wrote: kept, it would fail the state write after the target was written, or
# hide every real change after it.
MAX_VERSION = 2**63 - 1


def source_version(value: object) -> int | None:
    """`value` as a version if it is a whole number a source could have written, else no version."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_VERSION:
        return value
    return None


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


class Initiator(msgspec.Struct, frozen=True, omit_defaults=True, gc=False):
    """Who caused the change: the Dataverse systemuser id and/or the Entra object id."""

    user_id: str | None = None
    aad_object_id: str | None = None


# A msgspec struct rather than a pydantic model: an event is made three times on its way (decoded,
# addressed to a flow, read off the queue) and pydantic's validation of the record and envelope cost
# 6 µs each time for what the decoders had already typed. The queue's JSON is read by msgspec against
# this shape in C, so what arrives from outside is checked as before: an unknown source or operation,
# a naive or malformed timestamp, text where a number belongs are refused.
class ChangeEvent(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One change to one source record, normalized. JSON on the queues; unknown keys are ignored."""

    event_id: str
    flow: str | None = None
    source: Source
    entity: str
    operation: Operation
    key: str
    company: str | None = None
    changed: list[str] | None = None
    record: RecordOnWire | None = None
    before: RecordOnWire | None = None
    version: int | None = None
    occurred_at: datetime = msgspec.field(default_factory=utc_now)
    initiated_by: Initiator = msgspec.field(default_factory=Initiator)
    correlation_id: str | None = None
    attempt: int = 1
    # True when the source sent only a notification (images dropped for size): the flow re-reads the row.
    notification_only: bool = False
    # True when `record` holds only the columns the change touched (an Update without a post image,
    # a Finance data event without PreImage): the flow reads the rest from the source.
    partial: bool = False
    # True when the target may hold an older row than the record's state says was written (another
    # instance's write of the record landed after the one state records): the flow writes what the
    # source holds now even where the payload hash says it is unchanged.
    rewrite: bool = False
    # Name of the source message (Create, Update, OnExternalUpdated, a business event id ...), for people.
    message: str | None = None
    # Dataverse's execution depth: 1 for a request made directly, more for what a plug-in or workflow
    # did in response to one (under the identity of the request that caused it).
    depth: int | None = None
    # A delete reconcile asks for: the target row it found orphaned, by its key, when no source
    # record (and so no state or pre image) is left to derive it from.
    target_key: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        # Made in code the fields are not type-checked; these are the ones a caller could pass in a
        # form that still reads right but compares wrong (an operation as text, a naive time).
        if type(self.source) is not Source:
            self.source = Source(self.source)
        if type(self.operation) is not Operation:
            self.operation = Operation(self.operation)
        if self.occurred_at.tzinfo is not UTC:
            self.occurred_at = to_utc(self.occurred_at)
        if type(self.key) is not str or type(self.event_id) is not str or type(self.entity) is not str:
            raise TypeError("a ChangeEvent's event_id, entity and key are text")
        check_key_length(self.key)
        if self.attempt < 1:
            # The retry delay grows from attempt 1: below it a retry would come back at once, again and again.
            raise ValueError(f"attempt is {self.attempt}: deliveries are counted from 1")

    def to_json(self) -> str:
        return _WIRE_ENCODER.encode(
            msgspec.structs.replace(self, record=encode_record(self.record), before=encode_record(self.before))
        ).decode()

    @classmethod
    def from_json(cls, data: str | bytes) -> ChangeEvent:
        """Raises ValueError for anything but a ChangeEvent."""
        return _from_wire(data)

    def replace(self, **changes: Any) -> ChangeEvent:
        """A copy with the fields given changed."""
        return msgspec.structs.replace(self, **changes)

    def for_flow(self, flow: str, key: str | None = None) -> ChangeEvent:
        """A copy addressed to one flow; the event id stays unique per flow for duplicate detection."""
        return msgspec.structs.replace(
            self, flow=flow, key=key if key is not None else self.key, event_id=derive_id(self.event_id, flow)
        )

    @property
    def session_id(self) -> str:
        """Service Bus session id: the record's bucket (see SESSION_BUCKETS)."""
        return session_of(self.key)

    def value(self, column: str) -> Value:
        """The current value of a column: the record (post image) wins over the before image."""
        if self.record is not None and column in self.record:
            return self.record[column]
        return None


class _AnyRecordEvent(ChangeEvent, kw_only=True, omit_defaults=True):
    """The event with its record read as any JSON: for the values the typed reading does not take
    (a list, a map, a float, a timestamp in another ISO form), which shared.values decodes instead."""

    record: dict[str, Any] | None = None
    before: dict[str, Any] | None = None


_WIRE_ENCODER = msgspec.json.Encoder(decimal_format="number")
# A fraction in a hand-edited replay's target key stays exact, as everywhere else.
_WIRE_DECODER = msgspec.json.Decoder(ChangeEvent, float_hook=Decimal)
_ANY_RECORD_DECODER = msgspec.json.Decoder(_AnyRecordEvent, float_hook=Decimal)
_FIELDS = ChangeEvent.__struct_fields__


def _from_wire(data: str | bytes) -> ChangeEvent:
    try:
        event = _WIRE_DECODER.decode(data)
        if untag_record(event.record) and untag_record(event.before):
            return event
    except msgspec.ValidationError:
        pass  # the record holds a value of a rarer shape, or the event is no event: read it generally
    except msgspec.DecodeError as exc:
        raise MalformedJsonError(str(exc), data) from None
    except RecursionError:
        raise ValueError(TOO_DEEP_REASON) from None
    try:
        loose = _ANY_RECORD_DECODER.decode(data)
    except msgspec.ValidationError as exc:
        raise ValueError(f"not a ChangeEvent: {exc}") from None
    except RecursionError:
        raise ValueError(TOO_DEEP_REASON) from None
    try:
        # The record's tagged values (shared.values) become typed values again.
        record, before = decode_record(loose.record), decode_record(loose.before)
    except (ArithmeticError, LookupError, TypeError, ValueError, RecursionError) as exc:  # a tagged value's shape
        raise ValueError(f"a record value of the wrong shape: {type(exc).__name__}: {exc}") from None
    fields = {name: getattr(loose, name) for name in _FIELDS}
    return ChangeEvent(**{**fields, "record": record, "before": before})


# A flow queue's sessions. Per-record order and one writer per record need only that all of a record's
# messages share a session, not a session each. The Functions host keeps a session it accepted for
# sessionIdleTimeout after its last message before its slot takes another: with a session per record
# a backlog of distinct records moved one record per slot per idle timeout (8 slots and 5 s: 1.6
# records/s, measured on the local host that models it). In buckets a slot drains its bucket's backlog
# back to back and waits once at the end. There are as many buckets as host.json's
# maxConcurrentSessions, so one instance holds every bucket of a flow at once: fewer buckets cap a
# flow's rows in flight below what Dataverse's limits allow a bulk write (32 buckets: 0.22 of the
# service-protection ceiling in an initial sync, docs/benchmarks.md), more leave buckets waiting
# behind sessions the host holds idle. Changing the number while flow queues hold messages lets a
# record's old and new messages run side by side; drain the queues first (pause the routers).
SESSION_BUCKETS = max_concurrent_sessions()


def use_session_buckets(count: int) -> int:
    """Buckets as a host.json of `count` sessions gives them (the sandbox models such a host); returns
    the number before."""
    global SESSION_BUCKETS
    if count < 1:
        raise ValueError(f"{count} session buckets: a flow queue needs at least one")
    before, SESSION_BUCKETS = SESSION_BUCKETS, count
    return before


def session_of(key: str) -> str:
    bucket = int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") % SESSION_BUCKETS
    return f"records-{bucket:02d}"


def derive_id(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def payload_hash(payload: dict[str, Any]) -> str:
    """Stable hash of a target payload, for the unchanged-payload guard.

    The payload's canonical JSON (keys sorted, compact) is written by msgspec in C; json.dumps with
    sorted keys was 6% of the functions' CPU per record end to end. A hash stored by a version that
    used json.dumps differs once: that record's next unchanged event is written again instead of
    skipped, which the target takes as the same write."""
    return hashlib.sha256(_CANONICAL.encode(payload)).hexdigest()


_CANONICAL = msgspec.json.Encoder(order="sorted", decimal_format="number", enc_hook=str)
