"""Small pieces: exact JSON, settings errors, the decode and maps commands."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from shared.cli import main
from shared.jsonio import dumps, loads
from shared.settings import SettingsError, load_settings

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def test_json_keeps_every_digit_and_refuses_floats() -> None:
    assert (
        dumps({"a": Decimal("0.10"), "b": [Decimal("-1234567890.123456789")]})
        == '{"a":0.10,"b":[-1234567890.123456789]}'
    )
    assert loads('{"a": 0.10}')["a"] == Decimal("0.10")
    assert dumps({"s": "nul \x00 inside", "n": Decimal("1")}) == '{"s":"nul \\u0000 inside","n":1}'
    with pytest.raises(TypeError):
        dumps({"a": 0.1})


def test_a_flat_payload_is_written_as_the_general_path_writes_it() -> None:
    """A flat object goes through msgspec, anything else through the general writer: same text."""
    from datetime import UTC, date, datetime, timedelta, timezone

    flat = {
        "money": Decimal("150.00"),
        "tiny": Decimal("0.0000001"),
        "hundred": Decimal("1E+2"),
        "negative": Decimal("-0.5"),
        "at": datetime(2026, 1, 2, 3, 4, 5, 123000, tzinfo=UTC),
        "elsewhere": datetime(2026, 1, 2, 4, 4, 5, tzinfo=timezone(timedelta(hours=1))),
        "day": date(2026, 1, 2),
        "text": 'é \x00 "quoted"',
        "flag": True,
        "n": 7,
        "none": None,
    }
    general = dumps({"wrapped": flat})
    assert dumps(flat) == general[len('{"wrapped":') : -1]
    assert json.loads(dumps(flat))["tiny"] == 1e-07 and '"tiny":0.0000001' in dumps(flat)
    assert '"hundred":100' in dumps(flat) and '"elsewhere":"2026-01-02T03:04:05Z"' in dumps(flat)
    for refused in ({"a": 0.1}, {"a": Decimal("NaN")}, {"a": datetime(2026, 1, 2)}):
        with pytest.raises((TypeError, ValueError)):
            dumps(refused)


def test_missing_settings_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PROJOPS_DATAVERSE_URL", "PROJOPS_FINANCE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PROJOPS_AUTH_MODE", "secret")
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert "PROJOPS_DATAVERSE_URL" in str(error.value) and "PROJOPS_FINANCE_URL" in str(error.value)


def test_malformed_setting_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROJOPS_DATAVERSE_URL", "contoso.crm.dynamics.com")
    monkeypatch.setenv("PROJOPS_FINANCE_URL", "https://contoso.operations.dynamics.com")
    monkeypatch.setenv("PROJOPS_AUTH_MODE", "secret")
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert "PROJOPS_DATAVERSE_URL" in str(error.value)


def test_decode_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decode", str(FIXTURES / "synthetic_dataverse_servicebus_message.json")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["kind"] == "dataverse-servicebus"
    assert printed["events"][0]["record"]["msdyn_amount"] == {"$decimal": "42.75"}


def test_decode_command_fails_on_undecodable_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"MessageName": ')
    assert main(["decode", str(bad)]) == 2
    assert "malformed JSON" in capsys.readouterr().err


def test_maps_markdown_is_current() -> None:
    from functions.catalog import CATALOG
    from shared.cli import maps_markdown

    expected = maps_markdown([m.describe() for m in CATALOG.maps])
    current = (Path(__file__).resolve().parents[2] / "docs" / "maps.md").read_text()
    assert current == expected, "docs/maps.md is stale: run `make maps-doc`"


def test_every_switched_pair_names_an_on_off_setting() -> None:
    from functions.catalog import CATALOG
    from shared.settings import Settings

    switched = [(m.name, f.only_with) for m in CATALOG.maps for f in m.fields if f.only_with]
    assert ("contract-milestones", "milestone_invoiced_cutover") in switched
    for flow, name in switched:
        field = Settings.model_fields.get(name or "")
        assert field is not None and field.annotation is bool, f"{flow}: no on/off setting {name}"
        assert field.default is False, f"{flow}: {name} must be off unless switched on"
