"""The column values of a plug-in message decoded in one typed pass, for the shapes real messages use.

Nearly every value a RemoteExecutionContext carries is text, a whole number, a boolean, null, a plain
number with a fraction, or one of three DataContract objects (OptionSetValue, Money, EntityReference).
msgspec decodes a list of exactly those into Python values and small structs in C, where the generic
parser builds a dict for every object and `normalize_value` then walks it; for the 29 kept columns of
an msdyn_actual that was 31 µs of the decoder's 66.

`decode_values` answers None for anything else (an EntityCollection, an unknown `__type`, an object
without one, a list): the caller takes the generic path, which knows every shape. The numbers keep
the limits the generic path sets (shared.jsonio): a fraction is taken from its own text, never from
the binary float msgspec reads it as, and is bounded there.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import msgspec

from shared.jsonio import MAX_NUMBER_CHARS, UntrustedJsonError, check_range, decode_fragment
from shared.values import MS_DATE_CHARS, Ref, Value, short_ms_date_or_text

_CONTRACTS = ":http://schemas.microsoft.com/xrm/2011/Contracts"


class _OptionSetValue(msgspec.Struct, tag_field="__type", tag="OptionSetValue" + _CONTRACTS, gc=False):
    Value: int | None = None


class _Money(msgspec.Struct, tag_field="__type", tag="Money" + _CONTRACTS, gc=False):
    Value: Decimal | None = None


class _EntityReference(msgspec.Struct, tag_field="__type", tag="EntityReference" + _CONTRACTS, gc=False):
    Id: str | None = None
    LogicalName: str | None = None
    Name: str | None = None


# `float` only marks a number with a fraction: its value is read again from its text, exactly.
_VALUES = msgspec.json.Decoder(list[str | int | float | bool | _OptionSetValue | _Money | _EntityReference | None])
_LARGEST = 10**MAX_NUMBER_CHARS


def _bounded(value: Decimal) -> Decimal:
    text = str(value)
    if len(text) > MAX_NUMBER_CHARS:
        raise UntrustedJsonError(f"a number of {len(text)} characters")
    return check_range(value)


def decode_values(raws: Sequence[msgspec.Raw]) -> list[Value] | None:
    """The raw column values as normalized values, or None when one is not of the common shapes."""
    try:
        decoded: list[Any] = _VALUES.decode(b"[" + b",".join(raws) + b"]")
    except msgspec.DecodeError:  # ValidationError too: a shape for the generic path
        return None
    values: list[Value] = []
    append = values.append
    for raw, value in zip(raws, decoded, strict=True):
        kind = type(value)
        if kind is str:
            append(
                short_ms_date_or_text(value) if value.startswith("/Date(") and len(value) <= MS_DATE_CHARS else value
            )
        elif kind is _EntityReference:
            append(Ref(value.LogicalName or "", (value.Id or "").lower(), value.Name))
        elif kind is _OptionSetValue:
            append(value.Value)
        elif kind is _Money:
            append(None if value.Value is None else _bounded(value.Value))
        elif kind is float:
            append(decode_fragment(raw))
        elif kind is int and not -_LARGEST < value < _LARGEST:
            raise UntrustedJsonError(f"a number of {len(bytes(raw))} characters")
        else:
            append(value)
    return values
