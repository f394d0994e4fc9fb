"""Reading normalized records: case-insensitive access for Finance, Web API rows to normalized values."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from shared.values import FINANCE_EMPTY_DATE, Ref, Value, parse_iso_datetime

_ISO_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$")
_FINANCE_EMPTY_DATE_TEXT = FINANCE_EMPTY_DATE.isoformat()
_LOOKUP_VALUE = re.compile(r"^_(?P<name>.+)_value$")
_LOOKUP_LOGICAL = "@Microsoft.Dynamics.CRM.lookuplogicalname"
_FORMATTED = "@OData.Community.Display.V1.FormattedValue"


class RecordView:
    """Case-blind reads of one record: the lower-cased index is built once, on the first miss, instead
    of every column a row lacks costing a scan of all it has."""

    __slots__ = ("_folded", "record")

    def __init__(self, record: Mapping[str, Value]) -> None:
        self.record = record
        self._folded: dict[str, Value] | None = None

    def get(self, name: str) -> Value:
        if name in self.record:
            return self.record[name]
        if self._folded is None:
            self._folded = {key.lower(): value for key, value in self.record.items()}
        return self._folded.get(name.lower())


def field_value(record: Mapping[str, Value] | RecordView, name: str) -> Value:
    """A column's value; Finance data events carry lower-case names, so fall back to a case-blind match."""
    if isinstance(record, RecordView):
        return record.get(name)
    if name in record:
        return record[name]
    wanted = name.lower()
    for key, value in record.items():
        if key.lower() == wanted:
            return value
    return None


def has_field(record: Mapping[str, Value], name: str) -> bool:
    if name in record:
        return True
    wanted = name.lower()
    return any(key.lower() == wanted for key in record)


def row_version(value: Any) -> int | None:
    """versionnumber as the Web API gives it: a number, or its text where the client asked for
    IEEE754-compatible Int64 values."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value < 2**63 else None
    if isinstance(value, str) and value.isdigit() and len(value) <= 19 and int(value) < 2**63:
        return int(value)
    return None


def normalize_webapi_row(row: Mapping[str, Any]) -> dict[str, Value]:
    """A Dataverse Web API row as the normalized values a plug-in message would have given.

    `_x_value` lookups become `x: Ref`, ISO timestamps become aware UTC datetimes, annotations go.
    """
    normalized: dict[str, Value] = {}
    for key, value in row.items():
        if "@" in key:
            continue
        match = _LOOKUP_VALUE.match(key)
        if match:
            name = match.group("name")
            logical = row.get(f"{key}{_LOOKUP_LOGICAL}")
            display = row.get(f"{key}{_FORMATTED}")
            normalized[name] = None if value is None else Ref(str(logical or ""), str(value).lower(), display)
            continue
        if isinstance(value, str) and _ISO_TIMESTAMP.match(value):
            normalized[key] = _timestamp(value)
            continue
        normalized[key] = value
    return normalized


def normalize_finance_row(row: Mapping[str, Any]) -> dict[str, Value]:
    """A Finance OData row: timestamps to aware UTC (1900-01-01 to None), annotations dropped."""
    normalized: dict[str, Value] = {}
    for key, value in row.items():
        if key.startswith("@odata"):
            continue
        if isinstance(value, str) and _ISO_TIMESTAMP.match(value):
            normalized[key] = _timestamp(value)
        elif value == _FINANCE_EMPTY_DATE_TEXT:  # an Edm.Date field's empty value
            normalized[key] = None
        else:
            normalized[key] = value
    return normalized


def _timestamp(text: str) -> Value:
    """A row's timestamp in UTC; one outside the calendar there (9999-12-31T23:30-01:00) stays text,
    for the field's conversion to refuse by name if a map reads it."""
    try:
        return parse_iso_datetime(text)
    except ValueError:
        return text
