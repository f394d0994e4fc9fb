"""What happened to one event in one flow (DESIGN §1, §7)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.events import ChangeEvent


class OutcomeKind(StrEnum):
    WRITTEN = "written"
    SKIPPED = "skipped"
    RETRY_LATER = "retry-later"
    PARKED = "parked"


@dataclass(frozen=True)
class Outcome:
    kind: OutcomeKind
    reason: str | None = None
    detail: str | None = None
    delay_seconds: float | None = None
    writes: int = 0
    target_keys: tuple[str, ...] = field(default_factory=tuple)
    # A retry-later that must come back as another event than the one applied (settlement sends it
    # in its place, counted as the next attempt of it).
    again: ChangeEvent | None = field(default=None, compare=False, repr=False)

    @staticmethod
    def written(writes: int, target_keys: tuple[str, ...] = ()) -> Outcome:
        return Outcome(OutcomeKind.WRITTEN, writes=writes, target_keys=target_keys)

    @staticmethod
    def skipped(reason: str, detail: str | None = None) -> Outcome:
        return Outcome(OutcomeKind.SKIPPED, reason=reason, detail=detail)

    @staticmethod
    def retry_later(
        reason: str, detail: str, delay_seconds: float | None = None, again: ChangeEvent | None = None
    ) -> Outcome:
        return Outcome(OutcomeKind.RETRY_LATER, reason=reason, detail=detail, delay_seconds=delay_seconds, again=again)

    @staticmethod
    def parked(reason: str, detail: str) -> Outcome:
        return Outcome(OutcomeKind.PARKED, reason=reason, detail=detail)


# Skip reasons, named once so telemetry and tests agree.
STALE = "stale"
TOMBSTONE = "tombstone"
ECHO = "echo"
NO_MAPPED_CHANGE = "no-mapped-change"
UNCHANGED = "unchanged"
FILTERED = "filtered"
OPERATION_NOT_ALLOWED = "operation-not-allowed"
SOURCE_GONE = "source-gone"
SOURCE_EXISTS = "source-still-exists"
NEVER_SYNCED = "never-synced"
DUPLICATE = "duplicate"
FINANCE_TEST_EVENT = "finance-test-event"
OUT_OF_SCOPE = "out-of-scope"  # a legal entity outside PROJOPS_COMPANIES

# Retry and park reasons.
MISSING_DEPENDENCY = "missing-dependency"
TRANSIENT = "transient"
# Another instance applied an event of the record while this one did (a lost session lock): sent
# again to be written from what the source holds now.
STATE_CONFLICT = "state-conflict"
REJECTED = "rejected-by-target"
MAPPING = "mapping-error"
UNDECODABLE = "undecodable"
# An exception the engine has no name for (a bug, or an input nothing yet handles): tried again like
# an outage, within the same budget, then parked whole with the exception named.
UNEXPECTED = "unexpected-error"
# The map's target entity is published only by a Finance extension that is not installed: kept, so
# the change can be replayed once the extension is there.
EXTENSION_MISSING = "extension-missing"
NO_FLOW = "no-flow"
RETRY_BUDGET = "retry-budget-exhausted"
