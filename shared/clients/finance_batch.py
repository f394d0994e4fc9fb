"""Group commit for Finance writes: rows that wait for Finance go together as one `$batch`.

Finance has no bulk message, but its OData takes `$batch` with changesets, each all or nothing and
independent of the others (formats.md §3; OData 4.0). So the writes that find the Finance limiter
(shared/clients/throttle.py) full, which is what a backlog looks like, wait together exactly as
Dataverse upserts do (shared/clients/bulk.py), and the next free place sends them, up to `max_rows`,
as one `$batch` with one changeset per row. Each row's verb (POST or PATCH) was decided by its own
flow (shared/writes.py) and each row's answer is classified as if it had been its own request, so
that flow's fallbacks (update → 404 → create, create → "already exists" → update) and its parking
work per row unchanged: one bad row is rolled back and settled alone, the others land. A row that
finds Finance idle goes alone, as the same request it always was.

The batch asks `Prefer: odata.continue-on-error`. Finance does not document whether it honours it
(inferred: its ASP.NET OData stack can); if it stops at the first failed changeset instead, as OData
4.0 says a service without the preference does, the rows it left unanswered are sent again. A batch
refused whole (not a throttle: too many operations, a malformed part) is halved down to single
requests; a throttle, outage or lost connection that outlasts the in-call retries goes to every row,
each retried later through its own flow (a create that had landed then finds its record and updates).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass

from shared.clients.base import WriteResult
from shared.clients.batch import BatchRequest
from shared.clients.bulk import GroupCommit, GroupFigures, Pending
from shared.clients.throttle import AdaptiveLimiter
from shared.errors import ServiceError

# What one row's changeset came to: written, its own typed error, or no answer (the batch stopped).
PartOutcome = WriteResult | ServiceError | None
SendOne = Callable[[BatchRequest], Awaitable[WriteResult]]
SendBatch = Callable[[Sequence[BatchRequest]], Awaitable[list[PartOutcome]]]
# Finance throttles on resources, not request counts: no floor on a batch's size is worth a wait.
_MIN_ROWS = 1


@dataclass
class BatchFigures(GroupFigures):
    batch_requests: int = 0
    batch_rows: int = 0
    failed_rows: int = 0
    unanswered_rows: int = 0


class FinanceBatches(GroupCommit[BatchRequest]):
    figures: BatchFigures

    def __init__(self, limiter: AdaptiveLimiter, send_one: SendOne, send_batch: SendBatch, max_rows: int) -> None:
        super().__init__(limiter, max_rows, min_rows=_MIN_ROWS)
        self.send_one = send_one
        self.send_batch = send_batch
        self.figures = BatchFigures()

    async def write(self, request: BatchRequest, identity: Hashable) -> WriteResult:
        # One group for the service: a $batch may hold changesets for any entity sets.
        return await self.submit("", identity, request)

    async def _send_alone(self, group_name: str, write: BatchRequest) -> WriteResult:
        return await self.send_one(write)

    async def _send_together(self, group_name: str, rows: list[Pending[BatchRequest]]) -> None:
        self.figures.batch_requests += 1
        outcomes = await self.send_batch([row.write for row in rows])
        unanswered: list[Pending[BatchRequest]] = []
        for row, outcome in zip(rows, outcomes, strict=True):
            if outcome is None:
                unanswered.append(row)
                continue
            if isinstance(outcome, ServiceError):
                self.figures.failed_rows += 1
            else:
                self.figures.batch_rows += 1
            row.settle(outcome)
        if not unanswered:
            return
        self.figures.unanswered_rows += len(unanswered)
        if len(unanswered) < len(rows):
            await self._send(group_name, unanswered)  # the batch made progress: the rest again
        else:
            # Not one answer: send smaller, down to single requests, rather than the same batch again.
            await self._halve(group_name, unanswered)
