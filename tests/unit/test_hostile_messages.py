"""Every message of the fuzz corpus decodes, or fails with a DecodeError naming why, within bounds.

A decoder raising anything else would send the message into Service Bus redelivery and then the
dead-letter queue with no reason; one costing seconds of CPU would freeze every function of the
worker. The bound below is far above what a real message costs (a few milliseconds) and far below
what the unbounded decoder spent on `1e999999` in an option set (32 s).
"""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from shared.decoding.dataverse import IncomingMessage, decode_dataverse
from shared.decoding.finance import FinanceTestEvent, decode_finance
from shared.errors import DecodeError, MappingError
from shared.maps import FieldType, System
from shared.wire import to_wire
from tests.fuzz_corpus import corpus

CPU_BOUND_SECONDS = 1.0
CORPUS = corpus()


@pytest.mark.parametrize(("name", "body", "kind"), CORPUS, ids=[name for name, _, _ in CORPUS])
def test_a_hostile_message_is_decoded_or_refused_with_a_reason(name: str, body: bytes, kind: str) -> None:
    message = IncomingMessage(body=body, content_type="application/json")
    started = time.process_time()
    try:
        events = [decode_dataverse(message)] if kind == "dataverse" else decode_finance(message)
        for event in events:
            event.to_json()  # what the router sends on must serialize, too
    except DecodeError as exc:
        assert str(exc), name
    except FinanceTestEvent:
        assert kind == "finance"
    assert time.process_time() - started < CPU_BOUND_SECONDS, name


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("deep-nesting", "nested too deeply"),
        ("long-number", "a number of more digits than any amount has"),
        ("option-set-1e999999", "out of range"),
        ("input-parameters-a-string", "wrong shape"),
        ("date-overflow", "wrong shape"),
        ("event-time-garbage", "wrong shape"),
        ("business-member-an-object", "business event member InvoiceId is a JSON dict"),
        ("finance-empty-list", "holds no event"),
        ("lone-surrogate", "lone surrogate"),
        ("nan", "NaN is not a JSON number"),
    ],
)
def test_each_known_attack_is_refused_for_what_it_is(name: str, reason: str) -> None:
    [(_, body, kind)] = [item for item in CORPUS if item[0] == name]
    decode = decode_dataverse if kind == "dataverse" else decode_finance
    with pytest.raises(DecodeError, match=reason):
        decode(IncomingMessage(body=body, content_type="application/json"))


@pytest.mark.parametrize(
    ("field_type", "value"),
    [
        (FieldType.DATE, "2026-13-45"),
        (FieldType.DATE, "2026-02-30T10:00:00Z"),
        (FieldType.DATETIME, "yesterday at noon"),
        (FieldType.INT, "twelve"),
        (FieldType.OPTION, Decimal("1.5")),
        (FieldType.INT, "7.25"),
        (FieldType.DECIMAL, Decimal("NaN")),
        (FieldType.DECIMAL, "Infinity"),
        (FieldType.DECIMAL, "12,50"),
    ],
)
def test_a_value_a_field_cannot_hold_is_a_mapping_error_naming_the_field(field_type: FieldType, value: object) -> None:
    """A flow parks these with the field's name; before, a bad date raised ValueError into a
    redelivery loop and a fraction in a whole-number field was silently truncated."""
    for system in (System.FINANCE, System.DATAVERSE):
        with pytest.raises(MappingError, match=r"^Quantity: "):
            to_wire(system, field_type, value, "Quantity")


def test_whole_numbers_written_as_decimals_still_pass() -> None:
    assert to_wire(System.FINANCE, FieldType.INT, Decimal("3.000"), "LineSequenceNumber") == 3
