"""Exact values where they were lost: times read in the machine's zone, one record under two keys,
amounts through YAML floats, Finance's empty date in its other spellings, a saved message's amounts."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functions.catalog import CATALOG
from functions.map_extensions import MapExtensionError, read_extensions
from shared.cli import main
from shared.decoding.dataverse import _images as dataverse_images
from shared.errors import MappingError
from shared.events import ChangeEvent, Operation, Source
from shared.maps import FieldType, System
from shared.records import normalize_finance_row
from shared.targets import source_key
from shared.values import ms_date_or_text, parse_iso_datetime, parse_ms_date, user_local_day
from shared.wire import to_wire, utc_text

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def test_a_replayed_time_without_an_offset_is_utc_whatever_zone_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    wire = json.dumps(
        {
            "event_id": "e",
            "source": "replay",
            "entity": "msdyn_actual",
            "operation": "create",
            "key": "k",
            "record": {"msdyn_transactiondate": {"$datetime": "2026-03-01T00:00:00.000123"}},
        }
    )
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        event = ChangeEvent.from_json(wire)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert event.record == {"msdyn_transactiondate": datetime(2026, 3, 1, 0, 0, 0, 123, tzinfo=UTC)}


def test_an_exchange_rate_keeps_one_key_whether_its_date_says_midnight_or_noon() -> None:
    """Events carry ValidFrom at midnight, Finance's rows at noon: one record, one state key, one session."""
    table_map = CATALOG.by_name("exchange-rates")

    def event(valid_from: datetime) -> ChangeEvent:
        record = {"ExchangeRateTypeName": "Default", "FromCurrencyCode": "USD", "ToCurrencyCode": "EUR"}
        return ChangeEvent(
            event_id="e",
            source=Source.FINANCE,
            entity=table_map.source.entity,
            operation=Operation.UPSERT,
            key="-",
            record={**record, "ValidFrom": valid_from},
        )

    keys = {source_key(table_map, event(datetime(2026, 3, 1, hour, tzinfo=UTC))) for hour in (0, 12)}
    assert keys == {"Default|USD|EUR|2026-03-01"}


def test_numbers_in_the_extension_file_are_the_decimals_it_wrote(tmp_path: Path) -> None:
    path = tmp_path / "map-extensions.yaml"
    path.write_text(
        "flows:\n  resource-roles:\n    filter: {column: cnt_rate, value: 12345678901234567.25}\n"
        "  projects-v2:\n    fields:\n      - {source: null, target: cnt_Share, type: decimal, default: 0.15}\n"
    )
    registry = read_extensions(path, CATALOG)
    row_filter = registry.by_name("resource-roles").filter
    assert row_filter is not None and row_filter.odata == "cnt_rate eq 12345678901234567.25"
    [share] = [pair for pair in registry.by_name("projects-v2").fields if pair.target == "cnt_Share"]
    assert share.default == Decimal("0.15") and type(share.default) is Decimal
    path.write_text("flows:\n  resource-roles:\n    filter: {column: cnt_rate, value: .inf}\n")
    with pytest.raises(MapExtensionError, match=r"map-extensions\.yaml line 3: '\.inf' is not a number with an exact"):
        read_extensions(path, CATALOG)


def test_finances_empty_date_is_empty_in_every_spelling() -> None:
    row = {
        "A": "1900-01-01T12:00:00Z",
        "B": "1900-01-01",
        "C": "1900-01-01T00:00:00+01:00",
        "D": "2026-03-01",
        "E": "2026-03-01T00:00:00+01:00",
    }
    assert normalize_finance_row(row) == {
        "A": None,
        "B": None,
        "C": None,
        "D": "2026-03-01",
        "E": datetime(2026, 2, 28, 23, tzinfo=UTC),
    }


def test_decode_reads_a_saved_message_whose_body_is_inline_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = json.loads((FIXTURES / "synthetic_dataverse_servicebus_message.json").read_text())
    body = json.loads((FIXTURES / saved.pop("body_file")).read_text())
    path = tmp_path / "inline.json"
    path.write_text(json.dumps({**saved, "body": body}))
    assert main(["decode", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["events"][0]["record"]["msdyn_amount"] == {"$decimal": "42.75"}


@pytest.mark.parametrize("text", ["1900-01-01T12:00:00Z", "1900-01-01", "1900-01-01T00:00:00+01:00"])
@pytest.mark.parametrize("system", [System.FINANCE, System.DATAVERSE])
@pytest.mark.parametrize("kind", [FieldType.DATE, FieldType.DATETIME])
def test_finances_empty_date_as_text_empties_the_field_instead_of_parking_the_record(
    text: str, system: System, kind: FieldType
) -> None:
    # Rows are normalized before they are mapped, but a value can still arrive as text (an event's
    # payload, a replayed message): it means "no date", as it does in a row.
    assert to_wire(system, kind, text, "Field") is None
    assert to_wire(system, kind, "2026-03-01T12:00:00Z", "Field") is not None


@pytest.mark.parametrize(
    ("stored", "picked"),
    [
        ("2026-12-01T23:00:00Z", "2026-12-02"),  # Berlin, UTC+1
        ("2026-12-01T13:00:00Z", "2026-12-02"),  # Sydney in summer, UTC+11
        ("2026-12-01T18:30:00Z", "2026-12-02"),  # India, UTC+5:30
        ("2026-12-02T05:00:00Z", "2026-12-02"),  # New York, UTC-5
        ("2026-12-02T10:00:00Z", "2026-12-02"),  # Hawaii, UTC-10
        ("2026-12-02T00:00:00Z", "2026-12-02"),  # UTC, or a column of DateOnly behaviour
        ("2026-12-02T12:00:00Z", "2026-12-02"),  # noon UTC, as Finance writes a date
        ("2026-12-02T12:00:00+01:00", "2026-12-02"),  # the same instant as 11:00 UTC
        ("2026-12-02", "2026-12-02"),
    ],
)
def test_a_user_local_date_only_value_is_the_day_its_user_picked(stored: str, picked: str) -> None:
    day = user_local_day(stored if len(stored) == 10 else datetime.fromisoformat(stored))
    assert str(day) == picked
    assert to_wire(System.FINANCE, FieldType.DATE, day, "Field") == f"{picked}T12:00:00Z"


def test_the_empty_date_of_a_local_kind_datetime_east_of_utc_is_empty() -> None:
    # 1900-01-01T00:00 at +01:00 is 1899-12-31T23:00 in UTC; the offset says whose clock it was.
    assert parse_ms_date("/Date(-2208992400000+0100)/") is None
    assert parse_ms_date("/Date(-2208992400000)/") == datetime(1899, 12, 31, 23, tzinfo=UTC)
    assert parse_ms_date("/Date(-2208985200000-0100)/") is None


def test_a_text_column_that_only_looks_like_a_date_stays_text() -> None:
    # No DateTime holds a year past 9999, so the column is text: it is kept, not refused.
    assert ms_date_or_text("/Date(99999999999999999)/") == "/Date(99999999999999999)/"
    assert ms_date_or_text("/Date(253402300799000)/") == datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    long_text = "/Date(" + "1" * 200_000
    assert ms_date_or_text(long_text) is long_text
    with pytest.raises(ValueError, match="outside the calendar"):
        parse_ms_date("/Date(999999999999999)/")


def test_dates_at_the_calendars_edges_are_refused_as_values_not_raised_as_overflows() -> None:
    assert user_local_day(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)).isoformat() == "9999-12-31"
    with pytest.raises(ValueError, match="outside the calendar"):
        parse_iso_datetime("9999-12-31T23:30:00-01:00")
    row = normalize_finance_row({"BirthDate": "9999-12-31T23:30:00-01:00", "Name": "x"})
    assert row == {"BirthDate": "9999-12-31T23:30:00-01:00", "Name": "x"}
    with pytest.raises(MappingError, match="BirthDate"):
        to_wire(System.DATAVERSE, FieldType.DATE, row["BirthDate"], "BirthDate")


def test_many_images_merge_in_linear_time() -> None:
    images = {f"i{n}": {"Attributes": [{"key": f"c{n % 3}", "value": n}], "LogicalName": "x"} for n in range(20_000)}
    started = time.process_time()
    merged = dataverse_images(images)
    # Bounded work, not a timing claim: the quadratic merge took seconds here, the linear one milliseconds.
    assert time.process_time() - started < 2.0
    assert merged == {"c0": 19998, "c1": 19999, "c2": 19997}


@given(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)),
    st.sampled_from([timedelta(0), timedelta(hours=5, minutes=30), timedelta(hours=-11)]),
)
def test_an_instant_is_written_as_iso_8601_in_utc_whatever_zone_it_came_in(moment: datetime, shift: timedelta) -> None:
    """The wire writes instants through msgspec's RFC 3339 encoder, not isoformat(): the text must be
    what isoformat() gives in UTC, microseconds and all, and a time in another zone its UTC instant."""
    expected = moment.isoformat().replace("+00:00", "Z")
    assert utc_text(moment) == expected
    assert to_wire(System.FINANCE, FieldType.DATETIME, moment.astimezone(timezone(shift)), "T") == expected
