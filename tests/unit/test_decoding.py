"""Decoding the real wire formats: Microsoft's verbatim webhook sample and the synthetic shapes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.decoding.dataverse import IncomingMessage, context_from_json, decode_dataverse, event_from_context
from shared.decoding.detect import detect_and_decode
from shared.decoding.finance import FinanceTestEvent, decode_finance
from shared.errors import DecodeError
from shared.events import ChangeEvent, Operation, Source
from shared.values import Ref, parse_ms_date

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CLAIMS = "http://schemas.microsoft.com/xrm/2011/Claims/"


def message(name: str, **properties: str) -> IncomingMessage:
    return IncomingMessage((FIXTURES / name).read_bytes(), "application/json", properties, "m-1")


def test_verbatim_webhook_update_sample() -> None:
    event = decode_dataverse(message("dataverse_webhook_update_contact_remoteexecutioncontext.json"))
    assert event.operation is Operation.UPDATE and event.entity == "contact"
    assert event.key == "6d81597f-0f9f-e711-8122-000d3aa2331c"
    assert event.changed == ["firstname", "fullname", "yomifullname"]  # system and key columns left out
    assert event.record is not None and event.record["firstname"] == "James"
    assert event.record["modifiedon"] == datetime(2017, 9, 26, 0, 4, 7, tzinfo=UTC)
    assert event.occurred_at.tzinfo is not None
    # Its post image is the default async one (the primary name only), merged under the Target.
    assert event.record["contactid"] == "6d81597f-0f9f-e711-8122-000d3aa2331c"


def test_create_with_typed_values() -> None:
    event = decode_dataverse(message("synthetic_dataverse_create_remoteexecutioncontext.json"))
    assert event.operation is Operation.CREATE
    record = event.record or {}
    assert record["msdyn_amount"] == Decimal("42.75") and isinstance(record["msdyn_amount"], Decimal)
    assert record["msdyn_expensestatus"] == 192350000
    assert record["msdyn_project"] == Ref("msdyn_project", "55555555-0000-4000-8000-000000000005", None)
    assert record["msdyn_transactiondate"] == datetime(2024, 6, 11, tzinfo=UTC)
    assert event.initiated_by.user_id == "44444444-0000-4000-8000-000000000004"
    assert event.depth == 1 and ChangeEvent.from_json(event.to_json()).depth == 1


def test_delete_target_is_a_reference_and_pre_image_is_kept() -> None:
    event = decode_dataverse(message("synthetic_dataverse_delete_remoteexecutioncontext.json"))
    assert event.operation is Operation.DELETE and event.record is None
    assert event.before is not None and event.before["msdyn_plannedlaborcost"] == Decimal("12500.5")


def test_redelivery_has_the_same_event_id() -> None:
    first = decode_dataverse(message("synthetic_dataverse_create_remoteexecutioncontext.json"))
    again = decode_dataverse(message("synthetic_dataverse_create_remoteexecutioncontext.json"))
    assert first.event_id == again.event_id


def _without_operation_id(first_name: str, operation_id: str | None) -> IncomingMessage:
    """The verbatim sample as another change of the same contact, without a system job's id: a
    synchronous step has none (OperationId is the system job's), or Guid.Empty in its place."""
    context = json.loads((FIXTURES / "dataverse_webhook_update_contact_remoteexecutioncontext.json").read_text())
    if operation_id is None:
        del context["OperationId"]
    else:
        context["OperationId"] = operation_id
    for attribute in context["InputParameters"][0]["value"]["Attributes"]:
        if attribute["key"] == "firstname":
            attribute["value"] = first_name
    return IncomingMessage(json.dumps(context).encode(), "application/json", {}, "m-1")


@pytest.mark.parametrize("operation_id", [None, "00000000-0000-0000-0000-000000000000"], ids=["absent", "empty"])
def test_two_changes_without_an_operation_id_have_two_event_ids(operation_id: str | None) -> None:
    """The flow queue drops a message id it saw in the last 10 minutes: two changes of one record
    under one id would lose the second. A redelivery of the same message still keeps its id."""
    james = decode_dataverse(_without_operation_id("James", operation_id))
    jim = decode_dataverse(_without_operation_id("Jim", operation_id))
    assert james.key == jim.key and james.record and jim.record and jim.record["firstname"] == "Jim"
    assert james.event_id != jim.event_id
    assert decode_dataverse(_without_operation_id("Jim", operation_id)).event_id == jim.event_id


def test_a_context_without_operation_id_or_body_is_told_apart_by_its_time() -> None:
    """A context decoded from a part of a larger message (a Finance data event) has no body of its
    own to hash: its time, version and correlation tell its changes apart."""
    context = json.loads((FIXTURES / "dataverse_webhook_update_contact_remoteexecutioncontext.json").read_text())
    del context["OperationId"]
    first = event_from_context(context_from_json(context))
    context["OperationCreatedOn"] = "/Date(1506409449000-0700)/"
    later = event_from_context(context_from_json(context))
    assert first.event_id != later.event_id
    assert event_from_context(context_from_json(context)).event_id == later.event_id


def test_size_exceeded_becomes_notification_only() -> None:
    body = json.loads((FIXTURES / "synthetic_dataverse_create_remoteexecutioncontext.json").read_text())
    for name in ("InputParameters", "PreEntityImages", "PostEntityImages", "ParentContext"):
        body.pop(name, None)
    event = decode_dataverse(
        IncomingMessage(json.dumps(body).encode(), "application/json", {"MessageMaxSizeExceeded": "true"})
    )
    assert event.notification_only and event.record is None
    assert event.key == "cccccccc-0000-4000-8000-00000000000c"


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b"\x40\x02", "application/msbin1", "message format to JSON"),
        (b"<Context/>", "application/xml", "message format to JSON"),
        (b'{"MessageName": ', "application/json", "malformed JSON at line 1"),
        (b'{"Foo": 1}', "application/json", "no MessageName"),
        (
            b'{"MessageName": "Update", "PrimaryEntityId": "6d81597f-0f9f-e711-8122-000d3aa2331c", '
            b'"InputParameters": [{"key": "SuppressDuplicateDetection", "value": false}]}',
            "application/json",
            "no Target",
        ),
    ],
)
def test_undecodable_input_names_the_reason(body: bytes, content_type: str, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode_dataverse(IncomingMessage(body, content_type, {}))


def test_unknown_keys_and_types_are_ignored() -> None:
    body = json.loads((FIXTURES / "synthetic_dataverse_create_remoteexecutioncontext.json").read_text())
    body["SomethingNew"] = {"x": 1}
    body["InputParameters"][0]["value"]["Attributes"].append({"key": "odd", "value": {"__type": "Mystery:x", "Q": 1}})
    event = decode_dataverse(IncomingMessage(json.dumps(body).encode(), "application/json", {}))
    assert event.record is not None and event.record["odd"] is None


def test_business_event_envelope() -> None:
    [event] = decode_finance(message("synthetic_fno_business_event_sales_invoice_posted.json"))
    assert event.source is Source.FINANCE and event.entity == "SalesInvoicePostedBusinessEvent"
    assert event.event_id == "6e1b7a2c-3f4d-4e5a-9b8c-7d6e5f4a3b2c"
    assert event.company == "USMF" and event.version == 5637145326
    assert event.initiated_by.aad_object_id == "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
    assert event.occurred_at == datetime(2024, 6, 11, 0, 0, 0, 123456, tzinfo=UTC)
    assert event.record is not None and event.record["InvoiceAmountInAccountingCurrency"] == Decimal("1250.0")


def test_activation_test_message_is_recognised() -> None:
    with pytest.raises(FinanceTestEvent):
        decode_finance(message("synthetic_fno_business_event_schema_download_defaults.json"))


def test_data_event_names_lose_their_prefix() -> None:
    [event] = decode_finance(message("synthetic_fno_data_event_onexternalupdated.json"))
    assert event.entity == "projtableentity" and event.company == "USMF"
    assert event.record == {"dataareaid": "usmf", "projectid": "USMF-000123", "name": "Contoso rollout"}
    assert event.before is not None and event.before["name"] == "Contoso"
    assert not event.partial


def test_decoded_events_survive_the_queue() -> None:
    for name in (
        "synthetic_dataverse_create_remoteexecutioncontext.json",
        "synthetic_dataverse_delete_remoteexecutioncontext.json",
    ):
        event = decode_dataverse(message(name))
        assert ChangeEvent.from_json(event.to_json()) == event


def test_detect_service_bus_message_file() -> None:
    kind, [event] = detect_and_decode(
        (FIXTURES / "synthetic_dataverse_servicebus_message.json").read_bytes(), base_dir=FIXTURES
    )
    assert kind == "dataverse-servicebus" and event.entity == "msdyn_expense"


def test_a_saved_message_holding_finance_events_is_decoded_as_finance() -> None:
    """A message saved off the finance-events queue (its properties, content type and body) holds what
    a bare body would: one business event, a list of them, or data events, decoded the same way."""
    business = json.loads((FIXTURES / "synthetic_fno_business_event_sales_invoice_posted.json").read_text())
    second = {**business, "EventId": "7E1B7A2C-3F4D-4E5A-9B8C-7D6E5F4A3B2C"}
    data = json.loads((FIXTURES / "synthetic_fno_data_event_onexternalupdated.json").read_text())
    properties = {"BusinessEventId": business["BusinessEventId"], "LegalEntity": "usmf"}
    for body, kind, ids in [
        (business, "finance-business-event", ["6e1b7a2c-3f4d-4e5a-9b8c-7d6e5f4a3b2c"]),
        (
            [business, second],
            "finance-business-event",
            ["6e1b7a2c-3f4d-4e5a-9b8c-7d6e5f4a3b2c", "7e1b7a2c-3f4d-4e5a-9b8c-7d6e5f4a3b2c"],
        ),
        (json.dumps([business]), "finance-business-event", ["6e1b7a2c-3f4d-4e5a-9b8c-7d6e5f4a3b2c"]),
        (
            [data],
            "finance-data-event",
            [decode_finance(message("synthetic_fno_data_event_onexternalupdated.json"))[0].event_id],
        ),
    ]:
        saved = {"applicationProperties": properties, "contentType": "application/json", "body": body}
        found, events = detect_and_decode(json.dumps(saved).encode())
        assert (found, [event.event_id for event in events]) == (kind, ids)
        assert {event.source for event in events} == {Source.FINANCE}


@pytest.mark.parametrize(
    ("body_file", "reason"),
    [
        ("../unit/test_decoding.py", "outside the message's folder"),
        ("/etc/hostname", "outside the message's folder"),
        ("missing.json", "cannot be read: No such file or directory"),
    ],
)
def test_a_saved_message_reads_only_a_body_file_beside_it(tmp_path: Path, body_file: str, reason: str) -> None:
    outside = tmp_path / "secret.json"
    outside.write_text("{}")
    folder = tmp_path / "captures"
    folder.mkdir()
    (folder / "link.json").symlink_to(outside)
    for name in (body_file, "link.json"):
        saved = json.dumps({"contentType": "application/json", "body_file": name}).encode()
        with pytest.raises(DecodeError, match=reason if name == body_file else "outside the message's folder"):
            detect_and_decode(saved, base_dir=folder)


@given(st.integers(min_value=-2_000_000_000_000, max_value=4_000_000_000_000))
def test_ms_dates_are_exact_utc_instants(millis: int) -> None:
    parsed = parse_ms_date(f"/Date({millis}+0200)/")
    expected = datetime(1970, 1, 1, tzinfo=UTC).timestamp() + millis / 1000
    if parsed is not None:
        assert parsed.tzinfo is UTC
        assert abs(parsed.timestamp() - expected) < 0.001
    else:
        assert datetime.fromtimestamp(expected, UTC).date().isoformat() == "1900-01-01"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'{"event_id": "e", "source": "dataverse", "entity": "x", "operation": "create"}',
        b'{"event_id": "e", "source": "dataverse", "entity": "x", "operation": "create", "key": "k",'
        b' "record": {"amount": {"$decimal": "twelve"}}}',
        b'{"event_id": "e", "source": "dataverse", "entity": "x", "operation": "create", "key": "k",'
        b' "record": {"owner": {"$ref": {"id": "1"}}}}',
        b'{"event_id": "e", "source": "dataverse", "entity": "x", "operation": "create", "key": "k",'
        b' "record": {"at": {"$datetime": 5}}}',
        b'{"event_id": "e", "source": "dataverse", "entity": "x", "operation": "create", "key": "k",'
        b' "record": {"amount": {"$decimal": "1.5", "$datetime": "2026-03-01T00:00:00Z"}}}',
        b'{"event_id": "e", "source": "dataverse", "entity": "x", "operation": "create", "key": "k",'
        b' "before": {"amount": {}}}',
        b'{"event_id": "e", "source": "dataverse", "entity": "x", "operation": "create", "key": "k",'
        b' "record": {"amount": {"$decimal": "1.5", "$rate": "2"}}}',
    ],
    ids=[
        "not-json",
        "not-an-object",
        "no-key",
        "bad-decimal",
        "ref-without-table",
        "datetime-not-text",
        "two-tags",
        "no-tag",
        "unknown-tag",
    ],
)
def test_a_flow_message_that_is_no_change_event_is_a_value_error(body: bytes) -> None:
    # The flow runner parks on ValueError; anything else would be raised into redelivery.
    with pytest.raises(ValueError):
        ChangeEvent.from_json(body)


def test_a_record_read_off_the_queue_has_the_types_it_was_written_with() -> None:
    """The typed reading (msgspec, in C) and the general one (lists, maps, other ISO forms) agree."""
    record = {
        "amount": Decimal("1125.000"),
        "tiny": Decimal("1E-7"),
        "at": datetime(2026, 3, 1, 8, 30, tzinfo=UTC),
        "owner": Ref("account", "c0a1e000-0000-4000-8000-000000000001", "Contoso"),
        "plain": "text",
        "count": 3,
        "flag": False,
        "empty": None,
    }
    event = ChangeEvent(
        event_id="e", source=Source.DATAVERSE, entity="x", operation=Operation.CREATE, key="k", record=record
    )
    typed = ChangeEvent.from_json(event.to_json())
    assert typed == event
    assert {name: type(value) for name, value in (typed.record or {}).items()} == {
        name: type(value) for name, value in record.items()
    }
    general = event.replace(record={**record, "parties": [Ref("contact", "1", None)], "other": {"a": Decimal("2")}})
    assert ChangeEvent.from_json(general.to_json()) == general
    spaced = event.to_json().replace("2026-03-01T08:30:00+00:00", "2026-03-01 10:30:00+02:00")
    assert (ChangeEvent.from_json(spaced).record or {})["at"] == record["at"]
