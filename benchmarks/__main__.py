"""`make bench`: measure, print a table, and record the figures in docs/benchmarks.md."""

from __future__ import annotations

import argparse
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import (
    end_to_end,
    engine_overhead,
    finance_backlog,
    initial_sync_landed,
    instructions,
    large_document,
    reconcile_throughput,
    sandbox_idle,
    sync_at_the_ceiling,
)

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
# Issue 12's aim for the feed: 100,000 rows in under 2 minutes.
FEED_AIM_ROWS, FEED_AIM_SECONDS = 100_000, 120.0


def _machine() -> str:
    import os

    return (
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores, {platform.machine()}"
    )


def record(section: str, text: str) -> None:
    """Replace one section of docs/benchmarks.md (between its markers), keeping the others."""
    begin, end = f"<!-- {section}:begin -->", f"<!-- {section}:end -->"
    current = DOC.read_text() if DOC.exists() else "# Benchmarks\n\nWritten by `make bench`.\n"
    block = f"{begin}\n{text.rstrip()}\n{end}"
    if begin in current and end in current:
        head, rest = current.split(begin, 1)
        _, tail = rest.split(end, 1)
        current = head + block + tail
    else:
        current = current.rstrip() + "\n\n" + block + "\n"
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(current)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--sessions", type=int, default=32)
    parser.add_argument("--sync-rows", type=int, default=100_000)
    parser.add_argument("--document-lines", type=int, default=5000)
    parser.add_argument("--ceiling-rows", type=int, default=100_000)
    parser.add_argument("--reconcile-rows", type=int, default=100_000)
    parser.add_argument("--backlog-rows", type=int, default=4000)
    parser.add_argument("--backlog-sessions", type=int, default=32)
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument(
        "--only",
        choices=[
            "overhead",
            "instructions",
            "end-to-end",
            "initial-sync",
            "large-document",
            "ceiling",
            "reconcile",
            "finance-batch",
            "sandbox-idle",
        ],
    )
    args = parser.parse_args(argv)
    when = datetime.now(UTC).strftime("%Y-%m-%d")

    if args.only in (None, "overhead"):
        measure_overhead(args.events, when)
    if args.only in (None, "instructions"):
        measure_instructions(when)
    if args.only in (None, "end-to-end"):
        measure_end_to_end(args.records, args.latency_ms, args.sessions, when)
    if args.only in (None, "initial-sync"):
        measure_initial_sync(args.sync_rows, args.latency_ms, args.backlog_sessions, when)
    if args.only in (None, "large-document"):
        measure_large_document(args.document_lines, args.latency_ms, when)
    if args.only in (None, "ceiling"):
        measure_ceiling(args.ceiling_rows, when)
    if args.only in (None, "reconcile"):
        measure_reconcile(args.reconcile_rows, when)
    if args.only in (None, "finance-batch"):
        measure_finance_backlog(args.backlog_rows, args.latency_ms, args.backlog_sessions, when)
    if args.only in (None, "sandbox-idle"):
        measure_sandbox_idle(args.idle_seconds, when)
    return 0


# When issue 12 was filed, the served sandbox spent this share of a core doing nothing.
IDLE_WHEN_FILED = 0.14


def measure_sandbox_idle(seconds: float, when: str) -> None:
    idle = sandbox_idle.run(seconds)
    table = (
        "| quiet spell | CPU, share of a core | when filed | ratio | wake-ups a second | threads |\n"
        "|---|---|---|---|---|---|\n"
        f"| {idle.seconds:.0f} s | {idle.share_of_core:.2%} | {IDLE_WHEN_FILED:.0%} | "
        f"{idle.share_of_core / IDLE_WHEN_FILED:.3f}x | {idle.wakeups_per_second:.1f} | {idle.threads} |"
    )
    print()
    print("The served sandbox, idle: its process tree's CPU and wake-ups while nothing happens")
    print(table)
    record(
        "sandbox-idle",
        "## The served sandbox while nothing happens\n\n"
        "`python -m sandbox --serve` runs the demo and keeps the simulators, the bus and the functions' host\n"
        "waiting. Two seconds after it says it is serving, its process tree's CPU time and context switches\n"
        f"(voluntary and not, every thread) are read from /proc before and after {seconds:.0f} quiet seconds. The\n"
        "goal is no polling: every receiver waits on its queue and is woken by a message, not by a timer.\n\n"
        f"Measured {when} on {_machine()}:\n\n{table}\n",
    )


def measure_finance_backlog(records: int, latency_ms: float, sessions: int, when: str) -> None:
    results = finance_backlog.run(records, latency_ms, sessions)
    table = (
        "| rows | latency per call | sessions | Finance writes | seconds | rows/s | Finance requests per row "
        "| $batch requests | rows per $batch |\n|---|---|---|---|---|---|---|---|---|\n"
    )
    for r in results:
        written_as = f"`$batch` up to {r.batch_rows}, a changeset a row" if r.batch_rows > 1 else "one request a row"
        per_batch = f"{r.batched_rows / r.batches:.1f}" if r.batches else "-"
        table += (
            f"| {r.records:,} | {latency_ms:.0f} ms | {sessions} | {written_as} | {r.seconds:.1f} | "
            f"{r.per_second:,.0f} | {r.requests_per_row:.3f} | {r.batches:,} | {per_batch} |\n"
        )
    print()
    print("Dataverse → Finance backlog: actuals waiting on the topic, Finance $batch on and off")
    print(table)
    record(
        "finance-backlog",
        "## A Dataverse → Finance backlog, Finance `$batch` on and off\n\n"
        f"{records:,} msdyn_actual Create messages wait on the `dataverse-changes` topic (a catch-up after a\n"
        f"pause); the router and `flow_actuals` run on the local host with {sessions} sessions at once and\n"
        "stage the actuals in the Finance simulator, which with the Dataverse one runs in a process of its\n"
        f"own and answers every call after {latency_ms:.0f} ms. Timed until every actual is staged. First with\n"
        "the default `PROJOPS_FINANCE_BATCH_ROWS` (rows that find the Finance limiter full go as one `$batch`,\n"
        "one changeset a row), then at 0 (every row its own request), each in a fresh process pair. The\n"
        "simulator's latency is per request, not per operation: a real Finance spends its own time on every\n"
        "row however it arrives, so this shows what batching saves in round trips and requests, not in\n"
        "Finance's work (inferred; not measured against a real environment).\n\n"
        f"Measured {when} on {_machine()}:\n\n{table}",
    )


def measure_reconcile(rows: int, when: str) -> None:
    # Two sizes: the peak must stay flat as the row count grows five times.
    results = [reconcile_throughput.run(max(rows // 5, 1)), reconcile_throughput.run(rows)]
    table = "| rows a side | seconds | rows/s | peak RSS | growth during the run | different | missing |\n"
    table += "|---|---|---|---|---|---|---|\n"
    for r in results:
        table += (
            f"| {r.rows:,} | {r.seconds:.1f} | {r.per_second:,.0f} | {r.peak_rss_mb:.0f} MB | "
            f"{r.growth_mb:.0f} MB | {r.different:,} | {r.missing:,} |\n"
        )
    print()
    print("Reconcile: resource-roles, N rows in Dataverse against N in Finance, over HTTP")
    print(table)
    record(
        "reconcile",
        "## Reconcile throughput and memory\n\n"
        "`reconcile resource-roles` with N Dataverse rows against N Finance rows (one in a thousand\n"
        "renamed in Finance, one in ten thousand missing there): both sides paged over HTTP 5,000 rows a\n"
        "page, every source row mapped by the flow's targets stage and spilled by target key to a local\n"
        "SQLite file, every target row looked up in it. Reconcile runs in a process of its own, so its\n"
        "peak RSS is its own (the simulators' tables are in the parent); growth is the peak less the\n"
        "RSS before the run. The peak must not grow with the row count.\n\n"
        f"Measured {when} on {_machine()}:\n\n{table}",
    )


def measure_overhead(events: int, when: str) -> None:
    overhead = engine_overhead.run(events)
    table = (
        "| events | events/s (one core) | p50 per event | p99 per event | peak RSS |\n"
        "|---|---|---|---|---|\n"
        f"| {overhead.events:,} | {overhead.per_second:,.0f} | {overhead.p50_us:.0f} µs | "
        f"{overhead.p99_us:.0f} µs | {overhead.peak_rss_mb:.0f} MB |\n\n"
        "| measured in the same run, in alternating blocks (medians) | figure | goal |\n|---|---|---|\n"
        f"| per event / orjson floor ({overhead.engine_block_us:.0f} µs / {overhead.floor_us:.1f} µs) | "
        f"{overhead.to_floor:.1f}x | ≤ 3x |\n"
        f"| 200-column Create / 10-column Create, as the registered step sends them "
        f"({overhead.wide_us:.0f} µs / {overhead.narrow_us:.0f} µs) | {overhead.wide_to_narrow:.2f}x | ≤ 2x |\n"
        f"| the same, from a step registered with a whole-row post image "
        f"({overhead.full_wide_us:.0f} µs / {overhead.full_narrow_us:.0f} µs) | "
        f"{overhead.full_wide_to_narrow:.2f}x | ≤ 2x |\n"
        f"| that shape's floor: the 10-column cost plus msgspec skipping the 200-column body's extra bytes | "
        f"{overhead.full_scan_bound:.2f}x | |"
    )
    print("Engine overhead (decode + route + map + serialize, msdyn_actual Create, no network)")
    print(table)
    record(
        "engine-overhead",
        "## Engine overhead per event\n\n"
        "Decode a realistic msdyn_actual Create message (RemoteExecutionContext JSON with a post image),\n"
        "route it, send it through the ChangeEvent JSON of the flow queue, map it and serialize the Finance\n"
        f"request, with lookups from a warm cache. Aim: 5,000 events/s on one core.\n\n"
        "The width ratio is a bookable resource category Create of 200 columns against one of 10, both read\n"
        "by the resource-roles map (3 columns). As the step `register-steps` registers sends it, Target holds\n"
        "every column the Create set and the post image only the columns the flows read; a step registered\n"
        "with a whole-row image sends every column twice. For that shape the last row is the floor: the\n"
        "10-column message's cost plus what msgspec's scanner takes to skip the wide body's extra bytes.\n\n"
        f"Measured {when} on {_machine()}:\n\n{table}\n",
    )


def measure_instructions(when: str) -> None:
    if not instructions.available():
        # Not a failure of the code: the count needs a tool the bench does not install.
        print("\nInstructions per event: skipped, valgrind is not installed (apt install valgrind)")
        return
    counts = instructions.run()
    per = counts.per_event
    table = (
        "| counted under callgrind, per event | instructions | ratio | timed ratio's goal |\n|---|---|---|---|\n"
        f"| engine / orjson floor | {per['engine']:,} / {per['floor']:,} | {counts.to_floor:.2f}x | ≤ 3x |\n"
        f"| 200-column Create / 10-column Create, as the registered step sends them | "
        f"{per['wide']:,} / {per['narrow']:,} | {counts.wide_to_narrow:.2f}x | ≤ 2x |"
    )
    print()
    print("Engine overhead counted in instructions (the same workloads, under valgrind's callgrind)")
    print(table)
    record(
        "engine-instructions",
        "## Engine overhead counted in instructions\n\n"
        "The workloads of the section above, each run under valgrind's callgrind in a child process with\n"
        f"no events and with {instructions.EVENTS:,}; the difference over {instructions.EVENTS:,} is one event's\n"
        "instructions. Unlike the timed figures these do not move with the machine's load, so they show\n"
        "a change of a percent for what it is. They are not the cost: C loops such as orjson's or msgspec's\n"
        "scanner retire more instructions per cycle than the interpreter, so the engine's timed ratio to\n"
        "the floor is larger than its counted one, and a width ratio, where the extra work is msgspec\n"
        "scanning bytes, smaller. The goals stay the timed ones.\n\n"
        f"Measured {when} on {_machine()}:\n\n{table}\n",
    )


def measure_end_to_end(records: int, latency_ms: float, sessions: int, when: str) -> None:
    # The small run first: peak RSS only grows, so the large run's figure then covers both.
    small = end_to_end.run(min(1000, records), latency_ms, sessions)
    e2e = end_to_end.run(records, latency_ms, sessions)
    e2e_table = (
        "| records | latency per call | sessions | records/s | latency-bound limit | share of limit (goal ≥ 0.5) "
        "| HTTP calls per record (goal ≤ 1.02) | functions' CPU per record | peak RSS |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
        + "\n".join(
            f"| {r.records:,} | {r.latency_ms:.0f} ms | {r.sessions} | {r.per_second:,.0f} | "
            f"{r.limit_per_second:,.0f}/s | {r.share_of_limit:.2f} | {r.calls_per_record:.3f} | "
            f"{r.cpu_ms_per_record:.2f} ms | {r.peak_rss_mb:.0f} MB |"
            for r in (small, e2e)
        )
    )
    print()
    print("End to end: msdyn_actual Create messages → router → flow-actuals → Finance staging (sandbox)")
    print(e2e_table)
    record(
        "end-to-end",
        "## End-to-end throughput through the local path\n\n"
        "msdyn_actual Create messages exactly as the Dataverse simulator's plug-in step emits them go onto\n"
        "the `dataverse-changes` topic; the real router and `flow_actuals` run on the local host and write\n"
        "to the Finance simulator, which (like the Dataverse simulator) answers every call after a fixed\n"
        "latency. Timed until every record is staged in Finance. The simulators run in a process of their\n"
        "own, so this process spends only what an Azure instance would (the bus stands in for Service Bus);\n"
        "its CPU per record is the functions'. The latency-bound limit is sessions / latency / calls per\n"
        "record: every session always waiting on a call. Each run in a fresh process pair; peak RSS is this\n"
        "process's, and must not grow with the record count.\n\n"
        f"Measured {when} on {_machine()}:\n\n{e2e_table}\n",
    )


def measure_initial_sync(rows: int, latency_ms: float, sessions: int, when: str) -> None:
    figures = initial_sync_landed.run(rows, latency_ms, sessions)
    floor = FEED_AIM_ROWS / FEED_AIM_SECONDS
    feed_table = (
        f"| next page | rows | pages | seconds | rows/s fed | aim (100,000 in {FEED_AIM_SECONDS:.0f} s: "
        f"{floor:,.0f}/s) | ratio to the aim |\n|---|---|---|---|---|---|---|\n"
        + "\n".join(
            f"| {'read ahead' if r.prefetch else 'read after the page is fed'} | {r.rows:,} | {r.pages} | "
            f"{r.seconds:.1f} | {r.per_second:,.0f} | {floor:,.0f}/s | {r.per_second / floor:.1f}x |"
            for r in (figures.fed_in_turn, figures.fed_ahead)
        )
        + f"\n\nRead ahead / read after: {figures.fed_ahead.per_second / figures.fed_in_turn.per_second:.2f}x"
    )
    r = figures.landed
    batched = (
        f"{r.batch_requests:,} `$batch` requests held {r.batched_rows:,} rows "
        f"({r.batched_rows / r.batch_requests:.1f} a batch), {r.single_writes:,} rows went alone"
        if r.batch_requests
        else f"no `$batch`: all {r.single_writes:,} rows went alone"
    )
    landed_table = (
        "| rows | latency per call | sessions | fed in | landed in | rows/s landed | time for 100,000 | "
        "HTTP calls per row | latency-bound limit | share of limit | rows/s fed meanwhile | CPU per row | parked |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
        f"| {r.rows:,} | {r.latency_ms:.0f} ms | {r.sessions} | {r.fed_seconds:.1f} s | {r.landed_seconds:.1f} s | "
        f"{r.per_second:,.0f} | {r.seconds_per_100k:.0f} s | {r.calls_per_row:.3f} | {r.limit_per_second:,.0f}/s | "
        f"{r.share_of_limit:.2f} | {r.fed_per_second:,.0f} | {r.cpu_ms_per_row:.2f} ms | {r.parked} |\n\n"
        f"Finance writes: {batched}; Dataverse calls {r.dataverse_calls:,} (the pages and the lookups), "
        f"Finance calls {r.finance_calls:,}."
    )
    print()
    print("Initial sync fed: Dataverse actuals paged over HTTP (5,000 a page) to the flow queue, flow paused")
    print(feed_table)
    print()
    print("Initial sync landed: the same actuals, flow live, until Finance has every one")
    print(landed_table)
    record(
        "initial-sync",
        "## Initial sync: rows fed, and rows landed in Finance\n\n"
        f"`initial-sync actuals`: {rows:,} msdyn_actual rows in the Dataverse simulator, which with the\n"
        f"Finance simulator runs in a process of its own and answers every call after {latency_ms:.0f} ms.\n"
        "Pages of 5,000 rows over HTTP (`Prefer: odata.maxpagesize`, `@odata.nextLink`), each row fed to\n"
        "`flow-actuals` as a ChangeEvent, the run's cursor saved after every page. Actuals because they are\n"
        "Project Operations' volume table (every time entry, expense and journal line), with the widest map\n"
        "and four lookups, and the rows the end-to-end figure writes one message at a time.\n\n"
        "**Fed**: the flow paused, so the feed alone, first reading each page only after the one before is\n"
        "fed, then with the next page read while this one is fed (the default), against the same simulator\n"
        "process. The aim is 100,000 rows in under 2 minutes; dual-write's documented rate is about 100 rows\n"
        "a minute per company.\n\n"
        f"Measured {when} on {_machine()}:\n\n{feed_table}\n\n"
        f"**Landed**: the same rows with the flow live on the local host ({sessions} sessions at once, an\n"
        "initial sync being a backlog), timed from the start of the sync until the simulator process counts\n"
        "every actual staged in ProjActualsImports: how long until Finance has them. The latency-bound\n"
        "limit is sessions / latency / calls per row (every session always waiting on one call); with Finance\n"
        "writes that wait together going as one `$batch` (shared/clients/finance_batch.py) the calls per\n"
        "row fall far below one, so the limit is far above what this process's CPU allows, and the share is\n"
        "small: CPU per row is what binds here. The simulator charges its latency per request, not per\n"
        "row of a batch (inferred; a real Finance spends its own time on every row).\n\n"
        f"Measured {when} on {_machine()}:\n\n{landed_table}\n",
    )


def measure_large_document(lines: int, latency_ms: float, when: str) -> None:
    doc = large_document.run(lines, latency_ms)
    doc_table = (
        "| lines | latency per call | written as | seconds | Dataverse calls |\n|---|---|---|---|---|\n"
        f"| {doc.lines:,} | {doc.latency_ms:.0f} ms | $batch changesets of 500, whole path | "
        f"{doc.batched_seconds:.1f} | {doc.batched_calls} |\n"
        f"| {doc.lines:,} | {doc.latency_ms:.0f} ms | one upsert per request | "
        f"{doc.single_seconds:.1f} | {doc.single_calls:,} |"
    )
    print()
    print("Large document: a posted 5,000-line vendor invoice into Dataverse")
    print(doc_table)
    record(
        "large-document",
        "## A 5,000-line vendor invoice\n\n"
        "Dual-write stops at 1,000 lines a document. Here the Finance simulator posts a vendor invoice with\n"
        "5,000 project lines and raises its business event; the router, `vendor-invoices` and\n"
        "`vendor-invoice-lines` run on the local host and every line is upserted into the Dataverse\n"
        "simulator in atomic `$batch` changesets, timed from posting until all 5,000 are in Dataverse with\n"
        "the exact total (the integration test `test_a_5000_line_vendor_invoice_lands_complete_in_ten_changesets`\n"
        "asserts the same without timing). The second row writes the same lines one upsert per request.\n\n"
        f"Measured {when} on {_machine()}:\n\n{doc_table}\n",
    )


def measure_ceiling(rows: int, when: str) -> None:
    result = sync_at_the_ceiling.run(rows)
    refused = ", ".join(f"{code}: {count}" for code, count in sorted(result.refused.items())) or "none"
    table = (
        "| rows | seconds | rows/s | ceiling rows/s | share of ceiling | Dataverse requests | UpsertMultiple | "
        "single upserts | 429s forced by the limits | other refusals | parked |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
        f"| {result.rows:,} | {result.seconds:.1f} | {result.per_second:,.0f} | {result.ceiling:,.0f} | "
        f"{result.share:.2f} | {result.requests:,} | {result.bulk_requests:,} | {result.single_writes:,} | "
        f"{refused} | {result.other_refusals} | {result.parked} |"
    )
    print()
    print("Initial sync at the ceiling: Finance workers → Dataverse under service protection (scaled)")
    print(table)
    limits = sync_at_the_ceiling
    record(
        "sync-at-the-ceiling",
        "## Initial sync at the service-protection ceiling\n\n"
        f"`initial-sync workers`: {rows:,} Finance workers paged and fed to `flow-workers`, which runs on the\n"
        f"local host with {limits.SESSIONS} sessions at once and upserts them into the Dataverse simulator. The\n"
        "simulator enforces Dataverse's service protection for the integration's identity with the documented\n"
        f"rates on a window scaled by {limits.SCALE:g} (30 s: 600 requests, 120 s of execution, 52 at once) and\n"
        f"charges {limits.REQUEST_MS:g} ms a request plus {limits.ROW_MS:g} ms a row of execution time (inferred;\n"
        "Microsoft publishes no figure), so execution time is the limit that binds. The ceiling is what the\n"
        f"limits allow one identity in UpsertMultiple requests of {limits.BULK_ROWS} rows; rows/s runs from the\n"
        "start of the feed until the last worker is in Dataverse. Goal: 0.8 of the ceiling, no refusal but the\n"
        "429s the limits force, nothing parked.\n\n"
        f"Measured {when} on {_machine()}:\n\n{table}\n",
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
