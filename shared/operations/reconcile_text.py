"""How a reconcile report and a record's trace read for a person, and the progress bars while paging."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from shared.operations.reconcile import KINDS, ReconcileReport

SHOWN_PER_KIND = 20


def _key(drift: dict[str, Any]) -> str:
    return ", ".join(f"{name}={value}" for name, value in drift["key"].items()) or str(drift.get("source_key"))


def report_text(report: ReconcileReport | dict[str, Any]) -> str:
    """The report as a person reads it; from the report itself or its stored form (the admin API's)."""
    data = report.to_dict() if isinstance(report, ReconcileReport) else report
    companies: dict[str, Any] = data.get("companies", {})
    lines = [f"reconcile {data['flow']}  ({data['id']})"]
    totals = data["totals"]
    lines.append(
        f"source rows {totals['source_rows']:,} (+{data.get('filtered_out', 0):,} filtered out)  target rows "
        f"{totals['target_rows']:,}  matched {totals['matched']:,}  missing {totals['missing']:,}  "
        f"different {totals['different']:,}  orphaned {totals['orphaned']:,}  unmappable {totals['unmappable']:,}"
    )
    lines.append("")
    lines.append(
        f"{'company':<8} {'source':>9} {'target':>9} {'matched':>9} {'missing':>8} {'differ':>8} {'orphan':>8}"
    )
    for name, company in sorted(companies.items()):
        lines.append(
            f"{name:<8} {company['source_rows']:>9,} {company['target_rows']:>9,} {company['matched']:>9,} "
            f"{company['missing_count']:>8,} {company['different_count']:>8,} {company['orphaned_count']:>8,}"
        )
    money = [(name, currency, t) for name, c in sorted(companies.items()) for currency, t in c["money"].items()]
    if money:
        lines.append("")
        lines.append(
            f"{'company':<8} {'currency':<9} {'source n':>9} {'source sum':>16} {'target n':>9} "
            f"{'target sum':>16} {'difference':>14}"
        )
        for name, currency, t in sorted(money, key=lambda item: (item[0], item[1])):
            lines.append(
                f"{name:<8} {currency:<9} {t['source_count']:>9,} {Decimal(str(t['source_sum'])):>16,} "
                f"{t['target_count']:>9,} {Decimal(str(t['target_sum'])):>16,} {Decimal(str(t['difference'])):>14,}"
            )
    for name, company in sorted(companies.items()):
        for kind in KINDS:
            listed: list[dict[str, Any]] = company[kind]
            if not listed:
                continue
            lines.append("")
            lines.append(f"{name} {kind} ({company[f'{kind}_count']:,}):")
            for drift in listed[:SHOWN_PER_KIND]:
                source_key = drift.get("source_key")
                lines.append(f"  {_key(drift)}" + (f"  (source {source_key})" if source_key else ""))
                for diff in drift.get("fields", []):
                    lines.append(f"      {diff['field']}: source {diff['source']!r} | target {diff['target']!r}")
                if drift.get("error"):
                    lines.append(f"      {drift['error']}")
            more = company[f"{kind}_count"] - min(len(listed), SHOWN_PER_KIND)
            if more > 0:
                lines.append(f"  ... and {more:,} more (--json lists up to the report's limit)")
    lines.extend(f"note: {note}" for note in data.get("notes", []))
    repair = data.get("repair") or {}
    if repair:
        lines.append(
            f"repair: {repair.get('sent', 0):,} rows sent to flow-{data['flow']}, {repair.get('deletes', 0):,} "
            f"deletes, {repair.get('orphans_listed', 0):,} orphans listed (the map allows no deletes)"
        )
    drift_rows = totals["missing"] + totals["different"] + totals["orphaned"] + totals["unmappable"]
    lines.append("in step" if drift_rows == 0 else f"drift: {drift_rows:,} rows")
    return "\n".join(lines)


class PagingBars:
    """A bar per side while reconcile pages through it (rows read so far; neither side's total is
    known until its last page), on stderr, in a terminal only."""

    def __init__(self, flow: str) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        from shared.console.output import console

        out = console(stderr=True)
        self._bars = Progress(
            TextColumn(f"{flow} {{task.description:<7}}"),
            BarColumn(),
            TextColumn("{task.completed:,} rows"),
            TimeElapsedColumn(),
            console=out,
            disable=not out.is_terminal,
        )
        self._tasks: dict[str, Any] = {}
        self._bars.start()

    def __call__(self, side: str, rows: int) -> None:
        if side not in self._tasks:
            self._tasks[side] = self._bars.add_task(side, total=None)
        self._bars.update(self._tasks[side], completed=rows)

    def done(self) -> None:
        self._bars.stop()


def trace_text(trace: dict[str, Any]) -> str:
    lines = [f"trace {trace['flow']} {trace['key']}"]
    state = trace.get("state")
    if state is None:
        lines.append("sync state: none (never applied)")
    else:
        lines.append(
            f"sync state: version {state['version']}  payload hash {str(state['payload_hash'])[:12]}  "
            f"target key {state['target_key']}  tombstone {state['tombstone']}  updated {state['updated_at']}"
        )
    lines.append("outcomes:")
    for outcome in trace.get("outcomes", []):
        detail = f"  {outcome['detail']}" if outcome.get("detail") else ""
        lines.append(
            f"  {outcome['at']}  {outcome['kind']:<11} {outcome.get('reason') or '':<18} "
            f"{outcome.get('source') or ''} {outcome.get('operation') or ''}{detail}"
        )
    if not trace.get("outcomes"):
        lines.append("  none recorded")
    for parked in trace.get("parked", []):
        lines.append(f"parked {parked['id']} ({parked['status']}): {parked['reason']}: {parked['error']}")
    source, target = trace.get("source"), trace.get("target")
    lines.append(f"source row: {'absent' if source is None else 'present'}")
    lines.append(f"target row: {'absent' if target is None else 'present'}")
    if trace.get("mapping_error"):
        lines.append(f"mapping: {trace['mapping_error']}")
    for difference in trace.get("differences", []):
        lines.append(f"  {difference['field']}: should be {difference['source']!r} | holds {difference['target']!r}")
    return "\n".join(lines)
