"""A 5,000-line vendor invoice: posted in Finance, every project line in Dataverse.

The same document twice against simulators that answer every call after a fixed latency: once through
the whole path (business event → router → vendor-invoices and vendor-invoice-lines → Dataverse `$batch`
changesets of 500), and once written one upsert per request, to show what the changesets buy.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from functions import vendor_invoice_lines, vendor_invoices
from sandbox.demo_documents import create_vendor, vendor_invoice, vendor_line
from sandbox.environment import Sandbox, SandboxOptions
from sandbox.scenario import create_project_setup, seed_reference_data
from shared.clients.base import DataverseApi, Key, KeyBinds, Row
from shared.documents import apply_document
from shared.events import ChangeEvent, Operation, Source
from shared.outcomes import OutcomeKind

EVENT = vendor_invoices.INVOICE_POSTED


@dataclass
class LargeDocumentResult:
    lines: int
    latency_ms: float
    batched_seconds: float
    batched_calls: int
    single_seconds: float
    single_calls: int


class OneUpsertPerRequest:
    """The Dataverse client, but writing a document's rows one PATCH each instead of in changesets."""

    def __init__(self, client: DataverseApi) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def write_many(
        self,
        entity_set: str,
        rows: Sequence[tuple[Key, Row]],
        changeset_size: int = 500,
        key_binds: Sequence[KeyBinds] | None = None,
    ) -> int:
        for n, (key, body) in enumerate(rows):
            await self._client.write(entity_set, key, body, key_binds=key_binds[n] if key_binds else None)
        return 0


def _event(number: str) -> ChangeEvent:
    return ChangeEvent(
        event_id=f"bench-{number}",
        source=Source.FINANCE,
        entity=EVENT,
        operation=Operation.UPSERT,
        key=f"USMF|{number}|V-100",
        company="USMF",
        record={"InvoiceId": number, "InvoiceAccount": "V-100", "LegalEntity": "usmf"},
    )


async def measure(lines: int = 5000, latency_ms: float = 20.0) -> LargeDocumentResult:
    sandbox = Sandbox(SandboxOptions())
    await sandbox.start()
    try:
        await seed_reference_data(sandbox)
        await create_project_setup(sandbox)
        await create_vendor(sandbox)
        dv, fo = sandbox.dataverse, sandbox.finance
        dv.set_faults(latency_ms=latency_ms)
        fo.set_faults(latency_ms=latency_ms)
        document = [vendor_line(n, price=f"{50 + n % 97}.{n % 100:02d}") for n in range(1, lines + 1)]
        expected = sum((Decimal(line["PurchPrice"]) * 8 for line in document), Decimal(0))

        dv.requests.clear()
        started = time.perf_counter()
        await fo.post_vendor_invoice("usmf", vendor_invoice("VI-BATCH"), document)
        await sandbox.wait_quiet(600)
        batched_seconds = time.perf_counter() - started
        batched_calls = len(dv.requests)
        landed = dv.rows("msdyn_projectvendorinvoiceline")
        if len(landed) != lines or sum((r["msdyn_amount"] for r in landed), Decimal(0)) != expected:
            raise RuntimeError(f"only {len(landed)} of {lines} lines reached Dataverse whole")

        # The same document again, its lines written one upsert per request.
        fo.activated.discard(EVENT)
        await fo.post_vendor_invoice("usmf", vendor_invoice("VI-SINGLE"), document)
        assert sandbox.runtime is not None
        engine = sandbox.runtime.engine
        header = await apply_document(engine, vendor_invoices.MAP, _event("VI-SINGLE"))
        assert header.kind is OutcomeKind.WRITTEN, header
        one_by_one = dataclasses.replace(engine, dataverse=OneUpsertPerRequest(engine.dataverse))
        dv.requests.clear()
        started = time.perf_counter()
        outcome = await apply_document(one_by_one, vendor_invoice_lines.MAP, _event("VI-SINGLE"))
        single_seconds = time.perf_counter() - started
        assert outcome.kind is OutcomeKind.WRITTEN and outcome.writes == lines, outcome
        return LargeDocumentResult(lines, latency_ms, batched_seconds, batched_calls, single_seconds, len(dv.requests))
    finally:
        await sandbox.stop()


def run(lines: int = 5000, latency_ms: float = 20.0) -> LargeDocumentResult:
    return asyncio.run(measure(lines, latency_ms))
