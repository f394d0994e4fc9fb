"""How a reconcile report and a record's trace read for a person, and the progress line while paging."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from shared.operations.reconcile import KINDS, Drift, ReconcileReport

SHOWN_PER_KIND = 20


def _key(drift: Drift) -> str:
    return ", ".join(f"{name}={value}" for name, value in drift.key.items()) or str(drift.source_key)


def report_text(report: ReconcileReport) -> str:
    lines = [f"reconcile {report.flow}  ({report.id})"]
    totals = report.totals
    lines.append(
        f"source rows {totals['source_rows']:,} (+{report.filtered_out:,} filtered out)  target rows "
        f"{totals['target_rows']:,}  matched {totals['matched']:,}  missing {totals['missing']:,}  "
        f"different {totals['different']:,}  orphaned {totals['orphaned']:,}  unmappable {totals['unmappable']:,}"
    )
    lines.append("")
    lines.append(
        f"{'company':<8} {'source':>9} {'target':>9} {'matched':>9} {'missing':>8} {'differ':>8} {'orphan':>8}"
    )
    for name, company in sorted(report.companies.items()):
        lines.append(
            f"{name:<8} {company.source_rows:>9,} {company.target_rows:>9,} {company.matched:>9,} "
            f"{company.missing_count:>8,} {company.different_count:>8,} {company.orphaned_count:>8,}"
        )
    money = [(name, currency, t) for name, c in sorted(report.companies.items()) for currency, t in c.money.items()]
    if money:
        lines.append("")
        lines.append(
            f"{'company':<8} {'currency':<9} {'source n':>9} {'source sum':>16} {'target n':>9} "
            f"{'target sum':>16} {'difference':>14}"
        )
        for name, currency, t in sorted(money):
            lines.append(
                f"{name:<8} {currency:<9} {t.source_count:>9,} {t.source_sum:>16,} {t.target_count:>9,} "
                f"{t.target_sum:>16,} {t.difference:>14,}"
            )
    for name, company in sorted(report.companies.items()):
        for kind in KINDS:
            listed: list[Drift] = getattr(company, kind)
            if not listed:
                continue
            lines.append("")
            lines.append(f"{name} {kind} ({getattr(company, f'{kind}_count'):,}):")
            for drift in listed[:SHOWN_PER_KIND]:
                lines.append(f"  {_key(drift)}" + (f"  (source {drift.source_key})" if drift.source_key else ""))
                for difference in drift.fields:
                    lines.append(
                        f"      {difference.field}: source {difference.source!r} | target {difference.target!r}"
                    )
                if drift.error:
                    lines.append(f"      {drift.error}")
            more = getattr(company, f"{kind}_count") - min(len(listed), SHOWN_PER_KIND)
            if more > 0:
                lines.append(f"  ... and {more:,} more (--json lists up to the report's limit)")
    lines.extend(f"note: {note}" for note in report.notes)
    if report.repair:
        r = report.repair
        lines.append(
            f"repair: {r.get('sent', 0):,} rows sent to flow-{report.flow}, {r.get('deletes', 0):,} deletes, "
            f"{r.get('orphans_listed', 0):,} orphans listed (the map allows no deletes)"
        )
    lines.append("in step" if report.drift == 0 else f"drift: {report.drift:,} rows")
    return "\n".join(lines)


class ProgressLine:
    """One line on stderr, rewritten at most every 0.2 s while the pages come in."""

    def __init__(self, flow: str, stream: TextIO = sys.stderr) -> None:
        self.flow = flow
        self.stream = stream
        self.counts: dict[str, int] = {}
        self._shown = 0.0

    def __call__(self, side: str, rows: int) -> None:
        self.counts[side] = rows
        now = time.monotonic()
        if now - self._shown < 0.2:
            return
        self._shown = now
        read = "  ".join(f"{name} {count:,} rows" for name, count in self.counts.items())
        print(f"\r{self.flow}: {read}", end="", file=self.stream, flush=True)

    def done(self) -> None:
        if self.counts:
            print(file=self.stream)


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
