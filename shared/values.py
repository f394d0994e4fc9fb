"""Normalized field values and their lossless JSON form.

A ChangeEvent travels through Service Bus as JSON, yet a flow must see `Decimal` amounts and aware
UTC datetimes exactly as the router decoded them. Plain JSON would turn both into strings or binary
floats, so typed values are written as one-key tagged objects and read back into their types.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

# A value inside a normalized record.
Value = Any


@dataclass(frozen=True, slots=True)
class Ref:
    """A Dataverse EntityReference, normalized: table logical name, id, display name."""

    logical_name: str
    id: str
    name: str | None = None


_DATE_RE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
FINANCE_EMPTY_DATE = date(1900, 1, 1)


def parse_ms_date(text: str) -> datetime | None:
    """Parse the .NET JSON date form `/Date(ms)/` or `/Date(ms+hhmm)/` into an aware UTC datetime.

    The number is milliseconds since the epoch in UTC; the optional offset only says the value was a
    local-kind DateTime, so it does not shift the instant. Finance's empty date (1900-01-01) is None.
    """
    match = _DATE_RE.match(text)
    if match is None:
        raise ValueError(f"not a /Date(ms)/ value: {text!r}")
    instant = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=int(match.group(1)))
    if instant.date() == FINANCE_EMPTY_DATE:
        return None
    return instant


def is_ms_date(value: object) -> bool:
    return isinstance(value, str) and _DATE_RE.match(value) is not None


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
    parsed = parsed.astimezone(UTC)
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
    return value.astimezone(UTC)


def encode_value(value: Value) -> Any:
    """Turn a normalized value into JSON-safe data without losing its type."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, datetime):
        return {"$datetime": to_utc(value).isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, Ref):
        return {"$ref": {"logical_name": value.logical_name, "id": value.id, "name": value.name}}
    if isinstance(value, float):
        # Floats never enter a record (decoders parse numbers as Decimal); refuse rather than round.
        raise TypeError(f"binary float {value!r} in a record: money and quantities must be Decimal")
    if isinstance(value, list | tuple):
        return [encode_value(item) for item in value]
    if isinstance(value, dict):
        return {"$map": {str(k): encode_value(v) for k, v in value.items()}}
    raise TypeError(f"cannot encode {type(value).__name__} in a ChangeEvent record")


def decode_value(data: Any) -> Value:
    """Inverse of encode_value."""
    if isinstance(data, list):
        return [decode_value(item) for item in data]
    if isinstance(data, float):
        return Decimal(str(data))
    if not isinstance(data, dict):
        return data
    if len(data) != 1:
        raise ValueError(f"malformed encoded value: {data!r}")
    tag, inner = next(iter(data.items()))
    if tag == "$decimal":
        return Decimal(inner)
    if tag == "$datetime":
        return datetime.fromisoformat(inner).astimezone(UTC)
    if tag == "$date":
        return date.fromisoformat(inner)
    if tag == "$ref":
        return Ref(logical_name=inner["logical_name"], id=inner["id"], name=inner.get("name"))
    if tag == "$map":
        return {k: decode_value(v) for k, v in inner.items()}
    raise ValueError(f"unknown value tag {tag!r}")


def encode_record(record: dict[str, Value] | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {name: encode_value(value) for name, value in record.items()}


_PLAIN = (str, int, bool, type(None), Decimal, datetime, date, Ref)


def decode_record(data: dict[str, Any] | None) -> dict[str, Value] | None:
    if data is None:
        return None
    if all(type(value) in _PLAIN for value in data.values()):
        return data  # already typed values (built in code): nothing to decode
    return {name: decode_value(value) for name, value in data.items()}


def utc_now() -> datetime:
    return datetime.now(UTC)


__all__ = [
    "FINANCE_EMPTY_DATE",
    "Ref",
    "Value",
    "decode_record",
    "decode_value",
    "encode_record",
    "encode_value",
    "is_ms_date",
    "parse_iso_datetime",
    "parse_ms_date",
    "parse_since",
    "to_utc",
    "utc_now",
]
