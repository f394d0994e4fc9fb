"""The typed pass over a RemoteExecutionContext: the same event as the generic parser, fewer columns."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from functions import actuals
from functions.catalog import CATALOG
from shared.decoding import dataverse
from shared.decoding.dataverse import IncomingMessage, decode_dataverse
from shared.decoding.lazy_context import NotStandardShape, read_context
from shared.decoding.typed_values import decode_values
from shared.errors import DecodeError
from shared.jsonio import UntrustedJsonError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
BENCH_MESSAGE = Path(__file__).resolve().parents[2] / "benchmarks" / "msdyn_actual_create.json"
MESSAGES = [
    FIXTURES / "synthetic_dataverse_create_remoteexecutioncontext.json",
    FIXTURES / "synthetic_dataverse_delete_remoteexecutioncontext.json",
    FIXTURES / "dataverse_webhook_update_contact_remoteexecutioncontext.json",
    BENCH_MESSAGE,
]


def _generic(body: bytes, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    def refuse(_: bytes) -> dict[str, object]:
        raise NotStandardShape

    with monkeypatch.context() as patched:
        patched.setattr(dataverse, "read_context", refuse)
        return msgspec.structs.asdict(decode_dataverse(IncomingMessage(body, "application/json")))


@pytest.mark.parametrize("path", MESSAGES, ids=lambda p: p.stem)
def test_the_typed_pass_gives_the_event_the_generic_parser_gives(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = path.read_bytes()
    read_context(body)  # the standard shape: no fallback hides a difference
    fast = msgspec.structs.asdict(decode_dataverse(IncomingMessage(body, "application/json")))
    slow = _generic(body, monkeypatch)
    for moment in ("occurred_at",):
        fast.pop(moment), slow.pop(moment)
    assert fast == slow


def test_the_router_keeps_only_the_columns_its_flows_read() -> None:
    event = decode_dataverse(IncomingMessage(BENCH_MESSAGE.read_bytes(), "application/json"), CATALOG.dataverse_columns)
    assert event.record is not None
    assert set(event.record) <= actuals.MAP.source_columns | {"versionnumber", "msdyn_actualid"}
    assert "msdyn_amount_base" not in event.record  # in the message, read by no flow
    assert event.record["msdyn_quantity"] == Decimal("7.5")
    assert event.version is not None


def _with_value(column: str, raw: str) -> bytes:
    text = BENCH_MESSAGE.read_text()
    context = json.loads(text)
    for holder in (context["InputParameters"][0]["value"], context["PostEntityImages"][0]["value"]):
        for pair in holder["Attributes"]:
            if pair["key"] == column:
                pair["value"] = "@@VALUE@@"
    return json.dumps(context).replace('"@@VALUE@@"', raw).encode()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("1e999999", "out of range"),
        ('"\\ud800"', "lone surrogate"),
        ("1" + "0" * 5000, "more digits"),
        ("[" * 5000 + "]" * 5000, "nested too deeply"),
    ],
)
def test_a_hostile_value_in_a_column_a_flow_reads_is_refused_for_what_it_is(raw: str, reason: str) -> None:
    body = _with_value("msdyn_quantity", raw)
    with pytest.raises(DecodeError, match=reason):
        decode_dataverse(IncomingMessage(body, "application/json"), CATALOG.dataverse_columns)


def test_a_column_no_flow_reads_is_never_parsed() -> None:
    # A value no flow reads costs its bytes' scan and nothing else: the change still goes through.
    body = _with_value("msdyn_amount_base", "1e999999")
    event = decode_dataverse(IncomingMessage(body, "application/json"), CATALOG.dataverse_columns)
    assert event.record is not None and "msdyn_amount_base" not in event.record


def _raw(*values: str) -> list[msgspec.Raw]:
    return [msgspec.Raw(value.encode()) for value in values]


def test_the_typed_values_are_what_the_generic_normalizer_makes() -> None:
    money = '{"__type":"Money:http:\\/\\/schemas.microsoft.com\\/xrm\\/2011\\/Contracts","Value":150.10}'
    option = '{"__type":"OptionSetValue:http://schemas.microsoft.com/xrm/2011/Contracts","Value":192350000}'
    reference = (
        '{"__type":"EntityReference:http://schemas.microsoft.com/xrm/2011/Contracts","Id":"AB-CD",'
        '"KeyAttributes":[],"LogicalName":"account","Name":"Contoso","RowVersion":null}'
    )
    raws = _raw('"text"', "7", "0.1", "true", "null", '"/Date(1762300800000)/"', money, option, reference)
    typed = decode_values(raws)
    assert typed == [dataverse.normalize_value(raw) for raw in raws]
    assert typed is not None and typed[2] == Decimal("0.1") and typed[6] == Decimal("150.10")


def test_shapes_outside_the_common_ones_go_to_the_generic_path() -> None:
    collection = '{"__type":"EntityCollection:http://schemas.microsoft.com/xrm/2011/Contracts","Entities":[]}'
    for odd in ("[1]", '{"Value": 1}', collection, "1e999999"):
        assert decode_values(_raw('"text"', odd)) is None


def test_the_typed_values_keep_the_limits_on_numbers() -> None:
    huge_money = '{"__type":"Money:http://schemas.microsoft.com/xrm/2011/Contracts","Value":1e99999}'
    for hostile in (huge_money, "9" * 80, "0." + "1" * 80):
        with pytest.raises(UntrustedJsonError):
            decode_values(_raw(hostile))
