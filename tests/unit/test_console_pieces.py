"""The console's small pieces: the name a parked record is shown by, and the profile file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from shared.console.output import fail, print_parked, print_parked_one
from shared.console.profile import apply_profile, read_profile, write_profile
from shared.errors import OperatorError
from shared.operations.views import record_label


def event(record: dict[str, object]) -> str:
    return json.dumps({"flow": "f", "record": record})


@pytest.mark.parametrize(
    ("record", "label"),
    [
        ({"bookableresourcecategoryid": "8cd85455-9ced-4a1a-a0cf-4b69a5790234", "name": "Developer"}, "Developer"),
        ({"msdyn_projectid": "8cd85455-9ced-4a1a-a0cf-4b69a5790234", "msdyn_subject": "Fit-out"}, "Fit-out"),
        ({"dataAreaId": "usmf", "ProjectID": "PRJ-0042"}, "PRJ-0042"),
        ({"msdyn_actualid": "8cd85455-9ced-4a1a-a0cf-4b69a5790234", "msdyn_documentnumber": "ACT-7"}, "ACT-7"),
        ({"msdyn_actualid": "{8CD85455-9CED-4A1A-A0CF-4B69A5790234}"}, None),
    ],
)
def test_a_parked_record_is_shown_by_its_own_name_or_number(record: dict[str, object], label: str | None) -> None:
    assert record_label(event(record)) == label


def test_undecodable_parked_events_have_no_label() -> None:
    assert record_label("not json") is None
    assert record_label(json.dumps({"raw_body": "x"})) is None


def test_a_profile_round_trips_and_loses_to_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "cli.env"
    write_profile(path, {"PROJOPS_ADMIN_URL": "http://127.0.0.1:1", "PROJOPS_ADMIN_KEY": "k=1"}, title="t")
    assert read_profile(str(path)) == {"PROJOPS_ADMIN_URL": "http://127.0.0.1:1", "PROJOPS_ADMIN_KEY": "k=1"}
    assert path.stat().st_mode & 0o077 == 0  # it holds a key
    monkeypatch.setenv("PROJOPS_ADMIN_URL", "https://mine.example")
    # Set, then removed: so the key the profile adds is undone after the test.
    monkeypatch.setenv("PROJOPS_ADMIN_KEY", "")
    monkeypatch.delenv("PROJOPS_ADMIN_KEY")
    apply_profile(str(path))
    assert os.environ["PROJOPS_ADMIN_URL"] == "https://mine.example" and os.environ["PROJOPS_ADMIN_KEY"] == "k=1"


def test_a_broken_profile_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "cli.env"
    path.write_text("# ok\nPROJOPS_ADMIN_URL=x\nthis is not a setting\n")
    with pytest.raises(OperatorError, match="line 3"):
        read_profile(str(path))
    with pytest.raises(OperatorError, match="cannot read the profile"):
        read_profile(str(tmp_path / "missing.env"))


def test_a_parked_event_shows_its_values_as_text_not_as_terminal_markup(capsys: pytest.CaptureFixture[str]) -> None:
    label = "ACT-1 [/bold] [link=https://evil.example/]Click to fix[/link]"
    print_parked_one(
        {"id": "3f2a", "flow": "actuals", "label": label, "key": "k[red]", "reason": "mapping", "event": {}}
    )
    out = capsys.readouterr().out
    assert f"label         {label}" in out
    assert "key           k[red]" in out


HOSTILE = "Role\x1b]0;PWNED\x1b\\\x1b[1A\x1b[2K\x1b]8;;https://evil.example/\x1b\\click me\x1b]8;;\x1b\\\u202e"


def test_a_records_text_reaches_the_terminal_as_text_not_as_escape_sequences(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A name from either system could retitle the window, erase the rows above or plant a link."""
    row = {
        "id": "3f2a",
        "flow": "actuals",
        "label": HOSTILE,
        "key": "k\x1b[2J",
        "reason": "mapping",
        "status": "parked",
    }
    print_parked_one({**row, "error": f"Finance answered 400: {HOSTILE}", "event": {}})
    print_parked([{**row, "parked_at": "2026-12-04T10:00:00+00:00", "error": HOSTILE}])
    fail(f"no such record {HOSTILE}")
    captured = capsys.readouterr()
    for text in (captured.out, captured.err):
        assert "\x1b" not in text and "\u202e" not in text
    assert "Role\\x1b]0;PWNED" in captured.out and "\\u202e" in captured.err


def test_emoji_codes_in_a_services_text_are_printed_as_sent(capsys: pytest.CaptureFixture[str]) -> None:
    """rich turns :x: into an emoji by default: an error text or record value would read as another."""
    error = "Finance answered 400: field :x: is :warning: invalid"
    row = {"id": "3f2a", "flow": "actuals", "label": ":white_check_mark: ACT-1", "key": "k", "reason": "mapping"}
    print_parked_one({**row, "status": "parked", "error": error, "event": {"record": {"msdyn_name": ":x:"}}})
    print_parked([{**row, "status": "parked", "parked_at": "2026-12-04T10:00:00+00:00", "error": error}])
    out = capsys.readouterr().out
    assert "field :x: is :warning: invalid" in out and ":white_check_mark: ACT-1" in out
    assert '"msdyn_name": ":x:"' in out
    assert "\u274c" not in out and "\u26a0" not in out and "\u2705" not in out


def test_the_event_json_shows_a_control_character_by_its_json_escape(capsys: pytest.CaptureFixture[str]) -> None:
    """Neutralised before the dump, ESC printed as "\\\\x1b", which reads as a backslash in the value."""
    record = {"msdyn_name": "A\x1b[2JB", "msdyn_description": "line\u2028break"}
    print_parked_one({"id": "3f2a", "flow": "actuals", "key": "k", "reason": "mapping", "event": {"record": record}})
    out = capsys.readouterr().out
    assert '"msdyn_name": "A\\u001b[2JB"' in out
    assert '"msdyn_description": "line\\u2028break"' in out
    assert "\x1b" not in out and "\\\\" not in out


def test_a_line_separator_in_an_error_does_not_split_its_row(capsys: pytest.CaptureFixture[str]) -> None:
    """A terminal ends the line at U+2028 or U+2029 as at a newline: the row's other columns would slide."""
    row = {"id": "3f2a", "flow": "actuals", "key": "k", "reason": "mapping", "status": "parked"}
    print_parked([{**row, "parked_at": "2026-12-04T10:00:00+00:00", "error": "first\u2028second\u2029third"}])
    fail("no such record a\u2028b")
    captured = capsys.readouterr()
    assert "\u2028" not in captured.out + captured.err and "\u2029" not in captured.out
    [line] = [t for t in captured.out.splitlines() if t.startswith("3f2a")]
    assert "first\\u2028second\\u2029third" in line
    assert "a\\u2028b" in captured.err
