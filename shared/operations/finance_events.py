"""finance-events: what the person configuring Finance must activate, per flow."""

from __future__ import annotations

from dataclasses import dataclass

from shared.bus import FINANCE_QUEUE
from shared.maps import Registry, System


@dataclass(frozen=True)
class Activation:
    flow: str
    kind: str  # "data event" | "business event"
    name: str
    messages: tuple[str, ...]
    endpoint: str
    # Only entities published over OData raise data events: the public collection this one is.
    collection: str | None = None


def activations(registry: Registry) -> list[Activation]:
    found = []
    for table_map in registry.maps:
        if table_map.source.system is not System.FINANCE:
            continue
        entity = table_map.source.entity
        for event in table_map.source.events or (entity.lower(),):
            if event.lower() == entity.lower():
                messages = tuple(
                    m
                    for op, m in (("create", "Created"), ("update", "Updated"), ("delete", "Deleted"))
                    if any(o.value == op for o in table_map.operations)
                )
                found.append(
                    Activation(
                        table_map.name, "data event", entity, messages, FINANCE_QUEUE, table_map.source.entity_set
                    )
                )
            else:
                found.append(Activation(table_map.name, "business event", event, (), FINANCE_QUEUE))
    return found


def activation_text(registry: Registry) -> str:
    lines = [
        "In Finance: System administration > Setup > Business events > Business events catalog.",
        f"Endpoint: an Azure Service Bus queue endpoint named for the queue '{FINANCE_QUEUE}'.",
        "Data events need the Power Platform integration; activate them on the Data events tab.",
        "",
    ]
    for a in activations(registry):
        what = f"{a.kind} {a.name}" + (f" ({', '.join(a.messages)})" if a.messages else "")
        if a.collection:
            what += f" of the public entity {a.collection}"
        lines.append(f"{a.flow:<22} activate {what} → {a.endpoint}, all legal entities in scope")
    return "\n".join(lines)
