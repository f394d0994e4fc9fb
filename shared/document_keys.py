"""A posted document's key: its company and the event members that select its rows."""

from __future__ import annotations

from shared.errors import MappingError
from shared.events import ChangeEvent
from shared.key_text import join_key_parts
from shared.maps import Document, TableMap
from shared.values import Value


def document_members(table_map: TableMap, event: ChangeEvent) -> tuple[str, dict[str, Value]]:
    """The document's company and the event members that select its rows."""
    document = _document(table_map)
    members = event.record or {}
    company = event.company or members.get("LegalEntity")
    if not company:
        raise MappingError(f"the {event.entity} event names no legal entity")
    missing = [member for member, _ in document.match if members.get(member) in (None, "")]
    if missing:
        raise MappingError(f"the {event.entity} event has no {', '.join(missing)}")
    return str(company).upper(), {member: members[member] for member, _ in document.match}


def document_key(table_map: TableMap, event: ChangeEvent) -> str:
    company, members = document_members(table_map, event)
    return join_key_parts([company, *(str(value) for value in members.values())])


def _document(table_map: TableMap) -> Document:
    if table_map.document is None:
        raise ValueError(f"flow {table_map.name} is not a document flow")
    return table_map.document
