"""`make faults` (python -m tests.faults): thousands of changes in both directions through faults, and what survived.

Half the changes start in Dataverse (transaction categories: created, then renamed twice), half in
Finance (workers: created, then renamed twice). While they flow, both simulators answer some calls
with 429 and 5xx, drop some connections before answering and some after applying the request, the
sources' messages are duplicated and reordered on their way to the bus, the functions host crashes
once and starts again, and the fuzz corpus is sent through the webhook, the topic and the Finance
queue. When the faults stop and everything is quiet, each record must be in the other system once,
with its newest name; nothing may be dead-lettered, and only the corpus may be parked.

Exits non-zero on any lost, stale or duplicate record, any dead letter, or any change parked.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from functions.catalog import CATALOG
from sandbox.bus import sink_for
from sandbox.environment import WEBHOOK_SECRET, Sandbox, SandboxOptions
from sandbox.odata import NO_FAULTS_HEADER, Sink
from sandbox.scenario import seed_reference_data
from shared.bus import DATAVERSE_TOPIC, FINANCE_QUEUE
from shared.decoding.dataverse import IncomingMessage, decode_dataverse
from shared.decoding.finance import FinanceTestEvent, decode_finance
from shared.errors import DecodeError
from tests.fuzz_corpus import corpus

FAULTS = {
    "throttle_share": 0.04,
    "retry_after_seconds": 1,
    "error_share": 0.03,
    "drop_share": 0.02,
    "drop_after_share": 0.02,
}
NAMES = ("first", "second", "third")


@dataclass
class Report:
    changes: int = 0
    lost: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    parked_changes: list[str] = field(default_factory=list)
    parked_corpus: int = 0
    corpus: int = 0
    # Corpus messages that must end parked (undecodable, or no flow takes them), as decoding them says.
    corpus_must_park: int = 0
    dead_lettered: int = 0
    duplicated_messages: int = 0
    reordered_messages: int = 0
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return bool(
            self.lost
            or self.stale
            or self.duplicates
            or self.parked_changes
            or self.dead_lettered
            # A message a flow takes may be parked by that flow too; fewer parked than must be is a loss.
            or self.parked_corpus < self.corpus_must_park
        )

    def table(self) -> str:
        rows = [
            ("changes sent", self.changes),
            ("lost", len(self.lost)),
            ("stale", len(self.stale)),
            ("duplicates", len(self.duplicates)),
            ("changes parked", len(self.parked_changes)),
            ("dead-lettered", self.dead_lettered),
            ("fuzz messages sent", self.corpus),
            ("fuzz messages parked", self.parked_corpus),
            ("fuzz messages that must park", self.corpus_must_park),
            ("source messages duplicated", self.duplicated_messages),
            ("source messages reordered", self.reordered_messages),
        ]
        lines = [f"{name:<28}{value:>8}" for name, value in rows]
        lines.append(f"{'seconds':<28}{self.seconds:>8.1f}")
        for label, items in (("lost", self.lost), ("stale", self.stale), ("duplicate", self.duplicates)):
            lines += [f"  {label}: {item}" for item in items[:10]]
        lines += [f"  parked: {item}" for item in self.parked_changes[:10]]
        return "\n".join(lines)


class ChaosSink:
    """Between a source and the bus: some messages twice, some held back so later ones overtake them."""

    def __init__(self, inner: Sink, rng: random.Random, report: Report) -> None:
        self.inner = inner
        self.rng = rng
        self.report = report
        self.pending: set[asyncio.Task[None]] = set()

    async def __call__(self, destination: str, body: bytes, properties: dict[str, str], content_type: str) -> None:
        copies = 2 if self.rng.random() < 0.05 else 1
        self.report.duplicated_messages += copies - 1
        for _ in range(copies):
            if self.rng.random() < 0.1:
                self.report.reordered_messages += 1
                delay = self.rng.uniform(0.05, 0.4)
                task = asyncio.create_task(self._later(delay, destination, body, properties, content_type))
                self.pending.add(task)
                task.add_done_callback(self.pending.discard)
            else:
                await self.inner(destination, body, properties, content_type)

    async def _later(self, delay: float, *args: Any) -> None:
        await asyncio.sleep(delay)
        await self.inner(*args)

    async def drain(self) -> None:
        while self.pending:
            await asyncio.gather(*list(self.pending))


async def _send_corpus(sandbox: Sandbox, report: Report, seed: int) -> None:
    assert sandbox.host is not None
    items = corpus(seed, mutations=10)
    sink = sink_for(sandbox.bus)
    webhook = f"{sandbox.host.http_url}/api/dataverse/webhook"
    async with httpx.AsyncClient(timeout=30) as client:
        for index, (_name, body, kind) in enumerate(items):
            report.corpus += 1
            report.corpus_must_park += _must_park(body, kind, index % 2 == 0)
            if kind == "finance":
                await sink(FINANCE_QUEUE, body, {}, "application/json")
            elif index % 2:
                await sink(DATAVERSE_TOPIC, body, {}, "application/json")
            else:
                headers = {"content-type": "application/json", "x-projops-webhook-key": WEBHOOK_SECRET}
                response = await client.post(webhook, content=body, headers=headers)
                if response.status_code != 202:
                    report.parked_corpus += 1  # refused at the door with a reason: nothing to lose


def _must_park(body: bytes, kind: str, by_webhook: bool) -> int:
    """1 if this message must end parked (or refused at the webhook with a reason), from decoding it
    here: undecodable, or no flow takes its entity. A Finance activation test is skipped by design;
    one a flow takes goes on to the flow, whose own outcome the run does not count."""
    if kind == "dataverse" and by_webhook and len(body) > 1_048_576:
        return 1
    message = IncomingMessage(body=body, content_type="application/json")
    try:
        events = [decode_dataverse(message)] if kind == "dataverse" else decode_finance(message)
    except FinanceTestEvent:
        return 0
    except DecodeError:
        return 1
    for event in events:
        takers = (
            CATALOG.for_dataverse_entity(event.entity)
            if kind == "dataverse"
            else CATALOG.for_finance_event(event.entity)
        )
        if not takers:
            return 1
    return 0


async def _dataverse_changes(sandbox: Sandbox, count: int, rng: random.Random) -> None:
    async with sandbox.person_dataverse() as dv:
        dv.headers[NO_FAULTS_HEADER.decode()] = "1"
        for n in range(count):
            number = f"TCN-F{n:06d}"
            body = {"msdyn_transactioncategorynumber": number, "msdyn_name": f"{number} {NAMES[0]}"}
            await _ok(await dv.post("msdyn_transactioncategories", json=body))
        for name in NAMES[1:]:
            order = list(range(count))
            rng.shuffle(order)
            for n in order:
                number = f"TCN-F{n:06d}"
                await _ok(
                    await dv.patch(
                        f"msdyn_transactioncategories(msdyn_transactioncategorynumber='{number}')",
                        json={"msdyn_name": f"{number} {name}"},
                    )
                )


async def _finance_changes(sandbox: Sandbox, count: int, rng: random.Random) -> None:
    async with sandbox.person_finance() as fo:
        fo.headers[NO_FAULTS_HEADER.decode()] = "1"
        for n in range(count):
            number = f"W{n:06d}"
            await _ok(await fo.post("Workers", json={"PersonnelNumber": number, "Name": f"{number} {NAMES[0]}"}))
        for name in NAMES[1:]:
            order = list(range(count))
            rng.shuffle(order)
            for n in order:
                number = f"W{n:06d}"
                await _ok(await fo.patch(f"Workers('{number}')", json={"Name": f"{number} {name}"}))


async def _ok(response: httpx.Response) -> None:
    if response.status_code >= 400:
        raise RuntimeError(f"{response.request.method} {response.request.url}: {response.status_code} {response.text}")


async def run(changes: int, seed: int) -> Report:
    report = Report()
    rng = random.Random(seed)
    per_side = max(1, -(-changes // (2 * len(NAMES))))  # at least as many changes as asked for
    report.changes = per_side * len(NAMES) * 2
    started = time.perf_counter()
    sandbox = Sandbox(SandboxOptions(retry_max_attempts=30, retry_max_delay_seconds=1.0, http_max_retries=6))
    chaos = ChaosSink(sink_for(sandbox.bus), rng, report)
    sandbox.dataverse.sink = chaos
    sandbox.finance.sink = chaos
    await sandbox.start()
    try:
        await seed_reference_data(sandbox)
        await sandbox.wait_quiet(120)
        before = {p.id for p in await sandbox.runtime.engine.state.list_parked()}  # type: ignore[union-attr]
        sandbox.dataverse.set_faults(**FAULTS, seed=seed)
        sandbox.finance.set_faults(**FAULTS, seed=seed + 1)
        sources = asyncio.gather(_dataverse_changes(sandbox, per_side, rng), _finance_changes(sandbox, per_side, rng))
        await asyncio.sleep(0.5)
        await sandbox.restart_host()
        await _send_corpus(sandbox, report, seed)
        await sources
        await chaos.drain()
        await sandbox.wait_quiet(600)
        sandbox.dataverse.set_faults(throttle_share=0, error_share=0, drop_share=0, drop_after_share=0)
        sandbox.finance.set_faults(throttle_share=0, error_share=0, drop_share=0, drop_after_share=0)
        await sandbox.wait_quiet(600)
        _tally(sandbox, report, per_side)
        parked = [p for p in await sandbox.runtime.engine.state.list_parked() if p.id not in before]  # type: ignore[union-attr]
        for item in parked:
            if item.flow in ("transaction-categories", "workers"):
                report.parked_changes.append(f"{item.flow} {item.key}: {item.reason} {item.error[:160]}")
            else:
                report.parked_corpus += 1
        report.dead_lettered = sum(len(entity.dead) for entity in sandbox.bus.queues.values())
    finally:
        await sandbox.stop()
    report.seconds = time.perf_counter() - started
    return report


def _tally(sandbox: Sandbox, report: Report, per_side: int) -> None:
    newest = NAMES[-1]
    categories = Counter(r["CategoryId"] for r in sandbox.finance.rows("ProjectTransactionCategories"))
    names = {r["CategoryId"]: r["Name"] for r in sandbox.finance.rows("ProjectTransactionCategories")}
    workers = Counter(r.get("cdm_workernumber") for r in sandbox.dataverse.rows("cdm_worker"))
    full_names = {r.get("cdm_workernumber"): r.get("cdm_fullname") for r in sandbox.dataverse.rows("cdm_worker")}
    for n in range(per_side):
        for key, counts, values in (
            (f"TCN-F{n:06d}", categories, names),
            (f"W{n:06d}", workers, full_names),
        ):
            if counts[key] == 0:
                report.lost.append(key)
            elif counts[key] > 1:
                report.duplicates.append(key)
            elif values[key] != f"{key} {newest}":
                report.stale.append(f"{key}: {values[key]!r}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="faults", description=__doc__)
    parser.add_argument("--changes", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-record", action="store_true", help="do not write the figures to docs/benchmarks.md")
    args = parser.parse_args(argv)
    # Every parking is logged as a warning; the report below counts them, so only errors are shown.
    logging.basicConfig(level=logging.ERROR)
    report = asyncio.run(run(args.changes, args.seed))
    print(report.table())
    verdict = "FAILED" if report.failed else "OK: nothing lost, stale, duplicated or dead-lettered"
    print(verdict)
    if not args.no_record:
        from benchmarks.__main__ import record

        when = datetime.now(UTC).strftime("%Y-%m-%d")
        faults = ", ".join(f"{name} {value}" for name, value in FAULTS.items())
        record(
            "faults",
            f"## Fault suite ({when}, `make faults`, seed {args.seed})\n\nFaults: {faults}; 5% of source messages "
            f"sent twice, 10% held back 50-400 ms; one host crash; the fuzz corpus on all three entry points.\n\n"
            f"```\n{report.table()}\n{verdict}\n```",
        )
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
