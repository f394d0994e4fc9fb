"""Normalized field values and their lossless JSON form.

A ChangeEvent travels through Service Bus as JSON, yet a flow must see `Decimal` amounts and aware
UTC datetimes exactly as the router decoded them. Plain JSON would turn both into strings or binary
floats, so typed values are written as one-key tagged objects and read back into their types.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

import msgspec

# A value inside a normalized record.
Value = Any


class Ref(msgspec.Struct, frozen=True, gc=False):
    """A Dataverse EntityReference, normalized: table logical name, id, display name. A msgspec
    struct rather than a frozen dataclass: a row holds many and each dataclass cost 0.5 µs to make
    (every field set through object.__setattr__), a tenth of the decode of a whole row's values."""

    logical_name: str
    id: str
    name: str | None = None


_DATE_RE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
FINANCE_EMPTY_DATE = date(1900, 1, 1)


@lru_cache(maxsize=4096)
def parse_ms_date(text: str) -> datetime | None:
    """Parse the .NET JSON date form `/Date(ms)/` or `/Date(ms+hhmm)/` into an aware UTC datetime.

    The number is milliseconds since the epoch in UTC; the optional offset only says the value was a
    local-kind DateTime, so it does not shift the instant. Finance's empty date (1900-01-01) is None.
    Cached: a backlog repeats its dates (a day's transactions), and the regex and arithmetic cost
    more than the lookup.
    """
    match = _DATE_RE.match(text) if len(text) <= MS_DATE_CHARS else None
    if match is None:
        raise ValueError(f"not a /Date(ms)/ value: {text[:60]!r}")
    try:
        instant = _EPOCH + timedelta(milliseconds=int(match.group(1)))
    except OverflowError:
        raise ValueError(f"{text!r} is outside the calendar (years 1 to 9999)") from None
    if instant.date() == FINANCE_EMPTY_DATE:
        return None
    offset = match.group(2)
    if offset is not None:
        # The empty date of a local-kind DateTime is 1900-01-01 on its own clock: east of UTC that
        # instant falls on 1899-12-31 in UTC.
        minutes = int(offset[1:3]) * 60 + int(offset[3:])
        shift = timedelta(minutes=-minutes if offset[0] == "-" else minutes)
        if instant.year == 1899 and (instant + shift).date() == FINANCE_EMPTY_DATE:
            return None
    return instant


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The longest /Date(ms+hhmm)/ a DateTime can give (ms of year 9999 have 15 digits); longer text is
# not a date, and is neither parsed nor kept in the caches.
MS_DATE_CHARS = len("/Date(-999999999999999+0000)/")


def is_ms_date(value: object) -> bool:
    return isinstance(value, str) and _DATE_RE.match(value) is not None


@lru_cache(maxsize=4096)
def short_ms_date_or_text(text: str) -> Value:
    """ms_date_or_text for text of at most MS_DATE_CHARS characters, which the caller has tested: the
    decoders' hot path, one cached call where testing and then parsing matched the pattern twice."""
    if len(text) > MS_DATE_CHARS or _DATE_RE.match(text) is None:
        return text
    try:
        return parse_ms_date(text)
    except ValueError:
        return text  # outside the calendar: no DateTime column holds it, so it is a text column's text


def ms_date_or_text(text: str) -> Value:
    """A column's text as its date when it is a `/Date(ms)/` value, else the text. Only text short
    enough to be a date reaches the cache: a text column can hold 1 MB that starts like one."""
    return text if len(text) > MS_DATE_CHARS else short_ms_date_or_text(text)


def user_local_day(value: Value) -> Value:
    """The day a person picked in a Dataverse column of DateOnly format and UserLocal behaviour.

    Such a column holds the picked day's midnight in the picking user's time zone, as UTC (Behavior
    and format of the date and time column), so east of UTC it falls after noon on the day before.
    The value does not say the zone: a time after noon UTC is read as a midnight east of UTC and moves
    to the next day, any other as a midnight at or west of UTC and keeps its day. That is the picked
    day for every zone from UTC-12 to UTC+11:45, and keeps a value written at midnight or noon UTC on
    its day. At UTC+12 and beyond (New Zealand, Fiji, Tonga, Kiribati) it stays the UTC day, one day
    early (inferred: telling those from noon UTC needs the user's zone, which the row does not hold).
    Anything but a date and time is left to the field's conversion."""
    if isinstance(value, str) and len(value) > 10:
        try:
            value = parse_iso_datetime(value)
        except ValueError:
            return value  # the date conversion names what it cannot read
    if not isinstance(value, datetime):
        return value
    return _picked_day(value if value.tzinfo is UTC else value.astimezone(UTC))


@lru_cache(maxsize=4096)
def _picked_day(utc: datetime) -> date:
    # Cached as the decoders' dates are: a backlog repeats its days, and the datetime arithmetic cost
    # 0.4 µs a column.
    if utc.time() > _NOON and utc.date() < date.max:
        return (utc + timedelta(hours=12)).date()
    return utc.date()


_NOON = time(12)
# A map's note on a pair read by user_local_day where the live schema does not show the column.
LOCAL_DAY_INFERRED = "read as DateOnly/UserLocal (inferred: its table is not in the live schema)"


def parse_iso_datetime(text: str) -> datetime | None:
    """Parse an ISO 8601 timestamp into aware UTC; naive values are taken as UTC (both APIs send UTC)."""
    cleaned = text.strip()
    if cleaned.endswith("Z"):
        cleaned = cleaned[:-1] + "+00:00"
    # Finance sends seven fractional digits; Python accepts at most six.
    cleaned = re.sub(r"(\.\d{6})\d+", r"\1", cleaned)
    parsed = datetime.fromisoformat(cleaned)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    # Finance's empty date is its own calendar day, whatever offset the text gives it: tested before
    # the conversion (1900-01-01T00:00+01:00 is 1899-12-31 in UTC) and after it.
    if parsed.date() == FINANCE_EMPTY_DATE:
        return None
    parsed = to_utc(parsed)
    if parsed.date() == FINANCE_EMPTY_DATE:
        return None
    return parsed


def parse_since(text: str) -> datetime:
    """An operator's `since`: an ISO 8601 date or date and time (UTC unless it says otherwise)."""
    try:
        parsed = parse_iso_datetime(text)
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValueError(
            f"since must be an ISO date or date and time such as 2026-11-01 or 2026-11-01T08:00Z, not {text!r}"
        )
    return parsed


def to_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime: every datetime in projops-sync is timezone-aware UTC")
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:30-01:00 is in year 10000 in UTC
        raise ValueError(f"{value.isoformat()} is outside the calendar in UTC") from None


def _encode_decimal(value: Decimal) -> Any:
    return {"$decimal": str(value)}


@lru_cache(maxsize=4096)
def _datetime_text(value: datetime) -> str:
    return to_utc(value).isoformat()


def _encode_datetime(value: datetime) -> Any:
    # A backlog repeats its instants (a day's dates, a run's timestamps): formatted once each.
    return {"$datetime": _datetime_text(value)}


def _encode_date(value: date) -> Any:
    return {"$date": value.isoformat()}


def _encode_ref(value: Ref) -> Any:
    return {"$ref": {"logical_name": value.logical_name, "id": value.id, "name": value.name}}


def _encode_list(value: list[Value] | tuple[Value, ...]) -> Any:
    return [encode_value(item) for item in value]


def _encode_map(value: dict[Any, Value]) -> Any:
    return {"$map": {str(k): encode_value(v) for k, v in value.items()}}


def _plain(value: Any) -> Any:
    return value


# One lookup by exact type per value: a chain of isinstance checks cost more than the encoding itself.
_ENCODERS: dict[type, Any] = {
    type(None): _plain,
    bool: _plain,
    int: _plain,
    str: _plain,
    Decimal: _encode_decimal,
    datetime: _encode_datetime,
    date: _encode_date,
    Ref: _encode_ref,
    list: _encode_list,
    tuple: _encode_list,
    dict: _encode_map,
}


def encode_value(value: Value) -> Any:
    """Turn a normalized value into JSON-safe data without losing its type."""
    encoder = _ENCODERS.get(type(value))
    if encoder is not None:
        return encoder(value)
    if isinstance(value, float):
        # Floats never enter a record (decoders parse numbers as Decimal); refuse rather than round.
        raise TypeError(f"binary float {value!r} in a record: money and quantities must be Decimal")
    # A subclass (an IntEnum, a StrEnum, a datetime subclass) is encoded as its nearest listed base.
    for base in type(value).__mro__[1:]:
        if base in _ENCODERS:
            return _ENCODERS[base](value)
    raise TypeError(f"cannot encode {type(value).__name__} in a ChangeEvent record")


def _decode_ref(inner: Any) -> Ref:
    return Ref(logical_name=inner["logical_name"], id=inner["id"], name=inner.get("name"))


@lru_cache(maxsize=4096)
def _decode_datetime(text: str) -> datetime:
    return _queued_utc(datetime.fromisoformat(text))


def _queued_utc(parsed: datetime) -> datetime:
    if parsed.tzinfo is None:
        # Written by hand into a replay: the integration's times are UTC, never the reading machine's.
        return parsed.replace(tzinfo=UTC)
    return to_utc(parsed)


_DECODERS: dict[str, Any] = {
    "$decimal": Decimal,
    "$datetime": _decode_datetime,
    "$date": date.fromisoformat,
    "$ref": _decode_ref,
    "$map": lambda inner: {k: decode_value(v) for k, v in inner.items()},
}


def decode_value(data: Any) -> Value:
    """Inverse of encode_value."""
    kind = type(data)
    if kind is str or kind is int or kind is bool or data is None:
        return data
    if kind is list:
        return [decode_value(item) for item in data]
    if kind is float:
        return Decimal(str(data))
    if kind is not dict:
        return data
    if len(data) != 1:
        raise ValueError(f"malformed encoded value: {data!r}")
    tag, inner = next(iter(data.items()))
    decoder = _DECODERS.get(tag)
    if decoder is None:
        raise ValueError(f"unknown value tag {tag!r}")
    return decoder(inner)


def encode_record(record: dict[str, Value] | None) -> dict[str, Any] | None:
    if record is None:
        return None
    # encode_value inlined for what a record is made of: a call per value cost more than the work.
    encoded: dict[str, Any] = {}
    for name, value in record.items():
        kind = type(value)
        if kind is str or kind is int or kind is bool or value is None:
            encoded[name] = value
        elif kind is Ref:
            # Left to the encoder, which writes a struct's fields in C: the object _encode_ref builds.
            encoded[name] = {"$ref": value}
        elif kind is Decimal:
            encoded[name] = {"$decimal": str(value)}
        elif kind is datetime:
            # The encoder writes an instant in UTC as RFC 3339 in C; any other is turned to UTC first.
            encoded[name] = {"$datetime": value if value.tzinfo is UTC else _datetime_text(value)}
        else:
            encoded[name] = encode_value(value)
    return encoded


_PLAIN = (str, int, bool, type(None), Decimal, datetime, date, Ref)


_UNSET = msgspec.UNSET


class TaggedValue(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A tagged value of the common kinds as msgspec reads it off the queue, typed in C: the text of
    a $decimal as an exact Decimal, a $datetime as RFC 3339. Exactly one field is set in what
    encode_record writes; any other shape is left to decode_record, which names what is wrong."""

    decimal: Decimal | msgspec.UnsetType = msgspec.field(default=_UNSET, name="$decimal")
    moment: datetime | msgspec.UnsetType = msgspec.field(default=_UNSET, name="$datetime")
    day: date | msgspec.UnsetType = msgspec.field(default=_UNSET, name="$date")
    ref: Ref | msgspec.UnsetType = msgspec.field(default=_UNSET, name="$ref")


def untag_record(record: dict[str, Any] | None) -> bool:
    """Replace the record's TaggedValues by their values, in place. False when one is not a tagged
    value of exactly one kind: the caller reads the record the general way, which refuses it."""
    if record is None:
        return True
    for name, value in record.items():
        if type(value) is not TaggedValue:
            continue
        decimal, moment, day, ref = value.decimal, value.moment, value.day, value.ref
        if ref is not _UNSET:
            if decimal is not _UNSET or moment is not _UNSET or day is not _UNSET:
                return False
            record[name] = ref
        elif decimal is not _UNSET:
            if moment is not _UNSET or day is not _UNSET:
                return False
            record[name] = decimal
        elif moment is not _UNSET:
            if day is not _UNSET:
                return False
            record[name] = moment if moment.tzinfo is UTC else _queued_utc(moment)
        elif day is not _UNSET:
            record[name] = day
        else:
            return False
    return True


def decode_record(data: dict[str, Any] | None) -> dict[str, Value] | None:
    if data is None:
        return None
    if all(type(value) in _PLAIN for value in data.values()):
        return data  # already typed values (built in code): nothing to decode
    # decode_value inlined for the kinds a record is made of: a call per value cost more than the work.
    decoded: dict[str, Value] = {}
    for name, value in data.items():
        kind = type(value)
        if kind is str or kind is int or kind is bool or value is None:
            decoded[name] = value
        elif kind is dict and len(value) == 1:
            if "$ref" in value and type(value["$ref"]) is dict:
                inner = value["$ref"]
                decoded[name] = Ref(inner["logical_name"], inner["id"], inner.get("name"))
            elif "$decimal" in value:
                decoded[name] = Decimal(value["$decimal"])
            elif "$datetime" in value:
                decoded[name] = _decode_datetime(value["$datetime"])
            else:
                decoded[name] = decode_value(value)
        else:
            decoded[name] = decode_value(value)
    return decoded


def utc_now() -> datetime:
    return datetime.now(UTC)


__all__ = [
    "FINANCE_EMPTY_DATE",
    "LOCAL_DAY_INFERRED",
    "MS_DATE_CHARS",
    "Ref",
    "TaggedValue",
    "Value",
    "decode_record",
    "decode_value",
    "encode_record",
    "encode_value",
    "is_ms_date",
    "ms_date_or_text",
    "parse_iso_datetime",
    "parse_ms_date",
    "parse_since",
    "short_ms_date_or_text",
    "to_utc",
    "untag_record",
    "user_local_day",
    "utc_now",
]
