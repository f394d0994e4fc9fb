"""A plug-in message Dataverse shrank to fit is a notification: the flow re-reads the row."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.decoding.dataverse import IncomingMessage, decode_dataverse

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
DROPPED = ("ParentContext", "InputParameters", "PreEntityImages", "PostEntityImages")


def shrunk(name: str, emptied: Any) -> bytes:
    body = json.loads((FIXTURES / name).read_text())
    for part in DROPPED:
        if emptied is None:
            body.pop(part, None)
        else:
            body[part] = emptied
    return json.dumps(body).encode()


@pytest.mark.parametrize("emptied", [None, [], {}], ids=["absent", "empty-list", "empty-object"])
@pytest.mark.parametrize(
    "properties",
    [{"MessageMaxSizeExceeded": "true"}, {"x-ms-dynamics-msg-size-exceeded": "true"}, {}],
    ids=["service-bus-property", "webhook-header", "saved-to-a-file"],
)
@pytest.mark.parametrize(
    "fixture",
    [
        "synthetic_dataverse_create_remoteexecutioncontext.json",
        "dataverse_webhook_update_contact_remoteexecutioncontext.json",
    ],
)
def test_a_message_without_its_parameters_is_notification_only(
    fixture: str, properties: dict[str, str], emptied: Any
) -> None:
    """Over the size limit Dataverse removes ParentContext, InputParameters and the entity images and
    marks the message with the MessageMaxSizeExceeded property (the webhook header
    x-ms-dynamics-msg-size-exceeded); a message saved to a file carries neither mark, so what is
    missing decides, and the event is notification-only, never parked as "no Target".

    Azure integration (Service Bus, 192 KB):
    https://learn.microsoft.com/en-us/power-apps/developer/data-platform/azure-integration
    Use Webhooks to create external handlers for server events (256 KB):
    https://learn.microsoft.com/en-us/power-apps/developer/data-platform/use-webhooks
    """
    original = json.loads((FIXTURES / fixture).read_text())
    event = decode_dataverse(IncomingMessage(shrunk(fixture, emptied), "application/json", properties, "m-1"))
    assert event.notification_only
    assert event.record is None and event.before is None
    assert event.key == str(original["PrimaryEntityId"]).lower()
