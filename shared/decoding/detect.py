"""`projops-sync decode FILE`: recognise what a raw message file is and decode it."""

from __future__ import annotations

from pathlib import Path

from shared.decoding.dataverse import IncomingMessage, _parse_json, decode_dataverse
from shared.decoding.finance import FinanceTestEvent, decode_finance
from shared.errors import DecodeError
from shared.events import ChangeEvent
from shared.jsonio import dump_bytes


def detect_and_decode(raw: bytes, *, base_dir: Path | None = None) -> tuple[str, list[ChangeEvent]]:
    """Returns the kind of message and its events; Finance's activation test message has none."""
    try:
        return _detect(raw, base_dir)
    except FinanceTestEvent:
        return "finance-test-event", []


def _detect(raw: bytes, base_dir: Path | None) -> tuple[str, list[ChangeEvent]]:
    data = _parse_json(raw)
    if isinstance(data, dict) and ("applicationProperties" in data or "body_file" in data or "contentType" in data):
        properties = {str(k): str(v) for k, v in (data.get("applicationProperties") or {}).items()}
        if "body_file" in data:
            body = _body_file(base_dir or Path("."), str(data["body_file"]))
        elif isinstance(data.get("body"), str):
            body = data["body"].encode()
        else:
            body = dump_bytes(data.get("body"))  # read with Decimal numbers, written back exactly
        message = IncomingMessage(body=body, content_type=data.get("contentType"), properties=properties)
        probe = _parse_json(body) if body.lstrip()[:1] in (b"{", b"[") else None
        kind = _finance_kind(probe)
        if kind is not None:
            return kind, decode_finance(message)
        return "dataverse-servicebus", [decode_dataverse(message)]
    items = data if isinstance(data, list) else [data]
    first = items[0] if items else None
    if not isinstance(first, dict):
        raise DecodeError("not a Dataverse or Finance message: expected a JSON object")
    kind = _finance_kind(data)
    if kind is not None:
        return kind, decode_finance(IncomingMessage(body=raw, content_type="application/json"))
    if "MessageName" in first:
        return "dataverse-webhook", [
            decode_dataverse(IncomingMessage(body=raw, content_type="application/json", transport="webhook"))
        ]
    raise DecodeError("not a Dataverse or Finance message: no MessageName, BusinessEventId or applicationProperties")


def _finance_kind(data: object) -> str | None:
    """What Finance sent, told by its first event, whether the body came bare or in a saved Service Bus
    message (both queues carry one event or a list); None for anything else."""
    items = data if isinstance(data, list) else [data]
    first = items[0] if items else None
    if not isinstance(first, dict):
        return None
    if "BusinessEventId" in first:
        return "finance-business-event"
    if "MessageName" in first and str(first.get("PrimaryEntityName", "")).startswith("mserp_"):
        return "finance-data-event"
    return None


def _body_file(base_dir: Path, name: str) -> bytes:
    """The body a saved message names beside itself. A capture can come from anyone: it may name a
    file next to it, never one elsewhere (`../`, an absolute path, a link out)."""
    folder = base_dir.resolve()
    path = (folder / name).resolve()
    if not path.is_relative_to(folder):
        raise DecodeError(f"body_file {name!r} is outside the message's folder: only a file beside it is read")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DecodeError(f"body_file {name!r} cannot be read: {exc.strerror or exc}") from None
