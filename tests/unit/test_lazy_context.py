"""The typed pass over a RemoteExecutionContext: the same event as the generic parser, fewer columns."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from functions import actuals
from functions.catalog import CATALOG
from shared.decoding import dataverse
from shared.decoding.dataverse import IncomingMessage, decode_dataverse
from shared.decoding.images import complete_image_alias
from shared.decoding.lazy_context import LazyPairs, NotStandardShape, read_context
from shared.decoding.typed_values import decode_values
from shared.errors import DecodeError
from shared.events import ChangeEvent
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


# --- the image register-steps registers: the record is read from it, Target left unread ---------

ACTUAL_COLUMNS = CATALOG.dataverse_columns("msdyn_actual")


def _context(alias: str, message: str = "Create") -> dict[str, Any]:
    context = json.loads(BENCH_MESSAGE.read_text())
    context["MessageName"] = message
    [image] = [i for i in context["PostEntityImages"] if i["key"] == "PostImage"]
    image["key"] = alias
    return context


def _set(holder: dict[str, Any], column: str, value: object) -> None:
    pairs = holder["Attributes"]
    pairs[:] = [pair for pair in pairs if pair["key"] != column]
    pairs.append({"key": column, "value": value})


def _decoded(context: dict[str, Any], raw: str | None = None) -> ChangeEvent:
    body = json.dumps(context)
    if raw is not None:
        body = body.replace('"@@VALUE@@"', raw)
    return decode_dataverse(IncomingMessage(body.encode(), "application/json"), CATALOG.dataverse_columns)


def _target(context: dict[str, Any]) -> dict[str, Any]:
    target: dict[str, Any] = context["InputParameters"][0]["value"]
    return target


def _post(context: dict[str, Any], alias: str) -> dict[str, Any]:
    [image] = [i["value"] for i in context["PostEntityImages"] if i["key"] == alias]
    return image


def test_beside_the_registered_image_the_record_is_the_image() -> None:
    ours = complete_image_alias(ACTUAL_COLUMNS or ())
    for alias, expected in ((ours, "As stored"), ("PostImage", "As requested")):
        context = _context(alias)
        # Target says what the request set, the image what Dataverse stored (a plug-in may have changed it).
        _set(_target(context), "msdyn_description", "As requested")
        _set(_post(context, alias), "msdyn_description", "As stored")
        event = _decoded(context)
        assert event.record is not None and event.record["msdyn_description"] == expected, alias


def test_beside_the_registered_image_target_is_never_parsed() -> None:
    ours = complete_image_alias(ACTUAL_COLUMNS or ())
    context = _context(ours)
    _set(_target(context), "msdyn_quantity", "@@VALUE@@")
    event = _decoded(context, "1e999999")
    assert event.record is not None and event.record["msdyn_quantity"] == Decimal("7.5")
    # Beside any other image it is read, and its hostile value refused as before.
    with pytest.raises(DecodeError, match="out of range"):
        _decoded(_context("PostImage") | {"InputParameters": context["InputParameters"]}, "1e999999")


def test_an_image_registered_for_other_columns_is_merged_with_target() -> None:
    # Ours from before a map read another column: the alias names other columns.
    stale = complete_image_alias((ACTUAL_COLUMNS or frozenset()) - {"msdyn_description"})
    context = _context(stale)
    _set(_target(context), "msdyn_description", "Only in Target")
    _post(context, stale)["Attributes"] = [
        pair for pair in _post(context, stale)["Attributes"] if pair["key"] != "msdyn_description"
    ]
    event = _decoded(context)
    assert event.record is not None and event.record["msdyn_description"] == "Only in Target"


def test_an_update_beside_the_registered_image_names_every_column_target_changed() -> None:
    ours = complete_image_alias(ACTUAL_COLUMNS or ())
    context = _context(ours, "Update")
    _target(context)["Attributes"] = [
        {"key": "msdyn_description", "value": "Changed"},
        {"key": "msdyn_amount_base", "value": 1},  # read by no flow, still a change a person sees
        {"key": "modifiedon", "value": "/Date(1793980000000)/"},
    ]
    _set(_post(context, ours), "msdyn_description", "Changed")
    event = _decoded(context)
    assert event.changed == ["msdyn_amount_base", "msdyn_description"]
    assert event.record is not None and event.record["msdyn_description"] == "Changed"
    assert event.record["msdyn_quantity"] == Decimal("7.5") and not event.partial
    # What the image lacks is empty: said so, rather than left for the flow to read the row again.
    lacking = (ACTUAL_COLUMNS or frozenset()) - {pair["key"] for pair in _post(context, ours)["Attributes"]}
    assert lacking and all(event.record[column] is None for column in lacking - {"msdyn_actualid"})


@pytest.mark.parametrize("alias", ["PostImage", complete_image_alias(ACTUAL_COLUMNS or ())])
@pytest.mark.parametrize("message", ["Create", "Update"])
def test_a_target_of_another_shape_reads_as_the_generic_parser_reads_it(
    alias: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    context = _context(alias, message)
    # A pair without its value, a pair of another shape: the typed pass over Target cannot take them.
    _target(context)["Attributes"] += [{"key": "msdyn_description"}, {"value": 1}]
    body = json.dumps(context).encode()
    read_context(body)  # the envelope is the standard shape: only Target's columns are not
    fast = msgspec.structs.asdict(decode_dataverse(IncomingMessage(body, "application/json")))
    slow = _generic(body, monkeypatch)
    fast.pop("occurred_at"), slow.pop("occurred_at")
    assert fast == slow


def test_target_read_for_its_values_is_not_scanned_again_for_its_names() -> None:
    [parameter] = [p for p in json.loads(BENCH_MESSAGE.read_text())["InputParameters"] if p["key"] == "Target"]
    lazy = LazyPairs(msgspec.Raw(json.dumps(parameter["value"]["Attributes"]).encode()))
    names = lazy.names()
    read = lazy.pairs()
    assert read is lazy.pairs() and lazy.names() == names == [pair.key for pair in read]
    odd = LazyPairs(msgspec.Raw(b'{"msdyn_description": "a plain object"}'))
    assert odd.pairs() == {"msdyn_description": "a plain object"} and odd.names() is None
