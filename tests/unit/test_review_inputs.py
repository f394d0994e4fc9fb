"""Inputs a review found raised into redelivery, lost as "source gone" or dropped as tests: each now
a named refusal (parked by its caller) or decoded as what it is."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.clients.http import json_object
from shared.decoding.dataverse import IncomingMessage, decode_dataverse
from shared.decoding.finance import FinanceTestEvent, decode_finance
from shared.errors import DecodeError, MappingError, TransientServiceError
from shared.maps import FieldType, System, ValueMap
from shared.wire import to_wire

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CREATE = "synthetic_dataverse_create_remoteexecutioncontext.json"
BUSINESS_EVENT = "synthetic_fno_business_event_sales_invoice_posted.json"


def _context() -> dict[str, Any]:
    return json.loads((FIXTURES / CREATE).read_text())


def _decode(context: dict[str, Any]) -> Any:
    return decode_dataverse(IncomingMessage(json.dumps(context).encode(), "application/json"))


def _set(context: dict[str, Any], column: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(context)
    for entity in [changed["InputParameters"][0]["value"], *(i["value"] for i in changed["PostEntityImages"])]:
        entity["Attributes"] = [p for p in entity["Attributes"] if p["key"] != column]
        entity["Attributes"].append({"key": column, "value": value})
    return changed


@pytest.mark.parametrize("body", [b"<html>gateway</html>", b'{"a": 1', b"[1, 2]", b""])
def test_a_read_answer_that_is_no_object_is_an_error_not_a_missing_row(body: bytes) -> None:
    answer = httpx.Response(200, content=body, request=httpx.Request("GET", "https://x/api/data/v9.2/a(1)"))
    with pytest.raises(TransientServiceError, match=r"dataverse 200: the answer (is not JSON|is a JSON list|is empty)"):
        json_object(answer, "dataverse")


@pytest.mark.parametrize("version", [10**19, -1, 2**63])
def test_a_version_no_dataverse_writes_is_dropped(version: int) -> None:
    event = _decode(_set(_context(), "versionnumber", version))
    assert event.version is None
    assert _decode(_set(_context(), "versionnumber", 2**63 - 1)).version == 2**63 - 1


@pytest.mark.parametrize("control", [2**63, 10**19, -1, True])
def test_a_finance_control_number_no_version_holds_is_no_version(control: Any) -> None:
    """The state stores hold a version in 64 bits, as the Dataverse decoder bounds it."""
    real = json.loads((FIXTURES / BUSINESS_EVENT).read_text())
    [event] = _finance({**real, "ControlNumber": control})
    assert event.version is None
    [event] = _finance({**real, "ControlNumber": 2**63 - 1})
    assert event.version == 2**63 - 1


def test_an_amount_out_of_range_is_refused_with_a_reason_not_written_out() -> None:
    for text in ("1E+999999999999", "9" * 100):
        with pytest.raises(MappingError, match="Amount: "):
            to_wire(System.FINANCE, FieldType.DECIMAL, text, "Amount")
    with pytest.raises(MappingError, match="out of range"):
        to_wire(System.FINANCE, FieldType.DECIMAL, Decimal("1E+70"), "Amount")
    money = {"__type": "Money:http://schemas.microsoft.com/xrm/2011/Contracts", "Value": "1E+999999"}
    with pytest.raises(DecodeError, match="out of range"):
        _decode(_set(_context(), "msdyn_amount", money))


def test_a_list_in_a_value_mapped_column_is_a_mapping_error() -> None:
    billing = ValueMap("billing", {192350001: "Chargeable"})
    with pytest.raises(MappingError, match="msdyn_billingtype holds a list"):
        billing.apply([192350001], "msdyn_billingtype")


def test_a_value_nested_past_any_real_shape_is_refused() -> None:
    deep: Any = "x"
    for _ in range(40):
        deep = [deep]
    with pytest.raises(DecodeError, match="nested over 16 levels"):
        _decode(_set(_context(), "cnt_deep", deep))


def _finance(items: Any) -> list[Any]:
    return decode_finance(IncomingMessage(json.dumps(items).encode(), "application/json"))


def test_finance_events_without_an_event_id_are_refused_not_taken_for_tests() -> None:
    real = json.loads((FIXTURES / BUSINESS_EVENT).read_text())
    with pytest.raises(DecodeError, match="the SalesInvoicePostedBusinessEvent event has no EventId"):
        _finance({**real, "EventId": ""})
    test_shaped = {**real, "EventId": "", "ControlNumber": 0}
    with pytest.raises(DecodeError, match="item 2 of the batch has no EventId"):
        _finance([real, test_shaped, real])
    # "test" inside an event's name says nothing: decoded as the event it is.
    named = {**real, "BusinessEventId": "LatestPurchPriceUpdatedBusinessEvent", "ControlNumber": 0}
    [event] = _finance(named)
    assert event.entity == "LatestPurchPriceUpdatedBusinessEvent"
    # Finance's activation test (the catalog's defaults) still is one.
    with pytest.raises(FinanceTestEvent):
        _finance(json.loads((FIXTURES / "synthetic_fno_business_event_schema_download_defaults.json").read_text()))


def test_a_record_key_no_record_has_is_refused_at_decode() -> None:
    context = _context()
    context["PrimaryEntityId"] = "a" * 40_000
    with pytest.raises(DecodeError, match="the record key is 40,000 characters long"):
        _decode(context)
    real = json.loads((FIXTURES / BUSINESS_EVENT).read_text())
    with pytest.raises(DecodeError, match="the record key is 40,000 characters long"):
        _finance({**real, "ContextRecordSubject": "k" * 40_000})
