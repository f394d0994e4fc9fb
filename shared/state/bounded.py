"""What a sync run's row keeps, bounded so it always fits and always parses back.

Table Storage holds at most 32K UTF-16 units (64 KiB) in a string property and 1 MiB in an entity
(Understanding the Table service data model). A run's errors and options are JSON text, one property
each, so they are shortened item by item (long strings cut, the oldest errors dropped, a note saying
so), never cut mid-text. SQLite would hold more; it keeps the same, so the sandbox shows what a
deployment stores.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Characters of JSON text a run property holds. json.dumps writes ASCII (it escapes every other
# character), so a character is one UTF-16 unit; this leaves 2K units of the 32K to spare.
RUN_PROPERTY_CHARS = 30_000
# One error line kept: an exception's text can carry a whole response body.
ERROR_CHARS = 2_000
_DROPPED = re.compile(r"^([\d,]+) earlier errors? not kept")


def json_text(value: Any) -> str:
    return json.dumps(value, default=str)


def cut(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[:chars] + "…"


def errors_text(errors: list[str]) -> str:
    """The run's errors as stored: each cut to ERROR_CHARS, and the newest that fit, after a note
    counting the earlier ones dropped."""
    kept = [cut(str(error), ERROR_CHARS) for error in errors]
    text = json_text(kept)
    if len(text) <= RUN_PROPERTY_CHARS:
        return text
    dropped = 0
    if kept and (earlier := _DROPPED.match(kept[0])):
        dropped, kept = int(earlier.group(1).replace(",", "")), kept[1:]
    budget = RUN_PROPERTY_CHARS - 200  # the note
    size, start = 2, len(kept)
    while start > 0 and size + len(json_text(kept[start - 1])) + 2 <= budget:
        size += len(json_text(kept[start - 1])) + 2
        start -= 1
    dropped += start
    plural = "s" if dropped != 1 else ""
    note = f"{dropped:,} earlier error{plural} not kept (a run keeps what fits in {RUN_PROPERTY_CHARS:,} characters)"
    return json_text([note, *kept[start:]])


def errors_from(text: str) -> list[str]:
    """The errors stored; an earlier version cut their JSON at 30,000 characters, which no longer
    parses: such a row reads as one note with the text's head, not as an error that breaks every
    list of runs it is in."""
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if isinstance(value, list):
        return [str(item) for item in value]
    head = cut(text, ERROR_CHARS)
    return [f"the errors stored for this run were cut short by an earlier version and do not read back: {head}"]


def options_text(options: dict[str, Any]) -> str:
    """The run's options as stored: whole when they fit (they are small but for a reconcile's report,
    which reconcile bounds itself), else shortened (strings cut, lists' tails dropped) with a note."""
    text = json_text(options)
    if len(text) <= RUN_PROPERTY_CHARS:
        return text
    for chars, items in ((1_000, 100), (200, 20), (50, 5)):
        short = {str(k): _shorten(v, chars, items) for k, v in options.items()}
        short["shortened"] = f"stored shortened to fit a run row: {len(text):,} characters of options"
        shortened = json_text(short)
        if len(shortened) <= RUN_PROPERTY_CHARS:
            return shortened
    # Only what names the run (its kind, company, since) is left.
    scalars = [(k, v) for k, v in options.items() if v is None or isinstance(v, str | int | float | bool)]
    kept = {str(k)[:100]: v for k, v in scalars if len(json_text(v)) <= 200}
    return json_text({**dict(list(kept.items())[:50]), "shortened": f"{len(text):,} characters of options not kept"})


def _shorten(value: Any, chars: int, items: int) -> Any:
    if isinstance(value, str):
        return cut(value, chars)
    if isinstance(value, list | tuple):
        return [_shorten(item, chars, items) for item in value[:items]]
    if isinstance(value, dict):
        return {cut(str(k), chars): _shorten(v, chars, items) for k, v in list(value.items())[: items * 5]}
    return value
