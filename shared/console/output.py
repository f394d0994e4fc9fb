"""How the command line prints: rich tables that line up, or the same data as JSON with --json.

rich (well kept, no dependencies of note) measures cells, truncates the widest column to the terminal
and draws progress bars, which hand-padded f-strings did badly (columns slid on long flow names, and
there was no progress at all).
"""

from __future__ import annotations

import io
import json
import shutil
import sys
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from shared.extensions import WHAT_TO_ADD
from shared.values import utc_now

# What either system sends reaches a terminal here (a record's name, a key, a service's error text). A
# terminal obeys an ESC or CSI sequence in it: retitle the window, erase the rows above, plant a link
# that reads as another. Control characters (but tab and newline) and the bidirectional overrides that
# reorder what a line shows are printed as their escapes instead; so are the line and paragraph
# separators, at which a terminal breaks the line and a table row's columns slide.
_CONTROLS = [*range(0x00, 0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0), 0x061C, 0x200E, 0x200F, 0x2028, 0x2029]
_UNPRINTABLE = {c: f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}" for c in _CONTROLS}
_UNPRINTABLE.update({c: f"\\u{c:04x}" for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))})


def printable(value: Any) -> Any:
    """`value` with every string in it safe to print on a terminal (dicts and lists walked)."""
    if isinstance(value, str):
        return value.translate(_UNPRINTABLE)
    if isinstance(value, dict):
        return {printable(k): printable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [printable(item) for item in value]
    return value


def console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    # In a pipe rich would assume 80 columns; a wide page keeps rows on one line for grep and less.
    width = None if stream.isatty() else max(shutil.get_terminal_size((240, 24)).columns, 240)
    # Markup and emoji codes off: an error text such as "Finance 500 [x]: ..." or ":x:" is data, not a
    # style or a picture.
    return Console(file=stream, width=width, highlight=False, soft_wrap=False, markup=False, emoji=False)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def fail(message: str) -> int:
    """An expected failure: one line on stderr, exit status 2."""
    sys.stderr.write(f"projops-sync: {printable(message)}\n")
    return 2


def _table(*columns: str, right: tuple[str, ...] = ()) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in columns:
        table.add_column(column, justify="right" if column in right else "left", no_wrap=column != columns[-1])
    return table


def age(iso: str | None) -> str:
    if not iso:
        return "-"
    seconds = (utc_now() - datetime.fromisoformat(iso)).total_seconds()
    return short_duration(seconds)


def short_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def flow_state(row: dict[str, Any]) -> str:
    if row.get("needs_extension"):
        return "off"
    paused = row.get("paused")
    return "?" if paused is None else ("paused" if paused else "running")


_COUNTS = ("backlog", "oldest", "dead", "parked", "written 1h", "skipped 1h", "retried 1h", "parked 1h", "written 24h")


def status_table(rows: list[dict[str, Any]]) -> Table:
    table = _table("flow", "state", *_COUNTS, "last write", "last reconcile", right=_COUNTS)
    for row in rows:
        backlog = row.get("backlog") or {}
        hour, day = row.get("last_hour") or {}, row.get("last_day") or {}
        table.add_row(
            row["flow"],
            flow_state(row),
            str(backlog.get("active", "-")),
            short_duration(backlog.get("oldest_age_seconds")),
            str(backlog.get("dead_lettered", "-")),
            str(row["parked"]),
            str(hour.get("written", 0)),
            str(hour.get("skipped", 0)),
            str(hour.get("retry-later", 0)),
            str(hour.get("parked", 0)),
            str(day.get("written", 0)),
            f"{age(row.get('last_write'))} ago" if row.get("last_write") else "-",
            f"{age(row['last_reconcile'])} ago, drift {row.get('last_drift')}" if row.get("last_reconcile") else "-",
        )
    return table


def print_status(rows: list[dict[str, Any]], out: Console | None = None) -> None:
    out = out or console()
    rows = printable(rows)
    out.print(status_table(rows))
    for row in rows:
        if row.get("needs_extension"):
            needs = row["needs_extension"]
            out.print(f"{row['flow']}: off until Finance has the extension {needs}: {WHAT_TO_ADD.get(needs, '')}")


def status_text(rows: list[dict[str, Any]]) -> str:
    """The status table as text, as a pipe gets it."""
    out = Console(width=240, file=io.StringIO(), highlight=False, markup=False, emoji=False, soft_wrap=False)
    print_status(rows, out)
    assert isinstance(out.file, io.StringIO)
    return out.file.getvalue()


def print_parked(rows: list[dict[str, Any]]) -> None:
    rows = printable(rows)
    table = _table("id", "age", "flow", "record", "key", "reason", "error")
    for row in rows:
        status = "" if row["status"] == "parked" else f" [{row['status']}]"
        table.add_row(
            row["id"],
            age(row["parked_at"]),
            row["flow"],
            row.get("label") or "-",
            row["key"][:40],
            row["reason"] + status,
            (row.get("error") or "").replace("\n", " ")[:160],
        )
    out = console()
    out.print(table)
    out.print(f"{len(rows)} event(s)")


def print_parked_one(row: dict[str, Any]) -> None:
    out = console()
    # The event is dumped before it is made printable: JSON's own escapes (\u001b) then show a
    # control character, where printable's \x1b would be escaped again and read as a backslash.
    event = printable(json.dumps(row.get("event"), indent=2, default=str))
    row = printable(row)
    for name in (
        "id",
        "flow",
        "label",
        "key",
        "reason",
        "status",
        "attempts",
        "parked_at",
        "closed_by",
        "closed_reason",
    ):
        if row.get(name) not in (None, ""):
            # The values come from records and from people (a label, a key, a reason): text, never markup.
            out.print(Text.assemble((f"{name:<14}", "bold"), str(row[name])))
    out.print(Text("error", style="bold"))
    out.print(row.get("error") or "-", markup=False)
    out.print(Text("event", style="bold"))
    out.print(event, markup=False)


def run_counts(run: dict[str, Any]) -> str:
    landed = run.get("landed") or {}
    return (
        f"fed {run['counts'].get('fed', 0):,}, landed {landed.get('landed', 0):,} "
        f"(written {landed.get('written', 0):,}, skipped {landed.get('skipped', 0):,}, "
        f"parked {landed.get('parked', 0):,}, retrying {landed.get('retry-later', 0):,})"
    )


def print_runs(runs: list[dict[str, Any]]) -> None:
    runs = printable(runs)
    table = _table(
        "run",
        "flow",
        "status",
        "fed",
        "written",
        "skipped",
        "parked",
        "started",
        "errors",
        right=("fed", "written", "skipped", "parked"),
    )
    for run in runs:
        landed = run.get("landed") or {}
        status = run["status"] if not (run["status"] == "completed" and not run.get("done")) else "landing"
        table.add_row(
            run["id"],
            run["flow"],
            status,
            f"{run['counts'].get('fed', 0):,}",
            f"{landed.get('written', 0):,}",
            f"{landed.get('skipped', 0):,}",
            f"{landed.get('parked', 0):,}",
            f"{age(run['started_at'])} ago",
            "; ".join(run.get("errors") or [])[-120:] or "-",
        )
    console().print(table)


def print_check_maps(result: dict[str, Any]) -> None:
    out = console()
    result = printable(result)
    problems = result["problems"]
    if not problems:
        out.print("every map matches both systems' metadata")
    else:
        table = _table("flow", "system", "what", "name", "problem")
        for p in problems:
            table.add_row(p["flow"], p["system"], p["what"], p["name"], p["detail"])
        out.print(table)
    for line in result.get("waiting_for_extensions") or []:
        out.print(line, markup=False)


def print_maps(descriptions: list[dict[str, Any]]) -> None:
    descriptions = printable(descriptions)
    table = _table("flow", "direction", "source", "target", "operations")
    for d in descriptions:
        table.add_row(
            d["flow"], d["direction"], d["source"]["entity_set"], d["target"]["entity_set"], ",".join(d["operations"])
        )
    console().print(table)
