"""The parts of a RemoteExecutionContext a flow needs, whichever parser read it (formats.md §1)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.values import MS_DATE_CHARS, is_ms_date, parse_ms_date, short_ms_date_or_text


@dataclass
class RemoteExecutionContext:
    """The context with its collections already turned into dicts."""

    message_name: str
    primary_entity_name: str
    primary_entity_id: str | None
    input_parameters: dict[str, Any] | None
    output_parameters: dict[str, Any]
    pre_images: dict[str, Any]
    post_images: dict[str, Any]
    initiating_user_id: str | None
    initiating_aad_object_id: str | None
    correlation_id: str | None
    operation_id: str | None
    operation_created_on: datetime | None
    depth: int | None


def lower_id(value: Any) -> str | None:
    """A Guid as the integration keeps it: no braces, lower case."""
    return str(value).strip("{}").lower() if value else None


def created_on(value: Any) -> datetime | None:
    """OperationCreatedOn, a `/Date(ms)/` value; anything else is no time."""
    if not isinstance(value, str) or len(value) > MS_DATE_CHARS:
        return None
    parsed = short_ms_date_or_text(value)  # cached: a regex match per message otherwise
    if isinstance(parsed, str):
        # Not a date, or one outside the calendar, which parse_ms_date refuses as before.
        return parse_ms_date(value) if is_ms_date(value) else None
    return parsed
