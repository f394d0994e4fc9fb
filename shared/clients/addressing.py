"""The one place a value from either system becomes part of a URL (DESIGN §5).

Every key segment, alternate key, `@odata.bind` reference and `$filter` literal the clients and the
engine build passes through here. A value is written as the OData literal its type needs (strings
quoted with quotes doubled; Guids, numbers and dates bare), then percent-encoded so no character of
it can end the segment, start a query or climb a path. After building, the path is parsed back and
must name the entity set and key that were meant.

Some values cannot be addressed in a key segment at all, however they are encoded. Dataverse
documents that alternate keys holding any of / # < > * % & : \\ ? + do not work for GET or PATCH
(Define alternate keys using Power Apps); Finance answers the same characters unreliably behind its
web server. Such a row is read with `$filter` instead (`filter_for_key`), and a write that needs the
address is refused with `UnaddressableKeyError` naming the character, so it is parked with a reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote, unquote
from uuid import UUID

from shared.errors import MappingError

# Characters the services cannot take in a key segment, encoded or not.
UNADDRESSABLE = frozenset("/#<>*%&:\\?+")
# What may stay as it is inside a segment: unreserved characters and the OData key syntax itself
# (the quotes that delimit a string literal are added by literal(), and a quote inside the value
# is doubled, so the parser can always tell them apart).
_SAFE = "-._~'"
# A Guid's text, no braces.
GUID_PATTERN = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_GUID = re.compile(rf"^{GUID_PATTERN}$")
_ENTITY_SET = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PROPERTY = re.compile(r"^[A-Za-z_@][A-Za-z0-9_.@]*$")
# A built path: the set, then key syntax whose values hold nothing raw but unreserved characters.
_ONE_SEGMENT = re.compile(r"^[A-Za-z0-9_]+\([A-Za-z0-9_\-.~'=,%]*\)$")


class UnaddressableKeyError(MappingError):
    """A key value the service cannot address in a URL; the row must be read by $filter."""


def is_guid(value: Any) -> bool:
    """A Guid as OData writes it: 8-4-4-4-12 hex digits. A 32-hex string is text, not a Guid."""
    if isinstance(value, UUID):
        return True
    return isinstance(value, str) and _GUID.match(value) is not None


def literal(value: Any) -> str:
    """The OData literal of a value, not yet percent-encoded."""
    if value is None:
        return "null"
    if isinstance(value, float):
        # A binary float is not the number a person wrote: amounts and quantities are Decimal.
        raise MappingError(f"the binary float {value!r} has no exact OData literal: give it as a Decimal")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return "'" + str(value).replace("'", "''") + "'"


def _encoded(text: str) -> str:
    return quote(text, safe=_SAFE)


def _is_lookup_column(name: str) -> bool:
    return name.startswith("_") and name.endswith("_value")


def is_property_name(name: str) -> bool:
    """A name that can stand in $select and $filter as a property, and as nothing else."""
    return _PROPERTY.match(name) is not None


def _name(name: str) -> str:
    if not is_property_name(name):
        raise MappingError(f"{name!r} is not a property name")
    return name


def key_literal(name: str, value: Any) -> str:
    """One key part's literal: a lookup column (`_x_value`) takes a bare Guid."""
    if _is_lookup_column(name):
        if not is_guid(value):
            raise MappingError(f"{name} must be a Guid, not {value!r}")
        return str(value).lower()
    return literal(value)


def unaddressable_character(key: Mapping[str, Any]) -> str | None:
    for value in key.values():
        if isinstance(value, str) and not is_guid(value):
            for character in value:
                if character in UNADDRESSABLE:
                    return character
    return None


def key_segment(key: Mapping[str, Any], *, guid_primary: bool = False) -> str:
    """The `(...)` of a keyed URL, percent-encoded. A single Guid primary key is written bare."""
    if not key:
        raise MappingError("a key needs at least one part")
    character = unaddressable_character(key)
    if character is not None:
        described = ", ".join(f"{k}={v!r}" for k, v in key.items())
        raise UnaddressableKeyError(
            f"the key ({described}) holds {character!r}, which the service cannot address in a URL"
        )
    if guid_primary and len(key) == 1:
        ((name, value),) = key.items()
        if is_guid(value) and not _is_lookup_column(name):
            return f"({str(value).lower()})"
    parts = [f"{_name(name)}={_encoded(key_literal(name, value))}" for name, value in key.items()]
    return "(" + ",".join(parts) + ")"


def entity_path(entity_set: str, key: Mapping[str, Any], *, guid_primary: bool = False) -> str:
    """`set(key)`, checked: parsed back, it must name this set and this key, nothing more."""
    if not _ENTITY_SET.match(entity_set):
        raise MappingError(f"{entity_set!r} is not an entity set name")
    path = entity_set + key_segment(key, guid_primary=guid_primary)
    _verify(path, entity_set, key, guid_primary)
    return path


def entity_set_path(entity_set: str) -> str:
    """An entity set as the head of a URL (a collection, or a bound action on it), checked."""
    if not _ENTITY_SET.match(entity_set):
        raise MappingError(f"{entity_set!r} is not an entity set name")
    return entity_set


def bind_reference(entity_set: str, key: Mapping[str, Any]) -> str:
    """The value of `x@odata.bind`: `/set(key)`, built and checked like any other path."""
    return "/" + entity_path(entity_set, key, guid_primary=True)


# Finance reads `*` in a string compared with eq as a wildcard (Open Data Protocol (OData), Filter
# details: "eq 'retail*'") and documents no escape for it, so a value holding one is matched by Finance
# as a pattern, a superset of the value itself, and the exact match is made here, on the rows it answers.
FINANCE_WILDCARD = "*"


class KeyFilter(str):
    """The $filter text of a key, which still knows the key: a client whose service reads part of the
    text more broadly than meant keeps only the rows the key names (`matches`)."""

    key: dict[str, Any]

    def __new__(cls, text: str, key: Mapping[str, Any]) -> KeyFilter:
        built = super().__new__(cls, text)
        built.key = dict(key)
        return built

    def and_(self, condition: str) -> KeyFilter:
        return KeyFilter(f"{self} and {condition}", self.key)

    def wildcard_fields(self) -> list[str]:
        """Key parts Finance would read as patterns."""
        return [n for n, v in self.key.items() if isinstance(v, str) and FINANCE_WILDCARD in v and not is_guid(v)]

    def matches(self, row: Mapping[str, Any]) -> bool:
        """Whether a row Finance answered is one the key names; strings compare without case, as
        Finance's eq does."""
        for name in self.wildcard_fields():
            value = row.get(name)
            if value is None or str(value).casefold() != str(self.key[name]).casefold():
                return False
        return True


def filter_for_key(key: Mapping[str, Any]) -> KeyFilter:
    """`a eq 'x' and b eq 2`: the $filter that finds the row a key names (httpx encodes the query)."""
    return KeyFilter(" and ".join(f"{_name(name)} eq {key_literal(name, value)}" for name, value in key.items()), key)


def filter_after_key(key: Mapping[str, Any]) -> str:
    """The rows after `key` in the order of its parts ($orderby on them, in this order):
    `a ge 'x' and (a gt 'x' or b gt 2)`, nested for more parts. Only ge and gt, never eq: Finance reads
    `*` in a string compared with eq as a wildcard, and a key holding one would match rows before it."""
    if not key:
        raise MappingError("a key needs at least one part")
    parts = list(key.items())
    for name, value in parts:
        if value is None:
            raise MappingError(f"key part {name} is empty: no row comes after it")
    name, value = parts[-1]
    text = f"{_name(name)} gt {key_literal(name, value)}"
    for name, value in reversed(parts[:-1]):
        value_text = key_literal(name, value)
        text = f"{_name(name)} ge {value_text} and ({_name(name)} gt {value_text} or {text})"
    return text


def _verify(path: str, entity_set: str, key: Mapping[str, Any], guid_primary: bool) -> None:
    """The built path is one segment of key syntax and decodes back to exactly the key meant."""
    if not _ONE_SEGMENT.match(path) or not path.startswith(entity_set + "(") or not path.endswith(")"):
        raise MappingError(f"built path {path!r} does not address one {entity_set} row")
    decoded = [unquote(part) for part in path[len(entity_set) + 1 : -1].split(",")]
    if guid_primary and len(key) == 1 and len(decoded) == 1 and "=" not in decoded[0]:
        expected = [str(next(iter(key.values()))).lower()]
    else:
        expected = [f"{name}={key_literal(name, value)}" for name, value in key.items()]
    if decoded != expected:
        raise MappingError(f"built path {path!r} does not decode to the key {expected!r}")
